"""What a head predicts for a post, and how it turns probabilities into labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.errors import ModelLoadError


@dataclass(frozen=True)
class HeadPrediction:
    labels: list[str]                # single-label head: exactly one id; multi-label: ids over threshold, may be empty
    probabilities: dict[str, float]  # every label id of the head -> probability
    confidence: float                # single: top probability; multi: the least certain per-label decision


@dataclass(frozen=True)
class HeadSpec:
    """How one head turns probabilities into labels."""

    name: str
    labels: list[str]
    multi_label: bool
    thresholds: list[float] | None = None  # multi-label heads only, one per label

    @classmethod
    def from_config(cls, name: str, spec: dict) -> HeadSpec:
        thresholds = None
        if spec["multi_label"]:
            tuned = spec.get("thresholds") or {}
            missing = [label for label in spec["labels"] if label not in tuned]
            if missing:
                raise ModelLoadError(f"head {name!r} has no decision threshold for {missing}: the model was saved before tuning")
            thresholds = [float(tuned[label]) for label in spec["labels"]]
        return cls(name=name, labels=list(spec["labels"]), multi_label=bool(spec["multi_label"]), thresholds=thresholds)

    def decide(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(decisions, confidence) for [posts, labels] probabilities.

        Single-label: decisions are the argmax indices, confidence the top probability.
        Multi-label: decisions are 0/1 per label (probability >= threshold); each decision is
        right with probability p (yes) or 1 - p (no), and the post's confidence is the least
        certain of its decisions.
        """
        if not self.multi_label:
            return probabilities.argmax(axis=1), probabilities.max(axis=1)
        decisions = probabilities >= np.asarray(self.thresholds)[None, :]
        certainty = np.where(decisions, probabilities, 1.0 - probabilities)
        return decisions.astype(int), certainty.min(axis=1)
