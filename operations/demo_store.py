"""A demo store: weeks of synthetic care traffic routed through the real pipeline, with synthetic
agent feedback, so that `smista report` and `smista forecast` can be seen on a fresh machine.

Posts (the bundled seed posts, or any JSONL) are replayed with new ids, synthetic authors and
arrival times drawn from a Poisson process whose hourly rate follows a care team's week (quiet
nights, a morning rise, an evening peak; calmer weekends). The last week carries a product campaign
(more purchase questions: the drift section has something to show) and, one evening of it, a burst of
negative posts on one intent (a crisis). Each post is routed at its arrival time by
`RoutingPipeline`, with the model given on the command line, exactly as /route would.

Agents answer the queued posts in their team's service hours: the first response comes after a
share of the SLA target drawn from a log-normal (about four in five within it), the resolution
later; feedback reaches the store at the moment it happens, in time order with the arrivals, so the
contact history sees resolved cases as the router would. Agents correct a head when the post's own
label (the seed posts are labelled) differs from the prediction; some customers leave a
satisfaction score, higher when they were answered in time and their case solved.

Everything is drawn from one seeded generator: the same arguments give the same store.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from data.dataset import SEED_DATA_DIR
from data.errors import UserError
from data.jsonl import read_posts
from data.schema import DEFAULT_MAX_TEXT_CHARS, Post, PostValidator
from data.taxonomy import Taxonomy
from operations.forecast import floor_hour
from serving.drift import record_reference
from serving.pipeline import ModelIdentity, RoutingPipeline
from serving.rules import RoutingRules
from serving.schemas import FeedbackIn
from serving.store import CrisisEpisode, PredictionStore, RoutedPost

# Share of a day's posts in each local hour (sums to one): quiet nights, a morning rise, a lunch
# dip, an evening peak. Weekends are calmer and later.
WEEKDAY_PROFILE = (0.006, 0.004, 0.003, 0.003, 0.004, 0.008, 0.018, 0.036, 0.055, 0.064, 0.066, 0.062,
                   0.052, 0.050, 0.056, 0.058, 0.060, 0.062, 0.068, 0.072, 0.066, 0.052, 0.032, 0.044)
WEEKEND_PROFILE = (0.010, 0.007, 0.005, 0.004, 0.004, 0.005, 0.009, 0.018, 0.034, 0.052, 0.064, 0.068,
                   0.062, 0.056, 0.054, 0.056, 0.060, 0.064, 0.068, 0.070, 0.066, 0.058, 0.046, 0.060)
WEEKEND_VOLUME = 0.7
CAMPAIGN_INTENTS = ("acquisto", "informazioni")
# In the campaign week this share of the posts are about the campaign (purchase, information).
CAMPAIGN_SHARE = 0.3
CRISIS_POSTS = 70
CRISIS_MINUTES = 100


@dataclass
class DemoSettings:
    database_url: str
    weeks: int = 5
    posts_per_day: float = 150.0
    end: datetime | None = None          # default: now, to the hour
    seed: int = 7
    feedback_share: float = 0.95         # queued posts the agents report back on
    satisfaction_share: float = 0.4      # of those, customers who answer the survey
    authors: int = 2500                  # distinct synthetic authors (repeat contacts happen)
    campaign: bool = True
    crisis: bool = True
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS

    def __post_init__(self) -> None:
        self.check()  # a config is valid from the moment it exists: no caller has to remember to check it

    def check(self) -> None:
        if self.weeks < 1:
            raise ValueError(f"weeks must be at least 1, got {self.weeks}")
        if self.posts_per_day <= 0:
            raise ValueError(f"posts_per_day must be positive, got {self.posts_per_day}")
        for name in ("feedback_share", "satisfaction_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.authors < 1:
            raise ValueError(f"authors must be at least 1, got {self.authors}")


@dataclass
class DemoReport:
    posts: int = 0
    feedback: int = 0
    crises: int = 0
    since: datetime | None = None
    until: datetime | None = None
    by_team: dict[str, int] = field(default_factory=dict)


class DemoStoreError(UserError, ValueError):
    """The demo cannot write where it was asked to (a store that already holds posts)."""


def load_demo_posts(inputs: Sequence[Path], taxonomy: Taxonomy) -> list[Post]:
    """The posts to replay: the bundled seed posts when no input is given."""
    validator = PostValidator(taxonomy)
    posts: list[Post] = []
    for path in inputs or sorted(SEED_DATA_DIR.glob("*.jsonl")):
        posts += read_posts(path, validator).posts
    if not posts:
        raise DemoStoreError("no posts to replay in " + ", ".join(str(path) for path in inputs))
    return posts


def arrival_times(settings: DemoSettings, end: datetime, zone, rng: random.Random) -> list[datetime]:
    """Poisson arrivals, hour by hour, over the `weeks` before `end`."""
    start = end - timedelta(weeks=settings.weeks)
    arrivals = []
    hour = start
    while hour < end:
        local = hour.astimezone(zone)
        weekend = local.weekday() >= 5
        profile = WEEKEND_PROFILE if weekend else WEEKDAY_PROFILE
        rate = settings.posts_per_day * profile[local.hour] * (WEEKEND_VOLUME if weekend else 1.0)
        for _ in range(_poisson(rate, rng)):
            arrivals.append(hour + timedelta(seconds=rng.uniform(0, 3600)))
        hour += timedelta(hours=1)
    return sorted(arrivals)


def _poisson(rate: float, rng: random.Random) -> int:
    # Knuth's method: rates here are a few dozen per hour at most.
    threshold, count, product = math.exp(-rate), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def build_demo_store(settings: DemoSettings, predictor, rules: RoutingRules, posts: Sequence[Post]) -> DemoReport:
    """Route the synthetic traffic into a new store and record the synthetic feedback."""
    store = PredictionStore(settings.database_url)
    try:
        with store.session() as session:
            existing = session.query(RoutedPost).count()
        if existing:
            raise DemoStoreError(
                f"the store already holds {existing} routed posts: the demo writes only into a new store "
                "(choose another --database-url), so that no real data is mixed with synthetic data")
        return _replay(settings, predictor, rules, posts, store)
    finally:
        store.close()


def _replay(settings: DemoSettings, predictor, rules: RoutingRules, posts: Sequence[Post],
            store: PredictionStore) -> DemoReport:
    rng = random.Random(settings.seed)
    zone = rules.config.zone
    end = floor_hour(settings.end or datetime.now(timezone.utc))
    start = end - timedelta(weeks=settings.weeks)
    taxonomy = rules.taxonomy
    pipeline = RoutingPipeline(taxonomy, rules, store, max_posts_per_request=1,
                               max_text_chars=settings.max_text_chars, store_post_text=False)
    identity = ModelIdentity(predictor.model_version, predictor.taxonomy_version, predictor.runtime)
    record_reference(store, predictor.model_version, predictor.reference_profile, start)
    # Each distinct text is predicted once: the replay reuses texts many times.
    texts = sorted({post.text for post in posts})
    predicted = dict(zip(texts, predictor.predict(texts), strict=True))

    campaign_pool = [post for post in posts if post.labels.get("intent") in CAMPAIGN_INTENTS]
    crisis_pool = [post for post in posts if post.labels.get("sentiment") == "negativo"
                   and post.labels.get("intent") == "assistenza_tecnica"]
    campaign_from = end - timedelta(weeks=1) if settings.campaign and settings.weeks > 1 else None
    events: list[tuple[datetime, int, str, object]] = []
    sequence = 0
    for moment in arrival_times(settings, end, zone, rng):
        source = rng.choice(posts)
        if campaign_from is not None and moment >= campaign_from and campaign_pool \
                and rng.random() < CAMPAIGN_SHARE:
            source = rng.choice(campaign_pool)
        author = f"@cliente_{rng.randrange(settings.authors):05d}"
        events.append((moment, sequence, "post", (source, author)))
        sequence += 1
    if settings.crisis and crisis_pool:
        # An evening of the last week: a network fault, each post by a different customer.
        crisis_day = (end - timedelta(days=3)).astimezone(zone).replace(hour=19, minute=0, second=0, microsecond=0)
        for index in range(CRISIS_POSTS):
            moment = crisis_day + timedelta(minutes=rng.uniform(0, CRISIS_MINUTES))
            events.append((moment.astimezone(timezone.utc), sequence, "post",
                           (rng.choice(crisis_pool), f"@guasto_{index:03d}")))
            sequence += 1
    heapq.heapify(events)
    report = DemoReport(since=start, until=end)
    while events:
        moment, _, kind, payload = heapq.heappop(events)
        if kind == "feedback":
            pipeline.record_feedback(payload, moment)
            report.feedback += 1
            continue
        source, author = payload
        raw = source.model_dump(mode="json", exclude_none=True,
                                exclude={"labels", "customer_id", "conversation_id", "author"})
        raw.update(id=f"demo-{report.posts:06d}", created_at=moment.isoformat(),
                   author={"handle": author, "followers": rng.randrange(20, 2000)})
        post = pipeline.validator.validate(raw)
        routed = pipeline.route([post], {post.id: predicted[source.text]}, identity, moment).results[0]
        report.posts += 1
        if routed.route.team is not None:
            report.by_team[routed.route.team] = report.by_team.get(routed.route.team, 0) + 1
        for at, feedback in _agent_feedback(source, routed, moment, rules, settings, rng, end):
            heapq.heappush(events, (at, sequence, "feedback", feedback))
            sequence += 1
    with store.session() as session:
        report.crises = session.query(CrisisEpisode).count()
    return report


def _agent_feedback(source: Post, routed, received: datetime, rules: RoutingRules, settings: DemoSettings,
                    rng: random.Random, end: datetime) -> list[tuple[datetime, FeedbackIn]]:
    """What the agents report about one routed post, as (when, feedback) calls before `end`."""
    decision = routed.route
    if decision.action != "queue" or decision.team is None or rng.random() > settings.feedback_share:
        return []
    hours = rules.team_hours[decision.team]
    target = rules.config.sla.targets[decision.priority]
    # Around half the target, with a tail: about four in five answered within the SLA.
    first = hours.add_service_time(received, target * rng.lognormvariate(math.log(0.5), 0.75))
    if first > end:
        return []
    corrected = {head: gold for head, gold in source.labels.items()
                 if _as_list(gold) != sorted(routed.predictions[head].labels)}
    problem_intents = rules.config.contact_history.problem_intents if rules.config.contact_history else []
    intent = source.labels.get("intent", routed.predictions["intent"].labels[0])
    resolves = rng.random() < (0.75 if intent in problem_intents else 0.92)
    resolution_target = rules.config.sla.resolution_targets.get(decision.priority, target * 4)
    resolved_at = hours.add_service_time(first, resolution_target * rng.lognormvariate(math.log(0.35), 0.8)) \
        if resolves else None
    agent = f"agente_{rng.randrange(1, 13):02d}"
    common = {"post_id": routed.id, "handled_by_team": decision.team, "agent_id": agent,
              "corrected_labels": corrected or None}
    if resolved_at is None or resolved_at > end:
        return [(first, FeedbackIn(resolved=False, first_response_at=first, **common))]
    satisfaction = None
    if rng.random() < settings.satisfaction_share:
        in_time = decision.sla_deadline is None or first <= decision.sla_deadline
        mean = 4.3 if in_time else 3.1
        satisfaction = max(1, min(5, round(rng.gauss(mean, 0.8))))
    return [(resolved_at, FeedbackIn(resolved=True, first_response_at=first, resolved_at=resolved_at,
                                     satisfaction=satisfaction, **common))]


def _as_list(value) -> list[str]:
    return sorted([value] if isinstance(value, str) else value)
