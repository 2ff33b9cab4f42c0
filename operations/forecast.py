"""Peak forecast (seed 004: "modelli di previsione su ore di punta"): the hourly volume of each team for
the next days, with prediction intervals and the agents it takes.

The model is a count regression (statsmodels GLM, Poisson family) of the posts of each hour on the
hour of day, the day of week and an hour-of-day shape of its own for the weekend, in the service
hours' zone: log(mean) = hour + weekday + weekend x hour. It is fitted on the last `history_weeks`
of the team's traffic. Counts that vary more than a Poisson's (campaigns, bursts) widen the
intervals: with a Pearson dispersion phi > 1 the predictive distribution is a negative binomial of
variance phi * mean. Why this and not exponential smoothing or SARIMA: hourly care traffic is
counts, often zero at night, with two seasonalities (24 and 168 hours); the regression handles
both, its zeros and its intervals directly, and fits in milliseconds.

Staffing: posts that arrive while the team is closed wait for its next opening, so each open hour
must handle its own forecast plus that backlog; agents = ceil(load / posts_per_agent_hour).

Backtest: for each of the last `backtest_weeks` full weeks, the model is fitted on the weeks before it
and forecasts it; the naive seasonal baseline forecasts each hour with the same hour of the week
before. Both are scored by mean absolute error, and the model's intervals by their coverage.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import statsmodels.api as sm
from scipy import stats

from operations.store_reader import PostRecord
from serving.service_hours import TeamHours

HOUR = timedelta(hours=1)
WEEK_HOURS = 168
RECENT_HOURS = 72  # observed hours shown before the forecast in the report's chart


@dataclass(frozen=True)
class ForecastSettings:
    horizon_hours: int = WEEK_HOURS
    history_weeks: int = 6
    posts_per_agent_hour: float = 12.0
    interval: float = 0.8                 # central prediction interval, e.g. 0.8: the 10th to 90th percentile
    backtest_weeks: int = 2

    def __post_init__(self) -> None:
        self.check()  # a config is valid from the moment it exists: no caller has to remember to check it

    def check(self) -> None:
        if self.horizon_hours < 1:
            raise ValueError(f"horizon_hours must be at least 1, got {self.horizon_hours}")
        if self.history_weeks < 2:
            raise ValueError(f"history_weeks must be at least 2 (a weekly shape needs two weeks), got {self.history_weeks}")
        if self.posts_per_agent_hour <= 0:
            raise ValueError(f"posts_per_agent_hour must be positive, got {self.posts_per_agent_hour}")
        if not 0 < self.interval < 1:
            raise ValueError(f"interval must be between 0 and 1, e.g. 0.8, got {self.interval}")
        if self.backtest_weeks < 0:
            raise ValueError(f"backtest_weeks must be 0 or more, got {self.backtest_weeks}")


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def hourly_counts(timestamps: Sequence[datetime], start: datetime, end: datetime) -> tuple[list[datetime], np.ndarray]:
    """(hour starts in UTC, posts per hour) for the hours [start, end), both floored to the hour."""
    start, end = floor_hour(start), floor_hour(end)
    hours = [start + i * HOUR for i in range(int((end - start) / HOUR))]
    counts = Counter(floor_hour(moment) for moment in timestamps)
    return hours, np.array([counts.get(hour, 0) for hour in hours], dtype=float)


def design(hours: Sequence[datetime], zone: ZoneInfo) -> np.ndarray:
    """One row per hour: intercept, hour-of-day (23), weekday (6), weekend x hour-of-day (23) dummies."""
    rows = np.zeros((len(hours), 1 + 23 + 6 + 23))
    rows[:, 0] = 1.0
    for i, moment in enumerate(hours):
        local = moment.astimezone(zone)
        hour, weekday = local.hour, local.weekday()
        if hour:
            rows[i, hour] = 1.0
        if weekday:
            rows[i, 23 + weekday] = 1.0
        if weekday >= 5 and hour:
            rows[i, 29 + hour] = 1.0
    return rows


@dataclass
class SeasonalCountModel:
    params: np.ndarray
    dispersion: float          # Pearson chi2 / residual degrees of freedom, at least 1
    zone: ZoneInfo

    @classmethod
    def fit(cls, hours: Sequence[datetime], counts: np.ndarray, zone: ZoneInfo) -> SeasonalCountModel:
        exog = design(hours, zone)
        with warnings.catch_warnings():
            # A category with no post at all (a team closed at night) drives its coefficient towards
            # minus infinity: the mean goes to zero, which is the right forecast; the warning is noise.
            warnings.simplefilter("ignore")
            result = sm.GLM(counts, exog, family=sm.families.Poisson()).fit(maxiter=100)
        mean = result.mu
        pearson = float(np.sum((counts - mean) ** 2 / np.maximum(mean, 1e-9)))
        dispersion = max(1.0, pearson / max(result.df_resid, 1.0))
        return cls(np.asarray(result.params), dispersion, zone)

    def mean(self, hours: Sequence[datetime]) -> np.ndarray:
        return np.exp(np.clip(design(hours, self.zone) @ self.params, -30, 30))

    def interval(self, mean: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        low_q, high_q = (1 - level) / 2, 1 - (1 - level) / 2
        if self.dispersion <= 1.0 + 1e-6:
            return stats.poisson.ppf(low_q, mean), stats.poisson.ppf(high_q, mean)
        # Negative binomial with mean m and variance phi * m: n = m / (phi - 1), p = 1 / phi.
        n = np.maximum(mean / (self.dispersion - 1.0), 1e-9)
        p = 1.0 / self.dispersion
        return stats.nbinom.ppf(low_q, n, p), stats.nbinom.ppf(high_q, n, p)


@dataclass
class TeamForecast:
    team: str
    rows: list[dict] = field(default_factory=list)   # hour, mean, low, high, open, agents, agents_high
    dispersion: float = 1.0
    history_posts: int = 0
    recent: list[tuple[datetime, int]] = field(default_factory=list)   # the last observed hours (local), for the chart


def forecast_team(team: str, timestamps: Sequence[datetime], start: datetime, hours_of_team: TeamHours | None,
                  zone: ZoneInfo, settings: ForecastSettings) -> TeamForecast:
    """Forecast the `settings.horizon_hours` hours from `start` with the history before it."""
    history_start = floor_hour(start) - timedelta(weeks=settings.history_weeks)
    hours, counts = hourly_counts(timestamps, history_start, start)
    model = SeasonalCountModel.fit(hours, counts, zone)
    future = [floor_hour(start) + i * HOUR for i in range(settings.horizon_hours)]
    mean = model.mean(future)
    low, high = model.interval(mean, settings.interval)
    result = TeamForecast(team, dispersion=round(model.dispersion, 3), history_posts=int(counts.sum()),
                          recent=[(hour.astimezone(zone), int(count)) for hour, count in zip(hours[-RECENT_HOURS:], counts[-RECENT_HOURS:])])
    backlog_mean = backlog_high = 0.0
    for moment, m, lo, hi in zip(future, mean, low, high):
        is_open = hours_of_team.is_open(moment) if hours_of_team is not None else True
        if is_open:
            agents = math.ceil((m + backlog_mean) / settings.posts_per_agent_hour - 1e-9)
            agents_high = math.ceil((hi + backlog_high) / settings.posts_per_agent_hour - 1e-9)
            backlog_mean = backlog_high = 0.0
        else:
            agents = agents_high = 0
            backlog_mean += m
            backlog_high += hi
        result.rows.append({"team": team, "hour": moment.astimezone(zone).isoformat(), "mean": round(float(m), 2),
                            "low": int(lo), "high": int(hi), "open": is_open, "agents": int(agents),
                            "agents_high": int(agents_high)})
    return result


@dataclass
class BacktestScore:
    team: str
    weeks: int
    hours: int
    mae_model: float
    mae_naive: float
    coverage: float            # share of hours whose count fell inside the model's interval

    @property
    def skill(self) -> float | None:
        """1 - MAE(model) / MAE(naive): above 0 the model beats the naive seasonal baseline."""
        return None if self.mae_naive == 0 else 1 - self.mae_model / self.mae_naive

    def as_row(self) -> dict:
        return {"team": self.team, "weeks": self.weeks, "hours": self.hours, "mae_model": round(self.mae_model, 3),
                "mae_naive_same_hour_last_week": round(self.mae_naive, 3),
                "skill": None if self.skill is None else round(self.skill, 3), "interval_coverage": round(self.coverage, 3)}


def backtest(team: str, timestamps: Sequence[datetime], end: datetime, zone: ZoneInfo,
             settings: ForecastSettings) -> BacktestScore | None:
    """Score the last `backtest_weeks` full weeks before `end`; None without enough history
    (each tested week needs `history_weeks` before it, and the naive baseline one)."""
    if settings.backtest_weeks == 0:
        return None
    end = floor_hour(end)
    earliest = floor_hour(min(timestamps)) if timestamps else end
    needed = timedelta(weeks=settings.backtest_weeks + min(settings.history_weeks, 2))
    if end - earliest < needed:
        return None
    errors_model, errors_naive, inside = [], [], 0
    for k in range(settings.backtest_weeks, 0, -1):
        week_start = end - timedelta(weeks=k)
        history_weeks = min(settings.history_weeks, int((week_start - earliest) / timedelta(weeks=1)))
        if history_weeks < 2:
            continue
        model_settings = ForecastSettings(horizon_hours=WEEK_HOURS, history_weeks=history_weeks,
                                          interval=settings.interval, backtest_weeks=0)
        hours, actual = hourly_counts(timestamps, week_start, week_start + timedelta(weeks=1))
        _, last_week = hourly_counts(timestamps, week_start - timedelta(weeks=1), week_start)
        history_start = week_start - timedelta(weeks=history_weeks)
        fit_hours, fit_counts = hourly_counts(timestamps, history_start, week_start)
        model = SeasonalCountModel.fit(fit_hours, fit_counts, zone)
        mean = model.mean(hours)
        low, high = model.interval(mean, model_settings.interval)
        errors_model += list(np.abs(actual - mean))
        errors_naive += list(np.abs(actual - last_week))
        inside += int(np.sum((actual >= low) & (actual <= high)))
    if not errors_model:
        return None
    return BacktestScore(team, len(errors_model) // WEEK_HOURS, len(errors_model), float(np.mean(errors_model)),
                         float(np.mean(errors_naive)), inside / len(errors_model))


@dataclass
class Forecast:
    start: datetime
    settings: ForecastSettings
    teams: list[TeamForecast]
    backtests: list[BacktestScore]

    def hourly_rows(self) -> list[dict]:
        return [row for team in self.teams for row in team.rows]

    def daily_rows(self) -> list[dict]:
        """Per team and local day: posts expected, the busiest hour and the most agents needed at once."""
        rows: dict[tuple[str, str], dict] = {}
        for team in self.teams:
            for row in team.rows:
                day = row["hour"][:10]
                entry = rows.setdefault((team.team, day), {"team": team.team, "date": day, "posts": 0.0,
                                                           "peak_hour": None, "peak_mean": -1.0, "max_agents": 0,
                                                           "max_agents_high": 0})
                entry["posts"] = round(entry["posts"] + row["mean"], 1)
                if row["mean"] > entry["peak_mean"]:
                    entry["peak_mean"], entry["peak_hour"] = row["mean"], row["hour"][11:16]
                entry["max_agents"] = max(entry["max_agents"], row["agents"])
                entry["max_agents_high"] = max(entry["max_agents_high"], row["agents_high"])
        return list(rows.values())


def team_arrivals(posts: Sequence[PostRecord]) -> dict[str, list[datetime]]:
    """Arrival times per team of the queued posts. Posts a crisis took are left out: a crisis is not
    seasonal, and fitted as an hour-of-week effect it would come back in the forecast every week
    (crisis detection, not the forecast, is what handles it)."""
    arrivals: dict[str, list[datetime]] = {}
    for post in posts:
        if post.team is not None and post.crisis_id is None:
            arrivals.setdefault(post.team, []).append(post.received_at)
    return arrivals


def forecast_teams(arrivals: Mapping[str, Sequence[datetime]], start: datetime, team_hours: Mapping[str, TeamHours],
                   zone: ZoneInfo, settings: ForecastSettings) -> Forecast:
    """One forecast and one backtest per team with traffic."""
    teams, scores = [], []
    for team, timestamps in sorted(arrivals.items()):
        before = [moment for moment in timestamps if moment < start]
        if not before:
            continue
        teams.append(forecast_team(team, before, start, team_hours.get(team), zone, settings))
        score = backtest(team, before, start, zone, settings)
        if score is not None:
            scores.append(score)
    return Forecast(start, settings, teams, scores)
