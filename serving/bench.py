"""Benchmark the endpoint against the same model run plainly, one post at a time.

Measured against a running Router on loopback (started here when no URL is given):
  - single-post latency at light load (one client, sequential requests): p50/p95/p99;
  - throughput with concurrent single-post requests (adaptive batching merges them);
  - throughput with 64-post requests;
  - peak resident memory of the server's processes (when their pid is known);
and in the same run, in this process, the plain loop: tokenizer + model forward for one post at a
time, the way a naive deployment serves it. Every phase is bounded in requests and in seconds.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import platform
import resource
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data.taxonomy import REPO_ROOT
from serving.local_server import LocalServer

SEED_GLOB = "data/seed/*.jsonl"


class BenchError(RuntimeError):
    """The benchmark cannot run: the endpoint is down, refuses the key, or fails requests."""


@dataclass
class BenchConfig:
    url: str | None = None                 # a running endpoint; None: start one on a free loopback port
    model: str = "models:/smista-classifier@champion"
    api_key: str | None = None
    server_pid: int | None = None          # for memory, when the endpoint was started elsewhere
    texts_glob: str = SEED_GLOB
    light_requests: int = 300              # sequential single-post requests
    concurrent_requests: int = 800         # single-post requests, `concurrency` at a time
    concurrency: int = 16
    batch_requests: int = 24               # 64-post requests
    batch_size: int = 64
    batch_concurrency: int = 2
    plain_posts: int = 300                 # posts through the plain loop
    phase_seconds: float = 90.0            # no phase runs longer than this


@dataclass
class LatencySummary:
    requests: int
    failures: int
    seconds: float
    posts_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass
class BenchResult:
    machine: str
    model: str
    model_version: str
    light_load: LatencySummary
    concurrent_single: LatencySummary
    batched: LatencySummary
    route_light_load: LatencySummary
    light_after_load: LatencySummary
    plain: LatencySummary
    server_peak_rss_mb: float | None
    server_processes: int | None
    plain_process_peak_rss_mb: float
    concurrency: int
    batch_size: int
    ratios: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_description() -> str:
    model_name = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    return f"{len(os.sched_getaffinity(0))} cores, {model_name}, {platform.system()} {platform.release()}"


def load_texts(pattern: str, limit: int = 2000) -> list[str]:
    """Post texts from JSONL files (a glob, relative to the repository unless absolute)."""
    paths = sorted(glob.glob(pattern if os.path.isabs(pattern) else str(REPO_ROOT / pattern)))
    texts: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            texts.extend(json.loads(line)["text"] for line in handle if line.strip())
    if not texts:
        raise BenchError(f"no posts found in {pattern}")
    return texts[:limit]


def summarize(latencies: Sequence[float], failures: int, seconds: float, posts: int) -> LatencySummary:
    ordered = sorted(latencies) or [float("nan")]

    def percentile(share: float) -> float:
        index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
        return round(ordered[index] * 1000, 1)

    return LatencySummary(
        requests=len(latencies) + failures, failures=failures, seconds=round(seconds, 2),
        posts_per_second=round(posts / seconds, 1) if seconds else 0.0,
        p50_ms=percentile(0.50), p95_ms=percentile(0.95), p99_ms=percentile(0.99),
    )


class MemorySampler:
    """Peak resident memory of a process and its children, sampled every 50 ms in a thread."""

    def __init__(self, pid: int):
        import psutil

        self._root = psutil.Process(pid)
        self.peak_bytes = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                tree = [self._root, *self._root.children(recursive=True)]
                total = 0
                for process in tree:
                    try:
                        total += process.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
            except psutil.NoSuchProcess:
                return
            self.peak_bytes = max(self.peak_bytes, total)
            self.processes = max(self.processes, len(tree))
            self._stop.wait(0.05)


async def _load(url: str, headers: dict[str, str], bodies: Sequence[dict], concurrency: int,
                time_limit: float, posts_per_body: int) -> tuple[LatencySummary, list[dict]]:
    """Send `bodies`, `concurrency` at a time, stopping early at `time_limit` seconds."""
    import httpx

    latencies: list[float] = []
    failures: list[dict] = []
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    deadline = time.perf_counter() + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120.0) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.post(url, json=body)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    failures.append({"status": response.status_code, "body": response.text[:200]})

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return summarize(latencies, len(failures), elapsed, len(latencies) * posts_per_body), failures


def measure_endpoint(base_url: str, api_key: str | None, texts: list[str], config: BenchConfig) -> dict[str, Any]:
    headers = {"X-API-Key": api_key} if api_key else {}
    classify, route = f"{base_url}/classify", f"{base_url}/route"

    def single(index: int) -> dict:
        return {"posts": {"text": texts[index % len(texts)]}}

    def routed(index: int) -> dict:
        return {"posts": {"id": f"bench-{time.time_ns()}-{index}", "text": texts[index % len(texts)], "channel": "twitter"}}

    def batch(index: int) -> dict:
        start = index * config.batch_size
        return {"posts": [{"text": texts[(start + k) % len(texts)]} for k in range(config.batch_size)]}

    results: dict[str, Any] = {}
    _, failures = asyncio.run(_load(classify, headers, [single(i) for i in range(20)], 1, config.phase_seconds, 1))
    if failures:
        raise BenchError(f"warm-up requests failed: {failures[0]}")
    probe = _post_json(classify, headers, single(0))
    results["model_version"] = probe["model_version"]
    # Light load first, on a rested server: BentoML's batching dispatcher learns how long requests
    # queued under load and corks lone requests about that long for a while after (measured last).
    for name, url, bodies, concurrency, posts in (
        ("light_load", classify, [single(i) for i in range(config.light_requests)], 1, 1),
        ("route_light_load", route, [routed(i) for i in range(min(100, config.light_requests))], 1, 1),
        ("concurrent_single", classify, [single(i) for i in range(config.concurrent_requests)], config.concurrency, 1),
        ("batched", classify, [batch(i) for i in range(config.batch_requests)], config.batch_concurrency, config.batch_size),
        ("light_after_load", classify, [single(i) for i in range(50)], 1, 1),
    ):
        summary, failures = asyncio.run(_load(url, headers, bodies, concurrency, config.phase_seconds, posts))
        if failures:
            raise BenchError(f"{name}: {len(failures)} of {summary.requests} requests failed, e.g. {failures[0]}")
        results[name] = summary
    return results


def _post_json(url: str, headers: dict[str, str], body: dict) -> dict:
    import httpx

    response = httpx.post(url, json=body, headers=headers, timeout=60.0)
    if response.status_code != 200:
        raise BenchError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def measure_plain_loop(model_source: str, texts: list[str], posts: int, time_limit: float) -> LatencySummary:
    """The same model, one post at a time: tokenizer, forward, softmax/sigmoid, argmax. No batching,
    no length sorting, no server."""
    import torch
    from transformers import AutoTokenizer

    from training.model import SmistaMultiHeadModel

    model_dir = resolve_model_dir(model_source)
    if not (model_dir / "config.json").is_file():
        raise BenchError(f"{model_source}: the plain transformers loop needs a transformer model, and {model_dir} "
                         "holds none (a TF-IDF baseline?)")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = SmistaMultiHeadModel.from_pretrained(model_dir).eval()
    max_length = model.config.max_input_tokens
    latencies: list[float] = []

    def one(text: str) -> dict[str, int]:
        inputs = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            probabilities = model.probabilities(model(**inputs))
        return {head: int(values[0].argmax()) for head, values in probabilities.items()}

    for text in texts[:10]:  # warm-up, as the endpoint got
        one(text)
    deadline = time.perf_counter() + time_limit
    started = time.perf_counter()
    for index in range(posts):
        if time.perf_counter() > deadline:
            break
        begin = time.perf_counter()
        one(texts[index % len(texts)])
        latencies.append(time.perf_counter() - begin)
    return summarize(latencies, 0, time.perf_counter() - started, len(latencies))


def resolve_model_dir(source: str) -> Path:
    from training.predict import MLFLOW_URI_PREFIXES

    if source.startswith(MLFLOW_URI_PREFIXES):
        from training.tracking import download_model

        model_dir, _ = download_model(source, None)
        return Path(model_dir)
    return Path(source)


def run_benchmark(config: BenchConfig) -> BenchResult:
    texts = load_texts(config.texts_glob)
    if config.url is None:
        with LocalServer(model=config.model, error=BenchError) as server:
            with MemorySampler(server.pid) as memory:
                endpoint = measure_endpoint(server.url, server.api_key, texts, config)
            peak, processes = memory.peak_bytes, memory.processes
    else:
        if config.server_pid is not None:
            with MemorySampler(config.server_pid) as memory:
                endpoint = measure_endpoint(config.url.rstrip("/"), config.api_key, texts, config)
            peak, processes = memory.peak_bytes, memory.processes
        else:
            endpoint = measure_endpoint(config.url.rstrip("/"), config.api_key, texts, config)
            peak, processes = None, None
    plain = measure_plain_loop(config.model, texts, config.plain_posts, config.phase_seconds)
    plain_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = max(endpoint["concurrent_single"].posts_per_second, endpoint["batched"].posts_per_second)
    return BenchResult(
        machine=machine_description(),
        model=config.model,
        model_version=endpoint["model_version"],
        light_load=endpoint["light_load"],
        concurrent_single=endpoint["concurrent_single"],
        batched=endpoint["batched"],
        route_light_load=endpoint["route_light_load"],
        light_after_load=endpoint["light_after_load"],
        plain=plain,
        server_peak_rss_mb=round(peak / 2**20, 1) if peak else None,
        server_processes=processes,
        plain_process_peak_rss_mb=round(plain_peak_mb, 1),
        concurrency=config.concurrency,
        batch_size=config.batch_size,
        ratios={
            "best_endpoint_over_plain": round(best / plain.posts_per_second, 2),
            "concurrent_single_over_plain": round(endpoint["concurrent_single"].posts_per_second / plain.posts_per_second, 2),
            "batched_over_plain": round(endpoint["batched"].posts_per_second / plain.posts_per_second, 2),
        },
    )


def format_result(result: BenchResult) -> str:
    rows = [
        ("endpoint /classify, 1 post, 1 client (light load)", result.light_load),
        (f"endpoint /classify, 1 post, {result.concurrency} concurrent clients", result.concurrent_single),
        (f"endpoint /classify, {result.batch_size} posts per request", result.batched),
        ("endpoint /route, 1 post, 1 client (stores it)", result.route_light_load),
        ("endpoint /classify, 1 post, 1 client, right after load", result.light_after_load),
        ("plain loop, 1 post at a time, same model", result.plain),
    ]
    lines = [f"machine: {result.machine}", f"model: {result.model} ({result.model_version})", "",
             f"{'':56} {'requests':>8} {'posts/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"]
    for name, summary in rows:
        lines.append(f"{name:56} {summary.requests:>8} {summary.posts_per_second:>9} {summary.p50_ms:>8} "
                     f"{summary.p95_ms:>8} {summary.p99_ms:>8}")
    lines.append("")
    if result.server_peak_rss_mb is not None:
        lines.append(f"server peak RSS: {result.server_peak_rss_mb} MB over {result.server_processes} processes")
    lines.append(f"plain-loop process peak RSS: {result.plain_process_peak_rss_mb} MB")
    lines.append("throughput ratio endpoint / plain: " + ", ".join(f"{k} {v}x" for k, v in result.ratios.items()))
    return "\n".join(lines)
