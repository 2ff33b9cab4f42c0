"""What the report reads from the prediction store: the posts routed in a period, each with what the
agents reported back about it, merged over all its feedback.

A post can get several feedback calls (a first response, later the resolution, a correction): each
field takes the latest value given (a later call that leaves `first_response_at` out does not erase
it), `resolved` is the latest call's word, and corrected labels merge head by head. Rows that older
releases stored twice (`duplicate_of`) are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from serving.store import CrisisEpisode, Feedback, PredictionStore, RoutedPost

# SQLite limits the parameters of one statement; feedback is fetched for this many posts at a time.
ID_CHUNK = 500


@dataclass
class Outcome:
    """What the agents reported about one post."""

    resolved: bool = False
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    handled_by_team: str | None = None
    satisfaction: int | None = None
    corrected_labels: dict[str, str | list[str]] = field(default_factory=dict)


@dataclass
class PostRecord:
    post_id: str
    received_at: datetime
    channel: str
    intent: str                  # predicted
    team: str | None
    action: str                  # queue or log_only
    priority: str
    confidence_tier: str
    crisis_id: int | None
    sla_deadline: datetime | None
    predicted: dict[str, list[str]]   # head -> predicted labels
    model_version: str
    outcome: Outcome | None = None    # None: no feedback yet

    def final_label(self, head: str) -> list[str]:
        """The agents' correction of a head when they gave one, else the prediction."""
        if self.outcome is not None and head in self.outcome.corrected_labels:
            value = self.outcome.corrected_labels[head]
            return [value] if isinstance(value, str) else list(value)
        return self.predicted.get(head, [])

    @property
    def final_intent(self) -> str:
        labels = self.final_label("intent")
        return labels[0] if labels else self.intent


def read_posts(store: PredictionStore, since: datetime, until: datetime) -> list[PostRecord]:
    """Posts routed with since <= received_at < until, oldest first, with their merged outcomes."""
    with store.session() as session:
        rows = session.execute(
            select(RoutedPost.post_id, RoutedPost.received_at, RoutedPost.channel, RoutedPost.intent, RoutedPost.team,
                   RoutedPost.action, RoutedPost.priority, RoutedPost.confidence_tier, RoutedPost.crisis_id,
                   RoutedPost.sla_deadline, RoutedPost.predictions, RoutedPost.model_version)
            .where(RoutedPost.received_at >= since, RoutedPost.received_at < until, RoutedPost.duplicate_of.is_(None))
            .order_by(RoutedPost.received_at, RoutedPost.id)
        ).all()
        posts = [PostRecord(row.post_id, row.received_at, row.channel, row.intent, row.team, row.action, row.priority,
                            row.confidence_tier, row.crisis_id, row.sla_deadline,
                            {head: list(output["labels"]) for head, output in row.predictions.items()},
                            row.model_version)
                 for row in rows]
        by_id = {post.post_id: post for post in posts}
        for chunk in _chunks(list(by_id), ID_CHUNK):
            feedback = session.execute(
                select(Feedback.post_id, Feedback.resolved, Feedback.first_response_at, Feedback.resolved_at,
                       Feedback.handled_by_team, Feedback.satisfaction, Feedback.corrected_labels)
                .where(Feedback.post_id.in_(chunk)).order_by(Feedback.id)
            ).all()
            for row in feedback:
                post = by_id[row.post_id]
                outcome = post.outcome if post.outcome is not None else Outcome()
                outcome.resolved = row.resolved
                outcome.first_response_at = row.first_response_at or outcome.first_response_at
                outcome.resolved_at = row.resolved_at or outcome.resolved_at
                outcome.handled_by_team = row.handled_by_team or outcome.handled_by_team
                outcome.satisfaction = row.satisfaction if row.satisfaction is not None else outcome.satisfaction
                outcome.corrected_labels.update(row.corrected_labels or {})
                post.outcome = outcome
    return posts


def read_crises(store: PredictionStore, since: datetime, until: datetime) -> list[CrisisEpisode]:
    """Crisis episodes that were active at some moment of [since, until)."""
    with store.session() as session:
        return list(session.scalars(
            select(CrisisEpisode)
            .where(CrisisEpisode.started_at < until,
                   (CrisisEpisode.ended_at.is_(None)) | (CrisisEpisode.ended_at >= since))
            .order_by(CrisisEpisode.started_at)
        ))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
