"""The routing rules engine: a pure function of (post, per-head predictions, rules, now) -> route.

No server, no database, no clock: the crisis state comes in as an argument (the intents in an
active crisis), so every decision can be replayed and unit-tested. Steps, in order:

1. owner team from the intent (`intent_owners`); an intent without a team is logged, not queued;
2. business rules by customer type and action: the first rule that names a team takes the post,
   every fired rule's priority floor applies;
3. priority escalations (public channel, audience, sentiment), each capped by its max priority;
4. crisis: a negative post on an intent in active crisis goes to the crisis team, crisis priority;
5. confidence tier from the least confident head: auto, suggest (an agent confirms) or
   human_triage (the triage queue decides); an unqueued intent is dropped only when `auto`;
6. reply channel: private when the post is private, carries personal data, or its intent needs
   account data;
7. SLA deadline in the queue's service time, and the out-of-hours auto-reply when it is closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from data.pii import find_pii
from data.schema import Post
from data.taxonomy import Taxonomy
from serving.routing_config import Condition, ContactHistoryConfig, RoutingConfig, load_routing_config
from serving.schemas import ConfidenceTier, ContactHistory, CrisisView, Reason, RouteDecision
from serving.service_hours import HolidayCalendar, TeamHours, format_italian_moment

TIER_ORDER: tuple[ConfidenceTier, ...] = ("human_triage", "suggest", "auto")


class HeadPredictionLike(Protocol):
    """What the engine reads from a head's prediction (training.inference.heads.HeadPrediction has it)."""

    labels: list[str]
    probabilities: dict[str, float]
    confidence: float


@dataclass(frozen=True)
class RoutingRules:
    """A validated routing config with what it derives: team hours, priority order."""

    config: RoutingConfig
    taxonomy: Taxonomy
    team_hours: dict[str, TeamHours]
    priorities: tuple[str, ...]  # most urgent first, as the taxonomy lists them

    @classmethod
    def build(cls, config: RoutingConfig, taxonomy: Taxonomy) -> RoutingRules:
        holidays = HolidayCalendar(config.holidays)
        team_hours = {
            team_id: TeamHours(team_id, team, holidays, config.zone) for team_id, team in config.teams.items()
        }
        return cls(config, taxonomy, team_hours, tuple(taxonomy.fields["priority"].label_ids))

    @property
    def version(self) -> str:
        return self.config.version


def load_routing_rules(path: str | Path, taxonomy: Taxonomy) -> RoutingRules:
    return RoutingRules.build(load_routing_config(path, taxonomy), taxonomy)


def negative_intent(predictions: Mapping[str, HeadPredictionLike], rules: RoutingRules) -> str | None:
    """The intent a post counts towards for crisis detection, or None when it does not count."""
    crisis = rules.config.crisis
    intent = predictions["intent"].labels[0]
    sentiment = predictions["sentiment"].labels[0]
    if sentiment in crisis.negative_sentiments and intent not in crisis.excluded_intents:
        return intent
    return None


def private_data_kinds(text: str, rules: RoutingRules) -> list[str]:
    """The kinds of personal data in `text` that make the reply private (routing.yaml, reply)."""
    return sorted({match.kind for match in find_pii(text, kinds=rules.config.reply.private_for_pii)})


def route_post(
    post: Post,
    predictions: Mapping[str, HeadPredictionLike],
    rules: RoutingRules,
    now: datetime,
    active_crises: Mapping[str, CrisisView] | None = None,
    pii_kinds: list[str] | None = None,
    history: ContactHistory | None = None,
) -> RouteDecision:
    """Decide queue, priority, deadline, tier and reply channel for one post, with the reasons.
    `pii_kinds`: `private_data_kinds(post.text, rules)` when the caller found them already (an
    archive job finds them in its workers, beside the model). `history`: the author's earlier
    contacts (the pipeline reads them from the store).

    The steps of the module docstring, in order; each appends its reasons to `reasons`."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware: service hours and deadlines depend on it")
    _check_heads(predictions, rules)
    labels = {head: _label_value(prediction, rules.taxonomy, head) for head, prediction in predictions.items()}
    public = post.is_public(rules.taxonomy)
    reasons: list[Reason] = []

    team = _owner_team(labels["intent"], predictions, rules, reasons)
    priority = _predicted_priority(labels["priority"], predictions, reasons)
    team, priority = _apply_business_rules(post, public, predictions, rules, team, priority, reasons)
    if team is not None:
        priority = _apply_escalations(post, public, predictions, rules, priority, reasons)
        priority = _escalate_repeat_contact(history, rules, now, priority, reasons)
    crisis_view = _matching_crisis(predictions, rules, active_crises or {})
    if crisis_view is not None:
        team, priority = _route_to_crisis_team(crisis_view, labels, predictions, rules, priority, reasons)
    tier, queue = _tier_and_queue(labels["intent"], team, predictions, rules, reasons)
    if pii_kinds is None:
        pii_kinds = private_data_kinds(post.text, rules)
    reply_channel = _reply_channel(post, public, pii_kinds, labels["intent"], predictions, rules, reasons)
    sla_deadline, auto_reply = _deadline_and_auto_reply(post, queue, priority, rules, now, reasons)
    suggested_reply = _suggested_reply(post, labels, rules, queue, tier, crisis_view is not None,
                                       public and reply_channel == "private", sla_deadline, now)

    return RouteDecision(
        action="queue" if queue is not None else "log_only",
        queue=queue,
        team=team,
        priority=priority,
        sla_deadline=sla_deadline,
        needs_human=tier != "auto",
        confidence_tier=tier,
        reply_channel=reply_channel,
        out_of_hours=auto_reply is not None,
        auto_reply=auto_reply,
        crisis=crisis_view is not None,
        crisis_id=crisis_view.id if crisis_view is not None else None,
        pii=pii_kinds,
        reasons=reasons,
        suggested_reply=suggested_reply,
    )


def _owner_team(intent: str, predictions: Mapping[str, HeadPredictionLike], rules: RoutingRules,
                reasons: list[Reason]) -> str | None:
    """Step 1: the team that owns the intent; None when the intent is logged, not queued."""
    team = rules.config.intent_owners[intent]
    reasons.append(Reason(
        rule="intent_owner",
        effect=f"intent {intent} is owned by {team}" if team else f"intent {intent} is logged, not queued",
        labels={"intent": intent},
        confidences={"intent": _round(predictions["intent"].confidence)},
    ))
    return team


def _predicted_priority(priority: str, predictions: Mapping[str, HeadPredictionLike], reasons: list[Reason]) -> str:
    """The priority the model predicted, where the next steps start from."""
    reasons.append(Reason(
        rule="predicted_priority",
        effect=f"predicted priority {priority}",
        labels={"priority": priority},
        confidences={"priority": _round(predictions["priority"].confidence)},
    ))
    return priority


def _apply_business_rules(post: Post, public: bool, predictions: Mapping[str, HeadPredictionLike],
                          rules: RoutingRules, team: str | None, priority: str,
                          reasons: list[Reason]) -> tuple[str | None, str]:
    """Step 2: the first fired rule that names a team takes the post; every fired rule's priority
    floor applies. Returns (team, priority)."""
    team_taken_by_rule = False
    for rule in rules.config.business_rules:
        if not _matches(rule.when, post, public, predictions, rules.taxonomy):
            continue
        effects = []
        if rule.team is not None and not team_taken_by_rule:
            team = rule.team
            team_taken_by_rule = True
            effects.append(f"team {rule.team}")
        elif rule.team is not None:
            effects.append(f"team {rule.team} not taken: an earlier rule already chose {team}")
        if rule.min_priority is not None:
            raised = _more_urgent(priority, rule.min_priority, rules.priorities)
            effects.append(f"priority at least {rule.min_priority}" + ("" if raised == priority else f" ({priority} -> {raised})"))
            priority = raised
        reasons.append(_condition_reason(f"business_rule:{rule.name}", "; ".join(effects) + f": {rule.description}",
                                         rule.when, predictions, rules.taxonomy))
    return team, priority


def _apply_escalations(post: Post, public: bool, predictions: Mapping[str, HeadPredictionLike],
                       rules: RoutingRules, priority: str, reasons: list[Reason]) -> str:
    """Step 3: every matching escalation raises the priority, each capped by its max priority."""
    for escalation in rules.config.escalations:
        if not _matches(escalation.when, post, public, predictions, rules.taxonomy):
            continue
        raised = _raise(priority, escalation.raise_levels, escalation.max_priority, rules.priorities)
        effect = f"priority {priority} -> {raised}" if raised != priority else (
            f"priority stays {priority} (cap {escalation.max_priority})"
        )
        reasons.append(_condition_reason(f"escalation:{escalation.name}", f"{effect}: {escalation.description}",
                                         escalation.when, predictions, rules.taxonomy))
        priority = raised
    return priority


def _escalate_repeat_contact(history: ContactHistory | None, rules: RoutingRules, now: datetime, priority: str,
                             reasons: list[Reason]) -> str:
    """Step 3, last: a repeat contact on an open problem raises the priority, up to its cap."""
    repeat = _repeat_contact(history, rules, now)
    if repeat is None:
        return priority
    raised = _raise(priority, repeat.raise_levels, repeat.max_priority, rules.priorities)
    effect = f"priority {priority} -> {raised}" if raised != priority else (
        f"priority stays {priority} (cap {repeat.max_priority})"
    )
    reasons.append(Reason(
        rule="repeat_contact",
        effect=(
            f"{effect}: the author writes again while a problem is open (post {history.open_problem_post_id}, "
            f"{history.open_problem_intent}, {history.open_problem_at.isoformat()}, at most "
            f"{repeat.repeat_window_hours} h ago, not resolved)"
        ),
    ))
    return raised


def _route_to_crisis_team(crisis_view: CrisisView, labels: Mapping[str, str | list[str]],
                          predictions: Mapping[str, HeadPredictionLike], rules: RoutingRules, priority: str,
                          reasons: list[Reason]) -> tuple[str, str]:
    """Step 4: a post of an intent in active crisis goes to the crisis team at (at least) the crisis
    priority. Returns (team, priority)."""
    crisis = rules.config.crisis
    team = crisis.team
    priority = _more_urgent(priority, crisis.priority, rules.priorities)
    intent = labels["intent"]
    reasons.append(Reason(
        rule="crisis",
        effect=(
            f"intent {intent} is in social crisis #{crisis_view.id} since {crisis_view.started_at.isoformat()} "
            f"({crisis_view.window_count} authors of negative posts in the window, baseline "
            f"{crisis_view.baseline_per_hour:.1f}/h): team {team}, priority {priority}"
        ),
        labels={"intent": intent, "sentiment": labels["sentiment"]},
        confidences={"intent": _round(predictions["intent"].confidence),
                     "sentiment": _round(predictions["sentiment"].confidence)},
    ))
    return team, priority


def _tier_and_queue(intent: str, team: str | None, predictions: Mapping[str, HeadPredictionLike],
                    rules: RoutingRules, reasons: list[Reason]) -> tuple[ConfidenceTier, str | None]:
    """Step 5: the confidence tier, and the queue it sends the post to: the team's, the triage queue
    (human_triage, or an unqueued intent below auto), or None (logged only)."""
    tier, tier_reason = _confidence_tier(predictions, rules)
    reasons.append(tier_reason)
    triage_queue = rules.config.confidence.triage_queue
    if tier == "human_triage":
        return tier, triage_queue
    if team is None and tier != "auto":
        reasons.append(Reason(
            rule="unqueued_needs_confidence",
            effect=f"intent {intent} would be logged only, but confidence is below auto: a person checks before it is dropped",
            labels={"intent": intent},
            confidences={"intent": _round(predictions["intent"].confidence)},
        ))
        return tier, triage_queue
    return tier, team


def _reply_channel(post: Post, public: bool, pii_kinds: list[str], intent: str,
                   predictions: Mapping[str, HeadPredictionLike], rules: RoutingRules,
                   reasons: list[Reason]) -> str:
    """Step 6: "private" when the post is private, carries personal data, or its intent needs account
    data; else "public"."""
    if not public:
        reasons.append(Reason(rule="private_post", effect=f"the post came privately on {post.channel}: reply privately"))
        return "private"
    if pii_kinds:
        reasons.append(Reason(
            rule="pii_private_reply",
            effect=f"personal data in a public post ({', '.join(pii_kinds)}): move the reply to a private channel",
        ))
        return "private"
    if intent in rules.config.reply.private_for_intents:
        reasons.append(Reason(
            rule="private_intent",
            effect=f"intent {intent} needs account data: move the reply to a private channel",
            labels={"intent": intent},
            confidences={"intent": _round(predictions["intent"].confidence)},
        ))
        return "private"
    return "public"


def _deadline_and_auto_reply(post: Post, queue: str | None, priority: str, rules: RoutingRules, now: datetime,
                             reasons: list[Reason]) -> tuple[datetime | None, str | None]:
    """Step 7: the SLA deadline in the queue's service time, and the out-of-hours auto-reply when the
    queue is closed now. (None, None) for a post that is only logged."""
    if queue is None:
        return None, None
    config = rules.config
    hours = rules.team_hours[queue]
    target = config.sla.channel_targets.get(post.channel, {}).get(priority, config.sla.targets[priority])
    start = post.created_at if post.created_at is not None and post.created_at <= now else now
    sla_deadline = hours.add_service_time(start, target)
    reasons.append(Reason(
        rule="sla",
        effect=(
            f"{priority} on {post.channel}: first response within {_format_duration(target)} of {queue} service time "
            f"from {start.isoformat()}"
        ),
    ))
    if hours.is_open(now):
        return sla_deadline, None
    reopens_at = hours.next_opening(now)
    auto_reply = config.out_of_hours.auto_reply.format(
        team=hours.display_name,
        hours=hours.describe(),
        reopens_at=format_italian_moment(reopens_at, now),
        deadline=format_italian_moment(sla_deadline, now),
    )
    reasons.append(Reason(
        rule="out_of_hours",
        effect=f"{queue} is closed now; it reopens {reopens_at.isoformat()}: send the auto-reply with the hours",
    ))
    return sla_deadline, auto_reply


def _suggested_reply(post: Post, labels: Mapping[str, str | list[str]], rules: RoutingRules, queue: str | None,
                     tier: str, crisis: bool, moved_to_private: bool, sla_deadline: datetime | None,
                     now: datetime) -> str | None:
    """The reply draft of routing.yaml's suggested_replies for this intent and sentiment, filled in
    with the queue's name, hours and deadline. None when a person decides what the post is
    (human_triage), in a crisis (management answers), for a post that is only logged, or an intent
    with no template."""
    config = rules.config.suggested_replies
    if config is None or queue is None or tier == "human_triage" or crisis:
        return None
    templates = config.intents.get(labels["intent"])
    if templates is None:
        return None
    template = templates.get(labels["sentiment"], templates["default"])
    if moved_to_private and "{private_invitation}" not in template:
        template = f"{template} {{private_invitation}}"  # personal data are never answered in public
    hours = rules.team_hours[queue]
    text = template.format(
        greeting=config.greeting_by_channel.get(post.channel, config.greeting),
        team=hours.display_name,
        hours=hours.describe(),
        deadline=format_italian_moment(sla_deadline, now) if sla_deadline is not None else "",
        private_invitation=config.private_invitation if moved_to_private else "",
    )
    # An empty placeholder leaves a double or trailing space behind.
    return " ".join(text.split())


def _repeat_contact(history: ContactHistory | None, rules: RoutingRules, now: datetime) -> ContactHistoryConfig | None:
    """The contact-history settings when this post is a repeat contact on an open problem."""
    config = rules.config.contact_history
    if config is None or history is None or history.open_problem_at is None:
        return None
    return config if config.min_gap <= now - history.open_problem_at <= config.repeat_window else None


def _check_heads(predictions: Mapping[str, HeadPredictionLike], rules: RoutingRules) -> None:
    missing = [head for head in rules.taxonomy.fields if head not in predictions]
    if missing:
        raise ValueError(f"predictions lack head(s) {missing}; the model does not match taxonomy v{rules.taxonomy.version}")
    for head, prediction in predictions.items():
        spec = rules.taxonomy.fields.get(head)
        if spec is None:
            raise ValueError(f"prediction for unknown head {head!r}")
        if not spec.is_multi_label and len(prediction.labels) != 1:
            raise ValueError(f"single-label head {head!r} has {len(prediction.labels)} labels: {prediction.labels}")


def _label_value(prediction: HeadPredictionLike, taxonomy: Taxonomy, head: str) -> str | list[str]:
    return list(prediction.labels) if taxonomy.fields[head].is_multi_label else prediction.labels[0]


def _matches(condition: Condition, post: Post, public: bool,
             predictions: Mapping[str, HeadPredictionLike], taxonomy: Taxonomy) -> bool:
    if condition.public is not None and condition.public != public:
        return False
    if condition.channels is not None and post.channel not in condition.channels:
        return False
    if condition.min_followers is not None:
        followers = post.author.followers
        if followers is None or followers < condition.min_followers:
            return False
    for head, accepted in condition.labels.items():
        if not set(predictions[head].labels) & set(accepted):
            return False
    return True


def _condition_reason(rule: str, effect: str, condition: Condition,
                      predictions: Mapping[str, HeadPredictionLike], taxonomy: Taxonomy) -> Reason:
    labels: dict[str, str | list[str]] = {}
    confidences: dict[str, float] = {}
    for head, accepted in condition.labels.items():
        prediction = predictions[head]
        if taxonomy.fields[head].is_multi_label:
            matched = [label for label in prediction.labels if label in accepted]
            labels[head] = matched
            for label in matched:
                confidences[f"{head}:{label}"] = _round(prediction.probabilities[label])
        else:
            labels[head] = prediction.labels[0]
            confidences[head] = _round(prediction.confidence)
    return Reason(rule=rule, effect=effect, labels=labels, confidences=confidences)


def _more_urgent(current: str, floor: str, priorities: tuple[str, ...]) -> str:
    return priorities[min(priorities.index(current), priorities.index(floor))]


def _raise(current: str, levels: int, cap: str, priorities: tuple[str, ...]) -> str:
    """Raise by `levels`, never above `cap`, and never lower a priority already above the cap."""
    index = priorities.index(current)
    target = max(index - levels, priorities.index(cap))
    return priorities[min(index, target)]


def _matching_crisis(predictions: Mapping[str, HeadPredictionLike], rules: RoutingRules,
                     active_crises: Mapping[str, CrisisView]) -> CrisisView | None:
    intent = negative_intent(predictions, rules)
    return active_crises.get(intent) if intent is not None else None


def _confidence_tier(predictions: Mapping[str, HeadPredictionLike], rules: RoutingRules) -> tuple[ConfidenceTier, Reason]:
    thresholds = rules.config.confidence.thresholds
    tiers: dict[str, ConfidenceTier] = {}
    for head, limits in thresholds.items():
        confidence = predictions[head].confidence
        tiers[head] = "auto" if confidence >= limits.auto else "suggest" if confidence >= limits.suggest else "human_triage"
    tier = min(tiers.values(), key=TIER_ORDER.index)
    deciding = [head for head, head_tier in tiers.items() if head_tier == tier]
    if tier == "auto":
        effect = "every head is at or above its auto threshold: routed automatically"
    elif tier == "suggest":
        effect = f"{', '.join(deciding)} between suggest and auto: routed as a suggestion for an agent to confirm"
    else:
        effect = f"{', '.join(deciding)} below suggest: sent to the human triage queue"
    reason = Reason(
        rule=f"confidence:{tier}",
        effect=effect,
        labels={head: _label_value(predictions[head], rules.taxonomy, head) for head in deciding},
        confidences={head: _round(predictions[head].confidence) for head in thresholds},
    )
    return tier, reason


def _format_duration(duration: timedelta) -> str:
    minutes = int(duration.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if part)


def _round(value: float) -> float:
    return round(float(value), 4)
