"""Score an archive on Ray Data: `smista score`, the many-machine sibling of `smista serve batch`.

What runs where:
- **Actors** (a pool of `ShardScorer`, `map_batches` with a callable class) each load the model
  once, from the registry or a directory, then read one partition at a time
  (`serving.archive_shards`), validate it with the same PostValidator and predict it with the same
  Predictor and runtime. This is where the time goes (the transformer), and it scales with actors.
- **The driver** routes the predicted posts in file order with the same `RoutingPipeline` as the
  endpoint and `smista serve batch`, and writes each partition whole (`serving.partitioned_output`).
  Routing stays in one process because it is stateful: the crisis window slides over every post
  in order, and an id routed once is a replay afterwards. It costs well under a millisecond per
  post (docs/SCALING.md has the measured ceiling this puts on a cluster).

So the results equal `smista serve batch` on the same input: same labels and probabilities (the
same model on the same texts; only the padding of a batch differs), same routes for the same
clock. The store defaults to a SQLite file inside the output directory: a resumed job sees the
crisis signals and the routed ids of the partitions before the kill, as an uninterrupted one would.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ray
import ray.data

from data.errors import UserError
from data.schema import DEFAULT_MAX_TEXT_CHARS, Post, PostValidator
from data.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy
from serving.archive_shards import DEFAULT_PARTITION_BYTES, Shard, SourceFile, expand_sources, plan_sources, read_shard
from serving.batch import AsOf, as_of_time, output_record
from serving.drift import record_reference
from serving.model_source import PREDICT_CHUNK, load_checked_predictor, pin_model
from serving.partitioned_output import PartitionedOutput
from serving.pipeline import ModelIdentity, RequestRejected, RoutingPipeline
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.rules import load_routing_rules, private_data_kinds
from serving.store import PredictionStore

# Forwarded to every worker, also on a remote cluster: where the registry is, and that nothing is
# to be fetched from a hub.
FORWARDED_ENVIRONMENT = ("MLFLOW_TRACKING_URI", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
STORE_FILE = "_store.sqlite"


class ScoreError(UserError, ValueError):
    """A job that cannot start as asked: the message names the option and the fix."""


@dataclass
class ScoreConfig:
    inputs: list[str]
    output_dir: Path
    model: str
    taxonomy_path: Path = DEFAULT_TAXONOMY_PATH
    routing_config_path: Path = DEFAULT_ROUTING_PATH
    database_url: str | None = None        # None: a SQLite file in the output directory
    as_of: AsOf = "created_at"
    runtime: str = "torch"
    formats: tuple[str, ...] = ("parquet",)
    partition_bytes: int = DEFAULT_PARTITION_BYTES
    batch_size: int = PREDICT_CHUNK        # posts per forward pass
    sort_window: int | None = None         # length-sort within windows of this many posts; None: the partition
    actors: int | None = None              # None: as many as the cluster's CPUs allow
    threads_per_actor: int = 1
    address: str | None = None             # a Ray cluster ("auto", "ray://host:10001"); None: a local one
    local_cpus: int | None = None          # CPUs of the local runtime (None: every core)
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    store_post_text: bool = False


@dataclass
class ScoreReport:
    partitions: int = 0
    skipped: int = 0          # finished by an earlier run
    scored: int = 0           # posts written by this run
    rejected: int = 0         # bad rows this run sent to rejects/
    scored_before: int = 0    # by the earlier runs of the same job
    rejected_before: int = 0
    seconds: float = 0.0
    actors: int = 0
    model_version: str = ""
    output_dir: Path = field(default_factory=Path)

    @property
    def posts_per_second(self) -> float:
        return self.scored / self.seconds if self.seconds else 0.0


@dataclass
class ScoredShard:
    """What an actor sends back for one partition (pickled: the driver needs the Post objects)."""

    index: int
    posts: list[tuple[int, Post]]
    predictions: list[dict]
    pii_kinds: list[list[str]]
    rejects: list[tuple[int, str, str]]
    line_count: int
    identity: ModelIdentity
    seconds: float
    reference: dict | None = None   # the model's drift reference (training.label_profile)


class ShardScorer:
    """One actor: the model loaded once, then one partition per call."""

    def __init__(self, model: str, runtime: str, threads: int, taxonomy_path: str, routing_config_path: str,
                 max_text_chars: int, batch_size: int, sort_window: int | None):
        taxonomy = load_taxonomy(Path(taxonomy_path))
        self.rules = load_routing_rules(Path(routing_config_path), taxonomy)
        self.predictor = load_checked_predictor(model, taxonomy, runtime, threads=threads)
        self.identity = ModelIdentity(self.predictor.model_version, self.predictor.taxonomy_version,
                                      self.predictor.runtime)
        self.validator = PostValidator(taxonomy, max_text_chars=max_text_chars)
        self.batch_size = batch_size
        self.sort_window = sort_window

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices, payloads = [], []
        for encoded in batch["shard"]:
            shard = Shard(**json.loads(encoded))
            started = time.perf_counter()
            read = read_shard(shard, self.validator)
            texts = [post.text for _, post in read.posts]
            predictions: list[dict] = []
            window = self.sort_window or max(len(texts), 1)
            for start in range(0, len(texts), window):
                predictions += self.predictor.predict(texts[start:start + window], batch_size=self.batch_size)
            # Stateless and half the cost of routing a post: done here, in parallel, not on the driver.
            pii_kinds = [private_data_kinds(text, self.rules) for text in texts]
            indices.append(shard.index)
            payloads.append(pickle.dumps(ScoredShard(shard.index, read.posts, predictions, pii_kinds, read.rejects,
                                                     read.line_count, self.identity, time.perf_counter() - started,
                                                     self.predictor.reference_profile)))
        return {"index": np.array(indices), "payload": np.array(payloads, dtype=object)}


def score_archive(config: ScoreConfig, progress: Callable[[str], None] | None = None) -> ScoreReport:
    say = progress or (lambda line: print(f"score: {line}", file=sys.stderr, flush=True))
    _check(config)
    started = time.perf_counter()
    taxonomy = load_taxonomy(config.taxonomy_path)
    rules = load_routing_rules(config.routing_config_path, taxonomy)
    sources = expand_sources(config.inputs)
    _check_output_outside_inputs(config.output_dir, sources)
    shards = plan_sources(sources, config.partition_bytes)
    model, model_version = pin_model(config.model)
    database_url = config.database_url or f"sqlite:///{(config.output_dir / STORE_FILE).resolve()}"
    output = PartitionedOutput(config.output_dir, config.formats, taxonomy.field_names)
    manifest = {
        # The plan itself, with each file's size and time: a resume must read the same bytes.
        "sources": [item.as_dict() for item in sources],
        "partition_bytes": config.partition_bytes,
        "partitions": [shard.as_dict() for shard in shards],
        "model_version": model_version,
        "runtime": config.runtime,
        "taxonomy_version": taxonomy.version,
        "routing_version": rules.version,
        "as_of": config.as_of,
        "formats": list(config.formats),
        "max_text_chars": config.max_text_chars,
        "store_post_text": config.store_post_text,
        "database_url": _without_password(database_url),
    }
    output.check(manifest)
    report = ScoreReport(partitions=len(shards), model_version=model_version, output_dir=config.output_dir)
    finished = {shard.index: counts for shard in shards if (counts := output.done(shard.name)) is not None}
    report.skipped = len(finished)
    report.scored_before = sum(counts["scored"] for counts in finished.values())
    report.rejected_before = sum(counts["rejected"] for counts in finished.values())
    pending = [shard for shard in shards if shard.index not in finished]
    # Start Ray and place the actors before anything is written: a job that cannot run says so first.
    pool = _ActorPool(config, model) if pending else None
    try:
        if pool is not None:
            report.actors = pool.start(len(pending))
        output.prepare(manifest)
        if finished:
            say(f"resuming: {len(finished)} of {len(shards)} partitions already done in {config.output_dir}")
        # Ids already written, to reject a later duplicate as `smista serve batch` does (data.jsonl).
        seen: dict[str, tuple[str, int]] = {}
        for shard in shards:
            if shard.index in finished:
                for post_id, source, line in output.written_ids(shard.name):
                    seen.setdefault(post_id, (source, line))
        store = PredictionStore(database_url)
        pipeline = RoutingPipeline(taxonomy, rules, store, max_posts_per_request=1,
                                   max_text_chars=config.max_text_chars, store_post_text=config.store_post_text)
        try:
            results = pool.results(pending) if pool is not None else iter(())
            lines_before: dict[str, int] = {}
            completed = report.skipped
            referenced = False  # the model's drift reference is stored with the first partition routed
            for shard in shards:
                first_line = lines_before.get(shard.source, shard.first_row)
                if shard.index in finished:
                    lines_before[shard.source] = first_line + finished[shard.index]["line_count"]
                    continue
                scored = next(results)
                if scored.index != shard.index:
                    raise RuntimeError(f"partition {scored.index} arrived in place of {shard.index}: order was not preserved")
                if scored.identity.model_version != model_version:
                    raise ScoreError(f"an actor loaded model {scored.identity.model_version}, the job pinned {model_version}")
                if not referenced:
                    referenced = True
                    record_reference(store, model_version, scored.reference)
                lines_before[shard.source] = first_line + scored.line_count
                routing_started = time.perf_counter()
                records, rejects = _route_shard(shard, scored, first_line, pipeline, rules.version, config.as_of, seen)
                output.write(shard.name, records, rejects, {
                    "line_count": scored.line_count, "scored": len(records), "rejected": len(rejects),
                    "predict_seconds": round(scored.seconds, 3),
                    "route_seconds": round(time.perf_counter() - routing_started, 3),
                })
                report.scored += len(records)
                report.rejected += len(rejects)
                completed += 1
                elapsed = time.perf_counter() - started
                say(f"{shard.name} written ({len(records)} posts, {len(rejects)} rejects); "
                    f"{completed}/{len(shards)} partitions, {report.scored} posts, {report.rejected} rejects, "
                    f"{report.scored / elapsed:.1f} posts/s")
        finally:
            store.close()
    finally:
        if pool is not None:
            pool.close()
    report.seconds = time.perf_counter() - started
    output.write_summary({
        "partitions": report.partitions, "skipped": report.skipped,
        "scored": report.scored_before + report.scored, "rejected": report.rejected_before + report.rejected,
        "scored_by_last_run": report.scored, "rejected_by_last_run": report.rejected,
        "seconds_of_last_run": round(report.seconds, 2), "actors": report.actors,
        "posts_per_second_of_last_run": round(report.posts_per_second, 2), "model_version": model_version,
    })
    return report


def _check(config: ScoreConfig) -> None:
    if config.threads_per_actor < 1:
        raise ScoreError(f"--threads-per-actor must be at least 1, got {config.threads_per_actor}")
    if config.actors is not None and config.actors < 1:
        raise ScoreError(f"--actors must be at least 1, got {config.actors}")
    if config.batch_size < 1:
        raise ScoreError(f"--batch-size must be at least 1, got {config.batch_size}")
    if config.sort_window is not None and config.sort_window < 1:
        raise ScoreError(f"--sort-window must be at least 1 post, got {config.sort_window}")


def _check_output_outside_inputs(output_dir: Path, sources: list[SourceFile]) -> None:
    inside = [item.source for item in sources if Path(item.source).is_absolute()
              and Path(item.source).resolve().is_relative_to(output_dir.resolve())]
    if inside:
        raise ScoreError(f"--output {output_dir} holds input files ({inside[0]}...): choose an output outside the inputs")


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


class _ActorPool:
    """The Ray runtime and the pool of model actors of one job."""

    def __init__(self, config: ScoreConfig, model: str):
        self.config = config
        self.model = model
        self.actors = 0

    def start(self, partitions: int) -> int:
        """Start (or join) Ray and check the actors fit; returns how many there will be."""
        config = self.config
        environment = {name: os.environ[name] for name in FORWARDED_ENVIRONMENT if name in os.environ}
        # The fast tokenizer has a thread pool of its own, as wide as the machine: one per actor's
        # reserved CPUs is what the cores were counted for.
        environment["TOKENIZERS_PARALLELISM"] = "false"
        environment["RAYON_NUM_THREADS"] = str(config.threads_per_actor)
        if config.address is None:
            # "local": a runtime of our own, never one that `ray start` left running on this machine.
            ray.init(address="local", num_cpus=config.local_cpus, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, runtime_env={"env_vars": environment})
        else:
            ray.init(address=config.address, log_to_driver=False, logging_level=logging.WARNING,
                     runtime_env={"env_vars": environment})
        # Each actor reserves its threads as CPUs on one node: an actor no node can hold would wait
        # for ever, so count what fits node by node, not the cluster's total.
        threads = config.threads_per_actor
        node_cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
        fits = sum(cpus // threads for cpus in node_cpus)
        actors = config.actors or max(1, fits)
        if actors > fits:  # the caller's `finally` shuts Ray down
            raise ScoreError(
                f"--actors {actors} x --threads-per-actor {threads} does not fit the Ray cluster "
                f"(nodes with {', '.join(map(str, node_cpus)) or 'no'} CPUs hold {fits} such actors): lower one of them"
            )
        self.actors = min(actors, partitions)
        return self.actors

    def results(self, pending: list[Shard]) -> Iterator[ScoredShard]:
        """Partitions predicted by the actor pool, in plan order."""
        config = self.config
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True   # the driver routes in file order
        context.enable_progress_bars = False               # our own line per partition instead
        dataset = ray.data.from_items(
            [{"shard": json.dumps(shard.as_dict())} for shard in pending], override_num_blocks=len(pending)
        ).map_batches(
            ShardScorer,
            fn_constructor_kwargs={
                "model": self.model, "runtime": config.runtime, "threads": config.threads_per_actor,
                "taxonomy_path": str(Path(config.taxonomy_path).resolve()),
                "routing_config_path": str(Path(config.routing_config_path).resolve()),
                "max_text_chars": config.max_text_chars,
                "batch_size": config.batch_size, "sort_window": config.sort_window,
            },
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=config.threads_per_actor,
        )
        for row in dataset.iter_rows():
            yield pickle.loads(row["payload"])

    def close(self) -> None:
        ray.shutdown()


def _route_shard(shard: Shard, scored: ScoredShard, first_line: int, pipeline: RoutingPipeline, routing_version: str,
                 as_of: AsOf, seen: dict[str, tuple[str, int]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Route one partition's posts in order; bad rows, duplicates and conflicts become rejects."""
    rejects = [_reject(shard, first_line + number + 1, reason, raw) for number, reason, raw in scored.rejects]
    records: list[dict[str, Any]] = []
    for (number, post), prediction, pii_kinds in zip(scored.posts, scored.predictions, scored.pii_kinds, strict=True):
        line = first_line + number + 1
        if post.id in seen:
            source, first = seen[post.id]
            where = f"line {first}" if source == shard.source else f"{source}:{first}"
            rejects.append(_reject(shard, line, f"id: duplicate id {post.id!r}, first seen on {where}",
                                   json.dumps(post.to_json_dict(), ensure_ascii=False)))
            continue
        try:
            routed = pipeline.route([post], {post.id: prediction}, scored.identity, as_of_time(post, as_of),
                                    pii_kinds={post.id: pii_kinds}).results[0]
        except RequestRejected as exc:  # the id was routed before, into this store, with other content
            rejects.append(_reject(shard, line, exc.details(), json.dumps(post.to_json_dict(), ensure_ascii=False)))
            continue
        seen[post.id] = (shard.source, line)
        records.append({**output_record(routed, scored.identity, routing_version), "source": shard.source, "line": line})
    rejects.sort(key=lambda reject: reject["line"])
    return records, rejects


def _reject(shard: Shard, line: int, reason: str, raw: str) -> dict[str, Any]:
    return {"source": shard.source, "line": line, "reason": reason, "raw": raw}
