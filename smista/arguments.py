"""Turn a config dataclass into command-line flags: the dataclass is the schema, with its help."""

from __future__ import annotations

import argparse
import dataclasses


def add_dataclass_arguments(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One --flag per dataclass field, typed by its default, with the field's help text."""
    for spec in dataclasses.fields(config_type):
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        flag = "--" + spec.name.replace("_", "-")
        help_text = f"{spec.metadata.get('help', '')} (default: {default})"
        if isinstance(default, list):
            parser.add_argument(flag, dest=spec.name, nargs="+", default=default, help=help_text)
        elif isinstance(default, bool):
            parser.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif default is None:
            parser.add_argument(flag, dest=spec.name, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=spec.name, type=type(default), default=default, help=help_text)


def dataclass_from_args(config_type: type, args: argparse.Namespace):
    return config_type(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config_type)})
