"""The one command-line entry point: `smista <group> <command>`.

It only parses and dispatches. Each group's arguments are registered by a light module of this
package that exposes `register(groups)`; every command calls a stage function that works from
Python as well. A command whose stage is heavy to import (torch, MLflow, SQLAlchemy, Ray,
statsmodels) names its handler as "smista.<group>_handlers.cmd_<name>", a sibling module that imports
its stage at the top; `main` imports that module only once the command is chosen (see `resolve`).

A mistake the user can fix raises a data.errors.UserError subclass: printed as
`smista: error: <message>`, exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from data.errors import UserError
from smista import (
    benchmark_commands,
    data_commands,
    evaluate_commands,
    label_commands,
    mlflow_commands,
    models_commands,
    operations_commands,
    score_commands,
    serve_commands,
    taxonomy_commands,
    train_commands,
)

__all__ = ["UserError", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

# One entry per command group, in the order `smista --help` lists them.
COMMAND_MODULES = (
    taxonomy_commands,
    data_commands,
    train_commands,
    evaluate_commands,
    benchmark_commands,
    models_commands,
    mlflow_commands,
    label_commands,
    serve_commands,
    score_commands,
    operations_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smista",
        description="Classify, prioritise and route Italian social customer-care posts.",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="<group>")
    for module in COMMAND_MODULES:
        module.register(groups)
    return parser


def resolve(handler: Handler | str) -> Handler:
    """A handler function, or the dotted name of one in a handlers module, imported here.

    The CLI's one lazy import: the parser is built in about 0.25 s, and importing every handlers
    module (so every stage: torch, MLflow, Ray, statsmodels) would add about 7 s to each command and
    to `smista --help` (measured on 2 cores).
    """
    if callable(handler):
        return handler
    module, _, name = handler.rpartition(".")
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return resolve(args.handler)(args)
    except (UserError, FileNotFoundError) as exc:
        print(f"smista: error: {exc}", file=sys.stderr)
        return 2
