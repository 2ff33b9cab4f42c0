"""Split a labelled posts JSONL into a training part and a held-out part, stratified by one field.

For the brand-page experiment: the held-out part of the real annotated comments is never trained or
tuned on; only the training part joins the seed posts in `smista data build`.

    .venv/bin/python scripts/holdout_split.py build/multiemotions/labelled-ads.jsonl \
        --fraction 0.25 --seed 11 --train build/multiemotions/real-train.jsonl --held-out build/multiemotions/real-heldout.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.dataset import stratified_holdout  # noqa: E402
from data.jsonl import read_posts, write_posts  # noqa: E402
from data.schema import PostValidator  # noqa: E402
from data.taxonomy import load_taxonomy  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("posts", type=Path)
    parser.add_argument("--field", default="intent")
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--held-out", type=Path, required=True)
    args = parser.parse_args()
    posts = read_posts(args.posts, PostValidator(load_taxonomy())).posts
    kept, held_out = stratified_holdout(posts, args.field, args.fraction, args.seed)
    write_posts(args.train, kept)
    write_posts(args.held_out, held_out)
    print(f"{len(kept)} posts -> {args.train}, {len(held_out)} held out -> {args.held_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
