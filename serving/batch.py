"""Batch scoring for archives: classify and route a JSONL file of posts without a server.

Same code path as the Router: posts are validated by `data.jsonl` (the same PostValidator),
predicted by the same Predictor in chunks, and routed by the same `RoutingPipeline`. Streaming: the
input is read in chunks and each chunk's lines are written before the next is read; the output
file appears only once complete (written beside it, then renamed). A run killed midway leaves no
output (and an older output untouched); run it again: with `--database-url` pointing at a file, the
posts it had routed are read back from the store instead of predicted again (routing is
idempotent by post id), so the new output has every post once, as an uninterrupted run would.

The clock: by default each post is routed as of its own `created_at` (service hours, SLA and
crisis windows as they were when it was written); `as_of="now"` routes everything as of now.
The crisis window slides in file order, so sort an archive by time to replay its crises.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TextIO

from tqdm import tqdm

from data.atomic_files import replaced_atomically
from data.errors import UserError
from data.jsonl import LineError, iter_posts
from data.schema import DEFAULT_MAX_TEXT_CHARS, Post, PostValidator
from data.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy
from serving.drift import record_reference
from serving.model_source import PREDICT_CHUNK, load_checked_predictor
from serving.pipeline import ModelIdentity, RequestRejected, RoutingPipeline
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.rules import load_routing_rules
from serving.schemas import RoutedPost
from serving.store import PredictionStore

AsOf = Literal["created_at", "now"]
# In memory: replaying an archive must not write into the live store unless asked to.
DEFAULT_BATCH_DATABASE = "sqlite://"


@dataclass
class BatchConfig:
    input_path: Path
    output_path: Path
    model: str
    taxonomy_path: Path = DEFAULT_TAXONOMY_PATH
    routing_config_path: Path = DEFAULT_ROUTING_PATH
    database_url: str = DEFAULT_BATCH_DATABASE
    as_of: AsOf = "created_at"
    chunk_size: int = 64
    keep_going: bool = False
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    store_post_text: bool = False
    runtime: str = "torch"   # torch, onnx or onnx-int8 (training.inference.runtimes.RUNTIMES)


@dataclass
class BatchReport:
    scored: int = 0
    errors: list[LineError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def posts_per_second(self) -> float:
        return self.scored / self.seconds if self.seconds else 0.0


def score_file(config: BatchConfig, progress: TextIO | None = sys.stderr) -> BatchReport:
    """Write one JSON line per valid post: id, every head's labels and probabilities, the route."""
    if config.chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {config.chunk_size}")
    taxonomy = load_taxonomy(config.taxonomy_path)
    rules = load_routing_rules(config.routing_config_path, taxonomy)
    predictor = load_checked_predictor(config.model, taxonomy, config.runtime)
    identity = ModelIdentity(predictor.model_version, predictor.taxonomy_version, predictor.runtime)
    store = PredictionStore(config.database_url)
    record_reference(store, predictor.model_version, predictor.reference_profile)
    pipeline = RoutingPipeline(
        taxonomy, rules, store, max_posts_per_request=config.chunk_size, max_text_chars=config.max_text_chars,
        store_post_text=config.store_post_text,
    )
    validator = PostValidator(taxonomy, max_text_chars=config.max_text_chars)
    report = BatchReport()
    started = time.perf_counter()
    total = _count_lines(config.input_path)
    bar = tqdm(total=total, unit="post", desc="scoring", file=progress, disable=progress is None)
    config.output_path.parent.mkdir(parents=True, exist_ok=True)
    # A run killed before its rename leaves its partial file behind: the next run removes it.
    for stale in config.output_path.parent.glob(f"{_partial_prefix(config.output_path)}*"):
        stale.unlink(missing_ok=True)
    try:
        with (replaced_atomically(config.output_path, prefix=_partial_prefix(config.output_path)) as temporary,
              temporary.open("w", encoding="utf-8") as output):
            posts = iter_posts(config.input_path, validator, on_error="skip" if config.keep_going else "raise",
                               errors=report.errors)
            for chunk in _chunks(posts, config.chunk_size):
                # Posts already in the store (a rerun into the same database, or an id seen earlier in
                # the file) get their stored result, as over HTTP: only the others are predicted.
                new = _conflicts_named(config.input_path, pipeline.posts_to_predict, chunk)
                predicted = predictor.predict([post.text for post in new], batch_size=PREDICT_CHUNK) if new else []
                by_id = {post.id: prediction for post, prediction in zip(new, predicted, strict=True)}
                for post in chunk:
                    now = as_of_time(post, config.as_of)
                    routed = _conflicts_named(config.input_path, pipeline.route, [post], by_id, identity, now).results[0]
                    output.write(json.dumps(output_record(routed, identity, rules.version), ensure_ascii=False) + "\n")
                report.scored += len(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
        store.close()
    report.seconds = time.perf_counter() - started
    return report


def _partial_prefix(output: Path) -> str:
    return f".{output.name}.partial-"


class BatchConflict(UserError, ValueError):
    """A post reuses the id of a post routed before (in the store or earlier in the file) with
    different content."""


def _conflicts_named(path: Path, call, *args):
    try:
        return call(*args)
    except RequestRejected as exc:
        raise BatchConflict(f"{path}: {exc.message}: {exc.details()}") from None


def output_record(routed: RoutedPost, identity: ModelIdentity, routing_version: str) -> dict[str, Any]:
    """One scored post as an archive job writes it (this command's line, `smista score`'s row)."""
    return {
        "id": routed.id,
        "predictions": {head: value.model_dump() for head, value in routed.predictions.items()},
        "route": routed.route.model_dump(mode="json"),
        "history": routed.history.model_dump(mode="json") if routed.history is not None else None,
        "model_version": identity.model_version,
        "taxonomy_version": identity.taxonomy_version,
        "routing_version": routing_version,
    }


def as_of_time(post: Post, as_of: AsOf) -> datetime:
    if as_of == "created_at" and post.created_at is not None:
        return post.created_at
    return datetime.now(timezone.utc)


def _chunks(posts: Iterator[Post], size: int) -> Iterator[Sequence[Post]]:
    chunk: list[Post] = []
    for post in posts:
        chunk.append(post)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
