"""The PyTorch runtime of a transformer model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from training.inference.batching import length_sorted_batches
from training.inference.model import SmistaMultiHeadModel, logits_key


class TransformerBackend:
    """Runs a SmistaMultiHeadModel: length-sorted batches, each padded to its own longest post."""

    runtime = "torch"

    def __init__(self, model, tokenizer, max_length: int):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    def probabilities(self, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
        return self._per_head(texts, batch_size, self.model.probabilities)

    def logits(self, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
        """field -> [texts, labels] raw logits, rows in input order (what a distillation student learns from)."""
        return self._per_head(texts, batch_size, lambda output: {name: output[logits_key(name)] for name in self.model.config.field_names})

    def _per_head(self, texts: Sequence[str], batch_size: int, read) -> dict[str, np.ndarray]:
        """field -> [texts, labels] of `read(model output)`, batch by batch, rows in input order."""
        config = self.model.config
        result = {name: np.zeros((len(texts), len(config.heads[name]["labels"])), dtype=np.float32) for name in config.field_names}
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for indices, batch in length_sorted_batches(self.tokenizer, texts, self.max_length, batch_size, "pt"):
                batch = {key: value.to(device) for key, value in batch.items()}
                for name, values in read(self.model(**batch)).items():
                    result[name][indices] = values.float().cpu().numpy()
        return result


def load_torch_model(model_dir: Path):
    """(model in fp32, tokenizer) of a saved model directory; the weights may be stored in fp16."""
    model = SmistaMultiHeadModel.from_pretrained(model_dir, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(model_dir)
