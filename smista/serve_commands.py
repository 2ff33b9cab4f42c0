"""`smista serve ...`: run the HTTP endpoint, score a JSONL archive, benchmark the endpoint.

    smista serve [--port 3000] [--model DIR_OR_URI] [--runtime torch|onnx|onnx-int8]
                                                           bentoml serve on 127.0.0.1 (foreground)
    smista serve batch POSTS.jsonl --output ROUTES.jsonl   classify and route a file, no server
    smista serve bench [--url http://127.0.0.1:3000]       endpoint per runtime vs plain loop vs compute ceiling
    smista serve soak [--seconds 600]                      bounded mixed load; memory and open files sampled

API keys come from SMISTA_API_KEYS only (a command-line flag would show them in `ps`).

The arguments; what the commands do is in smista/serve_handlers.py (the load tests: serve_bench_handlers.py).
"""

from __future__ import annotations

import argparse

from data.schema import DEFAULT_MAX_TEXT_CHARS
from data.taxonomy import DEFAULT_TAXONOMY_PATH
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.settings import DEFAULT_MODEL
from training.inference.runtimes import RUNTIMES


def register(groups: argparse._SubParsersAction) -> None:
    serve = groups.add_parser(
        "serve", help="Run the HTTP endpoint (bentoml serve on 127.0.0.1), score a JSONL file, or benchmark.",
        description="Without a subcommand: run `bentoml serve serving.service:Router` in the foreground. "
                    "Settings come from SMISTA_* variables (serving/settings.py); the flags override them.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="Bind address (default: 127.0.0.1).")
    serve.add_argument("--port", type=int, default=3000, help="Port (default: 3000).")
    serve.add_argument("--model", default=None, help=f"Model directory or MLflow URI (default: $SMISTA_MODEL or {DEFAULT_MODEL}).")
    serve.add_argument("--runtime", default=None, choices=RUNTIMES,
                       help="How the Classifier runs the model: torch, onnx (fp32 export) or onnx-int8 (quantised export); "
                            "a missing or stale export is made at start-up (default: $SMISTA_RUNTIME, else the runtime recorded on "
                            "the served registry version by `smista models check-runtime --choose`, else torch).")
    serve.add_argument("--routing-config", default=None, help="Routing rules YAML (default: $SMISTA_ROUTING_CONFIG or configs/routing.yaml).")
    serve.add_argument("--taxonomy", default=None, help="Taxonomy YAML (default: $SMISTA_TAXONOMY or configs/taxonomy.yaml).")
    serve.add_argument("--database-url", default=None, help="SQLAlchemy URL of the store (default: $SMISTA_DATABASE_URL or build/serving/smista.db).")
    serve.add_argument("--no-api-key", action="store_true", help="Serve without API keys (loopback only).")
    serve.set_defaults(handler="smista.serve_handlers.cmd_serve")
    commands = serve.add_subparsers(dest="command", required=False, metavar="<command>")

    batch = commands.add_parser("batch", help="Classify and route a JSONL file of posts, without a server.")
    batch.add_argument("input", help="JSONL file of posts (the post schema).")
    batch.add_argument("--output", required=True, help="JSONL file to write: one line per post with predictions and route.")
    batch.add_argument("--model", default=DEFAULT_MODEL, help=f"Model directory or MLflow URI (default: {DEFAULT_MODEL}).")
    batch.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    batch.add_argument("--routing-config", default=str(DEFAULT_ROUTING_PATH), help="Routing rules YAML file.")
    batch.add_argument("--database-url", default="sqlite://",
                       help="Store for predictions and crisis state (default: in memory, so a replay does not touch the live store).")
    batch.add_argument("--as-of", choices=("created_at", "now"), default="created_at",
                       help="Route each post as of its created_at (default) or as of now.")
    batch.add_argument("--chunk-size", type=int, default=64, help="Posts predicted together (default: 64).")
    batch.add_argument("--runtime", default="torch", choices=RUNTIMES,
                       help="torch (default), onnx or onnx-int8: see `smista serve --help`.")
    batch.add_argument("--keep-going", action="store_true", help="Skip bad lines (reported) instead of stopping.")
    batch.add_argument("--max-text-chars", type=int, default=DEFAULT_MAX_TEXT_CHARS, help="Longest accepted text.")
    batch.add_argument("--store-text", action="store_true", help="Store post texts in the database too.")
    batch.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")
    batch.set_defaults(handler="smista.serve_handlers.cmd_batch")

    upgrade = commands.add_parser(
        "upgrade-store", help="Bring the prediction store's schema to this release (Alembic migrations).",
        description="The server and `serve batch` upgrade a store when they open it; run this first on PostgreSQL, "
                    "or to upgrade a store before deploying (docs/SECURITY.md, \"Schema migrations\").",
    )
    upgrade.add_argument("--database-url", default=None,
                         help="SQLAlchemy URL of the store (default: $SMISTA_DATABASE_URL or build/serving/smista.db).")
    upgrade.set_defaults(handler="smista.serve_handlers.cmd_upgrade_store")

    bench = commands.add_parser(
        "bench", help="Benchmark the endpoint per runtime (torch, onnx, onnx-int8) against a plain loop and the compute ceiling.",
        description="Bounded concurrent load on loopback. The API key is read from $SMISTA_API_KEY "
                    "when --url is given; without --url a server is started on a free port for each of --runtimes, "
                    "in turn. Each throughput is also shown as a share of the compute ceiling: the model's FLOPs per "
                    "post at the posts' mean token length against the fp32 matmul rate measured in a fresh process.",
    )
    bench.add_argument("--url", default=None, help="A running endpoint, e.g. http://127.0.0.1:3000 (default: start one).")
    bench.add_argument("--model", default=DEFAULT_MODEL, help="The model the endpoint serves (for the plain loop, and for the server started here).")
    bench.add_argument("--plain-model", default=None,
                       help="The model the plain loop runs instead of --model, e.g. the teacher of a distilled student "
                            "(default: --model).")
    bench.add_argument("--server-pid", type=int, default=None, help="Pid of the running `bentoml serve`, to measure its memory.")
    bench.add_argument("--posts", default="data/seed/*.jsonl", help="JSONL files whose texts are sent (default: the seed posts).")
    bench.add_argument("--light-requests", type=int, default=300, help="Sequential single-post requests (latency).")
    bench.add_argument("--concurrent-requests", type=int, default=800, help="Single-post requests sent concurrently.")
    bench.add_argument("--concurrency", type=int, default=16, help="Concurrent clients for single-post requests.")
    bench.add_argument("--batch-requests", type=int, default=24, help="64-post requests.")
    bench.add_argument("--plain-posts", type=int, default=300, help="Posts through the plain loop.")
    bench.add_argument("--phase-seconds", type=float, default=90.0, help="Time limit of each phase.")
    bench.add_argument("--runtimes", default=",".join(RUNTIMES),
                       help="Comma-separated runtimes to start a server for, in turn (default: all: "
                            f"{','.join(RUNTIMES)}); ignored with --url, whose endpoint says its own.")
    bench.add_argument("--no-ceiling", action="store_true",
                       help="Skip the compute ceiling (fp32 matmul rate and the model's FLOPs per post).")
    bench.add_argument("--matmul-size", type=int, default=2048, help="Square fp32 matrices for the matmul rate (default: 2048).")
    bench.add_argument("--rounds", type=int, default=1,
                       help="Rounds of the 64-post phase per runtime and of the plain loop (default 1); with more, the "
                            "runtimes' servers then run side by side, each later round measures them and the plain loop "
                            "in turn (rotating the order), and the ratios' medians over rounds are reported too "
                            "(steadier on a shared machine).")
    bench.add_argument("--json-output", default=None, help="Also write the results as JSON here.")
    bench.set_defaults(handler="smista.serve_bench_handlers.cmd_bench")

    soak = commands.add_parser(
        "soak", help="Mixed load on a server started here for a fixed time: unexpected answers, memory and open files.",
        description="Starts the Router on a free loopback port and sends, from --concurrency clients, the mix of "
                    "benchmarks/speed/soak.py (classify, route, retries, conflicts, feedback, crisis, probes, bad requests) "
                    "until --seconds have passed. Exits 1 on any unexpected answer or when memory or open files grow "
                    "past the bounds between the first window after the warm-up and the last one.",
    )
    soak.add_argument("--model", default=DEFAULT_MODEL, help=f"Model directory or MLflow URI (default: {DEFAULT_MODEL}).")
    soak.add_argument("--seconds", type=float, default=600.0, help="Length of the load (default: 600).")
    soak.add_argument("--concurrency", type=int, default=4, help="Concurrent clients (default: 4).")
    soak.add_argument("--sample-every", type=float, default=5.0, help="Seconds between resource samples (default: 5).")
    soak.add_argument("--warmup", type=float, default=60.0, help="Seconds before the first compared window (default: 60).")
    soak.add_argument("--window", type=float, default=60.0, help="Length of the compared windows (default: 60).")
    soak.add_argument("--max-rss-growth-mb", type=float, default=64.0, help="Allowed growth of the servers' RSS (default: 64 MB).")
    soak.add_argument("--posts", default="data/seed/*.jsonl", help="JSONL files whose texts are sent (default: the seed posts).")
    soak.add_argument("--json-output", default=None, help="Also write the results, every sample included, as JSON here.")
    soak.set_defaults(handler="smista.serve_bench_handlers.cmd_soak")
