"""The numbers a care team reads (../shared/DOMAIN.md, "Metrics the business reads"; seeds 000 and
004), computed from the posts of a period and what the agents reported about them.

Every table is a list of flat rows (dicts of str, int, float or None) so that the HTML report, the
JSON export and the CSV export show the same thing. Definitions:

- Volumes count posts by the intent the agents confirmed or corrected (the prediction when they gave
  no feedback), by team (`(solo registro)` for posts logged, not queued), channel and hour of week in
  the service hours' zone.
- First response against the SLA: a post with a deadline is within it when its first response came
  by the deadline, breached when it came later or has not come and the deadline has passed by the end
  of the period, pending otherwise (left out of the share).
- Resolution against `sla.resolution_targets`: the same, with the deadline counted in the owning
  team's service time from when the post arrived.
- Flush rate: share of posts that need no care work: off-topic (fuori_tema, confirmed) or logged
  and not queued for any other reason ("not manageable").
- Closing rate: share of the posts with feedback that are resolved; problems solved: the same over
  the posts whose intent opens a problem (configs/routing.yaml, contact_history.problem_intents).
- Automation: the share of posts per confidence tier; a head is corrected on a post when the agents'
  feedback gives that head a different value from the prediction. Precision = 1 - correction rate,
  over the posts with feedback.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from operations.store_reader import PostRecord
from serving.rules import RoutingRules

Row = dict[str, Any]
LOGGED_ONLY = "(solo registro)"
ALL = "(tutti)"
WEEKDAYS = ("lun", "mar", "mer", "gio", "ven", "sab", "dom")
FLUSH_INTENT = "fuori_tema"
TIERS = ("auto", "suggest", "human_triage")


@dataclass
class KpiTables:
    since: datetime
    until: datetime
    summary: Row
    tables: dict[str, list[Row]] = field(default_factory=dict)


def compute_kpis(posts: Sequence[PostRecord], rules: RoutingRules, since: datetime, until: datetime) -> KpiTables:
    heads = list(rules.taxonomy.fields)
    zone = rules.config.zone
    tables: dict[str, list[Row]] = {
        "volume_by_intent": _volume(posts, lambda p: p.final_intent, "intent",
                                    rules.taxonomy.fields["intent"].label_ids),
        "volume_by_team": _volume(posts, lambda p: p.team or LOGGED_ONLY, "team", list(rules.config.teams)),
        "volume_by_channel": _volume(posts, lambda p: p.channel, "channel", list(rules.taxonomy.channel_ids)),
        "volume_by_hour_of_week": _hour_of_week(posts, zone),
        "volume_by_day": _by_day(posts, zone),
        "response_times": _response_times(posts, rules, until),
        "flush": [_flush(posts)],
        "closing": [_closing(posts, rules)],
        "satisfaction": _satisfaction(posts),
        "automation": _automation(posts),
        "corrections": _corrections(posts, heads),
    }
    flush, closing = tables["flush"][0], tables["closing"][0]
    overall = next((row for row in tables["response_times"] if row["priority"] == ALL and row["channel"] == ALL), {})
    satisfaction = next((row for row in tables["satisfaction"] if row["team"] == ALL), {})
    automation = {row["tier"]: row for row in tables["automation"]}
    summary = {
        "posts": len(posts),
        "with_feedback": sum(post.outcome is not None for post in posts),
        "share_first_response_within_sla": overall.get("first_response_within_share"),
        "median_first_response_minutes": overall.get("first_response_median_minutes"),
        "flush_rate": flush["flush_rate"],
        "closing_rate": closing["closing_rate"],
        "problems_solved_share": closing["problems_solved_share"],
        "mean_satisfaction": satisfaction.get("mean"),
        "automation_rate": automation.get("auto", {}).get("share"),
    }
    return KpiTables(since, until, summary, tables)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _volume(posts: Sequence[PostRecord], key, name: str, known: Iterable[str]) -> list[Row]:
    counts = Counter(key(post) for post in posts)
    order = list(dict.fromkeys([*known, *sorted(counts)]))
    total = len(posts)
    return [{name: value, "posts": counts.get(value, 0), "share": _share(counts.get(value, 0), total)}
            for value in order if counts.get(value, 0) or value in known]


def _hour_of_week(posts: Sequence[PostRecord], zone) -> list[Row]:
    counts = Counter()
    for post in posts:
        local = post.received_at.astimezone(zone)
        counts[(local.weekday(), local.hour)] += 1
    return [{"weekday": WEEKDAYS[day], "hour": hour, "posts": counts.get((day, hour), 0)}
            for day in range(7) for hour in range(24)]


def _by_day(posts: Sequence[PostRecord], zone) -> list[Row]:
    counts = Counter(post.received_at.astimezone(zone).date() for post in posts)
    if not counts:
        return []
    day, last, rows = min(counts), max(counts), []
    while day <= last:
        rows.append({"date": day.isoformat(), "posts": counts.get(day, 0)})
        day += timedelta(days=1)
    return rows


def _percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 2)


def _against_deadline(done_at: datetime | None, deadline: datetime | None, until: datetime) -> str | None:
    """'within', 'breached' or 'pending' (None without a deadline)."""
    if deadline is None:
        return None
    if done_at is not None:
        return "within" if done_at <= deadline else "breached"
    return "breached" if deadline < until else "pending"


def _resolution_deadline(post: PostRecord, rules: RoutingRules) -> datetime | None:
    target = rules.config.sla.resolution_targets.get(post.priority)
    hours = rules.team_hours.get(post.team) if post.team else None
    if target is None or hours is None:
        return None
    return hours.add_service_time(post.received_at, target)


@dataclass(frozen=True)
class _Timing:
    """One post's first response and resolution against their deadlines (computed once per post,
    though the post counts in four groups)."""

    first: str | None                  # within, breached, pending; None without a deadline
    first_minutes: float | None
    resolution: str | None
    resolution_hours: float | None


def _timing(post: PostRecord, rules: RoutingRules, until: datetime) -> _Timing:
    outcome = post.outcome
    responded = outcome.first_response_at if outcome else None
    resolved_at = outcome.resolved_at if outcome and outcome.resolved else None
    return _Timing(
        _against_deadline(responded, post.sla_deadline, until),
        None if responded is None else (responded - post.received_at).total_seconds() / 60,
        _against_deadline(resolved_at, _resolution_deadline(post, rules), until),
        None if resolved_at is None else (resolved_at - post.received_at).total_seconds() / 3600,
    )


def _response_times(posts: Sequence[PostRecord], rules: RoutingRules, until: datetime) -> list[Row]:
    groups: dict[tuple[str, str], list[_Timing]] = defaultdict(list)
    for post in posts:
        timing = _timing(post, rules, until)
        for priority in (post.priority, ALL):
            for channel in (post.channel, ALL):
                groups[(priority, channel)].append(timing)
    order = {label: index for index, label in enumerate([*rules.priorities, ALL])}
    channels = {label: index for index, label in enumerate([*rules.taxonomy.channel_ids, ALL])}
    rows = []
    for (priority, channel), members in sorted(groups.items(),
                                               key=lambda item: (order[item[0][0]], channels.get(item[0][1], -1))):
        first = Counter(timing.first for timing in members)
        resolution = Counter(timing.resolution for timing in members)
        first_minutes = [timing.first_minutes for timing in members if timing.first_minutes is not None]
        resolution_hours = [timing.resolution_hours for timing in members if timing.resolution_hours is not None]
        rows.append({
            "priority": priority, "channel": channel, "posts": len(members),
            "first_response_within": first["within"], "first_response_breached": first["breached"],
            "first_response_pending": first["pending"],
            "first_response_within_share": _share(first["within"], first["within"] + first["breached"]),
            "first_response_median_minutes": _percentile(first_minutes, 0.5),
            "first_response_p90_minutes": _percentile(first_minutes, 0.9),
            "resolution_within": resolution["within"], "resolution_breached": resolution["breached"],
            "resolution_pending": resolution["pending"],
            "resolution_within_share": _share(resolution["within"], resolution["within"] + resolution["breached"]),
            "resolution_median_hours": _percentile(resolution_hours, 0.5),
            "resolution_p90_hours": _percentile(resolution_hours, 0.9),
        })
    return rows


def _flush(posts: Sequence[PostRecord]) -> Row:
    off_topic = sum(post.final_intent == FLUSH_INTENT for post in posts)
    not_manageable = sum(post.final_intent != FLUSH_INTENT and post.action == "log_only" for post in posts)
    return {"posts": len(posts), "fuori_tema": off_topic, "not_manageable": not_manageable,
            "flush_rate": _share(off_topic + not_manageable, len(posts))}


def _closing(posts: Sequence[PostRecord], rules: RoutingRules) -> Row:
    handled = [post for post in posts if post.outcome is not None]
    resolved = sum(post.outcome.resolved for post in handled)
    history = rules.config.contact_history
    problem_intents = set(history.problem_intents) if history is not None else set()
    problems = [post for post in handled if post.final_intent in problem_intents]
    solved = sum(post.outcome.resolved for post in problems)
    return {"with_feedback": len(handled), "resolved": resolved, "closing_rate": _share(resolved, len(handled)),
            "problems": len(problems), "problems_solved": solved, "problems_solved_share": _share(solved, len(problems))}


def _satisfaction(posts: Sequence[PostRecord]) -> list[Row]:
    by_team: dict[str, list[int]] = defaultdict(list)
    for post in posts:
        if post.outcome is not None and post.outcome.satisfaction is not None:
            team = post.outcome.handled_by_team or post.team or LOGGED_ONLY
            by_team[team].append(post.outcome.satisfaction)
            by_team[ALL].append(post.outcome.satisfaction)
    rows = []
    for team in [*sorted(t for t in by_team if t != ALL), ALL]:
        scores = by_team.get(team, [])
        counts = Counter(scores)
        rows.append({"team": team, "answers": len(scores),
                     "mean": round(sum(scores) / len(scores), 3) if scores else None,
                     **{f"score_{value}": counts.get(value, 0) for value in range(1, 6)},
                     "satisfied_share": _share(sum(1 for s in scores if s >= 4), len(scores))})
    return rows


def _corrected(post: PostRecord, head: str) -> bool:
    if post.outcome is None or head not in post.outcome.corrected_labels:
        return False
    return sorted(post.final_label(head)) != sorted(post.predicted.get(head, []))


def _automation(posts: Sequence[PostRecord]) -> list[Row]:
    rows = []
    for tier in TIERS:
        members = [post for post in posts if post.confidence_tier == tier]
        handled = [post for post in members if post.outcome is not None]
        corrected = sum(any(_corrected(post, head) for head in post.predicted) for post in handled)
        rows.append({"tier": tier, "posts": len(members), "share": _share(len(members), len(posts)),
                     "with_feedback": len(handled), "corrected": corrected,
                     "correction_rate": _share(corrected, len(handled))})
    return rows


def _corrections(posts: Sequence[PostRecord], heads: Sequence[str]) -> list[Row]:
    rows = []
    for tier in (*TIERS, ALL):
        handled = [post for post in posts if post.outcome is not None and tier in (ALL, post.confidence_tier)]
        for head in heads:
            corrected = sum(_corrected(post, head) for post in handled)
            rate = _share(corrected, len(handled))
            rows.append({"tier": tier, "head": head, "with_feedback": len(handled), "corrected": corrected,
                         "correction_rate": rate, "precision": None if rate is None else round(1 - rate, 4)})
    return rows


def crisis_rows(episodes, posts: Sequence[PostRecord]) -> list[Row]:
    """The crisis episodes of the period with the posts they took."""
    taken = Counter(post.crisis_id for post in posts if post.crisis_id is not None)
    return [{"crisis_id": episode.id, "intent": episode.intent,
             "started_at": episode.started_at.isoformat(timespec="minutes"),
             "ended_at": episode.ended_at.isoformat(timespec="minutes") if episode.ended_at else None,
             "baseline_per_hour": round(episode.baseline_per_hour, 2), "peak_window_count": episode.peak_window_count,
             "posts_routed_to_crisis": taken.get(episode.id, 0)}
            for episode in episodes]
