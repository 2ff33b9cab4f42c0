"""`smista benchmark`: train and score models on public labelled data sets (configs/benchmarks/); the
arguments (what the commands do is in smista/benchmark_handlers.py)."""

from __future__ import annotations

import argparse


def register(groups: argparse._SubParsersAction) -> None:
    group = groups.add_parser("benchmark", help="Benchmarks on public labelled data sets (SENTIPOLC, complaints, BANKING77).")
    commands = group.add_subparsers(dest="command", required=True, metavar="<command>")

    run = commands.add_parser(
        "run",
        help="Train every model of a benchmark spec on its splits and score them.",
        description="Read the data set named by a spec (configs/benchmarks/*.yaml) from --data-dir, make its splits "
        "(official split or stratified k-fold), train each model with `smista train`'s own code (tracked in MLflow, "
        "experiment benchmark-<name>), score the test posts and write <output-dir>/<name>/results.json.",
    )
    run.add_argument("spec", help="Benchmark spec, e.g. configs/benchmarks/sentipolc16.yaml.")
    run.add_argument("--data-dir", required=True, help="Folder holding the data set files, e.g. ../shared/datasets/sentipolc16.")
    run.add_argument("--models", default=None, help="Comma-separated models of the spec to run (default: all).")
    run.add_argument("--folds", type=int, default=None, help="Cross-validation only: number of folds instead of the spec's.")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL:KEY=VALUE",
        help="Override a field of one model's recipe; repeatable. E.g. --set minilm:transformer.num_train_epochs=1",
    )
    run.add_argument("--output-dir", default="build/benchmarks", help="Where data splits, runs and results go.")
    run.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, sqlite:///mlruns/mlflow.db).")
    run.add_argument("--keep-fold-models", action="store_true", help="Keep each cross-validation fold's model directory.")
    run.set_defaults(handler="smista.benchmark_handlers.cmd_run")

    table = commands.add_parser("table", help="Every benchmark result under --output-dir as one Markdown table.")
    table.add_argument("--output-dir", default="build/benchmarks", help="Folder of <name>/results.json files.")
    table.set_defaults(handler="smista.benchmark_handlers.cmd_table")
