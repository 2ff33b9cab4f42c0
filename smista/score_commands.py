"""`smista score`: classify and route an archive on Ray Data, resumable, on one machine or a cluster.

    smista score POSTS... --output DIR [--model URI_OR_DIR] [--address auto]

Needs the `ray` extra (`pip install 'smista[ray]'`; the test command installs it).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from data.schema import DEFAULT_MAX_TEXT_CHARS
from data.taxonomy import DEFAULT_TAXONOMY_PATH
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.settings import DEFAULT_MODEL
from training.inference.runtimes import RUNTIMES

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def __getattr__(name: str) -> tuple[type[Exception], ...]:
    """USER_ERRORS, imported only when an error is reported (Ray takes a second to import)."""
    if name != "USER_ERRORS":
        raise AttributeError(name)
    from serving.archive_shards import ArchiveError
    from serving.partitioned_output import OutputMismatch
    from serving.ray_scoring import ScoreError

    return (ArchiveError, OutputMismatch, ScoreError)


def byte_size(value: str) -> int:
    """"1M" -> 1048576; plain numbers are bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", value, flags=re.IGNORECASE)
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a size: write bytes, or e.g. 512K, 4M, 1G")
    return int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]


def cmd_score(args: argparse.Namespace) -> int:
    from smista.cli import UserError

    try:
        from serving.partitioned_output import OUTPUT_FORMATS
        from serving.ray_scoring import ScoreConfig, score_archive
    except ModuleNotFoundError as exc:
        if exc.name != "ray" and not (exc.name or "").startswith("ray."):
            raise
        raise UserError("smista score runs on Ray, which is not installed: pip install 'smista[ray]' "
                        "(or `bash scripts/install.sh`, which installs it)") from None

    formats = tuple(name.strip() for name in args.format.split(",") if name.strip())
    unknown = [name for name in formats if name not in OUTPUT_FORMATS]
    if unknown or not formats:
        raise UserError(f"--format: {', '.join(unknown) or 'empty'}; choose parquet, jsonl or parquet,jsonl")
    report = score_archive(ScoreConfig(
        inputs=args.inputs,
        output_dir=Path(args.output),
        model=args.model,
        taxonomy_path=Path(args.taxonomy),
        routing_config_path=Path(args.routing_config),
        database_url=args.database_url,
        as_of=args.as_of,
        runtime=args.runtime,
        formats=formats,
        partition_bytes=args.partition_size,
        batch_size=args.batch_size,
        sort_window=args.sort_window,
        actors=args.actors,
        threads_per_actor=args.threads_per_actor,
        address=args.address,
        local_cpus=args.local_cpus,
        max_text_chars=args.max_text_chars,
        store_post_text=args.store_text,
    ), progress=None if not args.quiet else (lambda line: None))
    rejected = report.rejected_before + report.rejected
    print(f"Scored {report.scored} posts in {report.seconds:.1f} s ({report.posts_per_second:.1f} posts/s, "
          f"{report.actors} actors) with {report.model_version} -> {report.output_dir}; "
          f"{report.rejected} rejects in {report.output_dir / 'rejects'}; "
          f"{report.partitions} partitions, {report.skipped} done by an earlier run"
          + (f" ({report.scored_before} posts, {report.rejected_before} rejects)" if report.skipped else ""))
    # Any reject of the job, this run's or an earlier one's: a resumed job reports as a whole.
    return 1 if rejected else 0


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
    score.set_defaults(handler=cmd_score)
