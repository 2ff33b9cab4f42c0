"""Registry: the promotion rule, compare's table, promote against a local store."""

from __future__ import annotations

import pytest

from smista.cli import main
from training.errors import RegistryError
from training.shipping.promotion import PromotionPolicy, decide_promotion
from training.shipping.registry import format_comparison, summarize_versions

pytest_plugins = ("tests.training_fixtures",)

CHAMPION = {"intent_macro_f1": 0.70, "intent_accuracy": 0.72, "sentiment_macro_f1": 0.80, "priority_macro_f1": 0.60}


def challenger(**changes) -> dict[str, float]:
    return {**CHAMPION, **changes}


def test_first_promotion_is_allowed():
    decision = decide_promotion(challenger(), None, PromotionPolicy())
    assert decision.allowed and "first promotion" in decision.reasons[0]


def test_promotes_when_primary_improves_by_the_margin_and_no_head_regresses():
    decision = decide_promotion(challenger(intent_macro_f1=0.72, sentiment_macro_f1=0.79), CHAMPION, PromotionPolicy(margin=0.01, tolerance=0.02))
    assert decision.allowed
    assert "intent_macro_f1 0.7200 vs champion 0.7000: +0.0200" in decision.reasons[0]


def test_refuses_below_the_margin_or_without_gain():
    small = decide_promotion(challenger(intent_macro_f1=0.705), CHAMPION, PromotionPolicy(margin=0.01))
    assert not small.allowed and "+0.0050, needs at least +0.0100" in small.reasons[0]
    equal = decide_promotion(challenger(), CHAMPION, PromotionPolicy(margin=0.0))
    assert not equal.allowed


def test_refuses_a_head_regression_beyond_tolerance_naming_head_and_amount():
    decision = decide_promotion(
        challenger(intent_macro_f1=0.75, priority_macro_f1=0.55), CHAMPION, PromotionPolicy(margin=0.01, tolerance=0.02)
    )
    assert not decision.allowed
    assert any("head priority regresses: macro-F1 0.5500 vs champion 0.6000 (-0.0500, tolerance 0.0200)" in r for r in decision.reasons)


def test_primary_metric_other_than_intent_and_bad_names():
    decision = decide_promotion(challenger(sentiment_macro_f1=0.85), CHAMPION, PromotionPolicy(primary_metric="sentiment_macro_f1"))
    assert decision.allowed
    with pytest.raises(RegistryError, match="primary_metric 'intent_f1' is not one of"):
        PromotionPolicy(primary_metric="intent_f1").check(["intent", "sentiment"])


def test_compare_table_side_by_side(tiny_run, baseline_run, local_tracking_uri, taxonomy):
    summaries = summarize_versions([tiny_run.registered_version, baseline_run.registered_version], tracking_uri=local_tracking_uri)
    assert [s.kind for s in summaries] == ["transformer", "tfidf_baseline"]
    table = format_comparison(summaries, taxonomy.field_names)
    lines = table.splitlines()
    assert f"v{tiny_run.registered_version}" in lines[0] and f"v{baseline_run.registered_version}" in lines[0]
    for row in ("intent macro-F1", "sentiment ECE", "business_action cov@90%", "train time (s)", "model size (MB)", "speed (posts/s)"):
        line = next(line for line in lines if line.startswith(row))
        assert len(line.split()) >= 2 + len(row.split()) - 1
    assert "from scratch" in table and "tf-idf" in table
    with pytest.raises(RegistryError, match="has no version"):
        summarize_versions(["99"], tracking_uri=local_tracking_uri)


def test_compare_and_promote_commands(tiny_run, baseline_run, synthetic_dataset, local_tracking_uri, capsys):
    assert main(["models", "compare", "--tracking-uri", local_tracking_uri]) == 0
    assert "intent macro-F1" in capsys.readouterr().out
    test_file = str(synthetic_dataset / "test.jsonl")
    promote = ["models", "promote", "--tracking-uri", local_tracking_uri, "--test-file", test_file]
    assert main([*promote, "--version", tiny_run.registered_version]) == 0
    assert "no current champion: first promotion" in capsys.readouterr().out
    assert main([*promote, "--version", tiny_run.registered_version]) == 2
    assert "already holds the alias 'champion'" in capsys.readouterr().err
