"""Label Studio annotations -> the versioned training data set. This is the edge where Label Studio
JSON stops: what comes out is JSONL posts and a `datasets.DatasetDict` (through data.dataset), and
nothing downstream ever reads Label Studio JSON.

Two steps, both run by `smista label export`:
1. pull: fetch the tasks changed since the last pull (server-side `updated_at` filter; creating,
   editing or deleting an annotation touches its task) and store them as a new raw file. Raw files
   are never changed again: written once, read-only, numbered. `--full` stores a complete snapshot,
   which also drops tasks deleted in Label Studio.
2. rebuild: replay the raw files (the latest full snapshot, then every later pull, the last version
   of each task winning), resolve several annotators per task, measure their agreement, and build
   the data set with data.dataset.build_dataset. The derived data set is always rebuilt whole.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from data.atomic_files import write_text_atomically
from data.dataset import BuildConfig, BuildResult, build_dataset
from data.jsonl import write_posts
from data.locations import BUILD_DIR, VAR_DIR
from data.schema import Post, PostValidationError, PostValidator, check_labels
from data.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy, load_taxonomy
from labeling.agreement import agreement_by_field
from labeling.client import LabelingError, LabelStudioClient
from labeling.config import result_to_labels
from labeling.resolution import STRATEGIES, resolve

DEFAULT_EXPORTS_DIR = VAR_DIR / "label-studio-exports"
DEFAULT_OUTPUT_DIR = BUILD_DIR / "labeled-dataset"
_PULL_PREFIX = "pull-"


class ExportError(LabelingError):
    """The raw exports cannot be read or turned into a data set; the message says which and why."""


@dataclass
class ExportConfig:
    """Settings of `smista label export`. Every field has a CLI flag of the same name."""

    exports_dir: str = field(
        default=str(DEFAULT_EXPORTS_DIR),
        metadata={"help": "Where the immutable raw pulls and the pull cursor live (one folder per project)."},
    )
    output_dir: str = field(
        default=str(DEFAULT_OUTPUT_DIR), metadata={"help": "Where the derived data set is (re)built."}
    )
    resolution: str = field(
        default="majority", metadata={"help": "How several annotators are resolved: majority or unanimous."}
    )
    min_annotations: int = field(
        default=1, metadata={"help": "Tasks with fewer (non-skipped) annotations are left out of the data set."}
    )
    taxonomy: str = field(default=str(DEFAULT_TAXONOMY_PATH), metadata={"help": "Taxonomy YAML file."})
    test_fraction: float = field(default=0.2, metadata={"help": "Share of posts in the test split."})
    validation_fraction: float = field(default=0.1, metadata={"help": "Share of posts in the validation split."})
    seed: int = field(default=13, metadata={"help": "Seed of the split shuffle."})

    def __post_init__(self) -> None:
        self.check()  # a config is valid from the moment it exists: no caller has to remember to check it

    def check(self) -> None:
        if self.resolution not in STRATEGIES:
            raise ExportError(f"resolution must be one of {', '.join(STRATEGIES)}, got {self.resolution!r}")
        if self.min_annotations < 1:
            raise ExportError(f"min_annotations must be at least 1, got {self.min_annotations}")


# ---------------------------------------------------------------------------------------------- pull


@dataclass(frozen=True)
class PullResult:
    path: Path | None  # None when nothing changed since the last pull
    task_count: int
    full: bool


def project_exports_dir(exports_dir: str | Path, project_id: int) -> Path:
    return Path(exports_dir) / f"project-{project_id}"


def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / "state.json"
    if not path.exists():
        return {"cursor": None, "pulls": 0}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: the pull cursor is not valid JSON ({exc.msg}); fix or delete it and pull --full") from None


def pull(client: LabelStudioClient, project_id: int, exports_dir: str | Path, full: bool = False) -> PullResult:
    """Store the tasks changed since the last pull (or all of them) as a new read-only raw file.

    Everything is fetched before anything is written: a server that fails mid-way leaves the raw
    files and the cursor as they were.
    """
    folder = project_exports_dir(exports_dir, project_id)
    state = _read_state(folder)
    since = None if full else state.get("cursor")
    tasks = list(client.iter_tasks(project_id, updated_after=since, with_annotations=True))
    if not tasks and not full:
        return PullResult(path=None, task_count=0, full=False)
    folder.mkdir(parents=True, exist_ok=True)
    number = int(state.get("pulls", 0)) + 1
    pulled_at = datetime.now(timezone.utc)
    cursor = max((task["updated_at"] for task in tasks), key=_parse_time, default=state.get("cursor"))
    raw = {
        "project_id": project_id,
        "server": client.url,
        "pulled_at": pulled_at.isoformat(),
        "full": full,
        "updated_after": since,
        "tasks": tasks,
    }
    path = folder / f"{_PULL_PREFIX}{number:05d}-{pulled_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    write_text_atomically(path, json.dumps(raw, ensure_ascii=False, indent=1), exclusive=True)
    path.chmod(0o444)
    write_text_atomically(
        folder / "state.json", json.dumps({"cursor": cursor, "pulls": number}, indent=2) + "\n", exclusive=False
    )
    return PullResult(path=path, task_count=len(tasks), full=full)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def latest_tasks(folder: Path) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """task id -> the last pulled version of the task, replaying raw pulls from the latest full one."""
    pulls = sorted(folder.glob(f"{_PULL_PREFIX}*.json"))
    if not pulls:
        raise ExportError(f"no raw pulls in {folder}: run `smista label export` against the server first")
    loaded = []
    for path in pulls:
        try:
            loaded.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except json.JSONDecodeError as exc:
            raise ExportError(f"{path}: raw pull is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    start = max((i for i, (_, raw) in enumerate(loaded) if raw.get("full")), default=0)
    tasks: dict[int, dict[str, Any]] = {}
    for _, raw in loaded[start:]:
        for task in raw["tasks"]:
            tasks[int(task["id"])] = task
    return tasks, [path.name for path, _ in loaded[start:]]


# ------------------------------------------------------------------------------------------- rebuild


@dataclass
class RejectedTask:
    task_id: int
    post_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"task {self.task_id} (post {self.post_id}): {self.reason}"


@dataclass
class ExportReport:
    pulls_used: list[str]
    tasks: int
    labelled_posts: int
    unlabelled_tasks: int
    disagreements: list[dict[str, Any]]
    rejected: list[RejectedTask]
    agreement: dict[str, Any]
    build: BuildResult | None

    @property
    def data_hash(self) -> str | None:
        return self.build.data_hash if self.build else None


def annotation_labels(task: dict[str, Any], taxonomy: Taxonomy) -> tuple[dict[Any, dict[str, Any]], list[str]]:
    """annotator -> labels for the task's submitted annotations (skips left out), and the problems found."""
    labels_by_annotator: dict[Any, dict[str, Any]] = {}
    problems: list[str] = []
    for annotation in task.get("annotations") or []:
        if annotation.get("was_cancelled") or not annotation.get("result"):
            continue
        labels = result_to_labels(annotation["result"], taxonomy)
        try:
            check_labels(labels, taxonomy)
        except ValueError as exc:
            problems.append(f"annotation {annotation.get('id')}: {exc}")
            continue
        missing = [name for name in taxonomy.fields if name not in labels]
        if missing:
            problems.append(f"annotation {annotation.get('id')}: no label for {', '.join(missing)}")
            continue
        # One vote per person: a later annotation by the same annotator replaces the earlier one.
        labels_by_annotator[annotation.get("completed_by")] = labels
    return labels_by_annotator, problems


def rebuild(project_id: int, config: ExportConfig) -> ExportReport:
    """Rebuild the data set from the raw pulls; see the module docstring."""
    taxonomy = load_taxonomy(config.taxonomy)
    validator = PostValidator(taxonomy)
    tasks, pulls_used = latest_tasks(project_exports_dir(config.exports_dir, project_id))
    posts: list[Post] = []
    disagreements: list[dict[str, Any]] = []
    rejected: list[RejectedTask] = []
    multi_annotated: list[dict[Any, dict[str, Any]]] = []
    unlabelled = 0
    seen_posts: dict[str, int] = {}
    for task_id in sorted(tasks):
        task = tasks[task_id]
        data = task.get("data") or {}
        post_id = data.get("post_id")
        if post_id is None or "post" not in data:
            rejected.append(RejectedTask(task_id, None, "not a smista task (no post_id/post in its data)"))
            continue
        by_annotator, problems = annotation_labels(task, taxonomy)
        if problems:
            rejected.append(RejectedTask(task_id, post_id, "; ".join(problems)))
            continue
        if len(by_annotator) >= 2:
            multi_annotated.append(by_annotator)
        if len(by_annotator) < config.min_annotations:
            unlabelled += 1
            continue
        resolution = resolve(list(by_annotator.values()), taxonomy, config.resolution)  # type: ignore[arg-type]
        if resolution.labels is None:
            disagreements.append(
                {"task_id": task_id, "post_id": post_id, "annotators": len(by_annotator), "votes": resolution.disagreements}
            )
            continue
        if post_id in seen_posts:
            rejected.append(RejectedTask(task_id, post_id, f"post id also in task {seen_posts[post_id]}"))
            continue
        try:
            post = validator.validate({**data["post"], "labels": resolution.labels})
        except PostValidationError as exc:
            rejected.append(RejectedTask(task_id, post_id, str(exc)))
            continue
        seen_posts[post_id] = task_id
        posts.append(post)

    agreement = {name: value.to_json() for name, value in agreement_by_field(multi_annotated, taxonomy).items()}
    build = _build_atomically(posts, config) if posts else None
    report = ExportReport(
        pulls_used=pulls_used,
        tasks=len(tasks),
        labelled_posts=len(posts),
        unlabelled_tasks=unlabelled,
        disagreements=disagreements,
        rejected=rejected,
        agreement=agreement,
        build=build,
    )
    if build is not None:
        _write_export_report(Path(config.output_dir), project_id, config, report)
    return report


def _build_atomically(posts: list[Post], config: ExportConfig) -> BuildResult:
    """Build into a fresh folder beside the output, then swap it in: a failed build leaves the
    previous data set whole."""
    output = Path(config.output_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}."))
    try:
        labelled = staging / "labelled.jsonl"
        write_posts(labelled, posts)
        result = build_dataset(
            BuildConfig(
                inputs=[str(labelled)],
                output_dir=str(staging),
                taxonomy=config.taxonomy,
                test_fraction=config.test_fraction,
                validation_fraction=config.validation_fraction,
                seed=config.seed,
            )
        )
        _point_manifest_at(staging, output)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.output_dir = output
    return result


def _point_manifest_at(staging: Path, output: Path) -> None:
    """The manifest records the paths the build saw (the staging folder); record the final ones."""
    manifest_path = staging / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["config"]["inputs"] = [str(output / "labelled.jsonl")]
    manifest["config"]["output_dir"] = str(output)
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_export_report(output: Path, project_id: int, config: ExportConfig, report: ExportReport) -> None:
    document = {
        "data_hash": report.data_hash,
        "project_id": project_id,
        "pulls_used": report.pulls_used,
        "config": asdict(config),
        "tasks": report.tasks,
        "labelled_posts": report.labelled_posts,
        "unlabelled_tasks": report.unlabelled_tasks,
        "left_out": {"disagreement": len(report.disagreements), "rejected": len(report.rejected)},
        "agreement": report.agreement,
    }
    (output / "labeling_report.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with (output / "disagreements.jsonl").open("w", encoding="utf-8") as handle:
        for item in report.disagreements:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    with (output / "rejected.jsonl").open("w", encoding="utf-8") as handle:
        for item in report.rejected:
            handle.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
