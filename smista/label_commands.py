"""`smista label ...`: run Label Studio, build the project from the taxonomy, import posts, attach
predictions, pick posts by active learning, export the annotations as a data set, and send agents'
corrections back for review. The arguments; what the commands do is in smista/label_handlers.py."""

from __future__ import annotations

import argparse

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from labeling.active_learning import DEFAULT_SELECTIONS_DIR, SelectionConfig
from labeling.export import DEFAULT_EXPORTS_DIR, ExportConfig
from labeling.server import ServerConfig
from labeling.settings import DEFAULT_LABELING_CONFIG_PATH
from smista.arguments import add_dataclass_arguments


def _add_connection_arguments(
    parser: argparse.ArgumentParser, needs_project: bool = True, with_taxonomy: bool = True
) -> None:
    parser.add_argument("--url", default=None, help="Label Studio URL (default: $LABEL_STUDIO_URL or http://127.0.0.1:8080).")
    parser.add_argument("--api-key", default=None, help="API token (default: $LABEL_STUDIO_API_KEY).")
    parser.add_argument("--settings", default=str(DEFAULT_LABELING_CONFIG_PATH), help="Labeling settings YAML.")
    if with_taxonomy:
        parser.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    if needs_project:
        parser.add_argument(
            "--project-id", type=int, default=None, help="Project id (default: the project titled as in the settings)."
        )


def register(groups: argparse._SubParsersAction) -> None:
    label = groups.add_parser("label", help="Label Studio: server, project, import, pre-annotation, active learning, export.")
    commands = label.add_subparsers(dest="command", required=True, metavar="<command>")

    server = commands.add_parser(
        "server", help="Run Label Studio on 127.0.0.1 (admin and token from LABEL_STUDIO_USERNAME/PASSWORD/USER_TOKEN)."
    )
    add_dataclass_arguments(server, ServerConfig)
    server.set_defaults(handler="smista.label_handlers.cmd_server")

    config = commands.add_parser("config", help="Print the labeling config XML generated from the taxonomy.")
    config.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    config.set_defaults(handler="smista.label_handlers.cmd_config")

    project = commands.add_parser("project", help="Create the project from the taxonomy, or update its config.")
    _add_connection_arguments(project, needs_project=False)
    project.add_argument("--annotators-per-task", type=int, default=1, help="Annotations wanted per task (overlap).")
    project.set_defaults(handler="smista.label_handlers.cmd_project")

    import_ = commands.add_parser("import", help="Import JSONL posts as tasks, redacted, idempotent by post id.")
    import_.add_argument("files", nargs="+", help="JSONL files of posts.")
    _add_connection_arguments(import_)
    import_.set_defaults(handler="smista.label_handlers.cmd_import")

    preannotate = commands.add_parser("preannotate", help="Attach the model's predictions to tasks.")
    preannotate.add_argument("--model", required=True, help="Model directory or MLflow URI (models:/smista-classifier@champion).")
    preannotate.add_argument("--include-annotated", action="store_true", help="Also predict tasks that have annotations.")
    _add_connection_arguments(preannotate)
    preannotate.set_defaults(handler="smista.label_handlers.cmd_preannotate")

    select = commands.add_parser("select", help="Active learning: push the most useful posts of a pool first.")
    select.add_argument("--pool", required=True, help="JSONL file of unlabelled posts.")
    select.add_argument("--model", required=True, help="Model directory or MLflow URI (models:/smista-classifier@champion).")
    select.add_argument("--selections-dir", default=str(DEFAULT_SELECTIONS_DIR), help="Where selection records go.")
    add_dataclass_arguments(select, SelectionConfig)
    _add_connection_arguments(select)
    select.set_defaults(handler="smista.label_handlers.cmd_select")

    export = commands.add_parser("export", help="Pull new annotations and rebuild the training data set.")
    add_dataclass_arguments(export, ExportConfig)
    export.add_argument("--full", action="store_true", help="Pull every task (drops tasks deleted in Label Studio).")
    export.add_argument("--no-pull", action="store_true", help="Only rebuild from the raw pulls already stored.")
    _add_connection_arguments(export, with_taxonomy=False)  # ExportConfig has its own --taxonomy
    export.set_defaults(handler="smista.label_handlers.cmd_export")

    feedback = commands.add_parser("feedback", help="Push agents' corrections from the serving store as review tasks.")
    feedback.add_argument("--store-url", required=True, help="SQLAlchemy URL of the serving store (sqlite:///... or postgresql://...).")
    feedback.add_argument("--exports-dir", default=str(DEFAULT_EXPORTS_DIR), help="Where the feedback cursor is kept.")
    _add_connection_arguments(feedback)
    feedback.set_defaults(handler="smista.label_handlers.cmd_feedback")
