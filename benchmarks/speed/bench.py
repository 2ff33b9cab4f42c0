"""Benchmark the endpoint, per inference runtime, against the same model run plainly, one post at a
time, and against the machine's compute ceiling.

Measured against a running Router on loopback (one `bentoml serve` started here per runtime, in
turn: torch fp32, onnx fp32, onnx int8; or the one endpoint given by URL):
  - single-post latency at light load (one client, sequential requests): p50/p95/p99;
  - throughput with concurrent single-post requests (adaptive batching merges them);
  - throughput with 64-post requests;
  - peak resident memory of the server's processes (when their pid is known);
and in the same run, in this process, the plain loop: the same model through the Predictor, one post
at a time, the way a naive deployment serves it. Every phase is bounded in requests and in seconds.

The compute ceiling: the model's forward FLOPs per post at the mean token length of the posts a
figure sent (`training.inference.compute_cost.model_flops`: 2 x the encoder's Linear weights per token, plus the attention score
and value products, 2 x 2 x L^2 x attention width per layer, which grow with the square of the
length; the heads are counted too, embeddings and element-wise ops are not), divided into the fp32
matrix-multiply throughput of this machine, measured in a fresh subprocess (`training.machine.measure_matmul`:
torch.matmul of large square fp32 matrices, best of a few). Each throughput figure is shown as a
share of the posts/s that ceiling allows. An int8 figure can pass 100%: int8 arithmetic is not
bounded by the fp32 rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import json
import os
import resource
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psutil

from data.errors import UserError
from data.locations import PROJECT_DIR
from serving.local_server import LocalServer
from serving.settings import CLASSIFIER_SERVICE_NAME
from training.errors import ModelLoadError
from training.inference.compute_cost import model_flops, model_shape
from training.inference.onnx_export import default_onnx_dir, ensure_export
from training.inference.predict import Predictor
from training.inference.runtimes import RUNTIMES
from training.machine import machine_description, measure_matmul

SEED_GLOB = "data/seed/*.jsonl"
RUNTIME_TITLES = {"torch": "torch fp32", "onnx": "onnx fp32", "onnx-int8": "onnx int8", "sklearn": "sklearn (TF-IDF)"}


class BenchError(UserError, RuntimeError):
    """The benchmark cannot run: the endpoint is down, refuses the key, or fails requests."""


@dataclass
class BenchConfig:
    url: str | None = None                 # a running endpoint; None: start one on a free loopback port
    model: str = "models:/smista-classifier@champion"
    # The model the plain loop runs (None: `model`): e.g. the teacher of a distilled student that the
    # endpoint serves, so the ratios say what serving the student gains over running the teacher plainly.
    plain_model: str | None = None
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
    runtimes: tuple[str, ...] = RUNTIMES   # one server per runtime, in turn (ignored with `url`)
    ceiling: bool = True                   # measure the fp32 matmul rate and the model's FLOPs
    matmul_size: int = 2048                # square fp32 matrices for the matmul rate
    matmul_repeats: int = 10
    # Rounds of the 64-post phase per runtime (and of the plain loop): the first is part of the full
    # pass; for the later ones every runtime's server runs side by side and each round measures them
    # in turn (`interleaved_rounds`). On a shared host the runtimes, measured one after another, get
    # different shares of the machine; per-round ratios of measurements seconds apart, and their
    # median, are steadier than one pass.
    rounds: int = 1


@dataclass
class LatencySummary:
    requests: int
    failures: int
    seconds: float
    posts_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_tokens: float | None = None        # of the posts sent (the model's tokenizer, truncated)
    ceiling_share: float | None = None      # posts_per_second / the compute ceiling at mean_tokens


@dataclass
class EndpointResult:
    """Every endpoint phase against one server (one runtime)."""

    runtime: str
    model_version: str
    light_load: LatencySummary
    concurrent_single: LatencySummary
    batched: LatencySummary
    route_light_load: LatencySummary
    light_after_load: LatencySummary
    server_peak_rss_mb: float | None
    server_processes: int | None
    startup_seconds: float | None = None
    classifier_peak_rss_mb: float | None = None   # the largest Classifier worker process alone


@dataclass
class Ceiling:
    """The model's FLOPs per post and the machine's fp32 matmul rate."""

    linear_params_per_token: int             # weights of the encoder's Linear layers (each used once per token)
    head_params: int
    layers: int
    attention_width: int                     # heads x head size
    mean_tokens: float                       # over every post the bench sends
    flops_per_post: float                    # at mean_tokens
    matmul_gflops: float                     # best of the repeats
    matmul_gflops_median: float
    matmul_size: int
    matmul_threads: int
    posts_per_second: float                  # matmul rate / flops_per_post

    def flops(self, tokens: float) -> float:
        return model_flops(self.linear_params_per_token, self.head_params, self.layers, self.attention_width, tokens)

    def share(self, posts_per_second: float, tokens: float) -> float:
        return round(posts_per_second * self.flops(tokens) / (self.matmul_gflops * 1e9), 3)


@dataclass
class BenchResult:
    machine: str
    model: str
    model_version: str
    endpoints: dict[str, EndpointResult]     # runtime -> its server's phases
    plain: LatencySummary
    plain_model: str
    plain_model_version: str
    plain_process_peak_rss_mb: float
    concurrency: int
    batch_size: int
    ceiling: Ceiling | None = None
    plain_ceiling: Ceiling | None = None     # the plain loop's model's, when it is another model
    export_seconds: float | None = None      # ONNX export made before the servers started (None: none needed)
    load_average: dict[str, list[float]] = field(default_factory=dict)   # "start", "end": 1/5/15-minute
    ratios: dict[str, float] = field(default_factory=dict)
    # With rounds > 1: posts/s of every round's 64-post phase per runtime, and of the plain loop ("plain");
    # and of every round's concurrent single-post phase per runtime.
    rounds: dict[str, list[float]] = field(default_factory=dict)
    concurrent_rounds: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_texts(pattern: str, limit: int = 2000) -> list[str]:
    """Post texts from JSONL files (a glob, relative to the repository unless absolute)."""
    paths = sorted(glob.glob(pattern if os.path.isabs(pattern) else str(PROJECT_DIR / pattern)))
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
        self._root = psutil.Process(pid)
        self.peak_bytes = 0
        self.processes = 0
        self.classifier_peak_bytes = 0   # the largest single process that runs the Classifier service
        self._roles: dict[int, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self._root, *self._root.children(recursive=True)]
                total = 0
                for process in tree:
                    try:
                        rss = process.memory_info().rss
                        if self._is_classifier(process):
                            self.classifier_peak_bytes = max(self.classifier_peak_bytes, rss)
                        total += rss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
            except psutil.NoSuchProcess:
                return
            self.peak_bytes = max(self.peak_bytes, total)
            self.processes = max(self.processes, len(tree))
            self._stop.wait(0.05)


    def _is_classifier(self, process: psutil.Process) -> bool:
        """Whether `process` is a worker of the Classifier service: bentoml starts each service's
        workers with `--service-name <name>` on their command line."""
        if process.pid not in self._roles:
            command = process.cmdline()
            self._roles[process.pid] = any(
                flag == "--service-name" and name == CLASSIFIER_SERVICE_NAME for flag, name in zip(command, command[1:]))
        return self._roles[process.pid]


async def _load(url: str, headers: dict[str, str], bodies: Sequence[dict], concurrency: int,
                time_limit: float, posts_per_body: int) -> tuple[LatencySummary, list[dict]]:
    """Send `bodies`, `concurrency` at a time, stopping early at `time_limit` seconds."""
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


def phase_text_indices(texts: Sequence[str], config: BenchConfig) -> dict[str, list[int]]:
    """Which texts (indices) each endpoint phase sends: for the mean token length of its figure."""
    count = len(texts)
    return {
        "light_load": [i % count for i in range(config.light_requests)],
        "route_light_load": [i % count for i in range(min(100, config.light_requests))],
        "concurrent_single": [i % count for i in range(config.concurrent_requests)],
        "batched": [(i * config.batch_size + k) % count for i in range(config.batch_requests) for k in range(config.batch_size)],
        "light_after_load": [i % count for i in range(50)],
        "plain": [i % count for i in range(config.plain_posts)],
    }


def measure_endpoint(base_url: str, api_key: str | None, texts: list[str], config: BenchConfig,
                     phases: Sequence[str] | None = None) -> dict[str, Any]:
    """The phases below against one server, in their order; `phases`: only those named (None: all)."""
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
    results["runtime"] = probe.get("runtime", "unknown")
    # Light load first, on a rested server: BentoML's batching dispatcher learns how long requests
    # queued under load and corks lone requests about that long for a while after (measured last).
    for name, url, bodies, concurrency, posts in (
        ("light_load", classify, [single(i) for i in range(config.light_requests)], 1, 1),
        ("route_light_load", route, [routed(i) for i in range(min(100, config.light_requests))], 1, 1),
        ("concurrent_single", classify, [single(i) for i in range(config.concurrent_requests)], config.concurrency, 1),
        ("batched", classify, [batch(i) for i in range(config.batch_requests)], config.batch_concurrency, config.batch_size),
        ("light_after_load", classify, [single(i) for i in range(50)], 1, 1),
    ):
        if phases is not None and name not in phases:
            continue
        summary, failures = asyncio.run(_load(url, headers, bodies, concurrency, config.phase_seconds, posts))
        if failures:
            raise BenchError(f"{name}: {len(failures)} of {summary.requests} requests failed, e.g. {failures[0]}")
        results[name] = summary
    return results


def _post_json(url: str, headers: dict[str, str], body: dict) -> dict:
    response = httpx.post(url, json=body, headers=headers, timeout=60.0)
    if response.status_code != 200:
        raise BenchError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def measure_plain_loop(predictor: Predictor, texts: list[str], posts: int, time_limit: float) -> LatencySummary:
    """The same model in this process, one post at a time, the way a naive deployment runs it: no
    batching across posts, no server."""
    for text in texts[:10]:  # warm-up, as the endpoint got
        predictor.predict_probabilities([text], batch_size=1)
    latencies: list[float] = []
    deadline = time.perf_counter() + time_limit
    started = time.perf_counter()
    for index in range(posts):
        if time.perf_counter() > deadline:
            break
        begin = time.perf_counter()
        predictor.predict_probabilities([texts[index % len(texts)]], batch_size=1)
        latencies.append(time.perf_counter() - begin)
    return summarize(latencies, 0, time.perf_counter() - started, len(latencies))


def load_plain_model(source: str) -> Predictor:
    """The model the plain loop runs, on torch: also what the ceiling's FLOPs and token counts read."""
    try:
        predictor = Predictor.load(source, runtime="torch")
    except ModelLoadError as exc:
        raise BenchError(f"{source}: {exc}") from None
    if predictor.kind != "transformer":
        raise BenchError(f"{source}: the plain transformers loop needs a transformer model, and this is a "
                         f"{predictor.kind} (a TF-IDF baseline serves with --runtimes torch only)")
    return predictor


# --- the compute ceiling ------------------------------------------------------------------------

def measure_ceiling(predictor: Predictor, lengths: Sequence[int], config: BenchConfig) -> Ceiling:
    shape = model_shape(predictor.transformer_backend().model)
    try:
        matmul = measure_matmul(config.matmul_size, config.matmul_repeats)
    except RuntimeError as exc:
        raise BenchError(str(exc)) from None
    mean_tokens = sum(lengths) / len(lengths)
    flops = model_flops(tokens=mean_tokens, **shape)
    return Ceiling(
        **shape, mean_tokens=round(mean_tokens, 1), flops_per_post=flops,
        matmul_gflops=round(matmul["best"], 1), matmul_gflops_median=round(matmul["median"], 1),
        matmul_size=config.matmul_size, matmul_threads=matmul["threads"],
        posts_per_second=round(matmul["best"] * 1e9 / flops, 1),
    )


# --- the run ------------------------------------------------------------------------------------


def export_for_bench(predictor: Predictor, runtimes: Sequence[str]) -> float | None:
    """Make the ONNX export the servers will load (the folder Predictor.load picks), so that their
    start-up does not include it; its time is reported on its own."""
    if not any(runtime.startswith("onnx") for runtime in runtimes):
        return None
    started = time.perf_counter()
    result = ensure_export(predictor.model_dir, default_onnx_dir(predictor.model_dir, temporary_source=predictor.downloaded))
    return round(time.perf_counter() - started, 1) if result.exported else 0.0


def _endpoint_result(runtime: str, endpoint: dict[str, Any], peak: float | None, processes: int | None,
                     startup: float | None, classifier_peak: float | None = None) -> EndpointResult:
    return EndpointResult(
        runtime=endpoint.get("runtime", runtime), model_version=endpoint["model_version"],
        light_load=endpoint["light_load"], concurrent_single=endpoint["concurrent_single"], batched=endpoint["batched"],
        route_light_load=endpoint["route_light_load"], light_after_load=endpoint["light_after_load"],
        server_peak_rss_mb=round(peak / 2**20, 1) if peak else None, server_processes=processes, startup_seconds=startup,
        classifier_peak_rss_mb=round(classifier_peak / 2**20, 1) if classifier_peak else None,
    )


def run_benchmark(config: BenchConfig, progress=None) -> BenchResult:
    """`progress`: a callable taking one line, told when each stage starts (the run takes minutes)."""
    say = progress or (lambda line: None)
    load_start = [round(value, 2) for value in os.getloadavg()]
    texts = load_texts(config.texts_glob)
    for runtime in config.runtimes:
        if runtime not in RUNTIMES:
            raise BenchError(f"unknown runtime {runtime!r}; expected some of: {', '.join(RUNTIMES)}")
    predictor = load_plain_model(config.model)
    plain_predictor = load_plain_model(config.plain_model) if config.plain_model else predictor
    ceiling, lengths, plain_ceiling = None, None, None
    if config.ceiling:
        say(f"measuring the fp32 matmul rate ({config.matmul_size}^2, {config.matmul_repeats} repeats) in a fresh process")
        lengths = predictor.token_counts(texts)
        ceiling = measure_ceiling(predictor, lengths, config)
    export_seconds = None
    endpoints: dict[str, EndpointResult] = {}
    if config.url is None:
        export_seconds = export_for_bench(predictor, config.runtimes)
        for runtime in config.runtimes:
            say(f"starting bentoml serve with SMISTA_RUNTIME={runtime}")
            started = time.perf_counter()
            with LocalServer(model=config.model, extra_env={"SMISTA_RUNTIME": runtime}, error=BenchError) as server:
                startup = round(time.perf_counter() - started, 1)
                say(f"measuring {runtime} on {server.url}")
                with MemorySampler(server.pid) as memory:
                    endpoint = measure_endpoint(server.url, server.api_key, texts, config)
                peak, processes = memory.peak_bytes, memory.processes
            endpoints[runtime] = _endpoint_result(runtime, endpoint, peak, processes, startup, memory.classifier_peak_bytes)
    else:
        say(f"measuring {config.url}")
        if config.server_pid is not None:
            with MemorySampler(config.server_pid) as memory:
                endpoint = measure_endpoint(config.url.rstrip("/"), config.api_key, texts, config)
            peak, processes = memory.peak_bytes, memory.processes
            classifier_peak = memory.classifier_peak_bytes
        else:
            endpoint = measure_endpoint(config.url.rstrip("/"), config.api_key, texts, config)
            peak, processes, classifier_peak = None, None, None
        endpoints[endpoint.get("runtime", "unknown")] = _endpoint_result("unknown", endpoint, peak, processes, None, classifier_peak)
    say("measuring the plain transformers loop in this process")
    plain = measure_plain_loop(plain_predictor, texts, config.plain_posts, config.phase_seconds)
    plain_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rounds: dict[str, list[float]] = {}
    concurrent_rounds: dict[str, list[float]] = {}
    if config.rounds > 1 and config.url is None:
        rounds, concurrent_rounds = interleaved_rounds(config, texts, plain_predictor, endpoints, plain, say)
    if ceiling is not None:
        plain_ceiling = ceiling_of(plain_predictor, ceiling) if plain_predictor is not predictor else None
        add_ceiling_shares(endpoints, plain, ceiling, lengths, texts, config, plain_ceiling)
    ratios = {}
    for runtime, result in endpoints.items():
        best = max(result.concurrent_single.posts_per_second, result.batched.posts_per_second)
        ratios[f"{runtime}: best_endpoint_over_plain"] = round(best / plain.posts_per_second, 2)
        ratios[f"{runtime}: batched_over_plain"] = round(result.batched.posts_per_second / plain.posts_per_second, 2)
        ratios[f"{runtime}: concurrent_over_plain"] = round(result.concurrent_single.posts_per_second / plain.posts_per_second, 2)
    if "torch" in endpoints:
        for runtime, result in endpoints.items():
            if runtime != "torch":
                ratios[f"{runtime}: batched_over_torch_batched"] = round(
                    result.batched.posts_per_second / endpoints["torch"].batched.posts_per_second, 2)
                ratios[f"{runtime}: light_load_over_torch_light_load"] = round(
                    result.light_load.posts_per_second / endpoints["torch"].light_load.posts_per_second, 2)
    ratios.update(round_ratios(rounds))
    ratios.update(round_ratios({**concurrent_rounds, "plain": rounds.get("plain", [])}, phase="concurrent"))
    first = next(iter(endpoints.values()))
    return BenchResult(
        machine=machine_description(),
        model=config.model,
        model_version=first.model_version,
        endpoints=endpoints,
        plain=plain,
        plain_model=config.plain_model or config.model,
        plain_model_version=plain_predictor.model_version,
        plain_process_peak_rss_mb=round(plain_peak_mb, 1),
        concurrency=config.concurrency,
        batch_size=config.batch_size,
        ceiling=ceiling,
        plain_ceiling=plain_ceiling,
        export_seconds=export_seconds,
        load_average={"start": load_start, "end": [round(value, 2) for value in os.getloadavg()]},
        ratios=ratios,
        rounds=rounds,
        concurrent_rounds=concurrent_rounds,
    )


def round_order(names: Sequence[str], number: int) -> list[str]:
    """The measurement order of round `number` (1-based): rotated by one each round, so that no
    runtime always runs first after an idle pause or last in a busy spell."""
    shift = (number - 1) % len(names)
    return [*names[shift:], *names[:shift]]


def interleaved_rounds(config: BenchConfig, texts: Sequence[str], plain_model: Predictor,
                       endpoints: dict[str, EndpointResult], plain: LatencySummary, say
                       ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Rounds 2..N of the 64-post phase, the concurrent single-post phase and the plain loop, after
    the full pass (round 1); returns the posts/s of each round, 64-post and concurrent. Every
    runtime's server is started once and they all stay up side by side (an idle server takes no
    CPU), so a round measures each of them seconds apart, in the rotating `round_order`."""
    rounds = {runtime: [endpoints[runtime].batched.posts_per_second] for runtime in config.runtimes}
    concurrent = {runtime: [endpoints[runtime].concurrent_single.posts_per_second] for runtime in config.runtimes}
    rounds["plain"] = [plain.posts_per_second]
    with contextlib.ExitStack() as stack:
        servers = {}
        for runtime in config.runtimes:
            say(f"rounds 2-{config.rounds}: starting bentoml serve with SMISTA_RUNTIME={runtime}, beside the others")
            servers[runtime] = stack.enter_context(
                LocalServer(model=config.model, extra_env={"SMISTA_RUNTIME": runtime}, error=BenchError))
        for number in range(2, config.rounds + 1):
            for name in round_order([*config.runtimes, "plain"], number):
                say(f"round {number} of {config.rounds}: {name}")
                if name == "plain":
                    rate = measure_plain_loop(plain_model, texts, config.plain_posts, config.phase_seconds).posts_per_second
                else:
                    server = servers[name]
                    # measure_endpoint warms the server up first and raises on any failed request.
                    phase = measure_endpoint(server.url, server.api_key, texts, config, phases=("batched", "concurrent_single"))
                    rate = phase["batched"].posts_per_second
                    concurrent[name].append(phase["concurrent_single"].posts_per_second)
                rounds[name].append(rate)
    return rounds, concurrent


def round_ratios(rounds: dict[str, list[float]], phase: str = "batched") -> dict[str, float]:
    """Median over rounds of each round's ratio: every runtime's posts/s in `phase` (64-post
    requests, or concurrent single posts) over the plain loop's and over torch's of the same round
    (measured minutes apart, not a whole pass apart)."""
    if not rounds or not rounds.get("plain"):
        return {}
    count = len(rounds["plain"])
    ratios = {}
    for runtime, rates in rounds.items():
        if runtime == "plain":
            continue
        ratios[f"{runtime}: {phase}_over_plain, median of {count} rounds"] = round(
            statistics.median(rate / plain for rate, plain in zip(rates, rounds["plain"])), 2)
        if runtime != "torch" and "torch" in rounds:
            ratios[f"{runtime}: {phase}_over_torch_{phase}, median of {count} rounds"] = round(
                statistics.median(rate / torch for rate, torch in zip(rates, rounds["torch"])), 2)
    return ratios


def add_ceiling_shares(endpoints: dict[str, EndpointResult], plain: LatencySummary, ceiling: Ceiling,
                       lengths: Sequence[int], texts: Sequence[str], config: BenchConfig,
                       plain_ceiling: Ceiling | None = None) -> None:
    """Mean tokens of the posts each figure sent, and its posts/s as a share of the ceiling there:
    the served model's, and for the plain loop its own model's (`plain_ceiling`, when it differs)."""
    indices = phase_text_indices(texts, config)

    def fill(summary: LatencySummary, phase: str, against: Ceiling) -> None:
        sent = indices[phase][: summary.requests * (config.batch_size if phase == "batched" else 1)]
        if not sent:
            return
        summary.mean_tokens = round(sum(lengths[i] for i in sent) / len(sent), 1)
        summary.ceiling_share = against.share(summary.posts_per_second, summary.mean_tokens)

    for result in endpoints.values():
        for phase in ("light_load", "concurrent_single", "batched", "route_light_load", "light_after_load"):
            fill(getattr(result, phase), phase, ceiling)
    fill(plain, "plain", plain_ceiling or ceiling)


def ceiling_of(predictor: Predictor, ceiling: Ceiling) -> Ceiling:
    """`ceiling` (same machine, same posts) for another model: its own FLOPs per post."""
    shape = model_shape(predictor.transformer_backend().model)
    flops = model_flops(tokens=ceiling.mean_tokens, **shape)
    return dataclasses.replace(ceiling, **shape, flops_per_post=flops,
                               posts_per_second=round(ceiling.matmul_gflops * 1e9 / flops, 1))


def _share(summary: LatencySummary) -> str:
    return f"{summary.ceiling_share * 100:.1f}%" if summary.ceiling_share is not None else "-"


def format_result(result: BenchResult) -> str:
    lines = [f"machine: {result.machine}", f"model: {result.model} ({result.model_version})",
             f"plain loop's model: {result.plain_model} ({result.plain_model_version})"]
    if result.load_average:
        lines.append("load average (1/5/15 min) at start: {} ; at end: {}".format(
            " ".join(map(str, result.load_average.get("start", []))), " ".join(map(str, result.load_average.get("end", [])))))
    if result.export_seconds:
        lines.append(f"ONNX export made before the servers started: {result.export_seconds} s")
    ceiling = result.ceiling
    if ceiling is not None:
        lines += [
            "",
            f"compute ceiling: {ceiling.flops_per_post / 1e9:.3f} GFLOP per post at {ceiling.mean_tokens} tokens "
            f"(2 x {ceiling.linear_params_per_token / 1e6:.2f}M Linear weights x L + 4 x {ceiling.layers} layers x "
            f"{ceiling.attention_width} x L^2 + heads)",
            f"fp32 matmul: {ceiling.matmul_gflops} GFLOP/s best, {ceiling.matmul_gflops_median} median "
            f"({ceiling.matmul_size}x{ceiling.matmul_size}, {ceiling.matmul_threads} threads, fresh process) "
            f"-> ceiling {ceiling.posts_per_second} posts/s at {ceiling.mean_tokens} tokens",
        ]
        if result.plain_ceiling is not None:
            lines.append(f"plain loop's model: {result.plain_ceiling.flops_per_post / 1e9:.3f} GFLOP per post "
                         f"({result.plain_ceiling.layers} layers) -> ceiling {result.plain_ceiling.posts_per_second} posts/s; "
                         "the plain loop's share is of that ceiling")
    header = f"{'':62} {'requests':>8} {'posts/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'tokens':>7} {'ceiling':>8}"
    lines += ["", header]

    def row(name: str, summary: LatencySummary) -> str:
        tokens = f"{summary.mean_tokens}" if summary.mean_tokens is not None else "-"
        return (f"{name:62} {summary.requests:>8} {summary.posts_per_second:>9} {summary.p50_ms:>8} "
                f"{summary.p95_ms:>8} {summary.p99_ms:>8} {tokens:>7} {_share(summary):>8}")

    for runtime, endpoint in result.endpoints.items():
        title = RUNTIME_TITLES.get(runtime, runtime)
        for name, summary in (
            ("/classify, 1 post, 1 client (light load)", endpoint.light_load),
            (f"/classify, 1 post, {result.concurrency} concurrent clients", endpoint.concurrent_single),
            (f"/classify, {result.batch_size} posts per request", endpoint.batched),
            ("/route, 1 post, 1 client (stores it)", endpoint.route_light_load),
            ("/classify, 1 post, 1 client, right after load", endpoint.light_after_load),
        ):
            lines.append(row(f"{title}: {name}", summary))
    lines.append(row(f"plain transformers loop of {result.plain_model_version}, 1 post at a time (torch fp32)", result.plain))
    lines += ["", "summary (endpoint /classify)", f"{'runtime':18} {'1 post posts/s':>15} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'p99 ms':>8} {'ceiling':>8} {f'{result.batch_size}/request posts/s':>22} {'ceiling':>8} {'server RSS MB':>14}"]
    for runtime, endpoint in result.endpoints.items():
        light, batched = endpoint.light_load, endpoint.batched
        rss = f"{endpoint.server_peak_rss_mb}" if endpoint.server_peak_rss_mb is not None else "-"
        lines.append(f"{RUNTIME_TITLES.get(runtime, runtime):18} {light.posts_per_second:>15} {light.p50_ms:>8} "
                     f"{light.p95_ms:>8} {light.p99_ms:>8} {_share(light):>8} {batched.posts_per_second:>22} "
                     f"{_share(batched):>8} {rss:>14}")
    plain = result.plain
    lines.append(f"{'plain loop (torch)':18} {plain.posts_per_second:>15} {plain.p50_ms:>8} {plain.p95_ms:>8} "
                 f"{plain.p99_ms:>8} {_share(plain):>8} {'-':>22} {'-':>8} {'-':>14}")
    lines.append("")
    for runtime, endpoint in result.endpoints.items():
        if endpoint.startup_seconds is not None:
            lines.append(f"{RUNTIME_TITLES.get(runtime, runtime)} server: ready in {endpoint.startup_seconds} s, "
                         f"peak RSS {endpoint.server_peak_rss_mb} MB over {endpoint.server_processes} processes, "
                         f"Classifier worker {endpoint.classifier_peak_rss_mb} MB")
    lines.append(f"plain-loop process peak RSS: {result.plain_process_peak_rss_mb} MB")
    for runtime, rates in result.rounds.items():
        title = "plain loop (torch)" if runtime == "plain" else f"{RUNTIME_TITLES.get(runtime, runtime)}, {result.batch_size}/request"
        lines.append(f"rounds, {title}: " + " / ".join(f"{rate}" for rate in rates) + " posts/s")
    for runtime, rates in result.concurrent_rounds.items():
        title = f"{RUNTIME_TITLES.get(runtime, runtime)}, 1 post, {result.concurrency} concurrent clients"
        lines.append(f"rounds, {title}: " + " / ".join(f"{rate}" for rate in rates) + " posts/s")
    lines.append("throughput ratios: " + ", ".join(f"{k} {v}x" for k, v in result.ratios.items()))
    return "\n".join(lines)
