"""A bounded soak of the live endpoint: mixed load on loopback for a fixed time, while the server's
memory and open files are sampled.

The mix is what a care platform and a careless client send together: classifications, routings of
new posts, retries of a routing (a replay), a reused post id with another text (409), feedback and
its retries, feedback for an unknown post (404), the crisis report, probes and metrics, invalid
JSON and unknown fields (400), a missing key (401), unknown paths (404) and oversized bodies (413).
Each operation lists the statuses a correct service answers; anything else is *unexpected* (a 5xx
always is). Resource use is summed over every process of the server (found by the id they carry,
serving.local_server.SERVER_ID_VARIABLE), sampled every few seconds; "flat" compares the median of
the first sampling window after the warm-up with the median of the last one.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psutil

from benchmarks.speed.bench import SEED_GLOB, load_texts
from serving.local_server import SERVER_ID_VARIABLE, LocalServer, processes_with_environment

CHANNELS = ("twitter", "facebook", "instagram", "email", "whatsapp")
# Small enough that the 413 operation sends a modest body, large enough for every other request.
SOAK_MAX_REQUEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class SoakConfig:
    model: str
    seconds: float = 600.0
    concurrency: int = 4
    sample_every_s: float = 5.0
    warmup_s: float = 60.0
    window_s: float = 60.0  # the first and last windows whose medians are compared
    texts_glob: str = SEED_GLOB
    seed: int = 0
    max_rss_growth_mb: float = 64.0
    max_open_files_growth: int = 8


@dataclass
class OperationStats:
    expected: list[int]
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms) or [float("nan")]
        return {
            "requests": sum(self.statuses.values()),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "expected": self.expected,
            "p50_ms": round(ordered[len(ordered) // 2], 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        }


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mb: float
    open_files: int
    threads: int
    processes: int
    rss_by_process_mb: dict[str, float] = field(default_factory=dict)  # role -> RSS, to tell who grows


@dataclass
class SoakResult:
    seconds: float
    requests: int
    unexpected: int
    unexpected_examples: list[dict[str, Any]]
    operations: dict[str, dict[str, Any]]
    samples: list[Sample]
    rss_start_mb: float
    rss_end_mb: float
    open_files_start: int
    open_files_end: int
    flat: bool
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LoadMix:
    """Builds the next request of the mix; remembers what it routed so retries and feedback are real."""

    def __init__(self, texts: list[str], api_key: str, seed: int):
        self.texts = texts
        self.key = {"X-API-Key": api_key}
        self.random = random.Random(seed)
        self.routed: list[dict[str, Any]] = []  # bodies of /route requests that were answered 200
        self.feedback: list[dict[str, Any]] = []
        self.counter = 0
        # name -> (weight, expected statuses, builder of (method, path, headers, json body or raw bytes))
        self.operations: dict[str, tuple[int, list[int], Callable[[], tuple[str, str, dict, Any]]]] = {
            "classify": (15, [200], self._classify),
            "route_new": (25, [200], self._route_new),
            "route_retry": (8, [200], self._route_retry),
            "route_conflict": (3, [409], self._route_conflict),
            "feedback": (12, [200], self._feedback),
            "feedback_retry": (4, [200], self._feedback_retry),
            "feedback_unknown_post": (3, [404], self._feedback_unknown),
            "crisis": (4, [200], lambda: ("GET", "/crisis", self.key, None)),
            "probes_and_metrics": (5, [200], self._probe),
            "invalid_json": (3, [400], lambda: ("POST", "/route", self.key, b"{\"posts\": [")),
            "unknown_field": (3, [400], lambda: ("POST", "/classify", self.key, {"posts": {"text": self._text(), "colore": 1}})),
            "missing_key": (3, [401], lambda: ("POST", "/classify", {}, {"posts": {"text": self._text()}})),
            "unknown_path": (2, [404], lambda: ("GET", f"/soak-unknown-{self._next()}", self.key, None)),
            "oversized_body": (1, [413], lambda: ("POST", "/classify", self.key,
                                                  {"posts": {"text": "x" * (SOAK_MAX_REQUEST_BYTES + 1)}})),
        }
        self._names = list(self.operations)

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _text(self) -> str:
        return self.random.choice(self.texts)

    def _post(self) -> dict[str, Any]:
        return {"id": f"soak-{self._next()}", "text": self._text(), "channel": self.random.choice(CHANNELS),
                "author": {"handle": f"@cliente_{self.random.randrange(5000)}", "followers": self.random.randrange(10_000)}}

    def _classify(self):
        return "POST", "/classify", self.key, {"posts": [{"text": self._text()} for _ in range(self.random.randint(1, 4))]}

    def _route_new(self):
        return "POST", "/route", self.key, {"posts": [self._post() for _ in range(self.random.randint(1, 4))]}

    def _route_retry(self):
        return "POST", "/route", self.key, self.random.choice(self.routed)

    def _route_conflict(self):
        post = dict(self.random.choice(self.routed)["posts"][0])
        post["text"] = post["text"] + " (modificato)"
        return "POST", "/route", self.key, {"posts": [post]}

    def _feedback(self):
        post_id = self.random.choice(self.random.choice(self.routed)["posts"])["id"]
        body: dict[str, Any] = {"post_id": post_id, "resolved": self.random.random() < 0.7,
                                "agent_id": f"agente-{self.random.randrange(20)}"}
        if self.random.random() < 0.5:
            body["idempotency_key"] = f"fb-{self._next()}"
        if self.random.random() < 0.3:
            body["corrected_labels"] = {"priority": self.random.choice(["bassa", "normale", "alta", "urgente"])}
        return "POST", "/feedback", self.key, body

    def _feedback_retry(self):
        return "POST", "/feedback", self.key, self.random.choice(self.feedback)

    def _feedback_unknown(self):
        return "POST", "/feedback", self.key, {"post_id": f"mai-visto-{self._next()}", "resolved": False}

    def _probe(self):
        # The probes answer without a key (orchestrators call them); the metrics need one.
        path = self.random.choice(["/healthz", "/readyz", "/metrics"])
        return "GET", path, self.key if path == "/metrics" else {}, None

    def next(self) -> tuple[str, str, str, dict, Any]:
        # Retries, conflicts and feedback need a routed post (a stored feedback): until there is one,
        # they are not drawn, so that every request is the operation it is counted as.
        needs = {"route_retry": self.routed, "route_conflict": self.routed, "feedback": self.routed,
                 "feedback_retry": self.feedback}
        names = [name for name in self._names if name not in needs or needs[name]]
        weights = [self.operations[name][0] for name in names]
        name = self.random.choices(names, weights)[0]
        return (name, *self.operations[name][2]())

    def answered(self, name: str, path: str, body: Any, status: int) -> None:
        """Remember what the server stored, for later retries and feedback (bounded lists)."""
        if status != 200 or not isinstance(body, dict):
            return
        if path == "/route" and name == "route_new":
            _remember(self.routed, body, self.random)
        elif path == "/feedback" and name == "feedback":
            _remember(self.feedback, body, self.random)


def _remember(items: list, item: Any, rng: random.Random, limit: int = 500) -> None:
    if len(items) < limit:
        items.append(item)
    else:
        items[rng.randrange(limit)] = item


def process_role(command_line: str) -> str:
    """Which part of `bentoml serve` a process is, from its command line."""
    if "smista_classifier" in command_line.lower() or "Classifier" in command_line:
        return "classifier"
    if "worker" in command_line:
        return "router"
    return "supervisor"


class ResourceSampler:
    """Every `every_s` seconds: RSS, open files, threads and process count of the server's processes."""

    def __init__(self, server_id: str, every_s: float):
        self.server_id = server_id
        self.every_s = every_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ResourceSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> Sample:
        rss = files = threads = count = 0
        by_process: dict[str, float] = {}
        for process in processes_with_environment(SERVER_ID_VARIABLE, self.server_id):
            try:
                with process.oneshot():
                    resident = process.memory_info().rss
                    files += process.num_fds()
                    threads += process.num_threads()
                    role = process_role(" ".join(process.cmdline()))
                rss += resident
                by_process[f"{role}-{process.pid}"] = round(resident / 1e6, 1)
                count += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return Sample(round(time.monotonic() - self._started, 1), round(rss / 1e6, 1), files, threads, count, by_process)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.every_s)


async def _drive(url: str, mix: LoadMix, stats: dict[str, OperationStats], unexpected: list[dict[str, Any]],
                 concurrency: int, seconds: float) -> int:

    deadline = time.monotonic() + seconds
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < deadline:
                name, method, path, headers, body = mix.next()
                started = time.perf_counter()
                try:
                    if isinstance(body, bytes):
                        response = await client.request(method, path, headers={**headers, "content-type": "application/json"},
                                                        content=body)
                    else:
                        response = await client.request(method, path, headers=headers, json=body)
                    status, text = response.status_code, response.text
                except httpx.HTTPError as exc:  # a dropped connection is a failure of the service too
                    status, text = 0, f"{type(exc).__name__}: {exc}"
                sent += 1
                record = stats[name]
                record.statuses[status] += 1
                record.latencies_ms.append((time.perf_counter() - started) * 1000)
                if status not in record.expected:
                    if len(unexpected) < 20:
                        unexpected.append({"operation": name, "path": path, "status": status, "body": text[:300]})
                    else:
                        unexpected.append({"operation": name, "status": status})
                mix.answered(name, path, body, status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent


def _median(samples: list[Sample], start: float, end: float, attribute: str) -> float:
    values = [getattr(sample, attribute) for sample in samples if start <= sample.at_s <= end]
    return statistics.median(values) if values else float("nan")


def judge(samples: list[Sample], config: SoakConfig, seconds: float) -> tuple[float, float, int, int, bool, str]:
    """Medians of RSS and open files in the first window after the warm-up and in the last window."""
    first = (config.warmup_s, config.warmup_s + config.window_s)
    last = (max(config.warmup_s, seconds - config.window_s), seconds + config.sample_every_s)
    rss_start, rss_end = (_median(samples, *first, "rss_mb"), _median(samples, *last, "rss_mb"))
    files_start, files_end = (_median(samples, *first, "open_files"), _median(samples, *last, "open_files"))
    rss_growth, files_growth = rss_end - rss_start, files_end - files_start
    flat = rss_growth <= config.max_rss_growth_mb and files_growth <= config.max_open_files_growth
    verdict = (f"RSS {rss_start:.0f} -> {rss_end:.0f} MB ({rss_growth:+.0f} MB, bound +{config.max_rss_growth_mb:.0f}); "
               f"open files {files_start:.0f} -> {files_end:.0f} ({files_growth:+.0f}, bound +{config.max_open_files_growth})")
    return rss_start, rss_end, int(files_start), int(files_end), flat, verdict


def run_soak(config: SoakConfig, progress: Callable[[str], None] | None = None) -> SoakResult:
    if config.seconds < config.warmup_s + config.window_s:
        raise ValueError(f"{config.seconds:.0f} s is shorter than the warm-up plus one window "
                         f"({config.warmup_s + config.window_s:.0f} s): nothing to compare")
    texts = load_texts(config.texts_glob)
    env = {"SMISTA_MAX_REQUEST_BYTES": str(SOAK_MAX_REQUEST_BYTES)}
    with LocalServer(config.model, extra_env=env) as server:
        mix = LoadMix(texts, server.api_key, config.seed)
        stats = {name: OperationStats(expected) for name, (_, expected, _) in mix.operations.items()}
        unexpected: list[dict[str, Any]] = []
        if progress:
            progress(f"server up at {server.url}; {config.seconds:.0f} s of mixed load, {config.concurrency} clients")
        with ResourceSampler(server.server_id, config.sample_every_s) as sampler:
            started = time.monotonic()
            sent = asyncio.run(_drive(server.url, mix, stats, unexpected, config.concurrency, config.seconds))
            elapsed = time.monotonic() - started
            sampler.samples.append(sampler.sample())  # the state after the last request
    rss_start, rss_end, files_start, files_end, flat, verdict = judge(sampler.samples, config, elapsed)
    return SoakResult(
        seconds=round(elapsed, 1), requests=sent, unexpected=len(unexpected), unexpected_examples=unexpected[:20],
        operations={name: record.summary() for name, record in stats.items()}, samples=sampler.samples,
        rss_start_mb=rss_start, rss_end_mb=rss_end, open_files_start=files_start, open_files_end=files_end,
        flat=flat, verdict=verdict,
    )


def format_result(result: SoakResult) -> str:
    lines = [f"Soak: {result.requests} requests in {result.seconds:.0f} s "
             f"({result.requests / result.seconds:.1f}/s), unexpected answers: {result.unexpected}",
             "", f"{'operation':<24}{'requests':>9}  {'statuses':<28}{'p50 ms':>8}{'p99 ms':>9}", "-" * 78]
    for name, summary in result.operations.items():
        statuses = ", ".join(f"{code}×{count}" for code, count in summary["statuses"].items())
        lines.append(f"{name:<24}{summary['requests']:>9}  {statuses:<28}{summary['p50_ms']:>8}{summary['p99_ms']:>9}")
    lines += ["", f"{'at s':>7}{'RSS MB':>9}{'files':>7}{'threads':>9}{'procs':>7}"]
    step = max(1, len(result.samples) // 12)
    for sample in result.samples[::step] + ([result.samples[-1]] if len(result.samples) % step != 1 else []):
        lines.append(f"{sample.at_s:>7.0f}{sample.rss_mb:>9.0f}{sample.open_files:>7}{sample.threads:>9}{sample.processes:>7}")
    lines += ["", f"{'flat' if result.flat else 'NOT flat'}: {result.verdict}"]
    for example in result.unexpected_examples[:5]:
        lines.append(f"unexpected: {json.dumps(example, ensure_ascii=True)}")
    return "\n".join(lines)
