"""`smista serve`, `serve batch`, `serve upgrade-store`: what the commands do (their arguments are in
smista/serve_commands.py; `serve bench` and `serve soak` are in smista/serve_bench_handlers.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from data.errors import UserError
from serving.batch import BatchConfig, score_file
from serving.local_server import spawn_server, stop_server
from serving.settings import DEFAULT_DATABASE_URL, ServingSettings
from serving.store import PredictionStore

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {
        "SMISTA_MODEL": args.model,
        "SMISTA_RUNTIME": args.runtime,
        "SMISTA_ROUTING_CONFIG": args.routing_config,
        "SMISTA_TAXONOMY": args.taxonomy,
        "SMISTA_DATABASE_URL": args.database_url,
    }
    environ = {**os.environ, **{name: value for name, value in overrides.items() if value is not None}}
    if args.no_api_key:
        environ["SMISTA_REQUIRE_API_KEY"] = "false"
    # Validate here, so a bad setting is one clear line instead of a traceback in each worker.
    settings = ServingSettings.from_env(environ)
    if not settings.require_api_key and args.host not in LOOPBACK_HOSTS:
        raise UserError(f"without API keys the service listens only on loopback, not on {args.host}")
    print(f"Serving on http://{args.host}:{args.port}: {settings.describe()}", flush=True)
    process = spawn_server(args.host, args.port, {**environ, **settings.to_env()})
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop_server(process)
        return 130


def cmd_batch(args: argparse.Namespace) -> int:
    report = score_file(BatchConfig(
        input_path=Path(args.input),
        output_path=Path(args.output),
        model=args.model,
        taxonomy_path=Path(args.taxonomy),
        routing_config_path=Path(args.routing_config),
        database_url=args.database_url,
        as_of=args.as_of,
        chunk_size=args.chunk_size,
        keep_going=args.keep_going,
        max_text_chars=args.max_text_chars,
        store_post_text=args.store_text,
        runtime=args.runtime,
    ), progress=None if args.no_progress else sys.stderr)
    for error in report.errors:
        print(error, file=sys.stderr)
    print(f"Scored {report.scored} posts in {report.seconds:.1f} s ({report.posts_per_second:.1f} posts/s) "
          f"-> {args.output}; {len(report.errors)} bad lines skipped")
    return 1 if report.errors else 0


def cmd_upgrade_store(args: argparse.Namespace) -> int:
    url = args.database_url or os.environ.get("SMISTA_DATABASE_URL") or DEFAULT_DATABASE_URL
    store = PredictionStore(url)  # opening a store upgrades it (serving/migrate.py)
    before, after = store.schema_revisions
    store.close()
    print(f"Store schema: {before or 'new'} -> {after}" if before != after else f"Store schema: {after}, up to date")
    return 0
