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

BLEND_DIR = "tfidf"


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
