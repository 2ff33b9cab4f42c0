"""The SENTIPOLC 2016 score (EVALITA 2016, Barbieri et al.): the task's own metric, not plain accuracy.

An `evaluate` metric module, loaded by path (`evaluate.load("training/metrics/sentipolc_polarity")`),
as our other metric: the hub has no copy of it and the hub is not reachable offline anyway.

Each SENTIPOLC label is a binary flag per tweet. The official scorer computes, for each flag, the F1
of class 0 and the F1 of class 1 and averages them (the flag's macro-F1); the polarity score is the
mean of that figure over the two polarity flags, `opos` and `oneg` (a tweet can have both: mixed, or
neither: neutral). Subjectivity (`subj`) and irony (`iro`) are scored the same way with one flag.
An F1 whose class has no gold and no predicted tweet counts as 0, as in the official scorer
(precision and recall are 0 when their denominators are).
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "SENTIPOLC 2016 score: mean over the given binary flags of the macro-F1 (class 0 and class 1) of each flag."

_KWARGS_DESCRIPTION = """
Args:
    predictions: one list of 0/1 flags per tweet, in the order of `flags` (e.g. [opos, oneg]).
    references: the gold flags, same shape.
    flags: names of the flags, default ("opos", "oneg"): the polarity task.
Returns:
    score: the mean over flags of each flag's macro-F1 (for opos and oneg: the official polarity score).
    <flag>_f1_0, <flag>_f1_1, <flag>_f1: per flag, the F1 of class 0, of class 1, and their mean.
"""


def binary_f1(gold: np.ndarray, predicted: np.ndarray, positive: int) -> float:
    true_positive = int(np.sum((predicted == positive) & (gold == positive)))
    predicted_count = int(np.sum(predicted == positive))
    gold_count = int(np.sum(gold == positive))
    precision = true_positive / predicted_count if predicted_count else 0.0
    recall = true_positive / gold_count if gold_count else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


class SentipolcPolarity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Barbieri et al., Overview of the EVALITA 2016 SENTIment POLarity Classification Task, 2016.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("int32")), "references": datasets.Sequence(datasets.Value("int32"))}
            ),
        )

    def _compute(self, predictions, references, flags=("opos", "oneg")):
        predicted = np.asarray(predictions, dtype=int)
        gold = np.asarray(references, dtype=int)
        if predicted.size == 0:
            raise ValueError("sentipolc_polarity needs at least one tweet")
        if predicted.ndim != 2 or predicted.shape[1] != len(flags):
            raise ValueError(f"each prediction needs {len(flags)} flags ({', '.join(flags)}), got shape {predicted.shape}")
        if not set(np.unique(np.concatenate([predicted.ravel(), gold.ravel()]))) <= {0, 1}:
            raise ValueError("SENTIPOLC flags are 0 or 1")
        result = {}
        for column, flag in enumerate(flags):
            f1_0 = binary_f1(gold[:, column], predicted[:, column], 0)
            f1_1 = binary_f1(gold[:, column], predicted[:, column], 1)
            result[f"{flag}_f1_0"] = f1_0
            result[f"{flag}_f1_1"] = f1_1
            result[f"{flag}_f1"] = (f1_0 + f1_1) / 2
        result["score"] = float(np.mean([result[f"{flag}_f1"] for flag in flags]))
        return result
