"""Coverage at precision: how many posts can be automated while staying right often enough.

An `evaluate` metric module, loaded by path (`evaluate.load("training/metrics/coverage_at_precision")`):
the hub copies of standard metrics are not reachable offline, and this one is ours.

Posts are ranked by the model's confidence. Automating every post whose confidence is at or above a
threshold covers some share of the posts (the coverage) with some accuracy among them (the
precision of the automation). For each target precision, the metric gives the largest coverage
whose precision reaches the target, and the confidence threshold that achieves it. Thresholds are
only placed between distinct confidence values: posts with equal confidence are automated together.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Largest share of posts automatable (confidence >= threshold) with precision >= each target."

_KWARGS_DESCRIPTION = """
Args:
    confidences: the model's confidence for each post (higher means more certain).
    correct: whether the model's answer for each post is right.
    targets: the precision targets, default (0.90, 0.95).
Returns:
    coverage_at_<pp>: for each target (in percent, e.g. coverage_at_90), the largest share of posts
        with precision >= target; 0.0 when no threshold reaches it.
    threshold_at_<pp>: the lowest confidence among those posts (None when coverage is 0).
    curve_threshold, curve_coverage, curve_precision: the whole curve, one point per distinct
        confidence, from the most to the least confident.
"""


class CoverageAtPrecision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"confidences": datasets.Value("float64"), "correct": datasets.Value("bool")}),
        )

    def _compute(self, confidences, correct, targets=(0.90, 0.95)):
        confidences = np.asarray(confidences, dtype=float)
        correct = np.asarray(correct, dtype=bool)
        if confidences.size == 0:
            raise ValueError("coverage_at_precision needs at least one prediction")
        order = np.argsort(-confidences, kind="stable")
        ranked_confidence = confidences[order]
        cumulative_correct = np.cumsum(correct[order])
        # A cut after position i is valid only where the next confidence is lower (ties stay together).
        last_of_tie = np.append(ranked_confidence[1:] < ranked_confidence[:-1], True)
        count = np.arange(1, confidences.size + 1)[last_of_tie]
        precision = cumulative_correct[last_of_tie] / count
        coverage = count / confidences.size
        threshold = ranked_confidence[last_of_tie]
        result = {}
        for target in targets:
            key = f"{round(target * 100):d}"
            reached = np.flatnonzero(precision >= target - 1e-12)
            if reached.size:
                best = reached[-1]
                result[f"coverage_at_{key}"] = float(coverage[best])
                result[f"threshold_at_{key}"] = float(threshold[best])
            else:
                result[f"coverage_at_{key}"] = 0.0
                result[f"threshold_at_{key}"] = None
        result["curve_threshold"] = threshold.tolist()
        result["curve_coverage"] = coverage.tolist()
        result["curve_precision"] = precision.tolist()
        return result
