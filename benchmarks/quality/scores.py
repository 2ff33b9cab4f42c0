"""The scores a benchmark reports for one trained model on one test split."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import evaluate

from benchmarks.quality.spec import BenchmarkSpec, BenchmarkSpecError, Score
from data.schema import Post
from training.evaluation.evaluate import METRICS_DIR, EvaluationReport
from training.inference.predict import Predictor

SENTIPOLC_METRIC_DIR = METRICS_DIR / "sentipolc_polarity"


@lru_cache(maxsize=1)
def sentipolc_metric():
    return evaluate.load(str(SENTIPOLC_METRIC_DIR))


def sentipolc_score(score: Score, predicted: dict[str, list[str]], gold: dict[str, list[str]]) -> float:
    """The SENTIPOLC score over binary heads; predicted/gold: head -> one label id per post."""
    flags_predicted = [[int(predicted[head][row] == score.positive_label) for head in score.heads] for row in range(len(predicted[score.heads[0]]))]
    flags_gold = [[int(gold[head][row] == score.positive_label) for head in score.heads] for row in range(len(gold[score.heads[0]]))]
    return float(sentipolc_metric().compute(predictions=flags_predicted, references=flags_gold, flags=tuple(score.heads))["score"])


def compute_scores(spec: BenchmarkSpec, model_dir: Path, test_posts: list[Post], report: EvaluationReport) -> dict[str, float]:
    """score name -> value. Head-level figures come from the evaluation report (the product's own
    evaluation); the SENTIPOLC score needs each post's flags, so its heads are predicted again."""
    values: dict[str, float] = {}
    predicted = None
    for score in spec.scores:
        head = report.heads[score.heads[0]]
        if score.metric == "accuracy":
            values[score.name] = head.accuracy
        elif score.metric == "macro_f1":
            values[score.name] = head.macro_f1
        elif score.metric == "class_f1":
            if score.label not in head.per_class:
                raise BenchmarkSpecError(f"score {score.name}: head {head.name} has no label {score.label!r} ({', '.join(head.labels)})")
            values[score.name] = head.per_class[score.label]["f1"] or 0.0
        else:
            if predicted is None:  # once for every sentipolc score: all their heads at once
                heads = sorted({head for other in spec.scores if other.metric == "sentipolc" for head in other.heads})
                predicted = predict_labels(model_dir, test_posts, heads)
            gold = {name: [post.labels[name] for post in test_posts] for name in score.heads}
            values[score.name] = sentipolc_score(score, predicted, gold)
    return values


def predict_labels(model_dir: Path, posts: list[Post], heads: list[str]) -> dict[str, list[str]]:
    predictor = Predictor.from_directory(model_dir, model_version=model_dir.parent.name)
    predictions = predictor.predict([post.text for post in posts], batch_size=64)
    return {name: [prediction[name].labels[0] for prediction in predictions] for name in heads}
