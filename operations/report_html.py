"""The report as one self-contained HTML page: inline CSS, charts as inline SVG, no script, nothing
fetched. Every value from the store goes through Jinja2's autoescaping; only the charts, which
matplotlib writes with their text escaped, are inserted as markup."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from data.atomic_files import write_text_atomically
from operations import charts
from operations.kpis import ALL, WEEKDAYS
from operations.report import CareReport
from serving.routing_config import DriftConfig

TEMPLATES = Path(__file__).with_name("templates")
RESPONSE_COLUMNS = ["priority", "channel", "posts", "first_response_within", "first_response_breached",
                    "first_response_pending", "first_response_within_share", "first_response_median_minutes",
                    "first_response_p90_minutes", "resolution_within", "resolution_breached",
                    "resolution_within_share", "resolution_median_hours", "resolution_p90_hours"]
# Italian column headers of the page (the JSON and CSV keep the field names).
HEADERS = {
    "priority": "priorità", "channel": "canale", "posts": "post", "team": "team", "tier": "fascia", "head": "campo",
    "first_response_within": "1ª risposta entro SLA", "first_response_breached": "fuori SLA",
    "first_response_pending": "in sospeso", "first_response_within_share": "quota entro SLA",
    "first_response_median_minutes": "mediana (min)", "first_response_p90_minutes": "p90 (min)",
    "resolution_within": "risolti entro obiettivo", "resolution_breached": "fuori obiettivo",
    "resolution_pending": "in sospeso", "resolution_within_share": "quota entro obiettivo",
    "resolution_median_hours": "mediana (ore)", "resolution_p90_hours": "p90 (ore)",
    "fuori_tema": "fuori tema", "not_manageable": "non gestibili", "flush_rate": "flush rate",
    "with_feedback": "con feedback", "resolved": "risolti", "closing_rate": "tasso di chiusura",
    "problems": "problemi", "problems_solved": "problemi risolti", "problems_solved_share": "quota risolti",
    "answers": "risposte", "mean": "media", "satisfied_share": "quota 4-5", "share": "quota",
    "corrected": "corretti", "correction_rate": "tasso di correzione", "precision": "precisione",
    "crisis_id": "crisi", "intent": "intento", "started_at": "inizio", "ended_at": "fine",
    "baseline_per_hour": "base (post/ora)", "peak_window_count": "picco nella finestra",
    "posts_routed_to_crisis": "post alla crisi", "date": "giorno", "peak_hour": "ora di punta", "peak_mean": "post nell'ora di punta",
    "max_agents": "agenti (max)", "max_agents_high": "agenti (max, limite alto)", "weeks": "settimane", "hours": "ore",
    "mae_model": "MAE modello", "mae_naive_same_hour_last_week": "MAE stessa ora sett. prima", "skill": "skill",
    "interval_coverage": "copertura intervallo",
}


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "sì" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Markup:
    if not rows:
        return Markup('<p class="note">Nessun dato.</p>')
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{escape(HEADERS.get(column, column))}</th>" for column in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            css = ' class="text"' if isinstance(value, str) else ""
            cells.append(f"<td{css}>{escape(fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return Markup(f'<div class="wide"><table><tr>{head}</tr>{"".join(body)}</table></div>')


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _cards(report: CareReport) -> list[dict[str, str]]:
    summary = report.kpis.summary
    median = summary["median_first_response_minutes"]
    satisfaction = summary["mean_satisfaction"]
    flagged = len(report.drift.flagged)
    return [
        {"label": "post nel periodo", "value": f"{summary['posts']:,}".replace(",", ".")},
        {"label": "prima risposta entro SLA", "value": _percent(summary["share_first_response_within_sla"])},
        {"label": "prima risposta, mediana", "value": "–" if median is None else f"{median:.0f} min"},
        {"label": "flush rate", "value": _percent(summary["flush_rate"])},
        {"label": "tasso di chiusura", "value": _percent(summary["closing_rate"])},
        {"label": "problemi risolti", "value": _percent(summary["problems_solved_share"])},
        {"label": "soddisfazione media (1–5)", "value": "–" if satisfaction is None else f"{satisfaction:.2f}"},
        {"label": "automazione (fascia auto)", "value": _percent(summary["automation_rate"])},
        {"label": "crisi", "value": str(len(report.crises))},
        {"label": "campi in drift", "value": str(flagged)},
    ]


def _charts(report: CareReport) -> dict[str, Any]:
    tables = report.kpis.tables
    built: dict[str, Any] = {}
    for name, key, title in (("intent", "intent", "Post per intento"), ("team", "team", "Post per team"),
                             ("channel", "channel", "Post per canale")):
        rows = tables[f"volume_by_{name}"]
        built[name] = Markup(charts.bar_chart([row[key] for row in rows], [row["posts"] for row in rows], title,
                                              width=4.2))
    matrix = np.zeros((7, 24))
    for row in tables["volume_by_hour_of_week"]:
        matrix[WEEKDAYS.index(row["weekday"]), row["hour"]] = row["posts"]
    built["heatmap"] = Markup(charts.hour_of_week_heatmap(matrix, WEEKDAYS, "Post per giorno e ora"))
    days = [datetime.fromisoformat(row["date"]) for row in tables["volume_by_day"]]
    spans = [(datetime.fromisoformat(c["started_at"]).replace(tzinfo=None),
              datetime.fromisoformat(c["ended_at"] or report.until.isoformat()).replace(tzinfo=None),
              f"crisi {c['crisis_id']}: {c['intent']}") for c in report.crises]
    built["timeline"] = Markup(charts.timeline(days, [row["posts"] for row in tables["volume_by_day"]], spans,
                                               "Post al giorno e crisi"))
    built["forecast"] = []
    if report.forecast is not None:
        for team in report.forecast.teams:
            hours = [datetime.fromisoformat(row["hour"]).replace(tzinfo=None) for row in team.rows]
            built["forecast"].append(Markup(charts.forecast_chart(
                hours, [row["mean"] for row in team.rows], [row["low"] for row in team.rows],
                [row["high"] for row in team.rows],
                [hour.replace(tzinfo=None) for hour, _ in team.recent],
                [count for _, count in team.recent],
                f"{team.team}: {sum(row['mean'] for row in team.rows):.0f} post attesi, "
                f"al massimo {max(row['agents_high'] for row in team.rows)} agenti in un'ora")))
    return built


def render_html(report: CareReport, drift_config: DriftConfig) -> str:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                              keep_trailing_newline=True)
    template = environment.get_template("report.html.j2")
    tables = report.tables()
    zone_time = "%d/%m/%Y %H:%M"
    return template.render(
        report=report, tables=tables, charts=_charts(report), cards=_cards(report), table=table, fmt=fmt,
        period=f"{report.since.strftime(zone_time)} – {report.until.strftime(zone_time)} UTC",
        generated=report.generated_at.strftime(zone_time) + " UTC",
        notes=report.notes, response_columns=RESPONSE_COLUMNS, drift_config=drift_config,
        response_by_priority=[row for row in tables["response_times"] if row["channel"] == ALL],
        response_by_channel=[row for row in tables["response_times"] if row["priority"] == ALL],
        corrections_all=[row for row in tables["corrections"] if row["tier"] == ALL],
        corrections_by_tier=[row for row in tables["corrections"] if row["tier"] != ALL],
        forecast=report.forecast,
        forecast_start=report.forecast.start.strftime(zone_time) + " UTC" if report.forecast else None,
    )


def write_html(report: CareReport, drift_config: DriftConfig, path: Path) -> Path:
    return write_text_atomically(path, render_html(report, drift_config))
