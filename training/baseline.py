"""The TF-IDF baseline every transformer run is judged against.

One TF-IDF of word and character n-grams (character n-grams within word boundaries catch Italian
inflections and typos: "funziona", "funzionava", "funzia"), shared by all heads, and a logistic
regression per head; one-vs-rest logistic regressions for the multi-label head. It is trained on
the same splits, its thresholds tuned the same way, and it is evaluated, logged and registered by
the same code as the transformer; `Predictor.load` loads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.partial_labels import labelled_rows
from training.predict import BASELINE_FILE
from training.recipe import BaselineSettings

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
        import joblib

        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump({"vectorizer": self.vectorizer, "classifiers": self.classifiers}, model_dir / PIPELINE_FILE)
        description = {"kind": "tfidf_baseline", "taxonomy_version": self.taxonomy_version, "heads": self.heads}
        (model_dir / BASELINE_FILE).write_text(json.dumps(description, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> BaselineModel:
        import joblib

        description = json.loads((model_dir / BASELINE_FILE).read_text(encoding="utf-8"))
        # joblib unpickles: load only model directories you produced or trust, as with any pickle.
        parts = joblib.load(model_dir / PIPELINE_FILE)
        return cls(parts["vectorizer"], parts["classifiers"], description["heads"], str(description["taxonomy_version"]))


def build_vectorizer(settings: BaselineSettings):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    common = {"lowercase": True, "sublinear_tf": settings.sublinear_tf, "min_df": settings.min_df, "max_features": settings.max_features}
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(analyzer="word", ngram_range=settings.word_ngram_range, **common)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=settings.char_ngram_range, **common)),
        ]
    )


def fit_baseline(
    texts: list[str],
    targets: dict[str, np.ndarray],
    heads: dict[str, dict],
    settings: BaselineSettings,
    taxonomy_version: str,
    seed: int,
) -> BaselineModel:
    """targets: field -> label indices (single-label) or [posts, labels] 0/1 (multi-label)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    vectorizer = build_vectorizer(settings)
    features = vectorizer.fit_transform(texts)
    classifiers = {}
    for name, spec in heads.items():
        weighting = settings.class_weighting.get(name, settings.default_class_weighting)
        regression = LogisticRegression(
            C=settings.C,
            class_weight="balanced" if weighting == "balanced" else None,
            max_iter=5000,
            random_state=seed,
        )
        classifier = OneVsRestClassifier(regression) if spec["multi_label"] else regression
        labelled = labelled_rows(targets[name])  # partial labels: each head learns from its labelled posts
        classifiers[name] = classifier.fit(features[labelled], targets[name][labelled])
    return BaselineModel(vectorizer, classifiers, heads, taxonomy_version)
