"""Archive scoring speed: `smista score` (Ray Data) against `smista serve batch` (one process) on
the same posts, wall clock of each command as a user runs it (start-up and model loading included).

    .venv/bin/python scripts/score_benchmark.py --posts 20000 --model build/runs/<run>/model \\
        --configs batch,2x1,1x2 --json build/score-bench.json

The posts are the bundled seed posts, cycled to --posts with fresh ids and times (their lengths,
not their labels, matter here). Each Ray configuration is ACTORSxTHREADS; the single-process
command uses every core. Results go to docs/SCALING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_posts(path: Path, count: int) -> None:
    texts = []
    for seed_file in sorted((REPO / "data" / "seed").glob("*.jsonl")):
        for line in seed_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                post = json.loads(line)
                texts.append((post["text"], post["channel"]))
    start = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            text, channel = texts[number % len(texts)]
            handle.write(json.dumps({
                "id": f"bench-{number:07d}", "text": text, "channel": channel,
                "author": {"handle": f"@autore{number % 5000}"},
                "created_at": (start + timedelta(seconds=37 * number)).isoformat(),
            }, ensure_ascii=False) + "\n")


def run(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-3000:]}")
    return seconds, result.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--model", required=True, help="Model directory or MLflow URI (the same for every run).")
    parser.add_argument("--runtime", default="torch")
    parser.add_argument("--configs", default="batch,2x1,1x2",
                        help="batch (smista serve batch) and/or ACTORSxTHREADS of smista score, comma-separated.")
    parser.add_argument("--partition-size", default="1M")
    parser.add_argument("--workdir", default="build/score-bench")
    parser.add_argument("--json", default=None, help="Write the results here too.")
    args = parser.parse_args()

    workdir = REPO / args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    posts = workdir / f"posts-{args.posts}.jsonl"
    if not posts.is_file():
        write_posts(posts, args.posts)
    smista = [sys.executable, "-m", "smista"]
    results = []
    for config in args.configs.split(","):
        output = workdir / f"out-{config}"
        shutil.rmtree(output, ignore_errors=True)
        if config == "batch":
            command = [*smista, "serve", "batch", str(posts), "--output", str(output / "routes.jsonl"),
                       "--model", args.model, "--runtime", args.runtime, "--no-progress"]
        else:
            actors, threads = config.split("x")
            command = [*smista, "score", str(posts), "--output", str(output), "--model", args.model,
                       "--runtime", args.runtime, "--actors", actors, "--threads-per-actor", threads,
                       "--partition-size", args.partition_size, "--quiet"]
        seconds, last_line = run(command)
        result = {"config": config, "posts": args.posts, "seconds": round(seconds, 1),
                  "posts_per_second": round(args.posts / seconds, 1), "summary": last_line}
        if config != "batch":
            done = [json.loads(path.read_text()) for path in sorted((output / "_done").glob("*.json"))]
            result["predict_seconds_per_actor_sum"] = round(sum(item["predict_seconds"] for item in done), 1)
            result["route_ms_per_post"] = round(1000 * sum(item["route_seconds"] for item in done) / args.posts, 2)
        results.append(result)
        print(json.dumps(result), flush=True)
    print(f"\n{'config':>8} {'seconds':>8} {'posts/s':>8}  (cores: {os.cpu_count()}, model: {args.model}, runtime: {args.runtime})")
    for result in results:
        print(f"{result['config']:>8} {result['seconds']:>8.1f} {result['posts_per_second']:>8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
