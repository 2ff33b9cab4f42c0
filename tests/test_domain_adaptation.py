"""Masked-LM domain adaptation: it lowers the masked-LM loss and changes the encoder in place, its
head adds no vocabulary-sized matrix, bad settings and files fail naming the field or path, and a
real run adapts on the training and extra texts only, before the classifier is built."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import DataCollatorForLanguageModeling

from tests.training_helpers import TINY_RECIPE, synthetic_posts, tiny_recipe
from training.errors import RecipeError
from training.fitting.domain_adaptation import MaskedLanguageModel, adapt_encoder, adaptation_texts, read_extra_texts
from training.fitting.encoders import build_scratch_encoder
from training.recipe import DomainAdaptation, ScratchEncoder, load_recipe

pytest_plugins = ("tests.training_fixtures",)

TEXTS = [post["text"] for post in synthetic_posts(80)]
HIDDEN = 32


@pytest.fixture
def tiny_encoder():
    torch.manual_seed(0)
    settings = ScratchEncoder(vocab_size=200, hidden_size=HIDDEN, num_attention_heads=2, intermediate_size=64)
    return build_scratch_encoder(settings, TEXTS, 32)


def test_adaptation_lowers_the_masked_lm_loss_and_trains_the_encoder_in_place(tiny_encoder, tmp_path, capsys):
    encoder, tokenizer = tiny_encoder
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    settings = DomainAdaptation(epochs=5, learning_rate=3e-3, batch_size=16)

    summary = adapt_encoder(encoder, tokenizer, TEXTS, settings, 32, 7, tmp_path / "mlm")

    assert summary["texts"] == 80 and summary["steps"] == 25  # 5 epochs of 80 texts in batches of 16
    assert summary["loss_after"] < summary["loss_before"] - 0.5
    changed = {name for name, value in encoder.state_dict().items() if not torch.equal(value, before[name])}
    assert "embeddings.word_embeddings.weight" in changed
    assert any(name.startswith("encoder.layer.1.") for name in changed)  # the top layer learnt too
    assert not (tmp_path / "mlm").exists()  # the Trainer's folder is removed
    assert f"Domain adaptation: 80 texts, 5 epochs, masked-LM loss {summary['loss_before']:.2f} -> " in capsys.readouterr().out


def test_the_head_is_tied_to_the_embeddings_and_every_parameter_gets_a_gradient(tiny_encoder):
    encoder, tokenizer = tiny_encoder
    vocab = encoder.get_input_embeddings().num_embeddings
    model = MaskedLanguageModel(encoder)

    head = {name: p.numel() for name, p in model.named_parameters() if not name.startswith("encoder.")}
    # dense + LayerNorm + one bias per word: no vocabulary x hidden decoder matrix of its own.
    assert sum(head.values()) == HIDDEN * HIDDEN + HIDDEN + 2 * HIDDEN + vocab
    batch = DataCollatorForLanguageModeling(tokenizer, seed=0)([tokenizer(text) for text in TEXTS[:8]])
    model(**batch)["loss"].backward()
    # What lets DDP run with find_unused_parameters=False (the pooler is dropped).
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


def test_a_batch_with_nothing_masked_has_zero_loss_not_nan(tiny_encoder):
    encoder, tokenizer = tiny_encoder
    batch = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    loss = MaskedLanguageModel(encoder)(**batch, labels=torch.full_like(batch["input_ids"], -100))["loss"]
    assert loss.item() == 0.0


@pytest.mark.parametrize(
    "setting, message",
    [
        ("{epochs: 0}", "transformer.domain_adaptation.epochs: Input should be greater than 0"),
        ("{epochs: 1, mlm_probability: 1.5}", "transformer.domain_adaptation.mlm_probability: Input should be less than 1"),
        ("{epochs: 1, batch_size: 0}", "transformer.domain_adaptation.batch_size: Input should be greater than or equal to 1"),
        ("{learning_rate: 0.001}", "transformer.domain_adaptation.epochs: Field required"),
    ],
)
def test_bad_settings_name_the_field(setting, message):
    with pytest.raises(RecipeError) as error:
        load_recipe(TINY_RECIPE, [f"transformer.domain_adaptation={setting}"])
    assert message in str(error.value)


def test_extra_texts_are_read_from_jsonl_and_plain_text(tmp_path):
    (tmp_path / "posts.jsonl").write_text(
        json.dumps({"text": " Bolletta sbagliata "}) + "\n\n" + json.dumps({"text": "", "id": 2}) + "\n", encoding="utf-8"
    )
    (tmp_path / "posts.txt").write_text("Il modem non va\n\n  Grazie mille  \n", encoding="utf-8")
    paths = [str(tmp_path / "posts.jsonl"), str(tmp_path / "posts.txt")]
    assert read_extra_texts(paths) == ["Bolletta sbagliata", "Il modem non va", "Grazie mille"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.jsonl", None, "no such file"),
        ("empty.txt", "\n   \n", "holds no texts"),
        ("no_text.jsonl", '{"text": "ok"}\n{"body": "senza testo"}\n', "no_text.jsonl:2 is not a JSON object with a \"text\" string"),
    ],
)
def test_a_bad_extra_texts_file_fails_before_any_training(synthetic_dataset, tmp_path, name, content, message):
    from training.fitting.train import train

    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    recipe = tiny_recipe(
        synthetic_dataset, tmp_path / "runs", f"sqlite:///{tmp_path / 'mlflow.db'}",
        f"transformer.domain_adaptation={{epochs: 1, extra_texts: ['{path}']}}",
    )
    with pytest.raises(RecipeError) as error:
        train(recipe)
    assert "transformer.domain_adaptation.extra_texts" in str(error.value)
    assert str(path) in str(error.value) and message in str(error.value)
    assert not (tmp_path / "runs").exists()


def test_extra_texts_equal_to_held_out_posts_are_left_out():
    texts, left_out = adaptation_texts(["a", "b"], ["nuovo", " val ", "test"], held_out=["val", "test", "altro"])
    assert (texts, left_out) == (["a", "b", "nuovo"], 2)


def test_a_run_adapts_the_encoder_on_training_and_extra_texts_before_building_the_classifier(
    synthetic_dataset, tmp_path, monkeypatch, capsys
):
    """End to end: a real train() with domain_adaptation, logged to a SQLite MLflow store."""
    from mlflow import MlflowClient

    import training.fitting.domain_adaptation
    import training.inference.model
    from training.fitting.train import train

    calls = []
    real_adapt, real_build = training.fitting.domain_adaptation.adapt_encoder, training.inference.model.build_model

    def adapt(encoder, tokenizer, texts, *args):
        calls.append(("adapt", encoder, list(texts)))
        return real_adapt(encoder, tokenizer, texts, *args)

    def build(encoder, *args):
        calls.append(("build", encoder, None))
        return real_build(encoder, *args)

    monkeypatch.setattr(training.fitting.domain_adaptation, "adapt_encoder", adapt)
    monkeypatch.setattr(training.inference.model, "build_model", build)
    held_out = [json.loads(line)["text"] for split in ("validation", "test")
                for line in (synthetic_dataset / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    extra = tmp_path / "unlabelled.txt"
    # A held-out file's post (data.held_out) must stay out of the adaptation texts as well.
    kept_aside = tmp_path / "kept-aside.jsonl"
    kept_aside.write_text(json.dumps({"id": "aside-1", "text": "Un commento tenuto da parte", "channel": "twitter",
                                      "labels": {"intent": "elogio"}}) + "\n", encoding="utf-8")
    extra.write_text(f"Un post nuovo senza etichette\n{held_out[0]}\n{held_out[-1]}\nUn commento tenuto da parte\n",
                     encoding="utf-8")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    recipe = tiny_recipe(
        synthetic_dataset, tmp_path / "runs", tracking_uri,
        "transformer.num_train_epochs=1", "tracking.log_model=false", "tracking.register_model=false",
        f"data.held_out={{aside: '{kept_aside}'}}",
        f"transformer.domain_adaptation={{epochs: 2, learning_rate: 3.0e-3, batch_size: 16, extra_texts: ['{extra}']}}",
    )

    result = train(recipe)

    train_texts = [json.loads(line)["text"] for line in (synthetic_dataset / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    (_, adapted, texts), (_, built, _) = calls
    assert [call[0] for call in calls] == ["adapt", "build"] and adapted is built
    assert texts == train_texts + ["Un post nuovo senza etichette"]  # validation, test and held-out posts left out
    metrics = MlflowClient(tracking_uri).get_run(result.run_id).data.metrics
    assert metrics["domain_adaptation_texts"] == len(texts)
    assert metrics["domain_adaptation_loss_after"] < metrics["domain_adaptation_loss_before"]
    assert metrics["domain_adaptation_steps"] > 0 and "domain_adaptation_seconds" in metrics
    output = capsys.readouterr().out
    assert "Domain adaptation: left out 3 extra texts" in output
    assert f"Domain adaptation: {len(texts)} texts, 2 epochs, masked-LM loss" in output
    assert (result.model_dir / "model.safetensors").is_file()
    assert not (result.run_dir / "domain_adaptation").exists()
