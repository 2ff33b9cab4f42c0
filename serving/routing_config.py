"""The typed schema of `configs/routing.yaml` and its loader, checked against the taxonomy.

The YAML file holds values only; this module says what each key means, refuses unknown keys, and
cross-checks every label, head, channel and team it names. A rule that names an unknown label stops
the service at start-up with the rule and the label named: routing on a typo would silently never
fire.
"""

from __future__ import annotations

import re
import string
from datetime import date, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from data.config_files import StrictConfig, VersionText, read_yaml_mapping, validate_mapping
from data.errors import UserError
from data.locations import CONFIGS_DIR
from data.pii import PII_KINDS
from data.taxonomy import Taxonomy

DEFAULT_ROUTING_PATH = CONFIGS_DIR / "routing.yaml"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AUTO_REPLY_PLACEHOLDERS = frozenset({"team", "hours", "reopens_at", "deadline"})
SUGGESTED_REPLY_PLACEHOLDERS = frozenset({"greeting", "team", "hours", "deadline", "private_invitation"})
# The fields the rules engine reads by name; the taxonomy must have them with these shapes.
REQUIRED_FIELDS = {"intent": "single", "priority": "single", "sentiment": "single"}

_DURATION = re.compile(r"^(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?$")
_INTERVAL = re.compile(r"^(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")


class RoutingConfigError(UserError, ValueError):
    """The routing config is missing, unreadable, invalid or does not fit the taxonomy."""


def parse_duration(value: str) -> timedelta:
    """'30m', '2h', '1h30m' -> timedelta. Days are not accepted: in service time a day is ambiguous."""
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match or not (match["hours"] or match["minutes"]):
        raise ValueError(f"bad duration {value!r}: write hours and/or minutes, e.g. 30m, 2h, 1h30m")
    duration = timedelta(hours=int(match["hours"] or 0), minutes=int(match["minutes"] or 0))
    if duration <= timedelta(0):
        raise ValueError(f"duration {value!r} must be positive")
    return duration


def _parse_clock(text: str) -> time | None:
    """'08:30' -> time; '24:00' -> None, meaning the end of the day."""
    hours, minutes = (int(part) for part in text.split(":"))
    if text == "24:00":
        return None
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad time {text!r}")
    return time(hours, minutes)


class OpenInterval(StrictConfig):
    start: time
    end: time | None = Field(description="None means midnight at the end of the day (24:00).")

    def end_minutes(self) -> int:
        return 24 * 60 if self.end is None else self.end.hour * 60 + self.end.minute

    def start_minutes(self) -> int:
        return self.start.hour * 60 + self.start.minute

    def label(self) -> str:
        end = "24:00" if self.end is None else f"{self.end.hour}:{self.end.minute:02d}"
        return f"{self.start.hour}:{self.start.minute:02d}–{end}"


class TeamConfig(StrictConfig):
    display_name: str = Field(min_length=1, description="Italian team name used in the auto-reply.")
    always_open: bool = Field(default=False, description="Staffed around the clock, holidays included.")
    hours: dict[str, list[OpenInterval]] = Field(
        default_factory=dict,
        description="Weekday (mon..sun) -> opening intervals 'HH:MM-HH:MM', local time. A missing day is closed.",
    )
    closed_on_holidays: bool = Field(default=True, description="Closed on the holidays of `holidays`.")

    @field_validator("hours", mode="before")
    @classmethod
    def _parse_hours(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        parsed: dict[str, list[dict]] = {}
        for day, intervals in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            if not isinstance(intervals, list):
                raise ValueError(f"{day}: expected a list of 'HH:MM-HH:MM' intervals")
            parsed[day] = [cls._parse_interval(day, item) for item in intervals]
        return parsed

    @staticmethod
    def _parse_interval(day: str, item: object) -> dict:
        if isinstance(item, dict):
            return item
        match = _INTERVAL.match(str(item))
        if not match:
            raise ValueError(f"{day}: bad interval {item!r}; write 'HH:MM-HH:MM', e.g. '09:00-18:00'")
        start = _parse_clock(match["start"])
        if start is None:
            raise ValueError(f"{day}: an interval cannot start at 24:00")
        return {"start": start, "end": _parse_clock(match["end"])}

    @model_validator(mode="after")
    def _hours_consistent(self) -> TeamConfig:
        if self.always_open and self.hours:
            raise ValueError("always_open and hours exclude each other")
        if not self.always_open and not any(self.hours.values()):
            raise ValueError("no service hours: give `hours` or set always_open")
        for day, intervals in self.hours.items():
            ordered = sorted(intervals, key=OpenInterval.start_minutes)
            for interval in ordered:
                if interval.end_minutes() <= interval.start_minutes():
                    raise ValueError(f"{day}: interval {interval.label()} ends before it starts")
            for before, after in zip(ordered, ordered[1:]):
                if after.start_minutes() < before.end_minutes():
                    raise ValueError(f"{day}: intervals {before.label()} and {after.label()} overlap")
        return self


class FixedHoliday(StrictConfig):
    date: str = Field(pattern=r"^\d{2}-\d{2}$", description="MM-DD, every year.")
    name: str = Field(min_length=1)
    since: int | None = Field(default=None, description="First year it is a holiday.")

    @field_validator("date")
    @classmethod
    def _real_day(cls, value: str) -> str:
        month, day = (int(part) for part in value.split("-"))
        try:
            date(2024, month, day)  # a leap year, so 02-29 is accepted
        except ValueError:
            raise ValueError(f"no such day {value!r} (MM-DD)") from None
        return value


class HolidaysConfig(StrictConfig):
    fixed: list[FixedHoliday] = Field(default_factory=list, description="Holidays on the same day every year.")
    easter_sunday: bool = Field(default=True, description="Easter Sunday (computed per year).")
    easter_monday: bool = Field(default=True, description="Easter Monday, Pasquetta (computed per year).")
    extra: list[date] = Field(default_factory=list, description="One-off closures, YYYY-MM-DD.")


class Condition(StrictConfig):
    """All given parts must hold. Labels: a single-label field matches when its predicted label is
    listed; a multi-label field matches when any listed label was predicted."""

    labels: dict[str, list[str]] = Field(default_factory=dict, description="Field -> accepted label ids.")
    channels: list[str] | None = Field(default=None, description="Only posts from these channels.")
    public: bool | None = Field(default=None, description="Only public (true) or private (false) posts.")
    min_followers: int | None = Field(default=None, ge=0, description="Only authors with at least this many followers.")

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.labels and self.channels is None and self.public is None and self.min_followers is None:
            raise ValueError("empty condition: it would match every post; say what it matches")
        for field_name, ids in self.labels.items():
            if not ids:
                raise ValueError(f"labels.{field_name}: empty list matches nothing")
        return self


class BusinessRule(StrictConfig):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Stable rule id, shown in the route reasons.")
    description: str = Field(min_length=1, description="Why the rule exists, for the people reading reasons.")
    when: Condition
    team: str | None = Field(default=None, description="Team that takes the post when the rule fires.")
    min_priority: str | None = Field(default=None, description="Priority floor when the rule fires.")

    @model_validator(mode="after")
    def _has_effect(self) -> BusinessRule:
        if self.team is None and self.min_priority is None:
            raise ValueError(f"rule {self.name!r} has no effect: give a team and/or a min_priority")
        return self


class Escalation(StrictConfig):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    when: Condition
    raise_levels: int = Field(ge=1, description="How many priority levels to raise.")
    max_priority: str = Field(description="The escalation never raises above this priority.")


class SlaConfig(StrictConfig):
    targets: dict[str, timedelta] = Field(description="Priority -> response time in service time.")
    channel_targets: dict[str, dict[str, timedelta]] = Field(
        default_factory=dict, description="Channel -> priority -> target, overriding `targets`."
    )
    resolution_targets: dict[str, timedelta] = Field(
        default_factory=dict, description="Priority -> time to resolve in the team's service time (the report "
                                          "measures against it; routing does not use it).")

    @field_validator("targets", "resolution_targets", mode="before")
    @classmethod
    def _parse_targets(cls, value: object) -> object:
        if isinstance(value, dict):
            return {key: parse_duration(item) for key, item in value.items()}
        return value

    @field_validator("channel_targets", mode="before")
    @classmethod
    def _parse_channel_targets(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                channel: {key: parse_duration(item) for key, item in targets.items()}
                if isinstance(targets, dict) else targets
                for channel, targets in value.items()
            }
        return value


class ReplyConfig(StrictConfig):
    private_for_pii: list[str] = Field(description="PII kinds that move the reply to a private channel.")
    private_for_intents: list[str] = Field(default_factory=list, description="Intents always answered privately.")

    @field_validator("private_for_pii")
    @classmethod
    def _known_pii_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = [kind for kind in kinds if kind not in PII_KINDS]
        if unknown:
            raise ValueError(f"unknown PII kind(s) {unknown}; known: {', '.join(PII_KINDS)}")
        return kinds


def _check_placeholders(text: str, known: frozenset[str]) -> str:
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:  # a lone "{" or "}"
        raise ValueError(f"{exc} in {text!r}; write {{{{ and }}}} for literal braces") from None
    unknown = used - known
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)} in {text!r}; use {', '.join(sorted(known))}")
    return text


class OutOfHoursConfig(StrictConfig):
    auto_reply: str = Field(min_length=1, description="Italian auto-reply; placeholders {team} {hours} {reopens_at} {deadline}.")

    @field_validator("auto_reply")
    @classmethod
    def _known_placeholders(cls, text: str) -> str:
        return _check_placeholders(text, AUTO_REPLY_PLACEHOLDERS)


class SuggestedRepliesConfig(StrictConfig):
    """Reply drafts for agents (seed 003, "AZIONE"; seed 004): returned by /route, never sent."""

    # No handle in the greeting: the reply is stored with the route, and no handle is stored in clear
    # (the platform that sends the reply knows whom it answers).
    greeting: str = Field(min_length=1, description="Opening, e.g. Ciao.")
    greeting_by_channel: dict[str, str] = Field(default_factory=dict, description="Channel -> its own opening.")
    private_invitation: str = Field(
        min_length=1, description="Added when a public post is answered privately (personal data, account data).")
    intents: dict[str, dict[str, str] | None] = Field(
        description="Intent -> {default: template, <sentiment>: template for that sentiment}; null: no reply "
                    "suggested. Placeholders: {greeting} {team} {hours} {deadline} {private_invitation}.")

    @field_validator("greeting")
    @classmethod
    def _greeting_placeholders(cls, text: str) -> str:
        return _check_placeholders(text, frozenset())

    @field_validator("greeting_by_channel")
    @classmethod
    def _channel_greeting_placeholders(cls, greetings: dict[str, str]) -> dict[str, str]:
        for text in greetings.values():
            _check_placeholders(text, frozenset())
        return greetings

    @field_validator("intents")
    @classmethod
    def _templates(cls, intents: dict[str, dict[str, str] | None]) -> dict[str, dict[str, str] | None]:
        for intent, templates in intents.items():
            if templates is None:
                continue
            if "default" not in templates:
                raise ValueError(f"{intent}: no `default` template (the one used for any sentiment not listed)")
            for key, text in templates.items():
                if not text.strip():
                    raise ValueError(f"{intent}.{key}: empty template; use null for no suggestion")
                _check_placeholders(text, SUGGESTED_REPLY_PLACEHOLDERS)
        return intents


class HeadThresholds(StrictConfig):
    auto: float = Field(ge=0.0, le=1.0, description="At or above: the head is trusted.")
    suggest: float = Field(ge=0.0, le=1.0, description="At or above (and below auto): an agent confirms.")

    @model_validator(mode="after")
    def _ordered(self) -> HeadThresholds:
        if self.suggest > self.auto:
            raise ValueError(f"suggest ({self.suggest}) is above auto ({self.auto})")
        return self


class ConfidenceConfig(StrictConfig):
    triage_queue: str = Field(description="Team queue for posts below a head's `suggest` threshold.")
    thresholds: dict[str, HeadThresholds] = Field(description="Head -> thresholds; every head must be listed.")


class CrisisConfig(StrictConfig):
    team: str = Field(description="Team that takes posts matching an active crisis.")
    priority: str = Field(description="Priority of posts matching an active crisis.")
    negative_sentiments: list[str] = Field(min_length=1, description="Sentiment labels that count as negative.")
    excluded_intents: list[str] = Field(default_factory=list, description="Intents never in crisis (trolls, spam).")
    window_minutes: int = Field(ge=1, description="Length of the sliding window.")
    baseline_hours: int = Field(ge=1, description="Length of the baseline period before the window.")
    start_rate_per_hour: float = Field(gt=0, description="Window rate (posts/hour) that can start a crisis.")
    baseline_multiple: float = Field(ge=1, description="The window rate must also be this multiple of the baseline.")
    baseline_floor_per_hour: float = Field(ge=0, description="Lowest baseline used, so a quiet intent needs a real spike.")
    end_rate_per_hour: float = Field(ge=0, description="A crisis ends when the window rate falls below this.")
    max_authors_per_client: int | None = Field(
        default=None, ge=1,
        description="Distinct authors one API key can add to a window (None: no bound). Set it when several keys "
        "send posts, so that one key inventing authors cannot declare a crisis alone; leave it unset when a single "
        "care platform sends everything, or no crisis could ever start.",
    )

    @model_validator(mode="after")
    def _hysteresis(self) -> CrisisConfig:
        if self.end_rate_per_hour >= self.start_rate_per_hour:
            raise ValueError(
                f"end_rate_per_hour ({self.end_rate_per_hour}) must be below start_rate_per_hour "
                f"({self.start_rate_per_hour}), or a crisis would flap on and off"
            )
        if self.baseline_hours * 60 <= self.window_minutes:
            raise ValueError("baseline_hours must be longer than the window")
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    @property
    def baseline(self) -> timedelta:
        return timedelta(hours=self.baseline_hours)


class ContactHistoryConfig(StrictConfig):
    lookback_days: int = Field(ge=1, description="How far back the author's earlier posts count in the history.")
    repeat_window_hours: int = Field(
        ge=1, description="A new post within this many hours of an open problem of the same author is a repeat contact.")
    problem_intents: list[str] = Field(
        min_length=1, description="Intents that open a problem; it stays open until feedback says resolved.")
    min_gap_minutes: int = Field(
        default=30, ge=0, description="A post this soon after the problem is the same contact (a thread of posts), "
                                      "not a repeat.")
    raise_levels: int = Field(ge=1, description="Priority levels a repeat contact on an open problem raises.")
    max_priority: str = Field(description="The repeat contact never raises above this priority.")

    @model_validator(mode="after")
    def _window_within_lookback(self) -> ContactHistoryConfig:
        if self.min_gap_minutes >= self.repeat_window_hours * 60:
            raise ValueError(f"min_gap_minutes ({self.min_gap_minutes}) must be shorter than the repeat window")
        if self.repeat_window_hours > self.lookback_days * 24:
            raise ValueError(
                f"repeat_window_hours ({self.repeat_window_hours}) is longer than lookback_days "
                f"({self.lookback_days} days): the history would not see the problems it escalates on"
            )
        return self

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)

    @property
    def repeat_window(self) -> timedelta:
        return timedelta(hours=self.repeat_window_hours)

    @property
    def min_gap(self) -> timedelta:
        return timedelta(minutes=self.min_gap_minutes)


class DriftConfig(StrictConfig):
    """When the model's view of recent traffic has moved away from what it saw in training (or in the
    period before): read by the drift gauge of /metrics and by `smista report`."""

    window_hours: int = Field(default=24, ge=1, description="Recent traffic: the posts routed in the last this many hours.")
    psi_threshold: float = Field(
        default=0.2, gt=0, description="A head whose label shares moved by at least this population-stability index "
                                       "is flagged (0.1: worth a look, 0.2: a real shift, by the usual reading).")
    confidence_drop: float = Field(
        default=0.10, gt=0, le=1, description="A head whose mean confidence fell by at least this much is flagged.")
    min_posts: int = Field(default=50, ge=1, description="Fewer posts than this in a window: not judged, never flagged.")
    max_posts: int = Field(default=20000, ge=1, description="At most this many of a window's latest posts are read.")

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)


class RoutingConfig(StrictConfig):
    version: VersionText = Field(description="Routing rules version, stored with every route.")
    timezone: str = Field(description="IANA zone of the service hours, e.g. Europe/Rome.")
    teams: dict[str, TeamConfig]
    holidays: HolidaysConfig
    intent_owners: dict[str, str | None] = Field(description="Intent -> owning team; null: logged, not queued.")
    business_rules: list[BusinessRule] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    sla: SlaConfig
    reply: ReplyConfig
    out_of_hours: OutOfHoursConfig
    confidence: ConfidenceConfig
    crisis: CrisisConfig
    contact_history: ContactHistoryConfig | None = Field(
        default=None, description="Who wrote before, and repeat contacts on open problems; None: no history.")
    suggested_replies: SuggestedRepliesConfig | None = Field(
        default=None, description="Reply drafts per intent and sentiment; None: no suggestion.")
    drift: DriftConfig = Field(default_factory=DriftConfig, description="Thresholds of the drift gauge and report.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Rome") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def check_against_taxonomy(config: RoutingConfig, taxonomy: Taxonomy) -> list[str]:
    """Every problem where the config names a label, head, channel or team that does not exist.

    First the fields the rules engine reads by name (without them nothing else can be checked), then
    each part of the config in turn: intent owners, business rules and escalations, SLA targets,
    private-reply intents, confidence thresholds, crisis, contact history and suggested replies."""
    problems = _required_field_problems(taxonomy)
    if problems:
        return problems
    check = _NameCheck(config, taxonomy)
    _check_intent_owners(config, check)
    _check_rules(config, check)
    _check_sla(config, check)
    check.labels("reply.private_for_intents", "intent", config.reply.private_for_intents)
    _check_confidence(config, check)
    _check_crisis(config, check)
    _check_contact_history(config, check)
    _check_suggested_replies(config, check)
    return check.problems


class _NameCheck:
    """Collects the problems of `check_against_taxonomy`: labels, fields and channels the taxonomy
    lacks, teams the config lacks."""

    def __init__(self, config: RoutingConfig, taxonomy: Taxonomy) -> None:
        self.config = config
        self.taxonomy = taxonomy
        self.problems: list[str] = []

    def labels_of(self, field_name: str) -> list[str]:
        return self.taxonomy.fields[field_name].label_ids if field_name in self.taxonomy.fields else []

    def labels(self, where: str, field_name: str, ids: list[str]) -> None:
        if field_name not in self.taxonomy.fields:
            fields = ", ".join(self.taxonomy.fields)
            self.problems.append(f"{where}: unknown field {field_name!r}; taxonomy fields: {fields}")
            return
        known = self.labels_of(field_name)
        for label in ids:
            if label not in known:
                self.problems.append(
                    f"{where}: unknown {field_name} label {label!r} (taxonomy v{self.taxonomy.version}); "
                    f"expected one of: {', '.join(known)}"
                )

    def team(self, where: str, team: str | None) -> None:
        if team is not None and team not in self.config.teams:
            self.problems.append(f"{where}: unknown team {team!r}; teams: {', '.join(self.config.teams)}")

    def channels(self, where: str, channels: list[str]) -> None:
        for channel in channels:
            if channel not in self.taxonomy.channel_ids:
                self.problems.append(
                    f"{where}: unknown channel {channel!r}; expected one of: {', '.join(self.taxonomy.channel_ids)}"
                )

    def condition(self, where: str, condition: Condition) -> None:
        for field_name, ids in condition.labels.items():
            self.labels(f"{where}.when.labels.{field_name}", field_name, ids)
        self.channels(f"{where}.when.channels", condition.channels or [])


def _required_field_problems(taxonomy: Taxonomy) -> list[str]:
    """The taxonomy must have the fields the rules engine reads by name, with their shapes."""
    problems = []
    for field_name, kind in REQUIRED_FIELDS.items():
        spec = taxonomy.fields.get(field_name)
        if spec is None or spec.kind != kind:
            problems.append(f"taxonomy: the rules need a {kind}-label field {field_name!r}")
    if "priority" in taxonomy.fields and not taxonomy.fields["priority"].ordered:
        problems.append("taxonomy: field 'priority' must be ordered (most urgent first)")
    return problems


def _check_intent_owners(config: RoutingConfig, check: _NameCheck) -> None:
    """Every owner names a known intent and team, and every intent has an owner (or null)."""
    for intent, team in config.intent_owners.items():
        check.labels(f"intent_owners.{intent}", "intent", [intent])
        check.team(f"intent_owners.{intent}", team)
    missing = [intent for intent in check.labels_of("intent") if intent not in config.intent_owners]
    if missing:
        check.problems.append(f"intent_owners: no owner for intent(s) {missing}; give a team or null (logged only)")


def _check_rules(config: RoutingConfig, check: _NameCheck) -> None:
    """Business rules and escalations: their conditions, teams and priorities; no name used twice."""
    for index, rule in enumerate(config.business_rules):
        where = f"business_rules[{index}] ({rule.name})"
        check.condition(where, rule.when)
        check.team(f"{where}.team", rule.team)
        if rule.min_priority is not None:
            check.labels(f"{where}.min_priority", "priority", [rule.min_priority])
    for index, rule in enumerate(config.escalations):
        where = f"escalations[{index}] ({rule.name})"
        check.condition(where, rule.when)
        check.labels(f"{where}.max_priority", "priority", [rule.max_priority])
    for collection, rules in (("business_rules", config.business_rules), ("escalations", config.escalations)):
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            check.problems.append(f"{collection}: duplicate rule name(s) {duplicates}")


def _check_sla(config: RoutingConfig, check: _NameCheck) -> None:
    """A response target for every priority; per-channel targets name known channels and priorities."""
    check.labels("sla.targets", "priority", list(config.sla.targets))
    missing = [priority for priority in check.labels_of("priority") if priority not in config.sla.targets]
    if missing:
        check.problems.append(f"sla.targets: no target for priority(ies) {missing}")
    check.labels("sla.resolution_targets", "priority", list(config.sla.resolution_targets))
    check.channels("sla.channel_targets", list(config.sla.channel_targets))
    for channel, targets in config.sla.channel_targets.items():
        check.labels(f"sla.channel_targets.{channel}", "priority", list(targets))


def _check_confidence(config: RoutingConfig, check: _NameCheck) -> None:
    """A known triage team, and thresholds for exactly the taxonomy's heads."""
    fields = check.taxonomy.fields
    check.team("confidence.triage_queue", config.confidence.triage_queue)
    for head in config.confidence.thresholds:
        if head not in fields:
            check.problems.append(f"confidence.thresholds.{head}: unknown head; taxonomy fields: {', '.join(fields)}")
    missing = [head for head in fields if head not in config.confidence.thresholds]
    if missing:
        check.problems.append(f"confidence.thresholds: no thresholds for head(s) {missing}")


def _check_crisis(config: RoutingConfig, check: _NameCheck) -> None:
    check.team("crisis.team", config.crisis.team)
    check.labels("crisis.priority", "priority", [config.crisis.priority])
    check.labels("crisis.negative_sentiments", "sentiment", config.crisis.negative_sentiments)
    check.labels("crisis.excluded_intents", "intent", config.crisis.excluded_intents)


def _check_contact_history(config: RoutingConfig, check: _NameCheck) -> None:
    if config.contact_history is not None:
        check.labels("contact_history.problem_intents", "intent", config.contact_history.problem_intents)
        check.labels("contact_history.max_priority", "priority", [config.contact_history.max_priority])


def _check_suggested_replies(config: RoutingConfig, check: _NameCheck) -> None:
    """Known channels and intents, an entry (templates or null) for every intent, known sentiments."""
    replies = config.suggested_replies
    if replies is None:
        return
    check.channels("suggested_replies.greeting_by_channel", list(replies.greeting_by_channel))
    check.labels("suggested_replies.intents", "intent", list(replies.intents))
    missing = [intent for intent in check.labels_of("intent") if intent not in replies.intents]
    if missing:
        check.problems.append(f"suggested_replies.intents: no entry for intent(s) {missing}; give templates or null")
    for intent, templates in replies.intents.items():
        sentiments = [key for key in templates or {} if key != "default"]
        check.labels(f"suggested_replies.intents.{intent}", "sentiment", sentiments)


def load_routing_config(path: str | Path, taxonomy: Taxonomy) -> RoutingConfig:
    """Read, validate and cross-check a routing YAML file; raise RoutingConfigError naming each problem."""
    raw = read_yaml_mapping(path, RoutingConfigError, "routing config", "a mapping of routing settings")
    config = validate_mapping(RoutingConfig, raw, path, RoutingConfigError, "routing config")
    problems = check_against_taxonomy(config, taxonomy)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise RoutingConfigError(f"{path}: routing config does not fit taxonomy v{taxonomy.version}:\n{listed}")
    return config

