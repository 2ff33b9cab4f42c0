"""`smista models ...`: compare registered model versions and promote one to champion."""

from __future__ import annotations

import argparse

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from smista.arguments import add_dataclass_arguments, dataclass_from_args
from training.errors import USER_ERRORS  # noqa: F401  (read by smista.cli)
from training.recipe import REGISTERED_MODEL_NAME
from training.registry import CHAMPION_ALIAS, PromotionPolicy


def cmd_compare(args: argparse.Namespace) -> int:
    from data.taxonomy import load_taxonomy
    from training.registry import format_comparison, summarize_versions

    summaries = summarize_versions(args.versions, name=args.name, limit=args.limit, tracking_uri=args.tracking_uri)
    print(format_comparison(summaries, load_taxonomy(args.taxonomy).field_names))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from training.registry import promote

    policy = dataclass_from_args(PromotionPolicy, args)
    decision = promote(
        args.version, args.test_file, policy, name=args.name, alias=args.alias, taxonomy_path=args.taxonomy,
        tracking_uri=args.tracking_uri,
    )
    challenger = decision.challenger_version
    if decision.allowed:
        print(f"Promoted {args.name} version {challenger} to @{args.alias}:")
    else:
        print(
            f"Refused: {args.name} version {challenger} does not replace "
            f"version {decision.champion_version} as @{args.alias}:"
        )
    for reason in decision.reasons:
        print(f"  - {reason}")
    return 0 if decision.allowed else 1


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default=REGISTERED_MODEL_NAME, help="Registered model name.")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db).")
    parser.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")


def register(groups: argparse._SubParsersAction) -> None:
    models = groups.add_parser("models", help="Compare registered model versions; promote one to champion.")
    commands = models.add_subparsers(dest="command", required=True, metavar="<command>")

    compare = commands.add_parser(
        "compare", help="Side-by-side table of registered versions: per-head macro-F1, ECE, coverage, time, size, speed."
    )
    compare.add_argument("versions", nargs="*", help="Version numbers to compare (default: the newest --limit).")
    compare.add_argument("--limit", type=int, default=6, help="How many of the newest versions to show by default.")
    _common(compare)
    compare.set_defaults(handler=cmd_compare)

    promote = commands.add_parser(
        "promote",
        help="Set the champion alias if the challenger beats the champion on the frozen test split.",
        description="Score the challenger and the current champion on the same test file; move the alias only "
        "if the primary metric improves by the margin and no head's macro-F1 drops beyond the tolerance. "
        "Exit 0 when promoted, 1 when refused (the reasons are printed).",
    )
    promote.add_argument("--version", default=None, help="Challenger version (default: the latest registered).")
    promote.add_argument("--test-file", default="build/dataset/test.jsonl", help="The frozen test split (labelled JSONL).")
    promote.add_argument("--alias", default=CHAMPION_ALIAS, help="Alias to move.")
    add_dataclass_arguments(promote, PromotionPolicy)
    _common(promote)
    promote.set_defaults(handler=cmd_promote)
