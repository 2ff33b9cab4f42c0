"""Per-label decision thresholds of a multi-label head, tuned on the validation split.

A sigmoid head says "yes" to a label when its probability reaches the label's threshold. 0.5 is
rarely best for rare labels, so each label gets the threshold that maximises its F1 on validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLD = 0.5
CANDIDATES = np.round(np.arange(0.05, 0.951, 0.01), 2)


@dataclass(frozen=True)
class TunedThresholds:
    thresholds: dict[str, float]  # label id -> threshold
    untuned: list[str]            # labels with no positive validation example: kept at 0.5


def tune_thresholds(probabilities: np.ndarray, gold: np.ndarray, labels: list[str]) -> TunedThresholds:
    """For each label, the candidate threshold with the best validation F1 (ties: nearest to 0.5).

    probabilities and gold are [posts, labels]; gold is 0/1.
    """
    thresholds: dict[str, float] = {}
    untuned: list[str] = []
    for column, label in enumerate(labels):
        truth = gold[:, column].astype(bool)
        if not truth.any():
            # F1 is undefined without a positive example; keep the neutral default and report it.
            thresholds[label] = DEFAULT_THRESHOLD
            untuned.append(label)
            continue
        scores = probabilities[:, column]
        predicted = scores[None, :] >= CANDIDATES[:, None]
        true_positive = (predicted & truth).sum(axis=1)
        f1 = 2 * true_positive / (predicted.sum(axis=1) + truth.sum())
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        thresholds[label] = float(CANDIDATES[best[np.argmin(np.abs(CANDIDATES[best] - DEFAULT_THRESHOLD))]])
    return TunedThresholds(thresholds=thresholds, untuned=untuned)
