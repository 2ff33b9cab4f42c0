"""Recipe options of the e5 default, exercised on the tiny recipe: text_prefix lives in the saved
tokenizer, freeze_word_embeddings keeps the embedding matrix fixed, storage_dtype=float16 halves
the weights on disk and the model evaluated is the one served."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open
from transformers import AutoTokenizer

from data.taxonomy import load_taxonomy
from tests.training_helpers import SAMPLE_TEXTS, build_synthetic_dataset, tiny_recipe
from training.evaluation.evaluate import evaluate_posts
from training.fitting.train import train
from training.fitting.training_data import prepare_training_data
from training.inference.predict import Predictor


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return build_synthetic_dataset(tmp_path_factory.mktemp("data"))


def run(dataset_dir, tmp_path, name, *overrides):
    recipe = tiny_recipe(
        dataset_dir, tmp_path / name, f"sqlite:///{tmp_path}/mlflow.db", "tracking.register_model=false", *overrides
    )
    return train(recipe)


def tensors(model_dir, prefix):
    with safe_open(str(model_dir / "model.safetensors"), "pt") as weights:
        return {key: weights.get_tensor(key) for key in weights.keys() if key.startswith(prefix)}


def test_text_prefix_is_part_of_the_saved_tokenizer(dataset_dir, tmp_path):
    result = run(dataset_dir, tmp_path, "prefixed", "transformer.text_prefix='query: '", "transformer.num_train_epochs=1")
    tokenizer = AutoTokenizer.from_pretrained(result.model_dir)
    assert tokenizer.backend_tokenizer.normalizer.normalize_str("Ciao") == "query: ciao"
    # [CLS] + the prefix's pieces + the word + [SEP]: more than the three of an unprefixed word
    assert len(tokenizer("Ciao")["input_ids"]) >= 5


def test_frozen_word_embeddings_do_not_move(dataset_dir, tmp_path):
    slow = run(dataset_dir, tmp_path, "slow", "transformer.freeze_word_embeddings=true", "transformer.learning_rate=1e-3")
    fast = run(dataset_dir, tmp_path, "fast", "transformer.freeze_word_embeddings=true", "transformer.learning_rate=5e-3")
    moving = run(dataset_dir, tmp_path, "moving", "transformer.learning_rate=5e-3")
    key = "encoder.embeddings.word_embeddings.weight"
    # Same seed, so the same initial weights: frozen, the embeddings end equal whatever the rate.
    assert np.array_equal(tensors(slow.model_dir, key)[key], tensors(fast.model_dir, key)[key])
    assert not np.array_equal(tensors(fast.model_dir, key)[key], tensors(moving.model_dir, key)[key])
    layer = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not np.array_equal(tensors(slow.model_dir, layer)[layer], tensors(fast.model_dir, layer)[layer])


def test_float16_storage_is_what_was_evaluated(dataset_dir, tmp_path):
    result = run(dataset_dir, tmp_path, "half", "transformer.storage_dtype=float16")
    stored = tensors(result.model_dir, "")
    assert {str(tensor.dtype) for tensor in stored.values() if tensor.is_floating_point()} == {"torch.float16"}
    assert json.loads((result.model_dir / "config.json").read_text())["dtype"] == "float16"
    predictor = Predictor.from_directory(result.model_dir, model_version="half")
    assert predictor.predict_probabilities(SAMPLE_TEXTS)["intent"].dtype == np.float32
    # The reported test scores are those of the saved (fp16) directory: re-scoring it agrees.
    recipe = tiny_recipe(dataset_dir, tmp_path, "sqlite://")
    posts = prepare_training_data(recipe.data, load_taxonomy(), build=False).posts("test")
    again = evaluate_posts(predictor, posts, "test")
    assert again.metrics("test") == pytest.approx(result.reports["test"].metrics("test"), abs=1e-9)


def test_mean_macro_f1_is_the_mean_of_the_heads():
    from types import SimpleNamespace

    from training.fitting.progress import MEAN_MACRO_F1, per_head_macro_f1

    config = SimpleNamespace(
        heads={"intent": {"multi_label": False}, "business_action": {"multi_label": True}},
        field_names=["intent", "business_action"],
    )
    intent_logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    action_logits = np.array([[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]])
    prediction = SimpleNamespace(
        predictions=(intent_logits, action_logits),
        label_ids=(np.array([0, 1, 1, 1]), np.array([[1, 0], [1, 0], [0, 1], [0, 1]])),
    )
    metrics = per_head_macro_f1(config)(prediction)
    assert metrics["business_action_macro_f1"] == 1.0 and metrics["intent_macro_f1"] < 1.0
    assert metrics[MEAN_MACRO_F1] == pytest.approx((metrics["intent_macro_f1"] + 1.0) / 2)


def test_best_epoch_metric_names_a_key_of_the_validation_metrics(dataset_dir, tmp_path):
    from training.fitting.train import best_epoch_metric

    primary = tiny_recipe(dataset_dir, tmp_path, "sqlite://")
    mean = tiny_recipe(dataset_dir, tmp_path, "sqlite://", "transformer.best_epoch_metric=mean")
    assert best_epoch_metric(primary) == "intent_macro_f1"
    assert best_epoch_metric(mean) == "mean_macro_f1"


def test_keep_best_epoch_puts_back_the_best_trainable_weights_only():
    from types import SimpleNamespace

    import torch

    from training.fitting.best_epoch import KeepBestEpoch

    model = torch.nn.Sequential(torch.nn.Embedding(4, 2), torch.nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)  # frozen, like the e5 word embeddings: never copied
    keep = KeepBestEpoch("mean_macro_f1")
    snapshots = {}
    for epoch, score in enumerate([0.5, 0.7, 0.7, 0.6], start=1):
        with torch.no_grad():
            model[1].weight.add_(1.0)  # "training" moves the weights every epoch
        snapshots[epoch] = model[1].weight.detach().clone()
        keep.on_evaluate(None, SimpleNamespace(epoch=float(epoch)), None, model=model,
                         metrics={"eval_mean_macro_f1": score, "eval_loss": 1.0})
    assert keep.best_epoch == 2 and keep.best_score == 0.7  # a tie keeps the earlier epoch
    assert "0.weight" not in keep._weights
    keep.on_train_end(None, None, None, model=model)
    assert torch.equal(model[1].weight, snapshots[2])
    with pytest.raises(KeyError, match="intent_macro_f1"):
        KeepBestEpoch("intent_macro_f1").on_evaluate(None, SimpleNamespace(epoch=1.0), None, model=model,
                                                     metrics={"eval_loss": 1.0})


def test_select_best_epoch_keeps_the_best_epoch_without_checkpoints(dataset_dir, tmp_path, capsys):
    result = run(dataset_dir, tmp_path, "best", "transformer.select_best_epoch=true", "transformer.num_train_epochs=3",
                 "transformer.learning_rate=5e-3")
    printed = capsys.readouterr().out
    epochs = [line for line in printed.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 3
    kept = [line for line in printed.splitlines() if line.startswith("Kept epoch ")]
    assert len(kept) == 1
    scores = [float(line.split("validation macro-F1 intent ")[1].split()[0]) for line in epochs]
    kept_epoch = int(kept[0].split()[2])
    assert scores[kept_epoch - 1] == max(scores)
    assert not list(result.model_dir.parent.rglob("checkpoint-*"))  # nothing written per epoch
