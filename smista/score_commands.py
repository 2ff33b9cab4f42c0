"""`smista score`: classify and route an archive on Ray Data, resumable, on one machine or a cluster.

    smista score POSTS... --output DIR [--model URI_OR_DIR] [--address auto]

Needs the `ray` extra (`pip install 'smista[ray]'`; the test command installs it). The arguments;
what the command does is in smista/score_handlers.py.
"""

from __future__ import annotations

import argparse
import re

from data.schema import DEFAULT_MAX_TEXT_CHARS
from data.taxonomy import DEFAULT_TAXONOMY_PATH
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.settings import DEFAULT_MODEL
from training.inference.runtimes import RUNTIMES

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def byte_size(value: str) -> int:
    """"1M" -> 1048576; plain numbers are bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", value, flags=re.IGNORECASE)
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a size: write bytes, or e.g. 512K, 4M, 1G")
    return int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]


def register(groups: argparse._SubParsersAction) -> None:
    score = groups.add_parser(
        "score", help="Classify and route an archive (JSONL or Parquet, local or any fsspec URL) on Ray Data.",
        description="Partitions of the archive are predicted by a pool of Ray actors (the model loaded once "
                    "per actor) and routed in file order by this process with the endpoint's rules; each "
                    "partition is written whole, so a killed job run again resumes where it stopped and "
                    "writes no post twice. Bad rows go to OUT/rejects/ with file, line and reason. "
                    "Exit status 1 when there were rejects. docs/SCALING.md has the numbers.",
    )
    score.add_argument("inputs", nargs="+", metavar="POSTS",
                       help="JSONL or Parquet files, directories or globs; local paths or URLs (s3://..., file://...).")
    score.add_argument("--output", required=True, help="Output directory (local or a shared mount); rerun with the same to resume.")
    score.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"Model directory or MLflow URI; an alias is resolved once, at the start (default: {DEFAULT_MODEL}).")
    score.add_argument("--runtime", default="torch", choices=RUNTIMES, help="torch (default), onnx or onnx-int8.")
    score.add_argument("--format", default="parquet", help="parquet (default), jsonl, or parquet,jsonl.")
    score.add_argument("--address", default=None,
                       help="Ray cluster to run on (auto, ray://head:10001); default: a local runtime of this process.")
    score.add_argument("--local-cpus", type=int, default=None, help="CPUs of the local runtime (default: every core).")
    score.add_argument("--actors", type=int, default=None,
                       help="Model actors (default: the cluster's CPUs / --threads-per-actor).")
    score.add_argument("--threads-per-actor", type=int, default=1,
                       help="torch/onnxruntime threads of each actor, reserved as Ray CPUs (default: 1).")
    score.add_argument("--partition-size", type=byte_size, default="1M",
                       help="Bytes of input per partition, e.g. 512K, 4M (default: 1M, about 4,000 posts).")
    score.add_argument("--batch-size", type=int, default=8, help="Posts per forward pass (default: 8).")
    score.add_argument("--sort-window", type=int, default=None,
                       help="Sort posts by length within windows of this many before batching (default: the whole "
                            "partition; 1 keeps file order).")
    score.add_argument("--database-url", default=None,
                       help="Store for routed posts and crisis state (default: OUT/_store.sqlite, so a resumed job "
                            "remembers what it routed; never the live store unless named).")
    score.add_argument("--as-of", choices=("created_at", "now"), default="created_at",
                       help="Route each post as of its created_at (default) or as of now.")
    score.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    score.add_argument("--routing-config", default=str(DEFAULT_ROUTING_PATH), help="Routing rules YAML file.")
    score.add_argument("--max-text-chars", type=int, default=DEFAULT_MAX_TEXT_CHARS, help="Longest accepted text.")
    score.add_argument("--store-text", action="store_true", help="Store post texts in the database too.")
    score.add_argument("--quiet", action="store_true", help="No progress lines on stderr.")
    score.set_defaults(handler="smista.score_handlers.cmd_score")
