"""`smista report`, `smista forecast`, `smista demo-store`: what the commands do (their arguments are
in smista/operations_commands.py)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from data.errors import UserError
from data.taxonomy import load_taxonomy
from operations.demo_store import DemoSettings, build_demo_store, load_demo_posts
from operations.forecast import ForecastSettings, forecast_teams, team_arrivals
from operations.report import build_report, write_csv, write_json
from operations.report_html import write_html
from operations.store_reader import read_posts
from serving.model_source import load_checked_predictor
from serving.rules import load_routing_rules
from serving.store import PredictionStore


def _rules(args: argparse.Namespace):
    return load_routing_rules(Path(args.routing_config), load_taxonomy(Path(args.taxonomy)))


def _forecast_settings(args: argparse.Namespace):
    try:
        return ForecastSettings(horizon_hours=args.horizon_hours, history_weeks=args.history_weeks,
                                posts_per_agent_hour=args.posts_per_agent_hour, interval=args.interval,
                                backtest_weeks=args.backtest_weeks)
    except ValueError as exc:
        raise UserError(f"forecast: {exc}") from None


def _period(args: argparse.Namespace) -> tuple[datetime, datetime]:
    until = args.until or datetime.now(timezone.utc)
    since = args.since or until - timedelta(days=args.days)
    if until <= since:
        raise UserError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    return since, until


def cmd_report(args: argparse.Namespace) -> int:
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
    started = time.perf_counter()
    rules = _rules(args)
    posts = load_demo_posts([Path(path) for path in args.inputs], rules.taxonomy)
    predictor = load_checked_predictor(args.model, rules.taxonomy, args.runtime)
    try:
        settings = DemoSettings(database_url=args.database_url, weeks=args.weeks, posts_per_day=args.posts_per_day,
                                end=args.end, seed=args.seed, campaign=not args.no_campaign, crisis=not args.no_crisis)
        report = build_demo_store(settings, predictor, rules, posts)
    except ValueError as exc:
        raise UserError(f"demo-store: {exc}") from None
    print(f"Demo store {args.database_url}: {report.posts} posts from {len(posts)} distinct ones, "
          f"{report.feedback} feedback, {report.crises} crises, {report.since:%Y-%m-%d %H:%M} - "
          f"{report.until:%Y-%m-%d %H:%M} UTC, in {time.perf_counter() - started:.1f} s. "
          f"See it: smista report --database-url {args.database_url} --until {report.until:%Y-%m-%dT%H:%M}Z")
    return 0
