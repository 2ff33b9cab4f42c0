"""Drift: has the traffic moved away from what the model was made for?

Per head, the shares of the labels the model gave to the posts of a window and their mean
confidence (training.label_profile), compared with two references: the model's own profile on its
test split (saved with the model, recorded in the store by whoever routes with it first) and the
window just before. The shift of the shares is the population-stability index,
PSI = sum over labels of (a - e) * ln(a / e), with shares floored at PSI_FLOOR so that a label absent
on one side gives a large but finite figure. No gold labels are needed: it watches the model's
decisions, which is what routing acts on.

The Router's /metrics exposes the latest window's figures as gauges (`DriftGauge`, recomputed at
most once a minute: a scrape must not parse a day of stored predictions each time), and
`smista report` shows them for its period.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from data.taxonomy import Taxonomy
from serving.routing_config import DriftConfig
from serving.store import PredictionStore
from training.label_profile import head_profile

PSI_FLOOR = 1e-4
GAUGE_REFRESH_S = 60.0


def population_stability(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """PSI between two share distributions over the same labels (missing labels count as zero)."""
    total = 0.0
    for label in set(expected) | set(actual):
        e = max(float(expected.get(label, 0.0)), PSI_FLOOR)
        a = max(float(actual.get(label, 0.0)), PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def traffic_profile(predictions: Iterable[Mapping[str, Mapping[str, Any]]], taxonomy: Taxonomy) -> dict[str, dict]:
    """Per head, the label profile of stored predictions ({head: {"labels": [...], "confidence": x}})."""
    rows = list(predictions)
    profile = {}
    for name, spec in taxonomy.fields.items():
        outputs = [row[name] for row in rows if name in row]
        profile[name] = head_profile([output["labels"] for output in outputs],
                                     [output["confidence"] for output in outputs], spec.label_ids, spec.is_multi_label)
    return profile


@dataclass(frozen=True)
class HeadDrift:
    head: str
    against: str                      # "training" or "previous_period"
    posts: int                        # posts of the window
    reference_posts: int
    psi: float | None                 # None when either side has fewer posts than min_posts
    mean_confidence: float | None
    reference_confidence: float | None
    flagged: bool
    why: str                          # what flagged it, or why it was not judged; "" when neither


def compare(current: Mapping[str, Mapping[str, Any]], reference: Mapping[str, Mapping[str, Any]], against: str,
            config: DriftConfig) -> list[HeadDrift]:
    """One HeadDrift per head of `current` that the reference profiles too."""
    results = []
    for head, now in current.items():
        before = reference.get(head)
        if before is None:
            continue
        posts, reference_posts = int(now["posts"]), int(before["posts"])
        if posts < config.min_posts or reference_posts < config.min_posts:
            results.append(HeadDrift(head, against, posts, reference_posts, None, now["mean_confidence"],
                                     before["mean_confidence"], False,
                                     f"not judged: fewer than {config.min_posts} posts"))
            continue
        psi = population_stability(before["shares"], now["shares"])
        reasons = []
        if psi >= config.psi_threshold:
            reasons.append(f"PSI {psi:.3f} >= {config.psi_threshold}")
        drop = (before["mean_confidence"] or 0.0) - (now["mean_confidence"] or 0.0)
        if drop >= config.confidence_drop:
            reasons.append(f"mean confidence down {drop:.3f} (>= {config.confidence_drop})")
        results.append(HeadDrift(head, against, posts, reference_posts, psi, now["mean_confidence"],
                                 before["mean_confidence"], bool(reasons), "; ".join(reasons)))
    return results


@dataclass
class DriftAssessment:
    since: datetime
    until: datetime
    posts: int
    model_version: str | None          # the version that routed most posts of the window
    profile: dict[str, dict]
    heads: list[HeadDrift] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[HeadDrift]:
        return [head for head in self.heads if head.flagged]


def assess_drift(store: PredictionStore, taxonomy: Taxonomy, config: DriftConfig, since: datetime,
                 until: datetime) -> DriftAssessment:
    """The posts routed in (since, until] against the model's training reference and against the
    window of the same length just before."""
    rows = store.recent_predictions(since, until, config.max_posts)
    previous = store.recent_predictions(since - (until - since), since, config.max_posts)
    versions = Counter(version for version, _ in rows)
    model_version = versions.most_common(1)[0][0] if versions else None
    assessment = DriftAssessment(since, until, len(rows), model_version,
                                 traffic_profile((p for _, p in rows), taxonomy))
    if len(rows) == config.max_posts:
        assessment.notes.append(f"the window holds more than {config.max_posts} posts: the latest {config.max_posts} were read")
    if len(versions) > 1:
        assessment.notes.append(f"{len(versions)} model versions routed the window; the training reference is that of "
                                f"{model_version}, which routed {versions[model_version]} of {len(rows)} posts")
    reference = store.reference_for(model_version) if model_version is not None else None
    if reference is not None:
        assessment.heads += compare(assessment.profile, reference["heads"], "training", config)
    elif model_version is not None:
        assessment.notes.append(f"no training reference recorded for model {model_version} (trained before references "
                                "were saved): compared with the previous period only")
    assessment.heads += compare(assessment.profile, traffic_profile((p for _, p in previous), taxonomy),
                                "previous_period", config)
    return assessment


def drift_exposition(assessment: DriftAssessment, window_hours: int) -> str:
    """Prometheus text: per head and reference, the PSI, the mean confidence and the flag."""
    window = f"{window_hours}h"
    lines = [
        "# HELP smista_drift_psi Population-stability index of the label shares the model gave in the window, "
        "against its training reference or the window before (NaN: not judged).",
        "# TYPE smista_drift_psi gauge",
    ]
    lines += [f'smista_drift_psi{{head="{h.head}",against="{h.against}",window="{window}"}} {_value(h.psi)}'
              for h in assessment.heads]
    lines += ["# HELP smista_drift_flagged 1 when the head drifted past the configured thresholds (configs/routing.yaml, drift).",
              "# TYPE smista_drift_flagged gauge"]
    lines += [f'smista_drift_flagged{{head="{h.head}",against="{h.against}",window="{window}"}} {int(h.flagged)}'
              for h in assessment.heads]
    lines += ["# HELP smista_mean_confidence Mean confidence of the model's decisions per head in the window.",
              "# TYPE smista_mean_confidence gauge"]
    lines += [f'smista_mean_confidence{{head="{head}",window="{window}"}} {_value(profile["mean_confidence"])}'
              for head, profile in assessment.profile.items()]
    return "\n".join(lines) + "\n"


def _value(number: float | None) -> str:
    return "NaN" if number is None or math.isnan(number) else repr(round(float(number), 6))


class DriftGauge:
    """The drift figures for /metrics, recomputed at most every GAUGE_REFRESH_S seconds."""

    def __init__(self, store: PredictionStore, taxonomy: Taxonomy, config: DriftConfig,
                 clock=lambda: datetime.now(timezone.utc), refresh_s: float = GAUGE_REFRESH_S):
        self.store, self.taxonomy, self.config = store, taxonomy, config
        self._clock, self._refresh_s = clock, refresh_s
        self._lock = threading.Lock()
        self._text: str | None = None
        self._computed_at = -math.inf

    def invalidate(self) -> None:
        """Recompute at the next scrape (a new model version's reference was just recorded)."""
        with self._lock:
            self._text = None

    def exposition(self) -> str:
        with self._lock:
            if self._text is None or time.monotonic() - self._computed_at >= self._refresh_s:
                now = self._clock()
                assessment = assess_drift(self.store, self.taxonomy, self.config, now - self.config.window, now)
                self._text = drift_exposition(assessment, self.config.window_hours)
                self._computed_at = time.monotonic()
            return self._text


def record_reference(store: PredictionStore, model_version: str, reference: Mapping[str, Any] | None,
                     now: datetime | None = None) -> bool:
    """Keep a model's drift reference in the store; False when the model has none."""
    if not reference:
        return False
    store.record_reference(model_version, dict(reference), now or datetime.now(timezone.utc))
    return True

