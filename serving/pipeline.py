"""One code path from posts to routes, shared by the Router service and the batch command:
validate -> (the model predicts) -> crisis signals -> rules engine -> store -> observers.

The prediction step is the caller's: the Router asks the batching Classifier service, the batch
command calls the Predictor directly. Everything before and after it is here, so a post routed
over HTTP and the same post scored from an archive get the same route.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from data.schema import Post, PostValidationError, PostValidator, check_labels, check_text
from data.taxonomy import Taxonomy
from serving.crisis import CrisisMonitor
from serving.rules import HeadPredictionLike, RoutingRules, negative_intent, route_post
from serving.schemas import (
    ClassifyResponse,
    FeedbackIn,
    FeedbackReceipt,
    HeadOutput,
    PostClassification,
    PostIn,
    RoutedPost,
    RouteDecision,
    RouteResponse,
)
from serving.store import Feedback, PredictionStore, RoutedPost as RoutedPostRow, Signal

logger = logging.getLogger("smista.serving")

Predictions = Mapping[str, HeadPredictionLike]


class RequestRejected(Exception):
    """A client error: the HTTP status, a message naming the problem, and per-item details."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.detail} if self.detail else {"error": self.message}


class RouteObserver(Protocol):
    """Told about every routed post (the Router counts them for Prometheus)."""

    def routed(self, decision: RouteDecision) -> None: ...


@dataclass(frozen=True)
class TextItem:
    """What /classify needs of a post."""

    id: str
    text: str


@dataclass(frozen=True)
class ModelIdentity:
    model_version: str
    taxonomy_version: str
    runtime: str = "torch"   # what ran the model (training.predict.Predictor.runtime)


def enable_info_logs() -> None:
    """Let INFO events through to the handlers BentoML installs (its root level is WARNING)."""
    logging.getLogger("smista").setLevel(logging.INFO)


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """A structured log line: one JSON object. Callers pass ids, labels and counts, never post text."""
    logger.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False, default=str))


def head_output(prediction: HeadPredictionLike) -> HeadOutput:
    return HeadOutput(
        labels=list(prediction.labels),
        probabilities={label: round(float(p), 6) for label, p in prediction.probabilities.items()},
        confidence=round(float(prediction.confidence), 6),
    )


class RoutingPipeline:
    def __init__(
        self,
        taxonomy: Taxonomy,
        rules: RoutingRules,
        store: PredictionStore,
        *,
        max_posts_per_request: int,
        max_text_chars: int,
        store_post_text: bool,
        observer: RouteObserver | None = None,
        new_post_id: Callable[[], str] = lambda: f"auto-{uuid.uuid4().hex}",
    ):
        if rules.taxonomy.version != taxonomy.version:
            raise ValueError(f"routing rules were checked against taxonomy v{rules.taxonomy.version}, not v{taxonomy.version}")
        self.taxonomy = taxonomy
        self.rules = rules
        self.store = store
        self.crisis = CrisisMonitor(store, rules.config.crisis)
        self.validator = PostValidator(taxonomy, max_text_chars=max_text_chars)
        self.max_posts_per_request = max_posts_per_request
        self.max_text_chars = max_text_chars
        self.store_post_text = store_post_text
        self.observer = observer
        self._new_post_id = new_post_id

    def validate_for_routing(self, posts: PostIn | list[PostIn]) -> list[Post]:
        """One post or a list -> validated posts; RequestRejected names every bad post and field."""
        return self._validate_all(posts, self._post_for_routing)

    def validate_for_classify(self, posts: PostIn | list[PostIn]) -> list[TextItem]:
        """Like validate_for_routing, but the channel is optional: the model reads only the text."""
        return self._validate_all(posts, self._item_for_classify)

    def _validate_all(self, posts: PostIn | list[PostIn], validate_one: Callable[[PostIn], Any]) -> list[Any]:
        items = posts if isinstance(posts, list) else [posts]
        if not items:
            raise RequestRejected(400, "no posts: send one post or a non-empty list")
        if len(items) > self.max_posts_per_request:
            raise RequestRejected(
                413, f"batch of {len(items)} posts is over the limit of {self.max_posts_per_request}; split it"
            )
        validated: list[Any] = []
        problems: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                validated.append(validate_one(item))
            except PostValidationError as exc:
                for line in str(exc).splitlines():
                    problems.append({"loc": ["posts", index], "msg": line.strip()})
        if problems:
            plural = "s" if len({tuple(p["loc"]) for p in problems}) > 1 else ""
            raise RequestRejected(400, f"invalid post{plural}", problems)
        return validated

    def _raw(self, item: PostIn) -> dict[str, Any]:
        raw = item.model_dump(exclude_none=True)
        if "id" not in raw:
            raw["id"] = self._new_post_id()
        return raw

    def _post_for_routing(self, item: PostIn) -> Post:
        raw = self._raw(item)
        if "channel" not in raw:
            raise PostValidationError("channel: required to route a post (SLA and reply channel depend on it)")
        return self.validator.validate(raw)

    def _item_for_classify(self, item: PostIn) -> TextItem:
        raw = self._raw(item)
        if "channel" in raw:
            post = self.validator.validate(raw)
            return TextItem(id=post.id, text=post.text)
        # Without a channel there is no Post to build; the text gets the same checks as in Post.
        try:
            text = check_text(raw["text"], self.max_text_chars)
        except ValueError as exc:
            raise PostValidationError(f"text: {exc}") from None
        return TextItem(id=raw["id"], text=text)

    def classification(self, posts: Sequence[TextItem], predictions: Sequence[Predictions],
                       identity: ModelIdentity) -> ClassifyResponse:
        self._check_identity(identity)
        return ClassifyResponse(
            model_version=identity.model_version,
            taxonomy_version=identity.taxonomy_version,
            runtime=identity.runtime,
            results=[
                PostClassification(id=post.id, predictions={head: head_output(p) for head, p in prediction.items()})
                for post, prediction in zip(posts, predictions, strict=True)
            ],
        )

    def route(self, posts: Sequence[Post], predictions: Sequence[Predictions], identity: ModelIdentity,
              now: datetime) -> RouteResponse:
        """Route posts predicted together at `now`: crisis signals first (a post counts towards the
        crisis it may trigger), then the rules, then one store write for the batch."""
        self._check_identity(identity)
        signals = []
        for post, prediction in zip(posts, predictions, strict=True):
            intent = negative_intent(prediction, self.rules)
            if intent is not None:
                signals.append(Signal(post_id=post.id, intent=intent, observed_at=now))
        results: list[RoutedPost] = []
        # One transaction: the crisis state and the posts it escalates are stored together.
        with self.store.session() as session:
            active_crises = self.crisis.observe(session, signals, now) if signals else {}
            for post, prediction in zip(posts, predictions, strict=True):
                decision = route_post(post, prediction, self.rules, now, active_crises)
                outputs = {head: head_output(p) for head, p in prediction.items()}
                results.append(RoutedPost(id=post.id, predictions=outputs, route=decision))
                session.add(self._row(post, outputs, decision, identity, now))

        for post, result in zip(posts, results):
            decision = result.route
            log_event(
                "post_routed", post_id=post.id, channel=post.channel, intent=result.predictions["intent"].labels[0],
                queue=decision.queue, priority=decision.priority, tier=decision.confidence_tier,
                crisis=decision.crisis, out_of_hours=decision.out_of_hours, pii_kinds=decision.pii,
                text_chars=len(post.text),
            )
            if self.observer is not None:
                self.observer.routed(decision)
        return RouteResponse(
            model_version=identity.model_version,
            taxonomy_version=identity.taxonomy_version,
            routing_version=self.rules.version,
            results=results,
        )

    def record_feedback(self, feedback: FeedbackIn, now: datetime) -> FeedbackReceipt:
        problems = self._feedback_problems(feedback)
        if problems:
            raise RequestRejected(400, "invalid feedback", [{"loc": [loc], "msg": msg} for loc, msg in problems])
        if not self.store.has_post(feedback.post_id):
            raise RequestRejected(404, f"unknown post_id {feedback.post_id!r}: only routed posts take feedback")
        row = self.store.add_feedback(Feedback(
            post_id=feedback.post_id,
            recorded_at=now,
            corrected_labels=feedback.corrected_labels,
            handled_by_team=feedback.handled_by_team,
            resolved=feedback.resolved,
            first_response_at=feedback.first_response_at,
            resolved_at=feedback.resolved_at,
            agent_id=feedback.agent_id,
        ))
        log_event("feedback_recorded", post_id=feedback.post_id, feedback_id=row.id, resolved=feedback.resolved,
                  corrected_fields=sorted(feedback.corrected_labels or {}), team=feedback.handled_by_team)
        return FeedbackReceipt(feedback_id=row.id, post_id=row.post_id, recorded_at=row.recorded_at)

    def _feedback_problems(self, feedback: FeedbackIn) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if feedback.corrected_labels is not None:
            try:
                check_labels(feedback.corrected_labels, self.taxonomy)
            except ValueError as exc:
                problems.append(("corrected_labels", str(exc)))
        teams = self.rules.config.teams
        if feedback.handled_by_team is not None and feedback.handled_by_team not in teams:
            problems.append(("handled_by_team", f"unknown team {feedback.handled_by_team!r}; teams: {', '.join(teams)}"))
        if feedback.resolved_at is not None and not feedback.resolved:
            problems.append(("resolved_at", "given for a case that is not resolved; set resolved to true or drop it"))
        if (feedback.first_response_at is not None and feedback.resolved_at is not None
                and feedback.resolved_at < feedback.first_response_at):
            problems.append(("resolved_at", "is before first_response_at"))
        return problems

    def _check_identity(self, identity: ModelIdentity) -> None:
        if identity.taxonomy_version != self.taxonomy.version:
            raise RuntimeError(
                f"the model predicts taxonomy v{identity.taxonomy_version} but the service validates "
                f"against v{self.taxonomy.version}: deploy matching model and taxonomy"
            )

    def _row(self, post: Post, outputs: dict[str, HeadOutput], decision: RouteDecision,
             identity: ModelIdentity, now: datetime) -> RoutedPostRow:
        return RoutedPostRow(
            post_id=post.id,
            received_at=now,
            created_at=post.created_at,
            channel=post.channel,
            public=post.is_public(self.taxonomy),
            sector=post.sector,
            customer_id=post.customer_id,
            author_followers=post.author.followers,
            text=post.text if self.store_post_text else None,
            model_version=identity.model_version,
            taxonomy_version=identity.taxonomy_version,
            routing_version=self.rules.version,
            predictions={head: output.model_dump() for head, output in outputs.items()},
            intent=outputs["intent"].labels[0],
            sentiment=outputs["sentiment"].labels[0],
            action=decision.action,
            queue=decision.queue,
            team=decision.team,
            priority=decision.priority,
            confidence_tier=decision.confidence_tier,
            needs_human=decision.needs_human,
            crisis_id=decision.crisis_id,
            sla_deadline=decision.sla_deadline,
            reply_channel=decision.reply_channel,
            out_of_hours=decision.out_of_hours,
            pii_kinds=decision.pii,
            reasons=[reason.model_dump() for reason in decision.reasons],
        )
