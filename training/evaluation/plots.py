"""The evaluation plots as PNG files: confusion matrix, reliability diagram, coverage/accuracy curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from training.evaluation.evaluate import PRECISION_TARGETS, HeadReport  # noqa: E402


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def confusion_matrix_png(head: HeadReport, path: Path) -> Path:
    if head.multi_label:
        figure, axes = plt.subplots(1, len(head.labels), figsize=(2.6 * len(head.labels), 2.8), squeeze=False)
        for axis, label, matrix in zip(axes[0], head.labels, head.confusion):
            _matrix(axis, np.array(matrix), ["no", "yes"], ["no", "yes"])
            axis.set_title(label, fontsize=9)
        figure.suptitle(f"{head.name}: confusion per label (rows gold, columns predicted)", fontsize=10)
        return _save(figure, path)
    size = max(4.0, 0.55 * len(head.labels) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    _matrix(axis, np.array(head.confusion), head.labels, head.labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    axis.set_title(f"{head.name}: confusion matrix (accuracy {head.accuracy:.2f}, macro-F1 {head.macro_f1:.2f})", fontsize=10)
    return _save(figure, path)


def _matrix(axis, matrix: np.ndarray, rows: list[str], columns: list[str]) -> None:
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, str(value), ha="center", va="center", fontsize=8, color="white" if value > threshold else "black")


def reliability_png(head: HeadReport, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(4.5, 4.2))
    bins = head.calibration_bins
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    widths = [b["high"] - b["low"] for b in bins]
    axis.bar(centres, [b["accuracy"] for b in bins], width=widths, edgecolor="black", alpha=0.7, label="accuracy")
    axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="darkred", label="mean confidence")
    axis.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence" + (" of each yes/no decision" if head.multi_label else ""))
    axis.set_ylabel("accuracy")
    axis.set_title(f"{head.name}: reliability (ECE {head.ece:.3f})", fontsize=10)
    axis.legend(fontsize=8, loc="upper left")
    return _save(figure, path)


def coverage_png(head: HeadReport, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.step(head.curve["coverage"], head.curve["precision"], where="post", label="accuracy of automated posts")
    for target in PRECISION_TARGETS:
        key = f"{round(target * 100)}"
        axis.axhline(target, linestyle=":", color="gray")
        axis.plot([head.coverage[key]], [target], "o", label=f"{key}% precision: coverage {head.coverage[key]:.2f}")
    axis.set_xlim(0, 1)
    axis.set_ylim(min(0.5, min(head.curve["precision"], default=0.5)), 1.01)
    axis.set_xlabel("coverage (share of posts automated, most confident first)")
    axis.set_ylabel("accuracy")
    axis.set_title(f"{head.name}: coverage vs accuracy over the confidence threshold", fontsize=10)
    axis.legend(fontsize=8, loc="lower left")
    return _save(figure, path)
