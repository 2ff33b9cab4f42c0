"""The TF-IDF baseline as saved and loaded: one shared vectorizer and a classifier per head
(fitted by training/fitting/baseline.py), and its backend for `Predictor`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np

from training.inference.runtimes import BASELINE_RUNTIME

BASELINE_FILE = "baseline.json"
PIPELINE_FILE = "baseline.joblib"


class BaselineModel:
    """Vectorizer + one classifier per head, with the heads' label maps and thresholds."""

    def __init__(self, vectorizer, classifiers: dict, heads: dict[str, dict], taxonomy_version: str):
        self.vectorizer = vectorizer
        self.classifiers = classifiers
        self.heads = heads  # same shape as SmistaConfig.heads: labels, multi_label, thresholds
        self.taxonomy_version = taxonomy_version

    def predict_proba(self, texts: list[str]) -> dict[str, np.ndarray]:
        features = self.vectorizer.transform(texts)
        result = {}
        for name, spec in self.heads.items():
            classifier = self.classifiers[name]
            if spec["multi_label"]:
                result[name] = classifier.predict_proba(features).astype(np.float32)
                continue
            # The classifier only knows classes seen in training; unseen ones get probability 0.
            probabilities = np.zeros((len(texts), len(spec["labels"])), dtype=np.float32)
            probabilities[:, classifier.classes_] = classifier.predict_proba(features)
            result[name] = probabilities
        return result

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump({"vectorizer": self.vectorizer, "classifiers": self.classifiers}, model_dir / PIPELINE_FILE)
        description = {"kind": "tfidf_baseline", "taxonomy_version": self.taxonomy_version, "heads": self.heads}
        (model_dir / BASELINE_FILE).write_text(json.dumps(description, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> BaselineModel:
        description = json.loads((model_dir / BASELINE_FILE).read_text(encoding="utf-8"))
        # joblib unpickles: load only model directories you produced or trust, as with any pickle.
        parts = joblib.load(model_dir / PIPELINE_FILE)
        return cls(parts["vectorizer"], parts["classifiers"], description["heads"], str(description["taxonomy_version"]))


class BaselineBackend:
    """Runs the TF-IDF baseline."""

    runtime = BASELINE_RUNTIME

    def __init__(self, model: BaselineModel):
        self.model = model

    def probabilities(self, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
        # One sparse matrix product per head; batching buys nothing here.
        return self.model.predict_proba(list(texts))
