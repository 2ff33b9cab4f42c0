"""Care operations from the prediction store:

    smista report   [--database-url URL] [--since ...] [--until ...] [--output report.html] [--json F] [--csv-dir D]
    smista forecast [--database-url URL] [--start ...] [--posts-per-agent-hour 12] [--format table|json|csv]
    smista demo-store --database-url sqlite:///build/demo-store.sqlite [--model ...] [--weeks 5]

The arguments; what the commands do is in smista/operations_handlers.py.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timezone

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.settings import DEFAULT_DATABASE_URL, DEFAULT_MODEL
from training.inference.runtimes import RUNTIMES

DEFAULT_DEMO_STORE = "sqlite:///build/demo-store.sqlite"


def moment(value: str) -> datetime:
    """An ISO date or date-time; a date is its midnight and a time without zone is in UTC."""
    try:
        parsed = datetime.fromisoformat(value) if "T" in value or " " in value else datetime.combine(
            date.fromisoformat(value), datetime.min.time())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date or date-time: write e.g. 2026-12-01 or "
                                         "2026-12-01T08:00+01:00") from None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=timezone.utc)


def _common(parser: argparse.ArgumentParser, database_default: str) -> None:
    parser.add_argument("--database-url", default=database_default,
                        help=f"The prediction store, any SQLAlchemy URL (default: {database_default}).")
    parser.add_argument("--routing-config", default=str(DEFAULT_ROUTING_PATH), help="Routing rules (teams, hours, SLA).")
    parser.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy file.")


def _forecast_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--horizon-hours", type=int, default=168, help="Hours to forecast (default: 168, a week).")
    parser.add_argument("--history-weeks", type=int, default=6, help="Weeks of history the model is fitted on (default: 6).")
    parser.add_argument("--posts-per-agent-hour", type=float, default=12.0,
                        help="Posts one agent handles in an hour, for the staffing (default: 12).")
    parser.add_argument("--interval", type=float, default=0.8, help="Central prediction interval (default: 0.8).")
    parser.add_argument("--backtest-weeks", type=int, default=2,
                        help="Last full weeks held out to score the model against the naive baseline (default: 2).")


def register(groups: argparse._SubParsersAction) -> None:
    report = groups.add_parser(
        "report", help="The care team's report of a period (HTML, JSON, CSV) from the prediction store.",
        description="Volumes by intent, team, channel and hour of week; first response and resolution against the "
                    "SLA; flush rate, closing rate, satisfaction; automation and the agents' corrections per head; "
                    "crises; drift; the next week's forecast per team. One self-contained HTML file.")
    _common(report, DEFAULT_DATABASE_URL)
    report.add_argument("--since", type=moment, default=None, help="Start of the period (default: --days before --until).")
    report.add_argument("--until", type=moment, default=None, help="End of the period, excluded (default: now).")
    report.add_argument("--days", type=float, default=7.0, help="Length of the period when --since is not given (default: 7).")
    report.add_argument("--output", default="build/report.html", help="The HTML report (default: build/report.html).")
    report.add_argument("--json", default=None, help="Also write every table as one JSON document here.")
    report.add_argument("--csv-dir", default=None, help="Also write every table as a CSV file in this directory.")
    report.add_argument("--no-forecast", action="store_true", help="Leave the forecast out.")
    _forecast_options(report)
    report.set_defaults(handler="smista.operations_handlers.cmd_report")

    forecast = groups.add_parser(
        "forecast", help="Hourly volume per team for the next days, with intervals and the agents it takes.",
        description="A seasonal count regression (hour of day, day of week, weekend shape) per team, fitted on the "
                    "store's history, backtested on the last weeks against the same hour of the week before.")
    _common(forecast, DEFAULT_DATABASE_URL)
    forecast.add_argument("--start", type=moment, default=None, help="First forecast hour (default: now).")
    forecast.add_argument("--format", choices=("table", "json", "csv"), default="table",
                          help="table: per team and day (default); json: hourly, daily and backtest; csv: hourly.")
    _forecast_options(forecast)
    forecast.set_defaults(handler="smista.operations_handlers.cmd_forecast")

    demo = groups.add_parser(
        "demo-store", help="Fill a new store with weeks of synthetic traffic and feedback, routed by a real model.",
        description="Replays the seed posts (or the given JSONL files) with synthetic authors, arrival times, a "
                    "campaign, a crisis and agent feedback, through the real routing pipeline, so that `smista "
                    "report` and `smista forecast` have something to show. Refuses a store that holds posts.")
    _common(demo, DEFAULT_DEMO_STORE)
    demo.add_argument("inputs", nargs="*", metavar="POSTS", help="JSONL files to replay (default: the seed posts).")
    demo.add_argument("--model", default=DEFAULT_MODEL, help=f"Model directory or MLflow URI (default: {DEFAULT_MODEL}).")
    demo.add_argument("--runtime", default="torch", choices=RUNTIMES, help="torch (default), onnx or onnx-int8.")
    demo.add_argument("--weeks", type=int, default=5, help="Weeks of traffic (default: 5).")
    demo.add_argument("--posts-per-day", type=float, default=150.0, help="Mean weekday posts (default: 150).")
    demo.add_argument("--end", type=moment, default=None, help="End of the traffic (default: now, to the hour).")
    demo.add_argument("--seed", type=int, default=7, help="Seed of every random draw (default: 7).")
    demo.add_argument("--no-campaign", action="store_true", help="No campaign in the last week.")
    demo.add_argument("--no-crisis", action="store_true", help="No burst of negative posts.")
    demo.set_defaults(handler="smista.operations_handlers.cmd_demo_store")
