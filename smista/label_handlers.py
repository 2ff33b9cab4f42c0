"""`smista label ...`: what the commands do (their arguments are in smista/label_commands.py)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from data.schema import PostValidationError, PostValidator
from data.taxonomy import load_taxonomy
from labeling.active_learning import SelectionConfig, run_selection
from labeling.client import LabelingError, LabelStudioClient, ServerAddress
from labeling.config import build_label_config
from labeling.export import ExportConfig, pull, rebuild
from labeling.feedback import Correction, push_corrections, read_cursor, write_cursor
from labeling.importer import import_file
from labeling.preannotate import preannotate
from labeling.project import ensure_project, find_project_id
from labeling.server import ServerConfig, start_server
from labeling.settings import load_labeling_settings
from serving.store import PredictionStore
from smista.arguments import dataclass_from_args
from training.inference.predict import Predictor

# ------------------------------------------------------------------------------------------ helpers


def _connect(args: argparse.Namespace):
    return LabelStudioClient.connect(ServerAddress.from_environment(args.url, args.api_key))


def _settings(args: argparse.Namespace):
    return load_labeling_settings(args.settings)


def _project_id(args: argparse.Namespace, client, settings) -> int:
    return args.project_id if args.project_id is not None else find_project_id(client, settings.project_title)


def _validator(args: argparse.Namespace):
    return PostValidator(load_taxonomy(args.taxonomy))


# ----------------------------------------------------------------------------------------- commands


def cmd_server(args: argparse.Namespace) -> int:
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
    print(build_label_config(load_taxonomy(args.taxonomy)))
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    client, settings = _connect(args), _settings(args)
    result = ensure_project(client, load_taxonomy(args.taxonomy), settings.project_title, args.annotators_per_task)
    print(
        f"Project {result.project_id} {result.action} ({settings.project_title!r}, taxonomy v{result.taxonomy_version}, "
        f"config {result.config_fingerprint}) on {client.url}"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
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
    client, settings = _connect(args), _settings(args)
    project_id = _project_id(args, client, settings)
    predictor = Predictor.load(args.model)
    report = preannotate(client, project_id, predictor, load_taxonomy(args.taxonomy), args.include_annotated)
    print(
        f"Model {report.model_version}: predictions attached to {report.attached} tasks; "
        f"{report.already_predicted} already had them, {report.skipped_annotated} annotated tasks left alone"
    )
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    client, settings, validator = _connect(args), _settings(args), _validator(args)
    project_id = _project_id(args, client, settings)
    config = dataclass_from_args(SelectionConfig, args)
    predictor = Predictor.load(args.model)
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
    config = dataclass_from_args(ExportConfig, args)
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


def corrections_from_store(store_url: str, after_id: int, validator: PostValidator):
    """The agents' corrections after the feedback cursor `after_id`, read from the serving store
    (PredictionStore.corrections_after) and made labeling Corrections: the adapter between serving/
    and labeling/ lives here, on the one floor that may import both. Returns (corrections, skipped
    messages, last feedback id seen)."""
    store = PredictionStore(store_url)
    try:
        rows, last_id = store.corrections_after(after_id)
    finally:
        store.close()
    corrections, skipped = [], []
    for row, routed in rows:
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
    return corrections, skipped, last_id
