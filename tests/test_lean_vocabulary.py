"""The lean model directory (training/fitting/lean_vocabulary.py): e5's vocabulary trimmed to the pieces a
Latin-script post can use, weights stored in fp16. A small random encoder with e5's real tokenizer
and full 250k-row vocabulary keeps it fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from training_helpers import SAMPLE_TEXTS
from transformers import AutoTokenizer, BertConfig, BertModel

from data.dataset import SEED_DATA_DIR
from training.fitting.lean_vocabulary import is_latin_piece, round_to_float16, trim_vocabulary
from training.fitting.train import save_model
from training.inference.model import build_model
from training.inference.predict import Predictor

OTHER_SCRIPTS = [
    "Добрый день, у меня не работает интернет уже два дня.",
    "我的订单还没有到，请帮忙查一下。",
    "Ciao! Спасибо 谢谢 😀",
]


@pytest.fixture(scope="module")
def e5_tokenizer(e5_directory):
    return AutoTokenizer.from_pretrained(e5_directory)


def small_model(taxonomy, tokenizer, seed: int = 3):
    import torch

    torch.manual_seed(seed)
    encoder = BertModel(
        BertConfig(vocab_size=250037, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=32, max_position_embeddings=512, pad_token_id=1),
        add_pooling_layer=False,
    )
    counts = {name: [1] * len(spec.label_ids) for name, spec in taxonomy.fields.items()}
    weighting = {name: "none" for name in taxonomy.fields}
    model = build_model(encoder, taxonomy, counts, dict.fromkeys(taxonomy.fields, 10), weighting, {}, "mean", 0.1, 128).eval()
    for spec in model.config.heads.values():
        if spec["multi_label"]:
            spec["thresholds"] = {label: 0.5 for label in spec["labels"]}
    return model


def latin_texts() -> list[str]:
    seed = [json.loads(line)["text"] for line in (SEED_DATA_DIR / "telco.jsonl").read_text(encoding="utf-8").splitlines()]
    fixture = json.loads((Path(__file__).parent / "fixtures" / "e5_engine.json").read_text(encoding="utf-8"))
    mixed = [record["text"] for record in fixture["records"]]
    return [text for text in SAMPLE_TEXTS + seed + mixed if is_latin_piece(text)]


def test_latin_rule_keeps_the_issue_count(e5_tokenizer):
    vocab = json.loads(e5_tokenizer.backend_tokenizer.to_str())["model"]["vocab"]
    assert sum(is_latin_piece(piece) for piece, _ in vocab) == 116097
    assert is_latin_piece("▁perché") and is_latin_piece("😀") and is_latin_piece("2026,")
    assert not is_latin_piece("▁при") and not is_latin_piece("谢")


@pytest.mark.parametrize("storage_dtype", ["float32", "float16"])
def test_trimmed_predictions_equal_the_untrimmed_on_latin_text(taxonomy, e5_tokenizer, tmp_path, storage_dtype):
    texts = latin_texts()
    assert len(texts) > 150 and any(not text.isascii() for text in texts)
    untrimmed = small_model(taxonomy, e5_tokenizer)
    if storage_dtype == "float16":
        round_to_float16(untrimmed)
    expected = Predictor.from_transformer(untrimmed, e5_tokenizer, "untrimmed").predict_probabilities(texts)
    expected_ids = e5_tokenizer(texts)["input_ids"]

    model, tokenizer, kept = trim_vocabulary(small_model(taxonomy, e5_tokenizer), e5_tokenizer)
    if storage_dtype == "float16":
        round_to_float16(model)
    assert kept == 116097
    scores = lambda tok: [score for _, score in json.loads(tok.backend_tokenizer.to_str())["model"]["vocab"]]  # noqa: E731
    assert min(scores(tokenizer)) == min(scores(e5_tokenizer))  # the unknown piece's score derives from it
    save_model(model, tokenizer, tmp_path / "lean", storage_dtype)
    served = Predictor.from_directory(tmp_path / "lean", model_version="lean")
    got = served.predict_probabilities(texts)
    for field in expected:
        np.testing.assert_allclose(got[field], expected[field], atol=1e-5, rtol=0)
    # Same segmentation: each id maps back to the same piece.
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "lean")
    for before, after in zip(expected_ids, reloaded(texts)["input_ids"]):
        assert e5_tokenizer.convert_ids_to_tokens(before) == reloaded.convert_ids_to_tokens(after)


def test_other_scripts_still_get_a_prediction(taxonomy, e5_tokenizer, tmp_path):
    model, tokenizer, _ = trim_vocabulary(small_model(taxonomy, e5_tokenizer), e5_tokenizer)
    save_model(model, tokenizer, tmp_path / "lean", "float16")
    predictor = Predictor.from_directory(tmp_path / "lean", model_version="lean")
    results = predictor.predict(OTHER_SCRIPTS)
    assert len(results) == len(OTHER_SCRIPTS)
    for result in results:
        assert set(result) == set(taxonomy.fields)
        probabilities = result["intent"].probabilities
        assert abs(sum(probabilities.values()) - 1) < 1e-5
    ids = AutoTokenizer.from_pretrained(tmp_path / "lean")(OTHER_SCRIPTS[0])["input_ids"]
    assert tokenizer.unk_token_id in ids


def test_lean_directory_is_smaller(taxonomy, e5_tokenizer, tmp_path):
    full = small_model(taxonomy, e5_tokenizer)
    save_model(full, e5_tokenizer, tmp_path / "full", "float32")
    model, tokenizer, _ = trim_vocabulary(small_model(taxonomy, e5_tokenizer), e5_tokenizer)
    save_model(model, tokenizer, tmp_path / "lean", "float16")
    size = lambda folder: sum(path.stat().st_size for path in folder.iterdir())  # noqa: E731
    assert size(tmp_path / "lean") < 0.5 * size(tmp_path / "full")
