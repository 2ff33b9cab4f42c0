"""`smista benchmark`: what the commands do (their arguments are in smista/benchmark_commands.py)."""

from __future__ import annotations

import argparse

from benchmarks.quality.results import results_table
from benchmarks.quality.runner import run_benchmark
from benchmarks.quality.spec import BenchmarkSpecError, load_spec
from data.errors import UserError


def parse_overrides(assignments: list[str]) -> dict[str, list[str]]:
    """MODEL:key=value -> {MODEL: [key=value]}; a recipe override belongs to one model's recipe."""
    overrides: dict[str, list[str]] = {}
    for assignment in assignments:
        model, separator, rest = assignment.partition(":")
        if not separator or not model or "=" not in rest:
            raise BenchmarkSpecError(f"--set {assignment!r}: expected MODEL:dotted.key=value, e.g. minilm:transformer.num_train_epochs=1")
        overrides.setdefault(model, []).append(rest)
    return overrides


def cmd_run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    models = [model.strip() for model in args.models.split(",")] if args.models else None
    result = run_benchmark(
        spec,
        args.data_dir,
        output_dir=args.output_dir,
        models=models,
        folds=args.folds,
        overrides=parse_overrides(args.set),
        tracking_uri=args.tracking_uri,
        keep_fold_models=args.keep_fold_models,
    )
    print()
    print(result.markdown())
    print(f"\nResults in {args.output_dir}/{spec.name}/results.json")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    table = results_table(args.output_dir)
    if not table:
        raise UserError(f"no results.json under {args.output_dir}: run `smista benchmark run` first")
    print(table)
    return 0

