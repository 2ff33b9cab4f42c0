"""Sentiment-only training posts from public Italian corpora (partial labels, issue #13).

SENTIPOLC 2016 (training set) and FEEL-IT carry a polarity or an emotion, none of our other
fields: each tweet becomes a post labelled for `sentiment` only, which `smista data build
--partial-labels` (or a recipe's `data.train_only_inputs` with `partial_labels: true`) trains the
sentiment head on and leaves out of every other head. Texts are read by path and written under
build/ (never committed: the corpora's licences do not let us redistribute them).

    python scripts/sentiment_only_posts.py --sentipolc ../shared/datasets/sentipolc16/training_set_sentipolc16_anon_rev.csv \
        --feel-it ../shared/datasets/feel_it/feel_it_dataset.csv --out build/brandpages/sentiment-only.jsonl [--limit 1500]

Mapping: SENTIPOLC opos/oneg 1/0 positivo, 0/1 negativo, 0/0 neutro, 1/1 (mixed) left out;
FEEL-IT joy positivo, anger/sadness/fear negativo. With --limit, an even seeded sample per label.

Stdlib only.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

SENTIPOLC_COLUMNS = ["idtwitter", "subj", "opos", "oneg", "iro", "lpos", "lneg", "top", "text"]
SENTIPOLC_POLARITY = {("1", "0"): "positivo", ("0", "1"): "negativo", ("0", "0"): "neutro"}
FEEL_IT_POLARITY = {"joy": "positivo", "anger": "negativo", "sadness": "negativo", "fear": "negativo"}


def sentipolc_posts(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    if rows and rows[0][0] == "idtwitter":
        rows = rows[1:]
    posts = []
    for row in rows:
        record = dict(zip(SENTIPOLC_COLUMNS, row))
        sentiment = SENTIPOLC_POLARITY.get((record.get("opos"), record.get("oneg")))
        if sentiment and record.get("text", "").strip():
            posts.append(post(f"sentipolc-{record['idtwitter']}", record["text"], sentiment))
    return posts


def feel_it_posts(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    posts = []
    for number, row in enumerate(rows, start=1):
        words = (row.get("labels") or "").split()
        emotion = words[0] if words else ""
        if emotion in FEEL_IT_POLARITY and row["text"].strip():
            posts.append(post(f"feelit-{number}", row["text"], FEEL_IT_POLARITY[emotion]))
    return posts


def post(post_id: str, text: str, sentiment: str) -> dict:
    return {"id": post_id, "text": text.strip(), "channel": "twitter", "public": True, "language": "it",
            "labels": {"sentiment": sentiment}}


def balanced_sample(posts: list[dict], limit: int, seed: int) -> list[dict]:
    """At most `limit` posts, as even as the labels allow, in a seeded order."""
    by_label: dict[str, list[dict]] = {}
    for item in posts:
        by_label.setdefault(item["labels"]["sentiment"], []).append(item)
    rng = random.Random(seed)
    for members in by_label.values():
        rng.shuffle(members)
    chosen: list[dict] = []
    while len(chosen) < limit and any(by_label.values()):
        for label in sorted(by_label):
            if by_label[label] and len(chosen) < limit:
                chosen.append(by_label[label].pop())
    return sorted(chosen, key=lambda item: item["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentipolc", type=Path, help="SENTIPOLC 2016 training_set_sentipolc16_anon_rev.csv")
    parser.add_argument("--feel-it", type=Path, help="FEEL-IT feel_it_dataset.csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="Keep at most this many posts (0: all).")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    if not args.sentipolc and not args.feel_it:
        parser.error("give --sentipolc, --feel-it or both")
    posts: list[dict] = []
    for path, reader in ((args.sentipolc, sentipolc_posts), (args.feel_it, feel_it_posts)):
        if path is not None:
            if not path.is_file():
                parser.error(f"{path}: file not found")
            posts += reader(path)
    if args.limit:
        posts = balanced_sample(posts, args.limit, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for item in posts:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for item in posts:
        counts[item["labels"]["sentiment"]] = counts.get(item["labels"]["sentiment"], 0) + 1
    print(f"{len(posts)} sentiment-only posts -> {args.out} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
