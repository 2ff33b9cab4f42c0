"""What a model's decisions look like: per head, the share of each predicted label and the mean
confidence. Training writes the profile of the model on its test split (posts from the data it was
made from, never trained on) into the model directory as the drift reference; serving/drift.py
compares recent traffic with it.

A multi-label head (business_action) can give a post several labels or none: each post weighs one,
split evenly among its labels, and a post without any counts under NO_LABEL, so the shares of a
head always sum to one and compare like those of a single-label head.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from data.atomic_files import write_text_atomically

REFERENCE_FILE = "drift_reference.json"
REFERENCE_FORMAT = 1
NO_LABEL = "(nessuna)"


def label_shares(label_lists: Iterable[Sequence[str]], labels: Sequence[str], multi_label: bool) -> dict[str, float]:
    """Share of each label (and NO_LABEL for a multi-label head) over the posts; every label of the
    head is listed, zeros included. Empty input gives all zeros."""
    categories = list(labels) + ([NO_LABEL] if multi_label else [])
    weights = dict.fromkeys(categories, 0.0)
    posts = 0
    for chosen in label_lists:
        posts += 1
        chosen = list(chosen) or [NO_LABEL]
        for label in chosen:
            if label not in weights:
                raise ValueError(f"label {label!r} is not one of the head's labels {categories}")
            weights[label] += 1.0 / len(chosen)
    return {label: (weight / posts if posts else 0.0) for label, weight in weights.items()}


def head_profile(label_lists: Sequence[Sequence[str]], confidences: Sequence[float], labels: Sequence[str],
                 multi_label: bool) -> dict[str, Any]:
    """{"posts", "shares", "mean_confidence"} of one head's decisions on some posts."""
    if len(label_lists) != len(confidences):
        raise ValueError(f"{len(label_lists)} label lists but {len(confidences)} confidences")
    mean = sum(float(c) for c in confidences) / len(confidences) if confidences else None
    return {"posts": len(label_lists), "shares": label_shares(label_lists, labels, multi_label),
            "mean_confidence": mean}


def write_reference(model_dir: Path, heads: Mapping[str, Mapping[str, Any]], source: Mapping[str, Any]) -> Path:
    """Write the drift reference (per-head profiles and where they come from) into a model directory."""
    path = Path(model_dir) / REFERENCE_FILE
    document = {"format": REFERENCE_FORMAT, "source": dict(source), "heads": {name: dict(h) for name, h in heads.items()}}
    return write_text_atomically(path, json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_reference(model_dir: Path) -> dict[str, Any] | None:
    """The model directory's drift reference; None for a model trained before it was written."""
    path = Path(model_dir) / REFERENCE_FILE
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != REFERENCE_FORMAT or not isinstance(document.get("heads"), dict):
        raise ValueError(f"{path}: not a drift reference of format {REFERENCE_FORMAT}")
    return document
