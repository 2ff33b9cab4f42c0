"""The transformer blended with the TF-IDF baseline, head by head.

The two models err differently: the TF-IDF catches the keywords of rare labels (rinnovo, disdetta)
from few examples, the transformer reads paraphrase, tone and Italian it has not seen in training.
For each head the served probabilities are

    p = w · p_transformer + (1 − w) · p_tfidf

with w chosen on the validation split from WEIGHT_GRID (the head's macro-F1 as served: multi-label
thresholds are tuned on the blended probabilities for every candidate w). w = 1 is the transformer
alone, so a head where the blend does not help keeps the transformer. The baseline is stored in a
subfolder of the model directory (BLEND_DIR) and the weights in config.json ("blend").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.partial_labels import labelled_rows
from training.predict import HeadSpec
from training.thresholds import tune_thresholds

BLEND_DIR = "tfidf"
WEIGHT_GRID = tuple(round(0.1 * step, 1) for step in range(11))


def blend(transformer: dict[str, np.ndarray], baseline: dict[str, np.ndarray], weights: dict[str, float]) -> dict[str, np.ndarray]:
    """Per head, the weighted mean of the two models' probabilities (a head without a weight: the transformer's)."""
    return {
        name: probabilities if name not in weights
        else (weights[name] * probabilities + (1.0 - weights[name]) * baseline[name]).astype(np.float32)
        for name, probabilities in transformer.items()
    }


class BlendBackend:
    """A transformer backend (torch or ONNX) and a BaselineBackend, blended by head."""

    def __init__(self, transformer, baseline, weights: dict[str, float]):
        self.transformer = transformer
        self.baseline = baseline
        self.weights = dict(weights)

    @property
    def runtime(self) -> str:
        return self.transformer.runtime

    def probabilities(self, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
        return blend(self.transformer.probabilities(texts, batch_size), self.baseline.probabilities(texts, batch_size),
                     self.weights)


def _head_score(head: HeadSpec, gold: np.ndarray, probabilities: np.ndarray) -> tuple[float, list[float] | None]:
    """(macro-F1 as served, thresholds tuned here for a multi-label head)."""
    from training.evaluate import evaluate_head  # here: evaluate imports this module's neighbours

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
