"""`smista report`: the care team's report for a period, from the prediction store alone.

One `CareReport` holds every table (operations.kpis), the crisis episodes, the drift of each head
(serving.drift) and the peak forecast (operations.forecast); the HTML page, the JSON document and
the CSV files are three renderings of it, so they always agree.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from data.atomic_files import write_text_atomically
from operations.forecast import Forecast, ForecastSettings, forecast_teams, team_arrivals
from operations.kpis import KpiTables, compute_kpis, crisis_rows
from operations.store_reader import read_crises, read_posts
from serving.drift import DriftAssessment, assess_drift
from serving.rules import RoutingRules
from serving.store import PredictionStore


@dataclass
class CareReport:
    since: datetime
    until: datetime
    generated_at: datetime
    store: str                          # the database URL without its password
    model_versions: dict[str, int]      # version -> posts it routed in the period
    kpis: KpiTables
    crises: list[dict]
    drift: DriftAssessment
    forecast: Forecast | None
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Every table of the report by name, as the JSON and CSV exports hold them."""
        tables = dict(self.kpis.tables)
        tables["crises"] = self.crises
        tables["drift"] = [
            {"head": h.head, "against": h.against, "posts": h.posts, "reference_posts": h.reference_posts,
             "psi": None if h.psi is None else round(h.psi, 4),
             "mean_confidence": _round(h.mean_confidence), "reference_confidence": _round(h.reference_confidence),
             "flagged": h.flagged, "why": h.why}
            for h in self.drift.heads]
        tables["label_shares"] = [
            {"head": head, "label": label, "share": round(share, 4)}
            for head, profile in self.drift.profile.items() for label, share in profile["shares"].items()]
        if self.forecast is not None:
            tables["forecast_hourly"] = self.forecast.hourly_rows()
            tables["forecast_daily"] = self.forecast.daily_rows()
            tables["forecast_backtest"] = [score.as_row() for score in self.forecast.backtests]
        return tables

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(),
            "generated_at": self.generated_at.isoformat(), "store": self.store,
            "model_versions": self.model_versions, "summary": self.kpis.summary,
            "forecast_settings": asdict(self.forecast.settings) if self.forecast else None,
            "notes": self.notes + self.drift.notes, "tables": self.tables(),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def safe_url(url: str) -> str:
    """The URL as the report may show it: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def build_report(store: PredictionStore, rules: RoutingRules, since: datetime, until: datetime,
                 forecast: ForecastSettings | None = ForecastSettings(), now: datetime | None = None) -> CareReport:
    """The report of [since, until): the forecast covers the hours from `until` on."""
    if since.utcoffset() is None or until.utcoffset() is None:
        raise ValueError("since and until must carry a time zone")
    if until <= since:
        raise ValueError(f"the period is empty: until ({until.isoformat()}) is not after since ({since.isoformat()})")
    # One read serves the period and the forecast's history (which usually holds the period).
    start = since if forecast is None else min(since, until - timedelta(weeks=forecast.history_weeks
                                                                             + forecast.backtest_weeks))
    history = read_posts(store, start, until)
    posts = [post for post in history if post.received_at >= since]
    versions: dict[str, int] = {}
    for post in posts:
        versions[post.model_version] = versions.get(post.model_version, 0) + 1
    kpis = compute_kpis(posts, rules, since, until)
    crises = crisis_rows(read_crises(store, since, until), posts)
    drift = assess_drift(store, rules.taxonomy, rules.config.drift, since, until)
    notes = []
    result_forecast = None
    if forecast is not None:
        history_start = until - timedelta(weeks=forecast.history_weeks + forecast.backtest_weeks)
        arrivals = team_arrivals([post for post in history if post.received_at >= history_start])
        if arrivals:
            result_forecast = forecast_teams(arrivals, until, rules.team_hours, rules.config.zone, forecast)
        else:
            notes.append("no queued post before the end of the period: no forecast")
    return CareReport(since, until, now or datetime.now(timezone.utc), safe_url(store.url), versions, kpis, crises,
                      drift, result_forecast, notes)


def write_json(report: CareReport, path: Path) -> Path:
    return write_text_atomically(path, json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n")


def write_csv(report: CareReport, directory: Path) -> list[Path]:
    """One CSV file per table (UTF-8, header row), named after the table."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in report.tables().items():
        columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        written.append(write_text_atomically(directory / f"{name}.csv", buffer.getvalue()))
    return written

