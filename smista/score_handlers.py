"""`smista score`: what the command does (its arguments are in smista/score_commands.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.errors import UserError
from serving.partitioned_output import OUTPUT_FORMATS

try:
    from serving.ray_scoring import ScoreConfig, score_archive
except ModuleNotFoundError as exc:  # Ray is an optional extra: without it, say how to install it
    if exc.name != "ray" and not (exc.name or "").startswith("ray."):
        raise
    RAY_MISSING = True
else:
    RAY_MISSING = False


def cmd_score(args: argparse.Namespace) -> int:
    if RAY_MISSING:
        raise UserError("smista score runs on Ray, which is not installed: pip install 'smista[ray]' "
                        "(or `bash scripts/install.sh`, which installs it)")
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
