"""The peak forecast: on a synthetic series with a known hour-of-day and day-of-week shape, the
model recovers it, beats the naive seasonal baseline in the backtest, and its intervals cover about
what they promise; the staffing carries the posts of closed hours to the next opening."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from operations.forecast import (
    ForecastSettings,
    SeasonalCountModel,
    backtest,
    forecast_team,
    hourly_counts,
    team_arrivals,
)
from operations.store_reader import PostRecord
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.rules import load_routing_rules

ROME = ZoneInfo("Europe/Rome")
END = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)  # a Monday
# A known shape: nothing at night, a daytime bump, more on weekdays than at weekends.
HOURLY = np.array([0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 1, 3, 6, 8, 9, 9, 7, 7, 8, 8, 9, 10, 11, 10, 8, 5, 2, 0.5])


def true_rate(moment: datetime) -> float:
    local = moment.astimezone(ROME)
    return HOURLY[local.hour] * (0.5 if local.weekday() >= 5 else 1.0)


def synthetic_arrivals(weeks: int, seed: int = 3) -> list[datetime]:
    rng = np.random.default_rng(seed)
    arrivals = []
    hour = END - timedelta(weeks=weeks)
    while hour < END:
        for _ in range(rng.poisson(true_rate(hour))):
            arrivals.append(hour + timedelta(seconds=float(rng.uniform(0, 3599))))
        hour += timedelta(hours=1)
    return arrivals


def test_the_backtest_beats_the_naive_seasonal_baseline():
    arrivals = synthetic_arrivals(weeks=8)
    score = backtest("customer_care", arrivals, END, ROME, ForecastSettings(history_weeks=6, backtest_weeks=2))
    assert score is not None and score.weeks == 2 and score.hours == 336
    # The naive forecast carries last week's noise: its error is about sqrt(2) times the noise alone.
    assert score.mae_model < score.mae_naive * 0.85, score.as_row()
    assert score.skill > 0.15
    # 80% intervals on counts (discrete, so a little more than promised).
    assert 0.75 <= score.coverage <= 0.97


def test_the_model_recovers_the_seasonal_shape():
    arrivals = synthetic_arrivals(weeks=6, seed=5)
    hours, counts = hourly_counts(arrivals, END - timedelta(weeks=6), END)
    model = SeasonalCountModel.fit(hours, counts, ROME)
    future = [END + timedelta(hours=i) for i in range(168)]
    expected = np.array([true_rate(moment) for moment in future])
    predicted = model.mean(future)
    assert np.corrcoef(expected, predicted)[0, 1] > 0.97
    assert np.abs(predicted - expected).mean() < 0.6
    # Poisson data: no over-dispersion to speak of.
    assert model.dispersion < 1.3


def test_a_bursty_series_gets_wider_intervals():
    arrivals = synthetic_arrivals(weeks=4, seed=7)
    rng = random.Random(1)
    bursts = [END - timedelta(days=rng.randrange(1, 27), hours=rng.randrange(0, 23)) for _ in range(12)]
    bursty = arrivals + [burst + timedelta(minutes=m) for burst in bursts for m in range(25)]
    calm = SeasonalCountModel.fit(*hourly_counts(arrivals, END - timedelta(weeks=4), END), ROME)
    wild = SeasonalCountModel.fit(*hourly_counts(bursty, END - timedelta(weeks=4), END), ROME)
    assert wild.dispersion > 2 * calm.dispersion
    hour = [END + timedelta(hours=18)]
    calm_low, calm_high = calm.interval(calm.mean(hour), 0.8)
    wild_low, wild_high = wild.interval(wild.mean(hour), 0.8)
    assert (wild_high - wild_low)[0] > (calm_high - calm_low)[0]


def test_staffing_carries_the_posts_of_closed_hours_to_the_opening(taxonomy):
    rules = load_routing_rules(DEFAULT_ROUTING_PATH, taxonomy)
    hours = rules.team_hours["risorse_umane"]  # 09-13, 14-17 on weekdays
    arrivals = synthetic_arrivals(weeks=3)
    forecast = forecast_team("risorse_umane", arrivals, END, hours, ROME,
                             ForecastSettings(posts_per_agent_hour=5.0, backtest_weeks=0, history_weeks=3))
    rows = forecast.rows
    assert len(rows) == 168
    closed = [row for row in rows if not row["open"]]
    assert closed and all(row["agents"] == 0 for row in closed)
    # Monday 09:00 in Rome: the night's and the weekend's posts are waiting for the first hour.
    opening = next(row for row in rows if row["open"])
    assert opening["hour"].startswith(END.astimezone(ROME).date().isoformat() + "T09:00")
    waiting = sum(row["mean"] for row in rows[: rows.index(opening) + 1])
    assert opening["agents"] == int(np.ceil(waiting / 5.0))
    assert all(row["low"] <= row["mean"] + 1 and row["mean"] <= row["high"] + 1 for row in rows)
    assert all(row["agents_high"] >= row["agents"] for row in rows)


def test_too_little_history_gives_no_backtest_and_bad_settings_are_named():
    arrivals = synthetic_arrivals(weeks=2)
    assert backtest("t", arrivals, END, ROME, ForecastSettings(backtest_weeks=2)) is None
    with pytest.raises(ValueError, match="posts_per_agent_hour"):
        ForecastSettings(posts_per_agent_hour=0).check()
    with pytest.raises(ValueError, match="interval"):
        ForecastSettings(interval=1.5).check()


def test_posts_a_crisis_took_and_logged_posts_stay_out_of_the_history():
    def record(post_id: str, team: str | None, crisis_id: int | None) -> PostRecord:
        return PostRecord(post_id, END, "twitter", "reclamo", team, "queue" if team else "log_only", "alta", "auto",
                          crisis_id, None, {}, "m/1")

    arrivals = team_arrivals([record("a", "customer_care", None), record("b", "direzione", 3),
                              record("c", None, None), record("d", "customer_care", None)])
    assert arrivals == {"customer_care": [END, END]}
