"""Evaluate a model on a split of the data set or on any JSONL file of labelled posts.

Per head: accuracy, macro-F1, per-class precision/recall/F1 (scikit-learn), a confusion matrix,
expected calibration error with a reliability plot, and the coverage/accuracy curve of the
confidence threshold with the coverage reachable at 90% and 95% precision (our
`coverage_at_precision` metric, a local `evaluate` module).

Multi-label heads (business_action) are scored as follows: accuracy is the exact-match ratio (all
labels of a post right), macro-F1 is over labels, the confusion matrix is one 2x2 per label,
calibration is over every (post, label) yes/no decision, and a post's confidence is its least
certain decision (as in `HeadPrediction`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import evaluate
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)

from data.schema import Post
from data.taxonomy import Taxonomy
from training.errors import EvaluationError
from training.inference.heads import HeadSpec
from training.inference.predict import Predictor
from training.label_profile import head_profile

# Our `evaluate` metric modules, loaded by path (evaluate.load): coverage_at_precision, sentipolc_polarity.
METRICS_DIR = Path(__file__).resolve().parent / "metrics"
COVERAGE_METRIC_DIR = METRICS_DIR / "coverage_at_precision"
PRECISION_TARGETS = (0.90, 0.95)
CALIBRATION_BINS = 10



@dataclass
class HeadReport:
    name: str
    multi_label: bool
    labels: list[str]
    accuracy: float
    macro_f1: float
    ece: float
    coverage: dict[str, float]                 # "90" -> share of posts automatable at 90% precision
    coverage_threshold: dict[str, float | None]  # "90" -> confidence threshold that achieves it
    per_class: dict[str, dict[str, float | int | None]]  # label -> precision, recall, f1, support
    confusion: list                             # single: [gold][predicted]; multi: per label [[tn, fp], [fn, tp]]
    calibration_bins: list[dict[str, float]]    # non-empty bins: confidence, accuracy, count
    curve: dict[str, list[float]]               # threshold, coverage, precision
    posts: int = 0                              # posts scored: those labelled for this head


@dataclass
class EvaluationReport:
    split: str
    posts: int
    model_version: str
    heads: dict[str, HeadReport]
    seconds: float = 0.0  # time to predict every post (batch 32)
    notes: list[str] = field(default_factory=list)
    # Per head, the shares of the predicted labels and the mean confidence over every post of the
    # split (training.label_profile): the drift reference when the split is test.
    profile: dict[str, dict] = field(default_factory=dict)

    @property
    def posts_per_second(self) -> float:
        return self.posts / self.seconds if self.seconds > 0 else float("nan")

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics for MLflow: <prefix>_<head>_<metric>."""
        flat: dict[str, float] = {}
        for name, head in self.heads.items():
            flat[f"{prefix}_{name}_accuracy"] = head.accuracy
            flat[f"{prefix}_{name}_macro_f1"] = head.macro_f1
            flat[f"{prefix}_{name}_ece"] = head.ece
            flat[f"{prefix}_{name}_posts"] = head.posts  # partial labels: fewer than the split's posts
            for target, value in head.coverage.items():
                flat[f"{prefix}_{name}_coverage_at_{target}"] = value
        return flat

    def to_dict(self) -> dict:
        data = asdict(self)
        data["posts_per_second"] = self.posts_per_second
        return data

    def format_table(self) -> str:
        targets = [f"{round(t * 100)}" for t in PRECISION_TARGETS]
        header = f"{'head':<18}{'accuracy':>10}{'macro-F1':>10}{'ECE':>8}" + "".join(f"{'cov@' + t:>9}" for t in targets)
        lines = [f"{self.split}: {self.posts} posts, model {self.model_version}", header, "-" * len(header)]
        for name, head in self.heads.items():
            lines.append(
                f"{name:<18}{head.accuracy:>10.3f}{head.macro_f1:>10.3f}{head.ece:>8.3f}"
                + "".join(f"{head.coverage[t]:>9.3f}" for t in targets)
            )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


@lru_cache(maxsize=1)
def coverage_metric():
    return evaluate.load(str(COVERAGE_METRIC_DIR))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS):
    """ECE with equal-width confidence bins: the share-weighted mean |accuracy - confidence|."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first bin.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count == 0:
            continue
        mean_confidence = float(confidence[members].mean())
        accuracy = float(correct[members].mean())
        ece += count / len(confidence) * abs(accuracy - mean_confidence)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "confidence": mean_confidence, "accuracy": accuracy, "count": count})
    return float(ece), table


def gold_matrix(posts: Sequence[Post], head: HeadSpec) -> np.ndarray:
    """Single-label: [posts] label indices; multi-label: [posts, labels] 0/1."""
    position = {label: i for i, label in enumerate(head.labels)}

    def index(label: str, post: Post) -> int:
        if label not in position:
            raise EvaluationError(
                f"post {post.id!r}: label {label!r} of {head.name} is not one the model knows ({', '.join(head.labels)})"
            )
        return position[label]

    if head.multi_label:
        gold = np.zeros((len(posts), len(head.labels)), dtype=int)
        for row, post in enumerate(posts):
            for label in post.labels[head.name]:
                gold[row, index(label, post)] = 1
        return gold
    return np.array([index(post.labels[head.name], post) for post in posts], dtype=int)


def evaluate_head(head: HeadSpec, gold: np.ndarray, probabilities: np.ndarray) -> HeadReport:
    decisions, confidence = head.decide(probabilities)
    all_labels = list(range(len(head.labels)))
    # nan for a class with neither gold nor predicted posts: it is left out of the macro average
    # instead of counting as an F1 of 0.
    f1_kwargs = {"zero_division": np.nan}
    if head.multi_label:
        post_correct = (decisions == gold).all(axis=1)
        accuracy = float(accuracy_score(gold, decisions))
        macro_f1 = float(f1_score(gold, decisions, average="macro", **f1_kwargs))
        confusion = multilabel_confusion_matrix(gold, decisions).tolist()
        decision_certainty = np.where(decisions == 1, probabilities, 1.0 - probabilities).ravel()
        ece, bins = expected_calibration_error(decision_certainty, (decisions == gold).ravel())
        precision, recall, f1, support = precision_recall_fscore_support(gold, decisions, **f1_kwargs)
    else:
        post_correct = decisions == gold
        accuracy = float(accuracy_score(gold, decisions))
        macro_f1 = float(f1_score(gold, decisions, labels=all_labels, average="macro", **f1_kwargs))
        confusion = confusion_matrix(gold, decisions, labels=all_labels).tolist()
        ece, bins = expected_calibration_error(confidence, post_correct)
        precision, recall, f1, support = precision_recall_fscore_support(gold, decisions, labels=all_labels, **f1_kwargs)
    coverage = coverage_metric().compute(confidences=confidence.tolist(), correct=post_correct.tolist(), targets=PRECISION_TARGETS)
    targets = [f"{round(t * 100)}" for t in PRECISION_TARGETS]
    return HeadReport(
        posts=len(gold),
        name=head.name,
        multi_label=head.multi_label,
        labels=list(head.labels),
        accuracy=accuracy,
        macro_f1=0.0 if np.isnan(macro_f1) else macro_f1,
        ece=ece,
        coverage={t: coverage[f"coverage_at_{t}"] for t in targets},
        coverage_threshold={t: coverage[f"threshold_at_{t}"] for t in targets},
        per_class={
            label: {
                "precision": _number(precision[i]),
                "recall": _number(recall[i]),
                "f1": _number(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(head.labels)
        },
        confusion=confusion,
        calibration_bins=bins,
        curve={
            "threshold": coverage["curve_threshold"],
            "coverage": coverage["curve_coverage"],
            "precision": coverage["curve_precision"],
        },
    )


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def evaluate_posts(predictor: Predictor, posts: Sequence[Post], split: str, batch_size: int = 32) -> EvaluationReport:
    """Predict every post and score every head against its gold labels."""
    if not posts:
        raise EvaluationError(f"{split}: no posts to evaluate")
    unlabelled = [post.id for post in posts if not post.labels or not any(name in post.labels for name in predictor.heads)]
    if unlabelled:
        raise EvaluationError(
            f"{split}: {len(unlabelled)} post(s) lack gold labels for every head of the model, e.g. {unlabelled[:3]}"
        )
    started = time.perf_counter()
    probabilities = predictor.predict_probabilities([post.text for post in posts], batch_size=batch_size)
    seconds = time.perf_counter() - started
    heads, notes = {}, []
    profile = {name: decisions_profile(head, probabilities[name]) for name, head in predictor.heads.items()}
    for name, head in predictor.heads.items():
        # Partial labels: each head is scored on the posts labelled for it, and only if there are any.
        labelled = np.array([name in post.labels for post in posts])
        if not labelled.any():
            notes.append(f"{name}: no post labelled for it, not scored")
            continue
        if not labelled.all():
            notes.append(f"{name}: scored on the {int(labelled.sum())} of {len(posts)} posts labelled for it")
        chosen = [post for post, keep in zip(posts, labelled) if keep]
        heads[name] = evaluate_head(head, gold_matrix(chosen, head), probabilities[name][labelled])
    return EvaluationReport(
        split=split, posts=len(posts), model_version=predictor.model_version, heads=heads, seconds=seconds, notes=notes,
        profile=profile,
    )


def decisions_profile(head: HeadSpec, probabilities: np.ndarray) -> dict:
    """The head's decisions on these posts as a label profile (shares and mean confidence)."""
    decisions, confidence = head.decide(probabilities)
    if head.multi_label:
        label_lists = [[head.labels[i] for i in np.flatnonzero(row)] for row in decisions]
    else:
        label_lists = [[head.labels[i]] for i in decisions]
    return head_profile(label_lists, confidence.tolist(), head.labels, head.multi_label)


def check_taxonomy_matches(predictor: Predictor, taxonomy: Taxonomy) -> None:
    if predictor.taxonomy_version != taxonomy.version:
        raise EvaluationError(
            f"model {predictor.model_version} was trained on taxonomy v{predictor.taxonomy_version}, "
            f"the posts are labelled with v{taxonomy.version}"
        )
