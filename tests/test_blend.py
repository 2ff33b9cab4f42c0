"""The transformer blended with the TF-IDF baseline (training/fitting/blend.py): the weights chosen on
validation, what is stored, and that every runtime serves the blend."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.training_helpers import build_synthetic_dataset, tiny_recipe
from training.errors import ModelLoadError
from training.fitting.blend import choose_blend_weights
from training.inference.blend_backend import BLEND_DIR, BlendBackend, blend
from training.inference.predict import Predictor

HEADS = {
    "intent": {"labels": ["a", "b", "c"], "multi_label": False},
    "tags": {"labels": ["x", "y"], "multi_label": True},
}


def test_blend_is_the_weighted_mean_per_head():
    transformer = {"intent": np.array([[0.9, 0.1]]), "tags": np.array([[0.2, 0.8]])}
    baseline = {"intent": np.array([[0.1, 0.9]]), "tags": np.array([[0.6, 0.4]])}
    mixed = blend(transformer, baseline, {"intent": 0.25})
    np.testing.assert_allclose(mixed["intent"], [[0.3, 0.7]], rtol=1e-6)
    np.testing.assert_array_equal(mixed["tags"], transformer["tags"])  # no weight: the transformer's


def _targets(rng, posts: int) -> dict[str, np.ndarray]:
    return {"intent": rng.integers(0, 3, posts), "tags": rng.integers(0, 2, (posts, 2))}


def _one_hot(gold: np.ndarray, width: int) -> np.ndarray:
    return np.eye(width)[gold]


def test_the_weight_goes_to_the_model_that_knows_and_ties_to_the_transformer():
    rng = np.random.default_rng(0)
    gold = _targets(rng, 60)
    knows = {"intent": 0.8 * _one_hot(gold["intent"], 3) + 0.1, "tags": 0.6 * gold["tags"] + 0.2}
    guesses = {"intent": rng.dirichlet(np.ones(3), 60), "tags": rng.random((60, 2))}

    heads = json.loads(json.dumps(HEADS))
    chosen = choose_blend_weights(heads, guesses, knows, gold)  # the TF-IDF knows, the transformer guesses
    assert chosen["intent"]["weight"] < 0.5 and chosen["tags"]["weight"] < 0.5
    assert chosen["intent"]["validation_macro_f1"] == pytest.approx(1.0)
    assert chosen["intent"]["transformer_only_macro_f1"] < 0.6
    assert set(heads["tags"]["thresholds"]) == {"x", "y"}  # tuned on the blend that will be served

    chosen = choose_blend_weights(json.loads(json.dumps(HEADS)), knows, knows, gold)
    assert chosen["intent"]["weight"] == 1.0 and chosen["tags"]["weight"] == 1.0  # nothing gained: the transformer


def test_unlabelled_posts_do_not_count_and_an_unlabelled_head_keeps_the_transformer():
    rng = np.random.default_rng(1)
    gold = _targets(rng, 40)
    gold["intent"][:20] = -1  # partial labels: unlabelled for intent
    gold["tags"][:, 0] = -1  # nobody labelled tags
    knows = {"intent": _one_hot(np.where(gold["intent"] < 0, 0, gold["intent"]), 3), "tags": rng.random((40, 2))}
    chosen = choose_blend_weights(json.loads(json.dumps(HEADS)), knows, knows, gold)
    assert "tags" not in chosen and chosen["intent"]["validation_macro_f1"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def blended_run(tmp_path_factory):
    from training.fitting.train import train

    folder = tmp_path_factory.mktemp("blend")
    dataset = build_synthetic_dataset(folder)
    return train(tiny_recipe(dataset, folder / "runs", f"sqlite:///{folder / 'mlflow.db'}",
                             "transformer.blend_tfidf={C: 10.0}", "tracking.register_model=false"))


def test_a_blended_model_stores_the_tfidf_and_its_weights_and_serves_the_blend(blended_run):
    model_dir = blended_run.model_dir
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["blend"]["baseline"] == BLEND_DIR and set(config["blend"]["weights"]) == set(config["field_names"])
    assert (model_dir / BLEND_DIR / "baseline.json").is_file()

    predictor = Predictor.load(str(model_dir))
    assert isinstance(predictor.backend, BlendBackend) and predictor.runtime == "torch"
    texts = ["Grazie, complimenti a tutti", "la bolletta ha un addebito doppio", "il modem non ha segnale"]
    served = predictor.predict_probabilities(texts)
    transformer = predictor.backend.transformer.probabilities(texts, 32)
    baseline = Predictor.load(str(model_dir / BLEND_DIR)).predict_probabilities(texts)  # the member loads on its own
    for name, weight in config["blend"]["weights"].items():
        np.testing.assert_allclose(served[name], weight * transformer[name] + (1 - weight) * baseline[name], atol=1e-6)


def test_the_onnx_runtime_serves_the_same_blend(blended_run, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(blended_run.model_dir, model_dir)
    torch_predictor = Predictor.load(str(model_dir))
    onnx_predictor = Predictor.load(str(model_dir), runtime="onnx")
    assert isinstance(onnx_predictor.backend, BlendBackend) and onnx_predictor.runtime == "onnx"
    texts = ["vorrei disdire il contratto", "app bloccata da ieri"]
    for name, probabilities in torch_predictor.predict_probabilities(texts).items():
        np.testing.assert_allclose(onnx_predictor.predict_probabilities(texts)[name], probabilities, atol=1e-4)


def test_a_blended_model_without_its_tfidf_folder_is_refused_naming_it(blended_run, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(blended_run.model_dir, model_dir, ignore=shutil.ignore_patterns(BLEND_DIR))
    with pytest.raises(ModelLoadError, match=f"blends its transformer with the TF-IDF in .*{BLEND_DIR}, which is missing"):
        Predictor.load(str(model_dir))
