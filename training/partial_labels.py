"""Posts labelled for some heads only (partial labels), as targets arrays see them.

A target array holds label indices (single-label head, shape [posts]) or 0/1 rows (multi-label
head, shape [posts, labels]); a post not labelled for the head has -1 there (the whole row).
"""

from __future__ import annotations

import numpy as np

UNLABELLED = -1


def labelled_rows(target: np.ndarray) -> np.ndarray:
    """Boolean mask of the posts labelled for a head."""
    return target[:, 0] != UNLABELLED if target.ndim == 2 else target != UNLABELLED
