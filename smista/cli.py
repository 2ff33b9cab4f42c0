"""The one command-line entry point: `smista <group> <command>`.

It only parses and dispatches. Each group's commands live in a small module of this package that
exposes `register(groups)`; every command calls a stage function that works from Python as well.
Stage modules are imported inside the handlers, so `smista --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# One entry per command group, in the order `smista --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "smista.taxonomy_commands",
    "smista.data_commands",
    "smista.train_commands",
    "smista.evaluate_commands",
    "smista.benchmark_commands",
    "smista.models_commands",
    "smista.mlflow_commands",
    "smista.label_commands",
    "smista.serve_commands",
    "smista.score_commands",
    "smista.operations_commands",
)


class UserError(Exception):
    """Raised by a command for a mistake the user can fix; printed without a traceback."""


def user_error_types() -> tuple[type[Exception], ...]:
    """Errors that mean "the input is wrong": message, exit 2, no traceback."""
    from data.dataset import DatasetBuildError
    from data.jsonl import PostFileError
    from data.taxonomy import TaxonomyError

    types: list[type[Exception]] = [UserError, TaxonomyError, PostFileError, DatasetBuildError, FileNotFoundError]
    for name in COMMAND_MODULES:
        types.extend(getattr(importlib.import_module(name), "USER_ERRORS", ()))
    return tuple(types)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smista",
        description="Classify, prioritise and route Italian social customer-care posts.",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="<group>")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except user_error_types() as exc:
        print(f"smista: error: {exc}", file=sys.stderr)
        return 2
