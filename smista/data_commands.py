"""`smista data ...`: validate post files and build the split data set."""

from __future__ import annotations

import argparse
import sys

from data.dataset import BuildConfig, build_dataset, format_counts, labelled_counts
from data.jsonl import read_posts, write_posts
from data.label_join import join_labels, read_row_labels
from data.schema import DEFAULT_MAX_TEXT_CHARS, PostValidator
from data.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy
from smista.arguments import add_dataclass_arguments, dataclass_from_args


def cmd_build(args: argparse.Namespace) -> int:
    config = dataclass_from_args(BuildConfig, args)
    result = build_dataset(config)
    taxonomy = load_taxonomy(config.taxonomy)
    sizes = ", ".join(f"{split} {len(posts)}" for split, posts in result.splits.items())
    print(f"Data set {result.data_hash} (taxonomy v{result.taxonomy_version}): {sizes}")
    print(f"Written to {result.output_dir}")
    print()
    print(format_counts(result.counts))
    partial = {
        split: {name: count for name, count in labelled_counts(posts, taxonomy).items() if count < len(posts)}
        for split, posts in result.splits.items()
    }
    if any(partial.values()):
        # Partial labels: the counts above add up to less than the split sizes for these fields.
        print()
        for split, fields in partial.items():
            if fields:
                print(f"{split}: posts labelled for " + ", ".join(f"{name} {count}" for name, count in fields.items())
                      + f" (of {len(result.splits[split])})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    validator = PostValidator(load_taxonomy(args.taxonomy), max_text_chars=args.max_text_chars)
    failed = False
    for path in args.files:
        report = read_posts(path, validator, on_error="skip" if args.keep_going else "raise")
        for error in report.errors:
            print(error, file=sys.stderr)
        failed = failed or bool(report.errors)
        print(f"{path}: {len(report.posts)} valid posts, {len(report.errors)} bad lines")
    return 1 if failed else 0


def cmd_join_labels(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    validator = PostValidator(taxonomy)
    row_labels = read_row_labels(args.labels, taxonomy.fields)
    posts = read_posts(args.posts, validator).posts
    joined = join_labels(posts, row_labels, args.id_prefix, validator)
    write_posts(args.output, joined)
    print(f"{len(joined)} labelled posts ({len(posts)} posts read, {len(row_labels)} labelled rows) -> {args.output}")
    return 0


def register(groups: argparse._SubParsersAction) -> None:
    data = groups.add_parser("data", help="Validate posts and build the train/validation/test data set.")
    commands = data.add_subparsers(dest="command", required=True, metavar="<command>")

    build = commands.add_parser("build", help="Build the stratified split data set and print label counts.")
    add_dataclass_arguments(build, BuildConfig)
    build.set_defaults(handler=cmd_build)

    validate = commands.add_parser("validate", help="Check JSONL files of posts against the schema and taxonomy.")
    validate.add_argument("files", nargs="+", help="JSONL files of posts.")
    validate.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    validate.add_argument("--max-text-chars", type=int, default=DEFAULT_MAX_TEXT_CHARS, help="Longest accepted text.")
    validate.add_argument("--keep-going", action="store_true", help="Report every bad line instead of stopping at the first.")
    validate.set_defaults(handler=cmd_validate)

    join = commands.add_parser(
        "join-labels",
        help="Join labels kept by row and text hash (no texts in the repository) with posts made from the data set file.",
    )
    join.add_argument("--labels", required=True, help="Label file: one {row, text_sha256, <field>: label ...} per line.")
    join.add_argument("--posts", required=True, help="Posts JSONL made from the data set's own file (ids <prefix><row>).")
    join.add_argument("--id-prefix", required=True, help="Post id of a row: prefix + row, e.g. multiemotions-")
    join.add_argument("--output", required=True, help="Labelled posts JSONL to write (keep it out of git: build/).")
    join.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    join.set_defaults(handler=cmd_join_labels)
