"""Evaluation: metrics on hand-made predictions, the coverage metric, thresholds, reports and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.evaluation.evaluate import coverage_metric, evaluate_head, expected_calibration_error
from training.evaluation.report_files import write_report
from training.fitting.thresholds import tune_thresholds
from training.inference.heads import HeadSpec

pytest_plugins = ("tests.training_fixtures",)

SINGLE = HeadSpec(name="sentiment", labels=["negativo", "neutro", "positivo"], multi_label=False)
MULTI = HeadSpec(name="business_action", labels=["acquisto", "disdetta"], multi_label=True, thresholds=[0.5, 0.3])


def test_coverage_at_precision_on_a_hand_example():
    # ranked by confidence: right, right, wrong, right, wrong
    result = coverage_metric().compute(
        confidences=[0.99, 0.9, 0.8, 0.7, 0.6], correct=[True, True, False, True, False], targets=(0.9, 0.75, 0.5)
    )
    assert result["coverage_at_90"] == pytest.approx(0.4) and result["threshold_at_90"] == pytest.approx(0.9)
    assert result["coverage_at_75"] == pytest.approx(0.8) and result["threshold_at_75"] == pytest.approx(0.7)
    assert result["coverage_at_50"] == pytest.approx(1.0)
    assert result["curve_precision"] == pytest.approx([1.0, 1.0, 2 / 3, 0.75, 0.6])


def test_coverage_keeps_tied_confidences_together_and_can_be_zero():
    tied = coverage_metric().compute(confidences=[0.9, 0.9, 0.5], correct=[True, False, True], targets=(0.9,))
    assert tied["coverage_at_90"] == 0.0 and tied["threshold_at_90"] is None
    assert tied["curve_coverage"] == pytest.approx([2 / 3, 1.0])


def test_expected_calibration_error():
    # all in one bin: mean confidence 0.85, accuracy 0.5
    ece, bins = expected_calibration_error(np.array([0.82, 0.88]), np.array([True, False]))
    assert ece == pytest.approx(0.35) and len(bins) == 1 and bins[0]["count"] == 2
    perfect, _ = expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True]))
    assert perfect == pytest.approx(0.0)


def test_single_label_head_metrics():
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    gold = np.array([0, 1, 1, 2])  # the third post is wrong (predicted negativo)
    report = evaluate_head(SINGLE, gold, probabilities)
    assert report.accuracy == pytest.approx(0.75)
    assert report.per_class["neutro"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert report.per_class["negativo"]["precision"] == pytest.approx(0.5)
    assert report.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)
    assert report.confusion == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    # the wrong post has the lowest confidence: the three most confident are all right
    assert report.coverage["90"] == pytest.approx(0.75) and report.coverage["95"] == pytest.approx(0.75)


def test_multi_label_head_uses_thresholds_and_exact_match():
    probabilities = np.array([[0.9, 0.35], [0.2, 0.1], [0.6, 0.2], [0.1, 0.9]])
    gold = np.array([[1, 1], [0, 0], [0, 0], [0, 1]])
    report = evaluate_head(MULTI, gold, probabilities)
    # decisions with thresholds (0.5, 0.3): [1,1], [0,0], [1,0], [0,1] -> the third is wrong
    assert report.accuracy == pytest.approx(0.75)
    assert report.confusion[0] == [[2, 1], [0, 1]]  # acquisto: tn 2, fp 1, fn 0, tp 1
    assert report.per_class["disdetta"]["f1"] == pytest.approx(1.0)
    assert report.macro_f1 == pytest.approx((2 / 3 + 1.0) / 2)


def test_a_class_absent_from_gold_and_predictions_is_left_out_of_macro_f1():
    probabilities = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    report = evaluate_head(SINGLE, np.array([0, 1]), probabilities)
    assert report.macro_f1 == pytest.approx(1.0)
    assert report.per_class["positivo"]["f1"] is None and report.per_class["positivo"]["support"] == 0


def test_thresholds_maximise_validation_f1_per_label():
    probabilities = np.array([[0.35, 0.9], [0.32, 0.8], [0.1, 0.2], [0.05, 0.1]])
    gold = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    tuned = tune_thresholds(probabilities, gold, ["acquisto", "disdetta"])
    assert 0.1 < tuned.thresholds["acquisto"] <= 0.32
    assert tuned.thresholds["disdetta"] == pytest.approx(0.5)  # any of 0.21-0.8 is perfect: nearest to 0.5
    untuned = tune_thresholds(probabilities, np.zeros((4, 2), dtype=int), ["acquisto", "disdetta"])
    assert untuned.untuned == ["acquisto", "disdetta"] and untuned.thresholds["acquisto"] == 0.5


def test_report_files(tmp_path):
    from training.evaluation.evaluate import EvaluationReport

    heads = {
        "sentiment": evaluate_head(SINGLE, np.array([0, 1]), np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])),
        "business_action": evaluate_head(MULTI, np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.1], [0.2, 0.7]])),
    }
    report = EvaluationReport(split="test", posts=2, model_version="m", heads=heads, seconds=0.5)
    written = write_report(report, tmp_path)
    names = {path.name for path in written}
    for head in heads:
        assert {f"confusion_{head}.png", f"reliability_{head}.png", f"coverage_{head}.png"} <= names
    assert all(path.stat().st_size > 1000 for path in written if path.suffix == ".png")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["heads"]["sentiment"]["accuracy"] == 1.0 and metrics["posts_per_second"] == 4.0
    assert report.metrics("test")["test_business_action_coverage_at_90"] == 1.0
    assert "sentiment" in report.format_table()


def test_evaluate_command_on_a_split_and_on_a_file(tiny_run, baseline_run, synthetic_dataset, tmp_path, capsys):
    from smista.cli import main

    output = tmp_path / "evaluation"
    code = main(["evaluate", "--model", str(tiny_run.model_dir), "--split", "validation",
                 "--dataset-dir", str(synthetic_dataset), "--output-dir", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "validation:" in printed and "macro-F1" in printed and "posts/s" in printed
    assert (output / "confusion_intent.png").is_file() and (output / "reliability_sentiment.png").is_file()
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["posts"] == len((synthetic_dataset / "validation.jsonl").read_text().splitlines())

    code = main(["evaluate", "--model", str(baseline_run.model_dir), "--file", str(synthetic_dataset / "test.jsonl"),
                 "--output-dir", str(tmp_path / "file"), "--no-plots"])
    assert code == 0
    assert sorted(path.name for path in (tmp_path / "file").iterdir()) == ["metrics.json"]


def test_evaluate_command_rejects_unlabelled_posts(tiny_run, tmp_path, capsys):
    from smista.cli import main

    unlabelled = tmp_path / "posts.jsonl"
    unlabelled.write_text(json.dumps({"id": "a", "text": "ciao", "channel": "twitter"}) + "\n")
    assert main(["evaluate", "--model", str(tiny_run.model_dir), "--file", str(unlabelled)]) == 2
    assert "missing gold label(s)" in capsys.readouterr().err
