"""The one command-line entry point: `smista <group> <command>`. It only parses and dispatches;
every command is a call to a stage function that can be used from Python as well."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence

from data.dataset import BuildConfig, DatasetBuildError, build_dataset, format_counts
from data.jsonl import PostFileError, read_posts
from data.schema import DEFAULT_MAX_TEXT_CHARS, PostValidator
from data.taxonomy import DEFAULT_TAXONOMY_PATH, TaxonomyError, load_taxonomy

# Errors that mean "the user's input is wrong": print the message, exit 2, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (TaxonomyError, PostFileError, DatasetBuildError, FileNotFoundError)


def add_dataclass_arguments(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One flag per dataclass field, with the field's help text: the dataclass is the schema."""
    for spec in dataclasses.fields(config_type):
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        flag = "--" + spec.name.replace("_", "-")
        help_text = f"{spec.metadata.get('help', '')} (default: {default})"
        if isinstance(default, list):
            parser.add_argument(flag, dest=spec.name, nargs="+", default=default, help=help_text)
        else:
            parser.add_argument(flag, dest=spec.name, type=type(default), default=default, help=help_text)


def dataclass_from_args(config_type: type, args: argparse.Namespace):
    return config_type(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config_type)})


def cmd_data_build(args: argparse.Namespace) -> int:
    config = dataclass_from_args(BuildConfig, args)
    result = build_dataset(config)
    sizes = ", ".join(f"{split} {len(posts)}" for split, posts in result.splits.items())
    print(f"Data set {result.data_hash} (taxonomy v{result.taxonomy_version}): {sizes}")
    print(f"Written to {result.output_dir}")
    print()
    print(format_counts(result.counts))
    return 0


def cmd_data_validate(args: argparse.Namespace) -> int:
    validator = PostValidator(load_taxonomy(args.taxonomy), max_text_chars=args.max_text_chars)
    failed = False
    for path in args.files:
        report = read_posts(path, validator, on_error="skip" if args.keep_going else "raise")
        for error in report.errors:
            print(error, file=sys.stderr)
        failed = failed or bool(report.errors)
        print(f"{path}: {len(report.posts)} valid posts, {len(report.errors)} bad lines")
    return 1 if failed else 0


def cmd_taxonomy_show(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    print(f"Taxonomy v{taxonomy.version}")
    for name, spec in taxonomy.fields.items():
        kind = "multi-label" if spec.is_multi_label else "single-label"
        print(f"  {name} ({kind}, {len(spec.labels)}): {', '.join(spec.label_ids)}")
    print(f"  channels: {', '.join(taxonomy.channel_ids)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smista",
        description="Classify, prioritise and route Italian social customer-care posts.",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="<group>")

    data = groups.add_parser("data", help="Validate posts and build the train/validation/test data set.")
    data_commands = data.add_subparsers(dest="command", required=True, metavar="<command>")
    build = data_commands.add_parser("build", help="Build the stratified split data set and print label counts.")
    add_dataclass_arguments(build, BuildConfig)
    build.set_defaults(handler=cmd_data_build)
    validate = data_commands.add_parser("validate", help="Check JSONL files of posts against the schema and taxonomy.")
    validate.add_argument("files", nargs="+", help="JSONL files of posts.")
    validate.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    validate.add_argument("--max-text-chars", type=int, default=DEFAULT_MAX_TEXT_CHARS, help="Longest accepted text.")
    validate.add_argument(
        "--keep-going", action="store_true", help="Report every bad line instead of stopping at the first."
    )
    validate.set_defaults(handler=cmd_data_validate)

    taxonomy = groups.add_parser("taxonomy", help="Inspect the taxonomy (the single source of truth for labels).")
    taxonomy_commands = taxonomy.add_subparsers(dest="command", required=True, metavar="<command>")
    show = taxonomy_commands.add_parser("show", help="Validate the taxonomy file and list its fields and labels.")
    show.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    show.set_defaults(handler=cmd_taxonomy_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except USER_ERRORS as exc:
        print(f"smista: error: {exc}", file=sys.stderr)
        return 2
