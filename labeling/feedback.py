"""The feedback loop: corrections that care agents recorded through the serving `/feedback`
endpoint go back to Label Studio as review tasks, so a real disagreement between the model and an
agent becomes new training data once a reviewer confirms it.

This module takes `Correction`s and knows nothing of the serving database (labeling/ never imports
serving/); the CLI reads the store and hands the corrections over. Each review task is the post
(redacted, like every import) with a prediction pre-filled from the agent's correction (the model's
labels for the fields the agent left alone), marked with model version "feedback:<model>".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from data.schema import Post, PostValidator, check_labels
from labeling.client import LabelingError, LabelStudioClient
from labeling.config import labels_to_result
from labeling.importer import ImportReport, import_posts


class FeedbackError(LabelingError):
    """A correction cannot become a review task; the message names the feedback id."""


@dataclass(frozen=True)
class Correction:
    feedback_id: int
    post: Post  # as the customer wrote it; redacted on the way in
    predicted: dict[str, Any]  # the model's labels, every field
    corrected: dict[str, Any]  # the agent's labels, the fields they changed or confirmed
    model_version: str
    agent_id: str | None
    recorded_at: datetime

    def disagreeing_fields(self) -> list[str]:
        return sorted(name for name, value in self.corrected.items() if _normalise(self.predicted.get(name)) != _normalise(value))


def _normalise(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


@dataclass
class FeedbackPushReport:
    pushed: list[int] = field(default_factory=list)  # feedback ids
    agreeing: list[int] = field(default_factory=list)  # the agent confirmed the model: nothing to review
    import_report: ImportReport | None = None


def review_labels(correction: Correction) -> dict[str, Any]:
    """The labels a reviewer starts from: the agent's where given, the model's elsewhere."""
    return {**correction.predicted, **correction.corrected}


def push_corrections(
    client: LabelStudioClient,
    project_id: int,
    corrections: Sequence[Correction],
    validator: PostValidator,
    public_handles: Sequence[str],
) -> FeedbackPushReport:
    taxonomy = validator.taxonomy
    report = FeedbackPushReport()
    disagreements: list[Correction] = []
    for correction in corrections:
        try:
            check_labels(correction.corrected, taxonomy)
            check_labels(review_labels(correction), taxonomy)
        except ValueError as exc:
            raise FeedbackError(f"feedback {correction.feedback_id} (post {correction.post.id}): {exc}") from None
        if correction.disagreeing_fields():
            disagreements.append(correction)
        else:
            report.agreeing.append(correction.feedback_id)
    # One review task per post: the latest correction of a post wins.
    latest: dict[str, Correction] = {}
    for correction in sorted(disagreements, key=lambda c: (c.recorded_at, c.feedback_id)):
        latest[correction.post.id] = correction
    extra = {
        post_id: {
            "review": {
                "feedback_id": correction.feedback_id,
                "model_version": correction.model_version,
                "agent_id": correction.agent_id,
                "recorded_at": correction.recorded_at.isoformat(),
                "fields": correction.disagreeing_fields(),
            }
        }
        for post_id, correction in latest.items()
    }
    posts = [correction.post for correction in latest.values()]
    report.import_report = import_posts(
        client, project_id, posts, validator, public_handles, origin="feedback", extra_data=extra
    )
    predictions = [
        {
            "task": report.import_report.task_ids[post_id],
            "result": labels_to_result(review_labels(correction), taxonomy),
            "model_version": f"feedback:{correction.model_version}",
        }
        for post_id, correction in latest.items()
    ]
    if predictions:
        client.import_predictions(project_id, predictions)
    report.pushed = [correction.feedback_id for correction in latest.values()]
    return report


def read_cursor(path: Path) -> int:
    """The id of the last feedback row pushed (0 when none)."""
    if not path.exists():
        return 0
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["last_feedback_id"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FeedbackError(f"{path}: unreadable feedback cursor ({exc}); fix it or delete it to push everything again") from None


def write_cursor(path: Path, last_feedback_id: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"last_feedback_id": last_feedback_id}) + "\n", encoding="utf-8")
