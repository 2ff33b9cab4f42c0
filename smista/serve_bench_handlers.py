"""`smista serve bench` and `smista serve soak`: the load tests of the endpoint (their arguments are in
smista/serve_commands.py). A module of their own because they import torch (the compute ceiling,
the plain loop), which the other `smista serve` commands do not need."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks.speed.bench import BenchConfig, run_benchmark
from benchmarks.speed.bench import format_result as format_bench_result
from benchmarks.speed.soak import SoakConfig, run_soak
from benchmarks.speed.soak import format_result as format_soak_result
from data.errors import UserError
from training.inference.runtimes import RUNTIMES


def cmd_bench(args: argparse.Namespace) -> int:
    runtimes = tuple(name.strip() for name in args.runtimes.split(",") if name.strip())
    unknown = [name for name in runtimes if name not in RUNTIMES]
    if unknown or not runtimes:
        raise UserError(f"--runtimes: unknown {', '.join(unknown) or 'empty list'}; expected some of: {', '.join(RUNTIMES)}")
    if args.rounds < 1:
        raise UserError(f"--rounds: {args.rounds}; give 1 (one pass) or more")
    config = BenchConfig(
        url=args.url,
        model=args.model,
        plain_model=args.plain_model,
        api_key=os.environ.get("SMISTA_API_KEY"),
        server_pid=args.server_pid,
        texts_glob=args.posts,
        light_requests=args.light_requests,
        concurrent_requests=args.concurrent_requests,
        concurrency=args.concurrency,
        batch_requests=args.batch_requests,
        plain_posts=args.plain_posts,
        phase_seconds=args.phase_seconds,
        runtimes=runtimes,
        ceiling=not args.no_ceiling,
        matmul_size=args.matmul_size,
        rounds=args.rounds,
    )
    result = run_benchmark(config, progress=lambda line: print(f"bench: {line}", file=sys.stderr, flush=True))
    print(format_bench_result(result))
    if args.json_output:
        Path(args.json_output).write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
        print(f"Written to {args.json_output}")
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    try:
        config = SoakConfig(model=args.model, seconds=args.seconds, concurrency=args.concurrency,
                            sample_every_s=args.sample_every, warmup_s=args.warmup, window_s=args.window,
                            texts_glob=args.posts, max_rss_growth_mb=args.max_rss_growth_mb)
        result = run_soak(config, progress=lambda line: print(f"soak: {line}", file=sys.stderr, flush=True))
    except ValueError as exc:
        raise UserError(f"--seconds: {exc}") from None
    print(format_soak_result(result))
    if args.json_output:
        Path(args.json_output).write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
        print(f"Written to {args.json_output}")
    # Exit 1 when the service answered something it should not have, or grew.
    return 0 if result.unexpected == 0 and result.flat else 1
