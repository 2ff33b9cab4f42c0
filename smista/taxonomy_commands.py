"""`smista taxonomy ...`: inspect the single source of truth for labels."""

from __future__ import annotations

import argparse

from data.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy


def cmd_show(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    print(f"Taxonomy v{taxonomy.version}")
    for name, spec in taxonomy.fields.items():
        kind = "multi-label" if spec.is_multi_label else "single-label"
        print(f"  {name} ({kind}, {len(spec.labels)}): {', '.join(spec.label_ids)}")
    print(f"  channels: {', '.join(taxonomy.channel_ids)}")
    return 0


def register(groups: argparse._SubParsersAction) -> None:
    taxonomy = groups.add_parser("taxonomy", help="Inspect the taxonomy (the single source of truth for labels).")
    commands = taxonomy.add_subparsers(dest="command", required=True, metavar="<command>")
    show = commands.add_parser("show", help="Validate the taxonomy file and list its fields and labels.")
    show.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    show.set_defaults(handler=cmd_show)
