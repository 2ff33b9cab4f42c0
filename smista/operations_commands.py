"""Care operations from the prediction store:

    smista report   [--database-url URL] [--since ...] [--until ...] [--output report.html] [--json F] [--csv-dir D]
    smista forecast [--database-url URL] [--start ...] [--posts-per-agent-hour 12] [--format table|json|csv]
    smista demo-store --database-url sqlite:///build/demo-store.sqlite [--model ...] [--weeks 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.settings import DEFAULT_DATABASE_URL, DEFAULT_MODEL
from training.inference.runtimes import RUNTIMES

DEFAULT_DEMO_STORE = "sqlite:///build/demo-store.sqlite"


def __getattr__(name: str) -> tuple[type[Exception], ...]:
    """USER_ERRORS, imported only when an error is reported (statsmodels takes a second to import)."""
    if name != "USER_ERRORS":
        raise AttributeError(name)
    from operations.demo_store import DemoStoreError
    from serving.routing_config import RoutingConfigError
    from serving.store import StoreError

    return (DemoStoreError, RoutingConfigError, StoreError)


def moment(value: str) -> datetime:
    """An ISO date or date-time; a date is its midnight and a time without zone is in UTC."""
    try:
        parsed = datetime.fromisoformat(value) if "T" in value or " " in value else datetime.combine(
            date.fromisoformat(value), datetime.min.time())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date or date-time: write e.g. 2026-12-01 or "
                                         "2026-12-01T08:00+01:00") from None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=timezone.utc)


def _rules(args: argparse.Namespace):
    from data.taxonomy import load_taxonomy
    from serving.rules import load_routing_rules

    return load_routing_rules(Path(args.routing_config), load_taxonomy(Path(args.taxonomy)))


def _forecast_settings(args: argparse.Namespace):
    from operations.forecast import ForecastSettings
    from smista.cli import UserError

    settings = ForecastSettings(horizon_hours=args.horizon_hours, history_weeks=args.history_weeks,
                                posts_per_agent_hour=args.posts_per_agent_hour, interval=args.interval,
                                backtest_weeks=args.backtest_weeks)
    try:
        settings.check()
    except ValueError as exc:
        raise UserError(f"forecast: {exc}") from None
    return settings


def _period(args: argparse.Namespace) -> tuple[datetime, datetime]:
    from smista.cli import UserError

    until = args.until or datetime.now(timezone.utc)
    since = args.since or until - timedelta(days=args.days)
    if until <= since:
        raise UserError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    return since, until


def cmd_report(args: argparse.Namespace) -> int:
    import time

    from operations.report import build_report, write_csv, write_json
    from operations.report_html import write_html
    from serving.store import PredictionStore

    started = time.perf_counter()
    rules = _rules(args)
    since, until = _period(args)
    store = PredictionStore(args.database_url)
    try:
        report = build_report(store, rules, since, until, None if args.no_forecast else _forecast_settings(args))
    finally:
        store.close()
    written = [write_html(report, rules.config.drift, Path(args.output))]
    if args.json:
        written.append(write_json(report, Path(args.json)))
    if args.csv_dir:
        written += write_csv(report, Path(args.csv_dir))
    summary = report.kpis.summary
    print(f"Report of {summary['posts']} posts ({since.isoformat()} - {until.isoformat()}), "
          f"{len(report.crises)} crises, {len(report.drift.flagged)} drift flags, "
          f"in {time.perf_counter() - started:.1f} s -> {', '.join(str(path) for path in written[:3])}"
          + (f" and {len(written) - 3} more" if len(written) > 3 else ""))
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    from operations.forecast import forecast_teams, team_arrivals
    from operations.store_reader import read_posts
    from serving.store import PredictionStore

    rules = _rules(args)
    settings = _forecast_settings(args)
    start = args.start or datetime.now(timezone.utc)
    store = PredictionStore(args.database_url)
    try:
        history = read_posts(store, start - timedelta(weeks=settings.history_weeks + settings.backtest_weeks), start)
    finally:
        store.close()
    forecast = forecast_teams(team_arrivals(history), start, rules.team_hours, rules.config.zone, settings)
    if args.format == "json":
        json.dump({"start": start.isoformat(), "hourly": forecast.hourly_rows(), "daily": forecast.daily_rows(),
                   "backtest": [score.as_row() for score in forecast.backtests]}, sys.stdout, indent=2, ensure_ascii=False)
        print()
    elif args.format == "csv":
        rows = forecast.hourly_rows()
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["team", "hour"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(f"Forecast from {start.isoformat()}, {settings.horizon_hours} hours, "
              f"{settings.posts_per_agent_hour:g} posts per agent-hour, {settings.interval:.0%} intervals")
        print(f"{'team':<20}{'date':<12}{'posts':>8}{'peak':>7}{'agents':>8}{'agents@high':>13}")
        for row in forecast.daily_rows():
            print(f"{row['team']:<20}{row['date']:<12}{row['posts']:>8.1f}{row['peak_hour'] or '-':>7}"
                  f"{row['max_agents']:>8}{row['max_agents_high']:>13}")
        if forecast.backtests:
            print("\nBacktest (model against the same hour of the week before):")
            print(f"{'team':<20}{'weeks':>6}{'MAE model':>11}{'MAE naive':>11}{'skill':>8}{'coverage':>10}")
            for score in forecast.backtests:
                skill = "-" if score.skill is None else f"{score.skill:.3f}"
                print(f"{score.team:<20}{score.weeks:>6}{score.mae_model:>11.3f}{score.mae_naive:>11.3f}"
                      f"{skill:>8}{score.coverage:>10.3f}")
        if not forecast.teams:
            print("no queued post in the history: nothing to forecast")
    return 0


def cmd_demo_store(args: argparse.Namespace) -> int:
    import time

    from operations.demo_store import DemoSettings, build_demo_store, load_demo_posts
    from serving.model_source import load_checked_predictor

    started = time.perf_counter()
    rules = _rules(args)
    posts = load_demo_posts([Path(path) for path in args.inputs], rules.taxonomy)
    predictor = load_checked_predictor(args.model, rules.taxonomy, args.runtime)
    settings = DemoSettings(database_url=args.database_url, weeks=args.weeks, posts_per_day=args.posts_per_day,
                            end=args.end, seed=args.seed, campaign=not args.no_campaign, crisis=not args.no_crisis)
    try:
        report = build_demo_store(settings, predictor, rules, posts)
    except ValueError as exc:
        from smista.cli import UserError

        raise UserError(f"demo-store: {exc}") from None
    print(f"Demo store {args.database_url}: {report.posts} posts from {len(posts)} distinct ones, "
          f"{report.feedback} feedback, {report.crises} crises, {report.since:%Y-%m-%d %H:%M} - "
          f"{report.until:%Y-%m-%d %H:%M} UTC, in {time.perf_counter() - started:.1f} s. "
          f"See it: smista report --database-url {args.database_url} --until {report.until:%Y-%m-%dT%H:%M}Z")
    return 0


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
    report.set_defaults(handler=cmd_report)

    forecast = groups.add_parser(
        "forecast", help="Hourly volume per team for the next days, with intervals and the agents it takes.",
        description="A seasonal count regression (hour of day, day of week, weekend shape) per team, fitted on the "
                    "store's history, backtested on the last weeks against the same hour of the week before.")
    _common(forecast, DEFAULT_DATABASE_URL)
    forecast.add_argument("--start", type=moment, default=None, help="First forecast hour (default: now).")
    forecast.add_argument("--format", choices=("table", "json", "csv"), default="table",
                          help="table: per team and day (default); json: hourly, daily and backtest; csv: hourly.")
    _forecast_options(forecast)
    forecast.set_defaults(handler=cmd_forecast)

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
    demo.set_defaults(handler=cmd_demo_store)
