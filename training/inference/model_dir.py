"""What a saved transformer model directory says about itself, readable without torch."""

from __future__ import annotations

import json
from pathlib import Path

from training.errors import ModelLoadError
from training.recipe import DEFAULT_MAX_LENGTH

CONFIG_FILE = "config.json"
MODEL_TYPE = "smista_multihead"  # SmistaConfig.model_type


def max_length_of(config_data: dict) -> int:
    """The tokens per post a saved model reads. The recipe's `max_length` is saved as
    `max_input_tokens`: transformers reserves `max_length` on a config for text generation."""
    return int(config_data.get("max_input_tokens", DEFAULT_MAX_LENGTH))


def read_transformer_config(model_dir: Path) -> dict:
    """config.json of a smista multi-head model; ModelLoadError for any other kind of model."""
    config_data = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    if config_data.get("model_type") != MODEL_TYPE:
        raise ModelLoadError(f"{model_dir} holds a {config_data.get('model_type')!r} model, not a smista multi-head model")
    return config_data
