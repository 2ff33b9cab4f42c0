"""Choosing the per-head weights of the transformer-TF-IDF blend on validation
(training/inference/blend_backend.py says what the blend is)."""

from __future__ import annotations

import numpy as np

from training.evaluation.evaluate import evaluate_head
from training.fitting.thresholds import tune_thresholds
from training.inference.heads import HeadSpec
from training.partial_labels import labelled_rows

WEIGHT_GRID = tuple(round(0.1 * step, 1) for step in range(11))


def _head_score(head: HeadSpec, gold: np.ndarray, probabilities: np.ndarray) -> tuple[float, list[float] | None]:
    """(macro-F1 as served, thresholds tuned here for a multi-label head)."""
    thresholds = None
    if head.multi_label:
        tuned = tune_thresholds(probabilities, gold, head.labels)
        thresholds = [float(tuned.thresholds[label]) for label in head.labels]
    spec = HeadSpec(name=head.name, labels=head.labels, multi_label=head.multi_label, thresholds=thresholds)
    return evaluate_head(spec, gold.astype(int), probabilities).macro_f1, thresholds


def choose_blend_weights(
    heads: dict[str, dict],
    transformer: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    targets: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """Pick each head's weight on validation; store the thresholds tuned at that weight in `heads`
    (in place). Returns head -> {"weight", "validation_macro_f1", "transformer_only_macro_f1"}.
    Ties go to the larger weight: the transformer unless the baseline adds something."""
    chosen: dict[str, dict[str, float]] = {}
    for name, spec in heads.items():
        rows = labelled_rows(targets[name])
        if not rows.any():
            continue  # nothing to choose on: the head stays the transformer's
        head = HeadSpec(name=name, labels=list(spec["labels"]), multi_label=bool(spec["multi_label"]))
        gold = targets[name][rows]
        scores = []
        for weight in WEIGHT_GRID:
            mixed = weight * transformer[name][rows] + (1.0 - weight) * baseline[name][rows]
            score, thresholds = _head_score(head, gold, mixed)
            scores.append((round(score, 6), weight, thresholds))
        best_score, best_weight, best_thresholds = max(scores, key=lambda item: (item[0], item[1]))
        if best_thresholds is not None:
            spec["thresholds"] = dict(zip(head.labels, best_thresholds))
        chosen[name] = {"weight": best_weight, "validation_macro_f1": best_score,
                        "transformer_only_macro_f1": scores[-1][0]}
    return chosen
