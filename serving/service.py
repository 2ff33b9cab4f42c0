"""The BentoML services: a batching Classifier and the Router that care platforms call.

    bentoml serve serving.service:Router --host 127.0.0.1 --port 3000   (or: smista serve)

The Router is the only public entry point; it declares the Classifier with `bentoml.depends`, and
BentoML runs the Classifier as its own process, where adaptive batching merges the texts of
concurrent requests into one model call. A request that finds no other classification in flight
skips the batching queue (`ClassifierCalls`). Endpoints (all but health need the API key):

    POST /classify   one post or a list -> every head's labels and probabilities
    POST /route      one post or a list -> predictions and the route, with reasons (idempotent by post id)
    POST /feedback   what the human agent finally decided for a routed post (idempotent)
    GET  /crisis     active social crises and the ones that ended in the last day
    GET  /livez /healthz /readyz (no key)   GET /metrics   GET /docs.json (OpenAPI)

/readyz answers within about READY_TIMEOUT_S: 503 when the database or the Classifier does not
answer in time (a stalled Classifier used to hold the probe for BentoML's 5 s dependency check).
Paths, logs and metric labels are bounded by serving/edge.py.

Settings come from SMISTA_* environment variables (serving/settings.py); models load in
`__init__`, once per worker, never at import.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, Union

import aiohttp
import anyio.to_thread
import bentoml
from fastapi import FastAPI
from pydantic import ConfigDict, Discriminator, Field, Tag
from starlette.responses import JSONResponse

from data.pii import find_pii
from data.taxonomy import load_taxonomy
from serving import edge, openapi
from serving.drift import DriftGauge, record_reference
from serving.heap import HeapTrimmer
from serving.metrics import ClassifierCallMetrics, PredictionMetrics, RouteMetrics, triage_rate_exposition
from serving.model_source import PREDICT_CHUNK, load_checked_predictor
from serving.pipeline import (
    STORE_RETRY_AFTER_S,
    ModelIdentity,
    RequestRejected,
    RoutingPipeline,
    enable_info_logs,
    head_output,
    log_event,
    store_unavailable,
)
from serving.rules import load_routing_rules
from serving.schemas import (
    ClassifyResponse,
    CrisisReport,
    FeedbackIn,
    FeedbackReceipt,
    PostIn,
    RouteResponse,
    TextPrediction,
)
from serving.security import CURRENT_CLIENT, RequestGuard
from serving.settings import CLASSIFIER_SERVICE_NAME, ServingSettings, classifier_workers_from_env
from serving.store import PredictionStore, StoreUnavailable

# Adaptive batching of the Classifier. A batch of 64 posts takes about 0.8 s on 2 CPU cores;
# the latency budget must cover the queueing of several such batches, or BentoML sheds load with
# 503 "process is overloaded" (100 ms failed 87% of requests at 8 clients: docs/BENCHMARKS.md,
# section "The batching latency budget").
# tests/test_serving_integration.py and `smista serve bench` exercise it under concurrency.
MAX_BATCH_SIZE = 64
MAX_LATENCY_MS = 10_000
REQUEST_TIMEOUT_S = 60
# BentoML's client to a dependency replaces its connection pool every `max_requests` requests or
# `max_age` seconds (default 100 and 300 s), closing the old pool under the requests still on it:
# under 16 concurrent clients about one call in eight failed with "Server disconnected". With a
# single Classifier worker there is nothing to rebalance, so the pool is kept for a day; with several,
# the concurrent calls open one connection each and the workers' shared socket spreads them.
CLASSIFIER_CONNECTION = {"max_requests": 1_000_000_000, "max_age": 86_400.0}
CLASSIFIER_ATTEMPTS = 3
# A readiness probe must answer before the orchestrator's own timeout (Kubernetes: 1 s by default).
READY_TIMEOUT_S = 0.8

edge.install()  # before BentoML builds either service's app from this module
openapi.install()


def _one_or_many(value: Any) -> str:
    return "many" if isinstance(value, list) else "one"


OneOrManyPosts = Annotated[
    Union[Annotated[PostIn, Tag("one")], Annotated[list[PostIn], Tag("many")]],
    Discriminator(_one_or_many),
    Field(description="One post, or a list of posts (at most SMISTA_MAX_POSTS_PER_REQUEST)."),
]


class _RequestBody(bentoml.IODescriptor):
    # hide_input_in_errors: BentoML logs validation errors, and the input would be post text.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class ClassifyRequest(_RequestBody):
    posts: OneOrManyPosts


class RouteRequest(_RequestBody):
    posts: OneOrManyPosts


class FeedbackRequest(FeedbackIn, bentoml.IODescriptor):
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)


def _rejection(exc: RequestRejected) -> JSONResponse:
    headers = {"Retry-After": str(STORE_RETRY_AFTER_S)} if exc.status == 503 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


@bentoml.service(name=CLASSIFIER_SERVICE_NAME, workers=classifier_workers_from_env(), traffic={"timeout": REQUEST_TIMEOUT_S},
                 runner_connection=CLASSIFIER_CONNECTION, logging=edge.SERVICE_LOGGING)
class Classifier:
    """Loads the Predictor once and classifies batches of texts (internal: the Router calls it)."""

    def __init__(self) -> None:
        enable_info_logs()
        settings = ServingSettings.from_env()
        self.predictor = load_checked_predictor(settings.model, load_taxonomy(settings.taxonomy_path), settings.runtime,
                                                threads=settings.model_threads)
        # The first forward pass allocates and warms caches; pay it now, not on the first request.
        self.predictor.predict(["avvio del servizio"])
        self.metrics = PredictionMetrics()
        self._model_lock = threading.Lock()
        self._heap = HeapTrimmer()
        log_event("classifier_ready", model=settings.model, model_version=self.predictor.model_version,
                  taxonomy_version=self.predictor.taxonomy_version, runtime=self.predictor.runtime,
                  workers=settings.classifier_workers, threads=settings.model_threads)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def classify(self, texts: list[str]) -> list[TextPrediction]:
        """Adaptive batching: the texts of concurrent calls are merged into one model call."""
        return self._classify(texts)

    @bentoml.api
    def classify_now(self, texts: list[str]) -> list[TextPrediction]:
        """The same, without the batching queue: for a call that finds the Classifier idle."""
        return self._classify(texts)

    @bentoml.api
    def drift_reference(self) -> dict[str, Any]:
        """The model's drift reference (training.label_profile); empty for a model saved without one."""
        return self.predictor.reference_profile or {}

    def _classify(self, texts: list[str]) -> list[TextPrediction]:
        # One model call at a time across both endpoints: a batch arriving while a direct call runs
        # waits here rather than running beside it, two sets of threads on the same cores.
        with self._model_lock:
            predictions = self.predictor.predict(texts, batch_size=PREDICT_CHUNK)
            self._heap.maybe_trim()  # under the lock: no model call is allocating meanwhile
        self.metrics.predicted(predictions)
        return [
            TextPrediction(
                predictions={head: head_output(prediction) for head, prediction in by_head.items()},
                model_version=self.predictor.model_version,
                taxonomy_version=self.predictor.taxonomy_version,
                runtime=self.predictor.runtime,
            )
            for by_head in predictions
        ]


class ClassifierCalls:
    """Which Classifier endpoint a call takes: the batching one only when another call from this
    Router is already in flight, so that there is something to merge with.

    Why not always the batching one: BentoML's dispatcher holds a lone request back for about the
    mean queueing time of its last 50 batches, hoping for company. After a burst that mean is the
    burst's queueing time, so single posts at light load waited 0.26-0.61 s each for about 50
    requests (the bench's "right after load" phase; 22 ms at p50 with this: docs/BENCHMARKS.md,
    section "Skipping the batching queue when the Classifier is idle"). A call that finds nothing in
    flight gains nothing from waiting."""

    def __init__(self, on_call: Callable[[str], None] | None = None) -> None:
        self.in_flight = 0
        self._on_call = on_call or (lambda path: None)

    @contextmanager
    def call(self):
        """Yields True for the batching endpoint, False for the direct one, and counts the call as in
        flight until the block ends. The Router's event loop is one thread: no lock needed."""
        batching = self.in_flight > 0
        self._on_call("batching" if batching else "direct")
        self.in_flight += 1
        try:
            yield batching
        finally:
            self.in_flight -= 1


# GET endpoints live in a FastAPI app mounted on the Router (bentoml.api routes are POST only).
operations = FastAPI(title="smista operations")


# runner_probe off: BentoML's own /readyz check of the Classifier waits up to 5 s; __is_ready__ below
# does it with READY_TIMEOUT_S.
@bentoml.service(name="smista_router", workers=1, traffic={"timeout": REQUEST_TIMEOUT_S},
                 logging=edge.SERVICE_LOGGING, runner_probe={"enabled": False})
@bentoml.asgi_app(operations, path="/")
class Router:
    """Validates posts, asks the Classifier, applies the routing rules, stores everything."""

    classifier = bentoml.depends(Classifier)

    def __init__(self) -> None:
        enable_info_logs()
        settings = ServingSettings.from_env()
        taxonomy = load_taxonomy(settings.taxonomy_path)
        rules = load_routing_rules(settings.routing_config_path, taxonomy)
        self.store = PredictionStore(settings.database_url, lock_timeout_s=settings.database_lock_timeout_s)
        self.pipeline = RoutingPipeline(
            taxonomy, rules, self.store,
            max_posts_per_request=settings.max_posts_per_request,
            max_text_chars=settings.max_text_chars,
            store_post_text=settings.store_post_text,
            observer=RouteMetrics(),
        )
        self.classifier_calls = ClassifierCalls(ClassifierCallMetrics().called)
        self.drift = DriftGauge(self.store, taxonomy, rules.config.drift)
        self._referenced_versions: set[str] = set()  # model versions whose drift reference is stored
        find_pii("avvio del servizio")  # builds the PII analyzer (spaCy, Presidio: seconds) now, not on a request
        log_event("router_ready", settings=settings.describe(), routing_version=rules.version)

    async def __is_ready__(self) -> bool:
        reason = await self._not_ready_reason()
        if reason is not None:
            log_event("not_ready", level=logging.WARNING, reason=reason)
        return reason is None

    async def _not_ready_reason(self) -> str | None:
        try:
            with anyio.fail_after(READY_TIMEOUT_S):
                # abandon_on_cancel: a database that hangs keeps its thread, not the probe.
                await anyio.to_thread.run_sync(self.store.ping, abandon_on_cancel=True)
        except TimeoutError:
            return f"database did not answer within {READY_TIMEOUT_S} s"
        except Exception as exc:  # any driver error means the same thing to a probe
            return f"database unreachable: {type(exc).__name__}"
        try:
            with anyio.fail_after(READY_TIMEOUT_S):
                classifier_ready = await self.classifier.is_ready(timeout=READY_TIMEOUT_S)
        except TimeoutError:
            classifier_ready = False
        if not classifier_ready:
            return f"the Classifier did not answer ready within {READY_TIMEOUT_S} s"
        return None

    def __metrics__(self, content: str) -> str:
        return content + triage_rate_exposition(self.store) + self.drift.exposition()

    @bentoml.api(input_spec=ClassifyRequest)
    async def classify(self, posts: OneOrManyPosts) -> ClassifyResponse:
        """Every head's labels and probabilities for each post, with the model and taxonomy versions."""
        try:
            items = self.pipeline.validate_for_classify(posts)
        except RequestRejected as exc:
            return _rejection(exc)
        predictions, identity = await self._predict([item.text for item in items])
        return self.pipeline.classification(items, predictions, identity)

    @bentoml.api(input_spec=RouteRequest)
    async def route(self, posts: OneOrManyPosts) -> RouteResponse:
        """Queue, priority, SLA deadline, tier, reply channel and reasons for each post (stored)."""
        try:
            validated = self.pipeline.validate_for_routing(posts)
            # The store is synchronous SQLAlchemy: keep it off the event loop.
            new = await anyio.to_thread.run_sync(self.pipeline.posts_to_predict, validated)
            predictions, identity = await self._predict([post.text for post in new]) if new else ([], None)
            if identity is not None and identity.model_version not in self._referenced_versions:
                await self._record_reference(identity.model_version)
            now = datetime.now(timezone.utc)
            by_id = {post.id: prediction for post, prediction in zip(new, predictions, strict=True)}
            return await anyio.to_thread.run_sync(self.pipeline.route, validated, by_id, identity, now,
                                                  CURRENT_CLIENT.get())
        except RequestRejected as exc:
            return _rejection(exc)
        except StoreUnavailable as exc:
            return _rejection(store_unavailable(exc))

    @bentoml.api(input_spec=FeedbackRequest)
    async def feedback(self, **fields: Any) -> FeedbackReceipt:
        """Record what the human agent decided: corrected labels, team, resolution, timestamps."""
        feedback = FeedbackIn.model_validate(fields)
        try:
            return await anyio.to_thread.run_sync(self.pipeline.record_feedback, feedback, datetime.now(timezone.utc))
        except RequestRejected as exc:
            return _rejection(exc)
        except StoreUnavailable as exc:
            return _rejection(store_unavailable(exc))

    @operations.get("/crisis", response_model=CrisisReport)
    async def crisis(self) -> CrisisReport:
        """Active social crises (re-evaluated now) and the ones that ended in the last 24 hours."""
        try:
            return await anyio.to_thread.run_sync(self.pipeline.crisis.report, datetime.now(timezone.utc))
        except StoreUnavailable as exc:
            return _rejection(store_unavailable(exc))

    async def _record_reference(self, model_version: str) -> None:
        """Store the drift reference of a model version the first time it routes (once per process)."""
        reference = await self.classifier.to_async.drift_reference()
        await anyio.to_thread.run_sync(record_reference, self.store, model_version, reference)
        self._referenced_versions.add(model_version)
        self.drift.invalidate()
        log_event("drift_reference_recorded" if reference else "drift_reference_missing", model_version=model_version)

    async def _predict(self, texts: list[str]) -> tuple[list[dict[str, Any]], ModelIdentity]:
        # A connection to the Classifier can still be cut (its worker restarted, the daily pool
        # renewal above). Classifying is a pure function of the texts: a cut call is made again.
        for attempt in range(1, CLASSIFIER_ATTEMPTS + 1):
            try:
                with self.classifier_calls.call() as batching:
                    endpoint = self.classifier.to_async.classify if batching else self.classifier.to_async.classify_now
                    outputs: list[TextPrediction] = await endpoint(texts)
                break
            except aiohttp.ClientConnectionError as exc:
                if attempt == CLASSIFIER_ATTEMPTS:
                    raise
                log_event("classifier_call_retried", level=logging.WARNING, attempt=attempt, error=type(exc).__name__)
        identity = ModelIdentity(outputs[0].model_version, outputs[0].taxonomy_version, outputs[0].runtime)
        return [output.predictions for output in outputs], identity


Router.add_asgi_middleware(RequestGuard)
