"""The TF-IDF baseline every transformer run is judged against.

One TF-IDF of word and character n-grams (character n-grams within word boundaries catch Italian
inflections and typos: "funziona", "funzionava", "funzia"), shared by all heads, and a logistic
regression per head; one-vs-rest logistic regressions for the multi-label head. It is trained on
the same splits, its thresholds tuned the same way, and it is evaluated, logged and registered by
the same code as the transformer; `Predictor.load` loads it.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion

from training.inference.baseline_model import BaselineModel
from training.partial_labels import labelled_rows
from training.recipe import BaselineSettings


def build_vectorizer(settings: BaselineSettings):
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
