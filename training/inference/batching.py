"""Batches of texts for a transformer, shortest first (the torch and ONNX backends share it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def token_ids(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Each text's token ids as the model reads it: special tokens in, truncated to `max_length`."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def length_sorted_batches(tokenizer, texts: Sequence[str], max_length: int, batch_size: int, return_tensors: str):
    """(row indices, padded batch) chunks of `batch_size` texts, shortest first, each padded only to
    its own longest post. Sorting by length keeps padding small; callers put results back in input
    order by the indices."""
    encoded = token_ids(tokenizer, texts, max_length)
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield indices, tokenizer.pad([{"input_ids": encoded[i]} for i in indices], return_tensors=return_tensors)
