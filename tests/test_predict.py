"""The Predictor contract (docs/ARCHITECTURE.md): local directories and MLflow URIs, both model
kinds, one HeadPrediction per field, results in input order."""

from __future__ import annotations

import dataclasses

import pytest

from tests.training_helpers import SAMPLE_TEXTS
from training.errors import ModelLoadError
from training.inference.heads import HeadPrediction
from training.inference.predict import Predictor

pytest_plugins = ("tests.training_fixtures",)

TEXTS = SAMPLE_TEXTS


@pytest.fixture(scope="module", params=["transformer", "baseline"])
def predictor(request, tiny_run, baseline_run):
    run = tiny_run if request.param == "transformer" else baseline_run
    return Predictor.load(str(run.model_dir))


def test_contract_fields(predictor, taxonomy):
    assert predictor.field_names == list(taxonomy.fields)
    assert predictor.taxonomy_version == taxonomy.version
    assert {f.name for f in dataclasses.fields(HeadPrediction)} == {"labels", "probabilities", "confidence"}


def test_every_head_predicted_with_all_probabilities(predictor, taxonomy):
    results = predictor.predict(TEXTS)
    assert len(results) == len(TEXTS)
    for result in results:
        assert list(result) == list(taxonomy.fields)
        for name, spec in taxonomy.fields.items():
            head = result[name]
            assert set(head.probabilities) == set(spec.label_ids)
            assert all(label in spec.label_ids for label in head.labels)
            if spec.is_multi_label:
                thresholds = predictor.heads[name].thresholds
                chosen = [l for l, t in zip(spec.label_ids, thresholds) if head.probabilities[l] >= t]
                assert head.labels == chosen
                decisions = [p if p >= t else 1 - p for p, t in zip(head.probabilities.values(), thresholds)]
                assert head.confidence == pytest.approx(min(decisions))
            else:
                assert len(head.labels) == 1
                assert sum(head.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
                assert head.confidence == pytest.approx(max(head.probabilities.values()))
                assert head.probabilities[head.labels[0]] == pytest.approx(head.confidence)


def test_results_follow_input_order_whatever_the_batching(predictor):
    one_by_one = [predictor.predict([text])[0] for text in TEXTS]
    batched = predictor.predict(TEXTS, batch_size=2)
    for single, together in zip(one_by_one, batched):
        for name in single:
            assert single[name].labels == together[name].labels
            for label, value in single[name].probabilities.items():
                assert together[name].probabilities[label] == pytest.approx(value, abs=1e-5)


def test_the_trained_models_learnt_the_synthetic_intents(predictor):
    intents = [result["intent"].labels[0] for result in predictor.predict(TEXTS)]
    assert intents[0] == "elogio" and intents[3] == "acquisto"


def test_empty_and_bad_inputs(predictor):
    assert predictor.predict([]) == []
    with pytest.raises(TypeError, match="sequence of texts"):
        predictor.predict("una stringa")
    with pytest.raises(ValueError, match="batch_size"):
        predictor.predict(TEXTS, batch_size=0)


def test_local_directory_version_is_the_run_folder(tiny_run):
    assert Predictor.load(str(tiny_run.model_dir)).model_version == "model"
    assert Predictor.load(str(tiny_run.model_dir)).kind == "transformer"


def test_unknown_sources_are_named(tmp_path):
    with pytest.raises(ModelLoadError, match="no such directory, and not an MLflow URI"):
        Predictor.load(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="holds neither a transformer model"):
        Predictor.load(str(tmp_path))


def test_loads_from_mlflow_uris(tiny_run, local_tracking_uri):
    by_run = Predictor.load(f"runs:/{tiny_run.run_id}/model", tracking_uri=local_tracking_uri)
    assert by_run.model_version == tiny_run.run_id
    by_version = Predictor.load(f"models:/smista-classifier/{tiny_run.registered_version}", tracking_uri=local_tracking_uri)
    assert by_version.model_version == f"smista-classifier/{tiny_run.registered_version}"
    local = Predictor.load(str(tiny_run.model_dir))
    assert by_version.predict(TEXTS)[1]["intent"].probabilities == pytest.approx(local.predict(TEXTS)[1]["intent"].probabilities)
    with pytest.raises(ModelLoadError, match="smista-classifier/99"):
        Predictor.load("models:/smista-classifier/99", tracking_uri=local_tracking_uri)
