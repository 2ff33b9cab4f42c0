"""`smista label ...`: run Label Studio, build the project from the taxonomy, import posts, attach
predictions, pick posts by active learning, export the annotations as a data set, and send agents'
corrections back for review."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from labeling.client import LabelingError
from labeling.config import LabelConfigError
from labeling.settings import DEFAULT_LABELING_CONFIG_PATH, LabelingSettingsError
from smista.arguments import add_dataclass_arguments, dataclass_from_args

USER_ERRORS = (LabelingError, LabelingSettingsError, LabelConfigError)


# ------------------------------------------------------------------------------------------ helpers


def _connect(args: argparse.Namespace):
    from labeling.client import LabelStudioClient, ServerAddress

    return LabelStudioClient.connect(ServerAddress.from_environment(args.url, args.api_key))


def _settings(args: argparse.Namespace):
    from labeling.settings import load_labeling_settings

    return load_labeling_settings(args.settings)


def _project_id(args: argparse.Namespace, client, settings) -> int:
    from labeling.project import find_project_id

    return args.project_id if args.project_id is not None else find_project_id(client, settings.project_title)


def _validator(args: argparse.Namespace):
    from data.schema import PostValidator
    from data.taxonomy import load_taxonomy

    return PostValidator(load_taxonomy(args.taxonomy))


def _load_predictor(source: str):
    from training.inference.predict import ModelLoadError, Predictor

    try:
        return Predictor.load(source)
    except ModelLoadError as exc:
        raise LabelingError(str(exc)) from None


# ----------------------------------------------------------------------------------------- commands


def cmd_server(args: argparse.Namespace) -> int:
    from labeling.server import ServerConfig, start_server

    config = dataclass_from_args(ServerConfig, args)
    server = start_server(config)
    # Label Studio runs in its own process group; a SIGTERM to this command (a service manager, a
    # CI timeout) must stop it too, so the signal takes the same path as Ctrl-C.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    print(f"Label Studio starting on {server.url} (log: {server.log_path}); a first start takes about a minute")
    try:
        waited = server.wait_until_ready(config.ready_timeout_s)
        print(f"Ready in {waited:.0f} s: open {server.url} and log in as $LABEL_STUDIO_USERNAME.")
        print(f"Commands reach it with LABEL_STUDIO_URL={server.url} and LABEL_STUDIO_API_KEY=$LABEL_STUDIO_USER_TOKEN.")
        print("Press Ctrl-C to stop it.")
        return server.process.wait()
    except KeyboardInterrupt:
        print("Stopping Label Studio")
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous_handler)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def cmd_config(args: argparse.Namespace) -> int:
    from data.taxonomy import load_taxonomy
    from labeling.config import build_label_config

    print(build_label_config(load_taxonomy(args.taxonomy)))
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from data.taxonomy import load_taxonomy
    from labeling.project import ensure_project

    client, settings = _connect(args), _settings(args)
    result = ensure_project(client, load_taxonomy(args.taxonomy), settings.project_title, args.annotators_per_task)
    print(
        f"Project {result.project_id} {result.action} ({settings.project_title!r}, taxonomy v{result.taxonomy_version}, "
        f"config {result.config_fingerprint}) on {client.url}"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from labeling.importer import import_file

    client, settings, validator = _connect(args), _settings(args), _validator(args)
    project_id = _project_id(args, client, settings)
    failed = False
    for path in args.files:
        report = import_file(
            client, project_id, path, validator, settings.public_handles, batch_size=settings.import_batch_size
        )
        for error in report.errors:
            print(error, file=sys.stderr)
        print(f"{path}: {report.summary()}")
        if report.updated_with_annotations:
            print(f"  edited posts whose annotations were kept (review them): {', '.join(report.updated_with_annotations)}")
        failed = failed or bool(report.errors)
    return 1 if failed else 0


def cmd_preannotate(args: argparse.Namespace) -> int:
    from data.taxonomy import load_taxonomy
    from labeling.preannotate import preannotate

    client, settings = _connect(args), _settings(args)
    project_id = _project_id(args, client, settings)
    predictor = _load_predictor(args.model)
    report = preannotate(client, project_id, predictor, load_taxonomy(args.taxonomy), args.include_annotated)
    print(
        f"Model {report.model_version}: predictions attached to {report.attached} tasks; "
        f"{report.already_predicted} already had them, {report.skipped_annotated} annotated tasks left alone"
    )
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from labeling.active_learning import SelectionConfig, run_selection

    client, settings, validator = _connect(args), _settings(args), _validator(args)
    project_id = _project_id(args, client, settings)
    config = dataclass_from_args(SelectionConfig, args)
    config.check()
    predictor = _load_predictor(args.model)
    result = run_selection(
        client, project_id, args.pool, predictor, validator, settings.public_handles, config, args.selections_dir
    )
    for error in result.errors:
        print(error, file=sys.stderr)
    print(
        f"Scored {result.pool_size} posts ({result.already_in_project} already in the project, "
        f"{len(result.errors)} bad lines); pushed {len(result.picks)} in rank order, "
        f"{result.near_duplicates_skipped} near-duplicates skipped. Record: {result.record_path}"
    )
    for pick in result.picks[:10]:
        print(f"  {pick['rank']:>3}. {pick['post_id']}  uncertainty {pick['uncertainty']:.3f}")
    return 1 if result.errors else 0


def cmd_export(args: argparse.Namespace) -> int:
    from labeling.export import ExportConfig, pull, rebuild

    config = dataclass_from_args(ExportConfig, args)
    config.check()
    if args.no_pull:
        if args.project_id is None:
            raise LabelingError("--no-pull rebuilds from the raw pulls of one project: give --project-id")
        project_id = args.project_id
    else:
        client, settings = _connect(args), _settings(args)
        project_id = _project_id(args, client, settings)
        pulled = pull(client, project_id, config.exports_dir, full=args.full)
        if pulled.path is None:
            print("Pull: nothing changed since the last pull")
        else:
            print(f"Pull: {pulled.task_count} {'tasks (full snapshot)' if pulled.full else 'changed tasks'} -> {pulled.path}")
    report = rebuild(project_id, config)
    for rejected in report.rejected:
        print(f"rejected: {rejected}", file=sys.stderr)
    print(
        f"{report.tasks} tasks: {report.labelled_posts} labelled posts, {report.unlabelled_tasks} not (yet) labelled, "
        f"{len(report.disagreements)} disagreements flagged, {len(report.rejected)} rejected"
    )
    for name, agreement in report.agreement.items():
        kappa = agreement["fleiss_kappa"]
        print(f"  agreement {name:<28} Fleiss' kappa {'undefined' if kappa is None else f'{kappa:.3f}'} over {agreement['items']} tasks")
    if report.build is None:
        raise LabelingError("no labelled posts yet: nothing to build (the previous data set, if any, is untouched)")
    sizes = ", ".join(f"{split} {len(posts)}" for split, posts in report.build.splits.items())
    print(f"Data set {report.build.data_hash} ({sizes}) written to {report.build.output_dir}")
    return 1 if report.rejected else 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from labeling.feedback import push_corrections, read_cursor, write_cursor

    client, settings, validator = _connect(args), _settings(args), _validator(args)
    project_id = _project_id(args, client, settings)
    cursor_path = Path(args.exports_dir) / f"project-{project_id}" / "feedback_cursor.json"
    after = read_cursor(cursor_path)
    corrections, skipped, last_id = corrections_from_store(args.store_url, after, validator)
    for message in skipped:
        print(f"skipped: {message}", file=sys.stderr)
    report = push_corrections(client, project_id, corrections, validator, settings.public_handles)
    write_cursor(cursor_path, max(last_id, after))
    created = report.import_report.summary() if report.import_report else "nothing imported"
    print(
        f"{len(corrections)} corrections since feedback id {after}: {len(report.pushed)} pushed for review "
        f"({created}), {len(report.agreeing)} agreed with the model"
    )
    return 0


def corrections_from_store(store_url: str, after_id: int, validator):
    """Read the serving store's feedback rows after `after_id` that carry corrected labels, joined to
    the routed post they correct. This adapter lives in the CLI, the one floor that may import both
    serving/ and labeling/. Returns (corrections, skipped messages, last feedback id seen)."""
    from sqlalchemy import select

    from data.schema import PostValidationError
    from labeling.feedback import Correction
    from serving.store import Feedback, PredictionStore, RoutedPost

    store = PredictionStore(store_url)
    corrections, skipped, last_id = [], [], after_id
    try:
        with store.session() as session:
            rows = session.scalars(select(Feedback).where(Feedback.id > after_id).order_by(Feedback.id)).all()
            for row in rows:
                last_id = max(last_id, row.id)
                if not row.corrected_labels:
                    continue
                routed = session.scalars(
                    select(RoutedPost).where(RoutedPost.post_id == row.post_id).order_by(RoutedPost.id.desc()).limit(1)
                ).first()
                if routed is None or routed.text is None:
                    skipped.append(f"feedback {row.id} (post {row.post_id}): the post text was not stored")
                    continue
                raw = {
                    "id": routed.post_id, "text": routed.text, "channel": routed.channel, "public": routed.public,
                    "created_at": routed.created_at.isoformat() if routed.created_at else None,
                    "sector": routed.sector, "author": {"followers": routed.author_followers},
                }
                try:
                    post = validator.validate(raw)
                except PostValidationError as exc:
                    skipped.append(f"feedback {row.id} (post {row.post_id}): {exc}")
                    continue
                predicted = {
                    name: output["labels"] if validator.taxonomy.fields[name].is_multi_label else output["labels"][0]
                    for name, output in routed.predictions.items()
                    if name in validator.taxonomy.fields
                }
                corrections.append(Correction(
                    feedback_id=row.id, post=post, predicted=predicted, corrected=dict(row.corrected_labels),
                    model_version=routed.model_version, agent_id=row.agent_id, recorded_at=row.recorded_at,
                ))
    finally:
        store.close()
    return corrections, skipped, last_id


# ---------------------------------------------------------------------------------------- register


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
    from labeling.active_learning import DEFAULT_SELECTIONS_DIR, SelectionConfig
    from labeling.export import DEFAULT_EXPORTS_DIR, ExportConfig
    from labeling.server import ServerConfig

    label = groups.add_parser("label", help="Label Studio: server, project, import, pre-annotation, active learning, export.")
    commands = label.add_subparsers(dest="command", required=True, metavar="<command>")

    server = commands.add_parser(
        "server", help="Run Label Studio on 127.0.0.1 (admin and token from LABEL_STUDIO_USERNAME/PASSWORD/USER_TOKEN)."
    )
    add_dataclass_arguments(server, ServerConfig)
    server.set_defaults(handler=cmd_server)

    config = commands.add_parser("config", help="Print the labeling config XML generated from the taxonomy.")
    config.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    config.set_defaults(handler=cmd_config)

    project = commands.add_parser("project", help="Create the project from the taxonomy, or update its config.")
    _add_connection_arguments(project, needs_project=False)
    project.add_argument("--annotators-per-task", type=int, default=1, help="Annotations wanted per task (overlap).")
    project.set_defaults(handler=cmd_project)

    import_ = commands.add_parser("import", help="Import JSONL posts as tasks, redacted, idempotent by post id.")
    import_.add_argument("files", nargs="+", help="JSONL files of posts.")
    _add_connection_arguments(import_)
    import_.set_defaults(handler=cmd_import)

    preannotate = commands.add_parser("preannotate", help="Attach the model's predictions to tasks.")
    preannotate.add_argument("--model", required=True, help="Model directory or MLflow URI (models:/smista-classifier@champion).")
    preannotate.add_argument("--include-annotated", action="store_true", help="Also predict tasks that have annotations.")
    _add_connection_arguments(preannotate)
    preannotate.set_defaults(handler=cmd_preannotate)

    select = commands.add_parser("select", help="Active learning: push the most useful posts of a pool first.")
    select.add_argument("--pool", required=True, help="JSONL file of unlabelled posts.")
    select.add_argument("--model", required=True, help="Model directory or MLflow URI (models:/smista-classifier@champion).")
    select.add_argument("--selections-dir", default=str(DEFAULT_SELECTIONS_DIR), help="Where selection records go.")
    add_dataclass_arguments(select, SelectionConfig)
    _add_connection_arguments(select)
    select.set_defaults(handler=cmd_select)

    export = commands.add_parser("export", help="Pull new annotations and rebuild the training data set.")
    add_dataclass_arguments(export, ExportConfig)
    export.add_argument("--full", action="store_true", help="Pull every task (drops tasks deleted in Label Studio).")
    export.add_argument("--no-pull", action="store_true", help="Only rebuild from the raw pulls already stored.")
    _add_connection_arguments(export, with_taxonomy=False)  # ExportConfig has its own --taxonomy
    export.set_defaults(handler=cmd_export)

    feedback = commands.add_parser("feedback", help="Push agents' corrections from the serving store as review tasks.")
    feedback.add_argument("--store-url", required=True, help="SQLAlchemy URL of the serving store (sqlite:///... or postgresql://...).")
    feedback.add_argument("--exports-dir", default=str(DEFAULT_EXPORTS_DIR), help="Where the feedback cursor is kept.")
    _add_connection_arguments(feedback)
    feedback.set_defaults(handler=cmd_feedback)
