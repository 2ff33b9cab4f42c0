"""Prometheus metrics beyond BentoML's own: predictions per label, routed posts per queue and tier,
the Router's calls to the Classifier per path, and the human-triage rate.

Counters go through `bentoml.metrics`, which runs prometheus_client in multi-process mode, so the
/metrics endpoint of the Router sums what every worker of both services counted. The triage rate
is a ratio over the last hour, computed from the shared database at scrape time: a per-process
gauge could not be summed across workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import bentoml

from serving.rules import HeadPredictionLike
from serving.schemas import RouteDecision
from serving.store import PredictionStore

TRIAGE_RATE_WINDOW = timedelta(hours=1)


@cache
def _counter(name: str, documentation: str, labelnames: tuple[str, ...]) -> Any:
    # Registered once per process: prometheus_client refuses a second metric with the same name,
    # and tests build several service instances in one process.

    return bentoml.metrics.Counter(name=name, documentation=documentation, labelnames=list(labelnames))


class PredictionMetrics:
    def __init__(self) -> None:
        self._labels = _counter(
            "smista_predicted_labels", "Labels predicted, per head and label (multi-label heads count each label).",
            ("head", "label"),
        )

    def predicted(self, predictions: Sequence[Mapping[str, HeadPredictionLike]]) -> None:
        for prediction in predictions:
            for head, head_prediction in prediction.items():
                for label in head_prediction.labels:
                    self._labels.labels(head=head, label=label).inc()


class RouteMetrics:
    """A RouteObserver for the pipeline."""

    def __init__(self) -> None:
        self._routed = _counter(
            "smista_routed_posts", "Posts routed, per queue (none: logged only), confidence tier and priority.",
            ("queue", "tier", "priority"),
        )

    def routed(self, decision: RouteDecision) -> None:
        self._routed.labels(
            queue=decision.queue or "none", tier=decision.confidence_tier, priority=decision.priority
        ).inc()


class ClassifierCallMetrics:
    """Counts the Router's calls to the Classifier per path (serving.service.ClassifierCalls)."""

    def __init__(self) -> None:
        self._calls = _counter(
            "smista_classifier_calls",
            "Router calls to the Classifier, per path: direct (nothing else in flight) or batching (merged with others).",
            ("path",),
        )

    def called(self, path: str) -> None:
        self._calls.labels(path=path).inc()


def triage_rate_exposition(store: PredictionStore, now: datetime | None = None) -> str:
    """Prometheus text for the share of posts sent to human triage in the last hour (all workers)."""
    now = now or datetime.now(timezone.utc)
    total, rate = store.human_triage_rate(since=now - TRIAGE_RATE_WINDOW)
    value = "NaN" if rate is None or math.isnan(rate) else repr(round(rate, 6))
    return (
        "# HELP smista_human_triage_rate Share of posts routed in the last hour that went to human triage "
        "(all workers; NaN when none were routed).\n"
        "# TYPE smista_human_triage_rate gauge\n"
        f'smista_human_triage_rate{{window="1h"}} {value}\n'
        "# HELP smista_routed_posts_last_hour Posts routed in the last hour (all workers).\n"
        "# TYPE smista_routed_posts_last_hour gauge\n"
        f'smista_routed_posts_last_hour{{window="1h"}} {total}\n'
    )
