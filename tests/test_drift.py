"""Drift: the population-stability figure, the reference saved with a trained model, and the
assessment on a store: it fires on a shifted sample and not on a resample of the same traffic."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from serving.drift import DriftGauge, assess_drift, population_stability, record_reference, traffic_profile
from serving.routing_config import DriftConfig
from serving.store import PredictionStore, RoutedPost
from training.inference.predict import Predictor
from training.label_profile import NO_LABEL, label_shares, read_reference

pytest_plugins = ("tests.training_fixtures",)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
INTENT_SHARES = {"assistenza_tecnica": 0.35, "fatturazione": 0.25, "informazioni": 0.2, "elogio": 0.1, "reclamo": 0.1}
SHIFTED = {"assistenza_tecnica": 0.15, "fatturazione": 0.15, "informazioni": 0.2, "elogio": 0.1, "reclamo": 0.1,
           "acquisto": 0.3}


def test_population_stability():
    same = {"a": 0.5, "b": 0.5}
    assert population_stability(same, same) == 0
    moved = population_stability(same, {"a": 0.8, "b": 0.2})
    # (0.3 ln 1.6) + (-0.3 ln 0.4) = 0.4159
    assert moved == pytest.approx(0.3 * 0.470004 + 0.3 * 0.916291, abs=1e-4)
    # A label absent on one side counts with a floor of 1e-4: large, finite.
    # (0.5 - 1) ln 0.5 + (0.5 - 1e-4) ln(0.5 / 1e-4) = 0.3466 + 4.2578
    assert population_stability({"a": 1.0}, {"a": 0.5, "b": 0.5}) == pytest.approx(4.6043, abs=1e-3)


def test_multi_label_shares_split_each_post_and_count_posts_without_labels():
    shares = label_shares([["acquisto", "rinnovo"], [], ["lamentela"], []], ["acquisto", "rinnovo", "lamentela"], True)
    assert shares == {"acquisto": 0.125, "rinnovo": 0.125, "lamentela": 0.25, NO_LABEL: 0.5}
    with pytest.raises(ValueError, match="not one of"):
        label_shares([["nope"]], ["a"], False)


def prediction(intent: str, confidence: float, rng: random.Random) -> dict:
    sentiment = rng.choice(["negativo", "neutro", "positivo"])
    return {"intent": {"labels": [intent], "probabilities": {}, "confidence": confidence},
            "sentiment": {"labels": [sentiment], "probabilities": {}, "confidence": 0.8},
            "business_action": {"labels": [], "probabilities": {}, "confidence": 0.9}}


def sample(shares: dict[str, float], count: int, rng: random.Random, confidence: float = 0.8) -> list[dict]:
    labels, weights = zip(*shares.items())
    return [prediction(rng.choices(labels, weights)[0], min(1.0, rng.gauss(confidence, 0.05)), rng)
            for _ in range(count)]


def fill(store: PredictionStore, predictions: list[dict], start: datetime, hours: float, prefix: str,
         model_version: str = "m/1") -> None:
    step = timedelta(hours=hours) / len(predictions)
    with store.session() as session:
        for index, predicted in enumerate(predictions):
            at = start + step * index + timedelta(seconds=1)
            session.add(RoutedPost(
                post_id=f"{prefix}-{index}", received_at=at, created_at=at, channel="twitter", public=True,
                model_version=model_version, taxonomy_version="1", routing_version="1", predictions=predicted,
                intent=predicted["intent"]["labels"][0], sentiment=predicted["sentiment"]["labels"][0], action="queue",
                queue="customer_care", team="customer_care", priority="normale", confidence_tier="auto",
                needs_human=False, reply_channel="public", out_of_hours=False, pii_kinds=[], reasons=[]))


@pytest.fixture
def store(tmp_path, taxonomy):
    db = PredictionStore(f"sqlite:///{tmp_path / 'drift.sqlite'}")
    rng = random.Random(11)
    reference = traffic_profile(sample(INTENT_SHARES, 2000, rng), taxonomy)
    record_reference(db, "m/1", {"format": 1, "source": {"split": "test"}, "heads": reference}, NOW)
    # The day before the window: the same traffic as the reference.
    fill(db, sample(INTENT_SHARES, 600, rng), NOW - timedelta(hours=48), 24, "previous")
    yield db
    db.close()


def test_a_resample_of_the_same_traffic_is_not_flagged(store, taxonomy):
    fill(store, sample(INTENT_SHARES, 600, random.Random(12)), NOW - timedelta(hours=24), 24, "now")
    assessment = assess_drift(store, taxonomy, DriftConfig(), NOW - timedelta(hours=24), NOW)
    assert assessment.posts == 600 and assessment.model_version == "m/1"
    against = {(h.head, h.against): h for h in assessment.heads}
    assert {("intent", "training"), ("intent", "previous_period"), ("sentiment", "training")} <= set(against)
    # (customer_type and priority are not in these stored predictions: not judged.)
    judged = [h for h in assessment.heads if h.head in ("intent", "sentiment", "business_action")]
    assert len(judged) == 6 and all(h.psi is not None and h.psi < 0.05 for h in judged), judged
    assert assessment.flagged == []


def test_a_shifted_sample_is_flagged_on_the_head_that_moved(store, taxonomy):
    fill(store, sample(SHIFTED, 600, random.Random(13)), NOW - timedelta(hours=24), 24, "now")
    assessment = assess_drift(store, taxonomy, DriftConfig(), NOW - timedelta(hours=24), NOW)
    flagged = {(h.head, h.against) for h in assessment.flagged}
    assert flagged == {("intent", "training"), ("intent", "previous_period")}
    assert all("PSI" in h.why for h in assessment.flagged)


def test_falling_confidence_is_flagged(store, taxonomy):
    fill(store, sample(INTENT_SHARES, 600, random.Random(14), confidence=0.6), NOW - timedelta(hours=24), 24, "now")
    assessment = assess_drift(store, taxonomy, DriftConfig(confidence_drop=0.1), NOW - timedelta(hours=24), NOW)
    flagged = {(h.head, h.against) for h in assessment.flagged}
    assert flagged == {("intent", "training"), ("intent", "previous_period")}
    assert all("confidence" in h.why for h in assessment.flagged)


def test_too_few_posts_are_not_judged(store, taxonomy):
    fill(store, sample(SHIFTED, 20, random.Random(15)), NOW - timedelta(hours=24), 24, "now")
    assessment = assess_drift(store, taxonomy, DriftConfig(min_posts=50), NOW - timedelta(hours=24), NOW)
    assert assessment.flagged == [] and all(h.psi is None and "not judged" in h.why for h in assessment.heads)
    assert len(assessment.heads) == 10


def test_without_a_training_reference_only_the_previous_period_counts(tmp_path, taxonomy):
    db = PredictionStore(f"sqlite:///{tmp_path / 'x.sqlite'}")
    fill(db, sample(INTENT_SHARES, 100, random.Random(1)), NOW - timedelta(hours=24), 24, "now", model_version="old/1")
    assessment = assess_drift(db, taxonomy, DriftConfig(), NOW - timedelta(hours=24), NOW)
    assert {h.against for h in assessment.heads} == {"previous_period"}
    assert any("no training reference recorded for model old/1" in note for note in assessment.notes)
    db.close()


def test_the_gauge_exposes_each_head_and_is_recomputed_after_invalidation(store, taxonomy):
    fill(store, sample(SHIFTED, 600, random.Random(16)), NOW - timedelta(hours=24), 24, "now")
    gauge = DriftGauge(store, taxonomy, DriftConfig(), clock=lambda: NOW, refresh_s=3600)
    text = gauge.exposition()
    assert 'smista_drift_flagged{head="intent",against="training",window="24h"} 1' in text
    assert 'smista_drift_flagged{head="sentiment",against="training",window="24h"} 0' in text
    assert 'smista_mean_confidence{head="intent",window="24h"} 0.' in text
    fill(store, sample(INTENT_SHARES, 3000, random.Random(17)), NOW - timedelta(hours=24), 24, "more")
    assert gauge.exposition() == text  # cached
    gauge.invalidate()
    psi = lambda exposition: float(next(line.split()[-1] for line in exposition.splitlines()  # noqa: E731
                                        if line.startswith('smista_drift_psi{head="intent",against="training"')))
    # Five times as many posts of the reference's traffic: the shift is diluted.
    assert psi(gauge.exposition()) < psi(text) / 2


def test_training_saves_the_reference_with_the_model(tiny_run, taxonomy):
    reference = read_reference(tiny_run.model_dir)
    assert reference is not None and reference["source"]["split"] == "test"
    assert set(reference["heads"]) == set(taxonomy.fields)
    intent = reference["heads"]["intent"]
    assert intent["posts"] == reference["source"]["posts"] > 0
    assert sum(intent["shares"].values()) == pytest.approx(1.0)
    assert 0 < intent["mean_confidence"] <= 1
    # The Predictor carries it, and a registry download brings it along.
    assert Predictor.load(str(tiny_run.model_dir)).reference_profile == reference
