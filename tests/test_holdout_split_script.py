"""scripts/holdout_split.py: a stratified held-out part that never overlaps the training part."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from tests.training_helpers import REPO_ROOT, synthetic_posts, write_posts_file


def test_split_is_disjoint_complete_and_stratified(tmp_path):
    source = write_posts_file(tmp_path / "posts.jsonl", synthetic_posts(80))
    train, held_out = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "holdout_split.py"), str(source), "--fraction", "0.25",
                    "--train", str(train), "--held-out", str(held_out)], check=True, cwd=REPO_ROOT)
    read = lambda path: [json.loads(line) for line in path.read_text().splitlines()]  # noqa: E731
    kept, held = read(train), read(held_out)
    assert len(held) == 20 and len(kept) == 60
    assert not {p["id"] for p in kept} & {p["id"] for p in held}
    assert Counter(p["labels"]["intent"] for p in held) == {intent: 5 for intent in Counter(p["labels"]["intent"] for p in kept)}
