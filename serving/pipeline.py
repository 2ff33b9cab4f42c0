"""One code path from posts to routes, shared by the Router service and the batch command:
validate -> (the model predicts) -> crisis signals -> rules engine -> store -> observers.

The prediction step is the caller's: the Router asks the batching Classifier service, the batch
command calls the Predictor directly. Everything before and after it is here, so a post routed
over HTTP and the same post scored from an archive get the same route.

Routing is idempotent by post id (docs/SECURITY.md, "Idempotency"): `posts_to_predict` leaves out
the posts already stored, `route` returns their stored result (`replayed`) and stores and counts
only the new ones. A used id with different content is refused with 409, and two posts with the
same id and different content in one request with 400.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data.schema import Post, PostValidationError, PostValidator, check_labels, check_text
from data.taxonomy import Taxonomy
from serving.crisis import CrisisMonitor
from serving.rules import HeadPredictionLike, RoutingRules, negative_intent, route_post
from serving.schemas import (
    ClassifyResponse,
    ContactHistory,
    FeedbackIn,
    FeedbackReceipt,
    HeadOutput,
    PostClassification,
    PostIn,
    Reason,
    RouteDecision,
    RoutedPost,
    RouteResponse,
)
from serving.store import Feedback, PredictionStore, Signal, StoreUnavailable
from serving.store import RoutedPost as RoutedPostRow

logger = logging.getLogger("smista.serving")

Predictions = Mapping[str, HeadPredictionLike]


class RequestRejected(Exception):
    """A client error: the HTTP status, a message naming the problem, and per-item details."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []

    def details(self) -> str:
        """Every item's message in one line (the message itself when there are none)."""
        return "; ".join(item["msg"] for item in self.detail) or self.message

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.detail} if self.detail else {"error": self.message}


STORE_RETRY_AFTER_S = 5


def store_unavailable(exc: StoreUnavailable) -> RequestRejected:
    """The answer to a request the store could not take: 503, the database's cause, and that a retry
    is safe (routing and feedback are idempotent)."""
    log_event("store_unavailable", level=logging.WARNING, cause=exc.cause)
    return RequestRejected(503, f"the prediction store is unavailable ({exc.cause}); nothing was stored: "
                                f"retry the same request in {STORE_RETRY_AFTER_S} s (it is idempotent)")


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
    runtime: str = "torch"   # what ran the model (training.inference.predict.Predictor.runtime)


def enable_info_logs() -> None:
    """Let INFO events through to the handlers BentoML installs (its root level is WARNING)."""
    logging.getLogger("smista").setLevel(logging.INFO)


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """A structured log line: one JSON object. Callers pass ids, labels and counts, never post text."""
    # ensure_ascii: newlines, U+2028 and every other non-ASCII character of a client-given id are
    # escaped, so no value can break or forge a line.
    logger.log(level, json.dumps({"event": event, **fields}, ensure_ascii=True, default=str))


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=True, default=str).encode()).hexdigest()


def content_hash(post: Post) -> str:
    """What makes a retry the same post: every validated field, id included."""
    return _sha256(post.model_dump(mode="json"))


def author_key(post: Post) -> str:
    """Who wrote the post, as a hash (no handle is stored): the customer id, else the channel and
    handle; posts that name neither count as one anonymous author per channel."""
    if post.customer_id:
        return _sha256(["customer", post.customer_id])
    if post.author is not None and post.author.handle:
        return _sha256(["handle", post.channel, post.author.handle.casefold()])
    return _sha256(["anonymous", post.channel])


def known_author_key(post: Post) -> str | None:
    """author_key for a post that names its author (customer id or handle), None otherwise: an
    anonymous post has no history, and is nobody's."""
    if post.customer_id or (post.author is not None and post.author.handle):
        return author_key(post)
    return None


def conversation_key(post: Post) -> str | None:
    return _sha256(["conversation", post.channel, post.conversation_id]) if post.conversation_id else None


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
        """One post or a list -> validated posts; RequestRejected names every bad post and field, and
        every post that reuses an earlier post's id in the request with different content."""
        validated = self._validate_all(posts, self._post_for_routing)
        first: dict[str, tuple[int, str]] = {}
        problems = []
        for index, post in enumerate(validated):
            digest = content_hash(post)
            earlier = first.setdefault(post.id, (index, digest))
            if earlier[1] != digest:
                problems.append({"loc": ["posts", index], "msg": (
                    f"id: {post.id!r} is also the id of posts[{earlier[0]}], with different content; "
                    "one id is one post: give each post its own id")})
        if problems:
            raise RequestRejected(400, "posts with the same id and different content", problems)
        return validated

    def posts_to_predict(self, posts: Sequence[Post]) -> list[Post]:
        """The posts `route` will need predictions for: the first of each id not stored yet.
        RequestRejected (409) when an id was routed before with different content."""
        with self.store.session() as session:
            stored = self.store.stored_routings(session, [post.id for post in posts])
        self._check_conflicts(posts, stored)
        seen: set[str] = set()
        new = []
        for post in posts:
            if post.id not in stored and post.id not in seen:
                seen.add(post.id)
                new.append(post)
        return new

    @staticmethod
    def _check_conflicts(posts: Sequence[Post], stored: Mapping[str, RoutedPostRow]) -> None:
        problems = [
            {"loc": ["posts", index], "msg": (
                f"id: {post.id!r} was routed at {stored[post.id].received_at.isoformat()} with different content; "
                "a retry must send the same post, a new post needs a new id")}
            for index, post in enumerate(posts)
            # Rows stored before migration 0002 have no hash: their id is taken, their content unknown.
            if post.id in stored and stored[post.id].content_hash not in (None, content_hash(post))
        ]
        if problems:
            raise RequestRejected(409, "post id already routed with different content", problems)

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

    def route(self, posts: Sequence[Post], predictions: Mapping[str, Predictions], identity: ModelIdentity | None,
              now: datetime, client_key: str | None = None,
              pii_kinds: Mapping[str, list[str]] | None = None) -> RouteResponse:
        """Route posts at `now`. `predictions` holds, by post id, those of `posts_to_predict(posts)`;
        the other posts get their stored result. New posts are routed together: crisis signals first
        (a post counts towards the crisis it may trigger), then the rules, then one store write.
        `client_key` identifies the API key that sent them (serving.security.client_key).
        `pii_kinds`: by post id, the personal data kinds found beforehand (rules.private_data_kinds)."""
        if identity is not None:
            self._check_identity(identity)
        try:
            results, versions = self._route_once(posts, predictions, identity, now, client_key, pii_kinds)
        except IntegrityError:
            # Another request stored one of these ids between our read and our write (PostgreSQL;
            # SQLite writers take turns): route again, now with its result stored.
            results, versions = self._route_once(posts, predictions, identity, now, client_key, pii_kinds)

        for post, result in zip(posts, results):
            if result.replayed:
                log_event("post_replayed", post_id=post.id, queue=result.route.queue)
                continue
            decision = result.route
            log_event(
                "post_routed", post_id=post.id, channel=post.channel, intent=result.predictions["intent"].labels[0],
                queue=decision.queue, priority=decision.priority, tier=decision.confidence_tier,
                crisis=decision.crisis, out_of_hours=decision.out_of_hours, pii_kinds=decision.pii,
                text_chars=len(post.text),
            )
            if self.observer is not None:
                self.observer.routed(decision)
        model_version, taxonomy_version, routing_version = versions
        return RouteResponse(model_version=model_version, taxonomy_version=taxonomy_version,
                             routing_version=routing_version, results=results)

    def _route_once(self, posts: Sequence[Post], predictions: Mapping[str, Predictions],
                    identity: ModelIdentity | None, now: datetime, client_key: str | None = None,
                    pii_kinds: Mapping[str, list[str]] | None = None) -> tuple[list[RoutedPost], tuple[str, str, str]]:
        # One transaction: the crisis state and the posts it escalates are stored together, and (on
        # SQLite, where it begins with the write lock) no other request stores these ids meanwhile.
        with self.store.session() as session:
            stored = self.store.stored_routings(session, [post.id for post in posts])
            self._check_conflicts(posts, stored)
            new: dict[str, Post] = {}
            for post in posts:
                if post.id not in stored and post.id not in new:
                    new[post.id] = post
            missing = [post_id for post_id in new if post_id not in predictions]
            if missing or (new and identity is None):
                raise RuntimeError(f"no prediction for posts {missing[:5]} (call posts_to_predict first)")
            signals = []
            for post in new.values():
                intent = negative_intent(predictions[post.id], self.rules)
                if intent is not None:
                    signals.append(Signal(post_id=post.id, intent=intent, observed_at=now,
                                          author_key=author_key(post), conversation_key=conversation_key(post),
                                          client_key=client_key))
            active_crises = self.crisis.observe(session, signals, now) if signals else {}
            by_id: dict[str, RoutedPost] = {post_id: self._replayed(row) for post_id, row in stored.items()}
            for post in new.values():
                # Earlier posts of this request are in the session: the query flushes them first.
                history = self._contact_history(session, post, now)
                decision = route_post(post, predictions[post.id], self.rules, now, active_crises,
                                      pii_kinds=(pii_kinds or {}).get(post.id), history=history)
                outputs = {head: head_output(p) for head, p in predictions[post.id].items()}
                by_id[post.id] = RoutedPost(id=post.id, predictions=outputs, route=decision, history=history)
                session.add(self._row(post, outputs, decision, identity, now, history))
        results, seen = [], set()
        for post in posts:
            result = by_id[post.id]
            # A second copy of a post in the same request is a replay of the first.
            results.append(result.model_copy(update={"replayed": True}) if post.id in seen else result)
            seen.add(post.id)
        if identity is not None:
            versions = (identity.model_version, identity.taxonomy_version, self.rules.version)
        else:  # every post was a replay: the versions that routed the first one
            row = stored[posts[0].id]
            versions = (row.model_version, row.taxonomy_version, row.routing_version)
        return results, versions

    def _contact_history(self, session: Session, post: Post, now: datetime) -> ContactHistory | None:
        config = self.rules.config.contact_history
        key = known_author_key(post)
        if config is None or key is None:
            return None
        contacts = self.store.earlier_contacts(session, key, now - config.lookback, now, post.id)
        open_problems = []
        for contact in contacts:  # oldest first
            if contact.resolved:
                # The case was solved: what the author raised before it is closed with it.
                open_problems = []
            elif contact.intent in config.problem_intents:
                open_problems.append(contact)
        last = contacts[-1] if contacts else None
        problem = open_problems[-1] if open_problems else None
        return ContactHistory(
            contacts=len(contacts),
            last_contact_at=last.received_at if last else None,
            last_intent=last.intent if last else None,
            open_problems=len(open_problems),
            open_problem_post_id=problem.post_id if problem else None,
            open_problem_intent=problem.intent if problem else None,
            open_problem_at=problem.received_at if problem else None,
        )

    def _replayed(self, row: RoutedPostRow) -> RoutedPost:
        """The stored result of a routed post, as /route first returned it (the deadline in the
        service hours' zone, as the rules gave it; the store keeps UTC)."""
        deadline = row.sla_deadline.astimezone(self.rules.config.zone) if row.sla_deadline is not None else None
        return RoutedPost(
            id=row.post_id,
            predictions={head: HeadOutput.model_validate(output) for head, output in row.predictions.items()},
            route=RouteDecision(
                action=row.action, queue=row.queue, team=row.team, priority=row.priority,
                sla_deadline=deadline, needs_human=row.needs_human, confidence_tier=row.confidence_tier,
                reply_channel=row.reply_channel, out_of_hours=row.out_of_hours, auto_reply=row.auto_reply,
                crisis=row.crisis_id is not None, crisis_id=row.crisis_id, pii=list(row.pii_kinds),
                reasons=[Reason.model_validate(reason) for reason in row.reasons],
                suggested_reply=row.suggested_reply,
            ),
            history=ContactHistory.model_validate(row.contact_history) if row.contact_history is not None else None,
            replayed=True,
        )

    def record_feedback(self, feedback: FeedbackIn, now: datetime) -> FeedbackReceipt:
        problems = self._feedback_problems(feedback)
        if problems:
            raise RequestRejected(400, "invalid feedback", [{"loc": [loc], "msg": msg} for loc, msg in problems])
        if not self.store.has_post(feedback.post_id):
            raise RequestRejected(404, f"unknown post_id {feedback.post_id!r}: only routed posts take feedback")
        content = feedback.model_dump(mode="json", exclude={"idempotency_key"})
        if content["satisfaction"] is None:
            # Feedback without it hashes as before the field existed: a retry across the upgrade is a retry.
            del content["satisfaction"]
        digest = _sha256(content)
        row, replayed = self.store.add_feedback(Feedback(
            post_id=feedback.post_id,
            recorded_at=now,
            corrected_labels=feedback.corrected_labels,
            handled_by_team=feedback.handled_by_team,
            resolved=feedback.resolved,
            first_response_at=feedback.first_response_at,
            resolved_at=feedback.resolved_at,
            agent_id=feedback.agent_id,
            satisfaction=feedback.satisfaction,
            idempotency_key=feedback.idempotency_key,
            content_hash=digest,
        ))
        if replayed and row.content_hash != digest:
            raise RequestRejected(409, (
                f"idempotency_key was used at {row.recorded_at.isoformat()} for different feedback (feedback "
                f"{row.id} on post {row.post_id!r}); use a new key for new feedback"))
        log_event("feedback_replayed" if replayed else "feedback_recorded", post_id=feedback.post_id,
                  feedback_id=row.id, resolved=feedback.resolved,
                  corrected_fields=sorted(feedback.corrected_labels or {}), team=feedback.handled_by_team)
        return FeedbackReceipt(feedback_id=row.id, post_id=row.post_id, recorded_at=row.recorded_at, replayed=replayed)

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
             identity: ModelIdentity, now: datetime, history: ContactHistory | None) -> RoutedPostRow:
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
            auto_reply=decision.auto_reply,
            content_hash=content_hash(post),
            author_key=known_author_key(post),
            suggested_reply=decision.suggested_reply,
            contact_history=history.model_dump(mode="json") if history is not None else None,
        )
