"""A JSONL file of posts with gold labels, as evaluation, registry checks and training read it."""

from __future__ import annotations

from pathlib import Path

from data.dataset import load_labelled_posts
from data.schema import Post, PostValidator
from data.taxonomy import Taxonomy
from training.errors import EvaluationError


def read_labelled_posts(path: str | Path, taxonomy: Taxonomy) -> list[Post]:
    """Posts of a JSONL file, each with gold labels for at least one taxonomy field (else an error
    naming the line); a head is scored on the posts labelled for it."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: file not found")
    return load_labelled_posts([path], PostValidator(taxonomy), partial=True)
