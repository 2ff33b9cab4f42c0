"""Compare the inference runtimes of one model on labelled posts: torch (the reference), onnx (fp32
export) and onnx-int8 (the dynamically quantised export).

Per head: the agreement with torch (share of posts whose label(s) are identical; for a multi-label
head every label decision must match) and the macro-F1 of each runtime against the gold labels,
with its difference to torch's. `smista models check-runtime` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from data.schema import Post
from training.evaluation.evaluate import EvaluationReport, evaluate_posts
from training.inference.predict import Predictor
from training.inference.runtimes import RUNTIMES


@dataclass
class RuntimeReport:
    runtime: str
    posts_per_second: float
    macro_f1: dict[str, float]                 # head -> macro-F1 against the gold labels
    agreement: dict[str, float]                # head -> share of posts labelled exactly as torch labels them
    max_probability_difference: dict[str, float]  # head -> largest |p - p_torch| over posts and labels


@dataclass
class RuntimeComparison:
    model_version: str
    posts: int
    heads: list[str]
    runtimes: dict[str, RuntimeReport] = field(default_factory=dict)
    kind: str = "transformer"   # a "tfidf_baseline" is compared on torch (scikit-learn) alone

    def to_dict(self) -> dict:
        return asdict(self)

    def format_table(self) -> str:
        reference = self.runtimes["torch"]
        others = [name for name in self.runtimes if name != "torch"]
        lines = [f"{self.posts} posts, model {self.model_version}; agreement = share of posts whose label(s) equal torch's", ""]
        if self.kind != "transformer":
            lines[-1:] = [f"a {self.kind} runs on scikit-learn only (runtime torch): no other runtime to compare", ""]
        header = f"{'head':<18}{'torch F1':>10}"
        for name in others:
            header += f"{name + ' agree':>17}{name + ' F1':>14}{'delta':>9}"
        lines += [header, "-" * len(header)]
        for head in self.heads:
            line = f"{head:<18}{reference.macro_f1[head]:>10.3f}"
            for name in others:
                report = self.runtimes[name]
                delta = report.macro_f1[head] - reference.macro_f1[head]
                line += f"{report.agreement[head]:>17.3f}{report.macro_f1[head]:>14.3f}{delta:>+9.3f}"
            lines.append(line)
        lines.append("")
        for name, report in self.runtimes.items():
            worst = max(report.max_probability_difference.values()) if report.max_probability_difference else 0.0
            extra = "" if name == "torch" else f", largest probability difference to torch {worst:.2e}"
            lines.append(f"{name:<10} {report.posts_per_second:>8.1f} posts/s (batch 32, this process){extra}")
        return "\n".join(lines)


def label_decisions(predictor: Predictor, probabilities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """head -> [posts, k] decisions (k = 1 for single-label heads), comparable row by row."""
    decisions = {}
    for name, head in predictor.heads.items():
        chosen, _ = head.decide(probabilities[name])
        decisions[name] = np.asarray(chosen).reshape(len(chosen), -1)
    return decisions


def compare_runtimes(model: str, posts: Sequence[Post], runtimes: Sequence[str] = RUNTIMES,
                     tracking_uri: str | None = None, batch_size: int = 32, split: str = "posts") -> RuntimeComparison:
    """Load `model` with each runtime (torch first: the reference) and score the same posts."""
    order = ["torch", *[name for name in runtimes if name != "torch"]]
    reference_probabilities: dict[str, np.ndarray] | None = None
    reference_labels: dict[str, np.ndarray] | None = None
    comparison: RuntimeComparison | None = None
    for runtime in order:
        if comparison is not None and comparison.kind != "transformer":
            break  # a TF-IDF baseline runs on scikit-learn only: nothing else to compare
        predictor = Predictor.load(model, tracking_uri=tracking_uri, runtime=runtime)
        report: EvaluationReport = evaluate_posts(predictor, posts, split, batch_size=batch_size)
        # evaluate_posts keeps no predictions; a second pass (not timed) gives them for the agreement.
        probabilities = predictor.predict_probabilities([post.text for post in posts], batch_size=batch_size)
        labels = label_decisions(predictor, probabilities)
        if comparison is None:
            comparison = RuntimeComparison(model_version=predictor.model_version, posts=len(posts), heads=list(report.heads),
                                           kind=predictor.kind)
            reference_probabilities, reference_labels = probabilities, labels
        comparison.runtimes[runtime] = RuntimeReport(
            runtime=predictor.runtime,
            posts_per_second=round(report.posts_per_second, 1),
            macro_f1={name: head.macro_f1 for name, head in report.heads.items()},
            agreement={name: float(np.mean(np.all(labels[name] == reference_labels[name], axis=1))) for name in labels},
            max_probability_difference={
                name: float(np.abs(probabilities[name] - reference_probabilities[name]).max()) for name in probabilities
            },
        )
    return comparison


def fastest_faithful_runtime(comparison: RuntimeComparison, max_f1_drop: float) -> tuple[str, list[str]]:
    """(runtime, why): the runtime with the most posts/s whose macro-F1 on every head is at most
    `max_f1_drop` below torch's on the compared posts. Torch, the reference, always qualifies."""
    reference = comparison.runtimes["torch"]
    reasons, faithful = [], []
    for name, report in comparison.runtimes.items():
        drops = {head: reference.macro_f1[head] - report.macro_f1[head] for head in comparison.heads}
        worst = max(drops, key=drops.get)
        if drops[worst] <= max_f1_drop:
            faithful.append(name)
            reasons.append(f"{name}: {report.posts_per_second:.1f} posts/s, largest macro-F1 drop {drops[worst]:+.3f} ({worst})")
        else:
            reasons.append(f"{name}: left out, {worst} macro-F1 {drops[worst]:.3f} below torch (allowed {max_f1_drop:.3f})")
    chosen = max(faithful, key=lambda name: comparison.runtimes[name].posts_per_second)
    return chosen, reasons
