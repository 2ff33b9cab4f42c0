"""`smista mlflow server`: run the tracking server as mlflow/server.sh defines it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from data.locations import PROJECT_DIR

SERVER_SCRIPT = PROJECT_DIR / "mlflow" / "server.sh"


def cmd_server(args: argparse.Namespace) -> int:
    # The mlflow next to this Python, so the server runs in the same environment as the CLI.
    environment = dict(os.environ, MLFLOW_BIN=str(Path(sys.executable).parent / "mlflow"))
    print(f"MLflow tracking server on http://127.0.0.1:{args.port} (store {args.backend_store_uri}); Ctrl-C stops it.")
    print(f"Clients: export MLFLOW_TRACKING_URI=http://127.0.0.1:{args.port}", flush=True)
    command = [
        "bash", str(SERVER_SCRIPT),
        "--port", str(args.port),
        "--backend-store-uri", args.backend_store_uri,
        "--artifacts-destination", args.artifacts_destination,
    ]
    # exec: the server replaces this process, so signals (Ctrl-C, a supervisor's stop) reach it directly.
    os.execvpe("bash", command, environment)
    return 0  # not reached


def register(groups: argparse._SubParsersAction) -> None:
    mlflow = groups.add_parser("mlflow", help="Run the MLflow tracking server (experiments, runs, model registry).")
    commands = mlflow.add_subparsers(dest="command", required=True, metavar="<command>")
    server = commands.add_parser(
        "server",
        help="Start `mlflow server` on 127.0.0.1: SQLite store, local artifacts, 1 worker, no job runner, no telemetry.",
    )
    server.add_argument("--port", type=int, default=5000, help="Port on 127.0.0.1.")
    server.add_argument("--backend-store-uri", default="sqlite:///mlruns/mlflow.db", help="Runs and registry database (SQLite or PostgreSQL URI).")
    server.add_argument("--artifacts-destination", default="mlruns/artifacts", help="Where the server stores artifacts (models, plots).")
    server.set_defaults(handler=cmd_server)
