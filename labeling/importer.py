"""Import posts into Label Studio as tasks: personal data redacted first, idempotent by post id.

- Redaction (data/pii.py) runs on the text and on the author before anything is sent: annotators
  never see a phone number, an e-mail, an IBAN, a codice fiscale, a card number or a private
  person's @handle. The brands' own handles (configs/labeling.yaml) are kept.
- A post already in the project (same id) is not imported again; when its content changed (an
  edited post, or a changed redaction), its task's data is updated in place, so its annotations
  stay attached. Those tasks are listed, because their annotations may need a second look.
- A bad line of the JSONL file is reported with its line number and the rest is imported.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.jsonl import LineError, read_posts
from data.pii import redact
from data.schema import Post, PostValidator
from labeling.client import LabelingError, LabelStudioClient

# Fields of a post that never go to Label Studio: gold labels would bias annotators, and the CRM id
# links the post to a customer record.
_WITHHELD_FIELDS = ("labels", "customer_id")


class DuplicateTasksError(LabelingError):
    """The project already holds several tasks for one post id (e.g. two imports ran at once)."""


@dataclass(frozen=True)
class RedactedPost:
    data: dict[str, Any]  # the task's data, as Label Studio stores it
    pii_counts: Counter


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    updated_with_annotations: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    pii_counts: Counter = field(default_factory=Counter)
    task_ids: dict[str, int] = field(default_factory=dict)  # post id -> task id, for every imported post

    def summary(self) -> str:
        redacted = ", ".join(f"{kind} {count}" for kind, count in sorted(self.pii_counts.items())) or "nothing"
        return (
            f"{len(self.created)} created, {len(self.updated)} updated "
            f"({len(self.updated_with_annotations)} with annotations kept), {len(self.unchanged)} unchanged, "
            f"{len(self.errors)} bad lines; redacted: {redacted}"
        )


def source_line(post: Post, author_shown: str, public: bool) -> str:
    """The line above the post in the interface: where it came from and who wrote it."""
    parts = [f"Canale: {post.channel}", f"Autore: {author_shown}"]
    if post.author.followers is not None:
        parts.append(f"{post.author.followers:,} follower".replace(",", "."))
    parts.append("pubblico" if public else "privato")
    if post.created_at is not None:
        parts.append(post.created_at.strftime("%d/%m/%Y %H:%M"))
    return " · ".join(parts)


def redact_post(post: Post, public_handles: Sequence[str], is_public: bool) -> RedactedPost:
    """The task data for one post, with every piece of personal data replaced by a typed placeholder."""
    text, matches = redact(post.text, public_handles=public_handles)
    counts = Counter(match.kind for match in matches)
    shown = post.to_json_dict()
    for name in _WITHHELD_FIELDS:
        shown.pop(name, None)
    shown["text"] = text
    author_shown = "sconosciuto"
    if post.author.handle:
        # The author is a person unless the handle is one of the public ones: same rule as in the text.
        handle, handle_matches = redact(post.author.handle, public_handles=public_handles, kinds=["handle"])
        counts.update(match.kind for match in handle_matches)
        shown["author"]["handle"] = handle
        author_shown = handle
    data = {
        "text": text,
        "source_line": source_line(post, author_shown, is_public),
        "post_id": post.id,
        "channel": post.channel,
        "post": shown,
    }
    data["content_hash"] = content_hash(shown)
    return RedactedPost(data=data, pii_counts=counts)


def content_hash(shown_post: dict[str, Any]) -> str:
    encoded = json.dumps(shown_post, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


@dataclass(frozen=True)
class ExistingTask:
    task_id: int
    content_hash: str | None
    annotation_count: int
    data: dict[str, Any]


def existing_tasks(client: LabelStudioClient, project_id: int) -> dict[str, ExistingTask]:
    """post id -> its task; several tasks for one post id is an error that names them."""
    found: dict[str, ExistingTask] = {}
    duplicates: dict[str, list[int]] = {}
    for task in client.iter_tasks(project_id, with_annotations=False):
        data = task.get("data") or {}
        post_id = data.get("post_id")
        if post_id is None:
            continue  # a task someone created by hand; not ours to manage
        if post_id in found:
            duplicates.setdefault(post_id, [found[post_id].task_id]).append(int(task["id"]))
            continue
        found[post_id] = ExistingTask(
            task_id=int(task["id"]),
            content_hash=data.get("content_hash"),
            annotation_count=int(task.get("total_annotations") or 0),
            data=data,
        )
    if duplicates:
        listed = "; ".join(f"{post_id}: tasks {ids}" for post_id, ids in sorted(duplicates.items()))
        raise DuplicateTasksError(
            f"project {project_id} has several tasks for the same post id ({listed}); "
            "delete the extra tasks in Label Studio before importing again"
        )
    return found


def import_posts(
    client: LabelStudioClient,
    project_id: int,
    posts: Iterable[Post],
    validator: PostValidator,
    public_handles: Sequence[str],
    origin: str = "import",
    extra_data: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 200,
    report: ImportReport | None = None,
) -> ImportReport:
    """Create, update or skip one task per post; see the module docstring.

    `extra_data` adds keys to a post's task data (e.g. the active-learning rank); `origin` records
    which command brought the post in.
    """
    report = report if report is not None else ImportReport()
    posts = list(posts)
    # Read the project before writing anything: a server that is down fails here, with nothing sent.
    existing = existing_tasks(client, project_id)
    to_create: list[tuple[str, dict[str, Any]]] = []
    for post in posts:
        redacted = redact_post(post, public_handles, post.is_public(validator.taxonomy))
        report.pii_counts.update(redacted.pii_counts)
        data = {**redacted.data, "origin": origin, **(extra_data or {}).get(post.id, {})}
        current = existing.get(post.id)
        if current is None:
            to_create.append((post.id, data))
            continue
        report.task_ids[post.id] = current.task_id
        # Keep what earlier commands stored on the task (first origin, selection), refresh the post
        # and add what this command brings (e.g. a review note).
        merged = {**current.data, **data, "origin": current.data.get("origin", origin)}
        if merged == current.data:
            report.unchanged.append(post.id)
            continue
        client.update_task_data(current.task_id, merged)
        report.updated.append(post.id)
        if current.content_hash != data["content_hash"] and current.annotation_count:
            report.updated_with_annotations.append(post.id)
    for start in range(0, len(to_create), batch_size):
        batch = to_create[start : start + batch_size]
        task_ids = client.import_tasks(project_id, [{"data": data} for _, data in batch])
        for (post_id, _), task_id in zip(batch, task_ids):
            report.created.append(post_id)
            report.task_ids[post_id] = task_id
    return report


def import_file(
    client: LabelStudioClient,
    project_id: int,
    path: str | Path,
    validator: PostValidator,
    public_handles: Sequence[str],
    batch_size: int = 200,
) -> ImportReport:
    """Import a JSONL file of posts; bad lines go to the report with their numbers, the rest is imported."""
    read = read_posts(path, validator, on_error="skip")
    report = ImportReport(errors=list(read.errors))
    return import_posts(
        client, project_id, read.posts, validator, public_handles, batch_size=batch_size, report=report
    )
