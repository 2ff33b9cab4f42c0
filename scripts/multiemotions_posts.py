"""Convert the MultiEmotions-It TSV (comments under brand ads and music videos) into posts JSONL.

The texts are licensed for academic use only and must never enter the repository: this script
reads the TSV by path and writes under build/ or var/ (both ignored by git). Each post is keyed by
the dataset's `row`: id `multiemotions-<row>`; `text_sha256` of the comment is what our committed
label file (data/annotations/multiemotions_it/labels.jsonl) uses to check it still matches.

    python scripts/multiemotions_posts.py --tsv ../shared/datasets/multiemotions_it/multiemotions_it_public_part.tsv \
        --out build/multiemotions/posts-ads.jsonl                 # the 1,560 ad comments
    python scripts/multiemotions_posts.py --tsv ... --out ... --types music   # music-video comments

Stdlib only, so it runs from any Python 3.11.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from pathlib import Path

CHANNEL_BY_TYPE = {"YouTube Ad": "youtube", "Facebook Ad": "facebook", "YouTube music video": "youtube"}
TYPE_GROUPS = {"ads": {"YouTube Ad", "Facebook Ad"}, "music": {"YouTube music video"}, "all": set(CHANNEL_BY_TYPE)}

# Sector of the advertised brand, by a word of the ad's title (the sectors of data/seed/FORMAT.md);
# a brand outside them (a car maker) gets none.
SECTOR_BY_BRAND = {
    "barilla": "food", "lavazza": "food", "mulino bianco": "food", "buondì": "food", "rummo": "food",
    "nutella": "food", "parmigiano": "food", "parmiggiano": "food", "de cecco": "food", "uliveto": "food",
    "fileni": "food", "oreo": "food", "kinder": "food", "molisana": "food",
    "tim": "telco", "vodafone": "telco", "windtre": "telco",
    "esselunga": "retail_ecommerce", "coop": "retail_ecommerce", "amazon": "retail_ecommerce",
    "ikea": "retail_ecommerce", "poltronesofà": "retail_ecommerce",
    "mediolanum": "banca_assicurazioni",
}


def text_sha256(comment: str) -> str:
    return hashlib.sha256(comment.encode("utf-8")).hexdigest()


def read_rows(tsv_path: Path) -> list[dict[str, str]]:
    with tsv_path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def sector_of(title: str) -> str | None:
    lowered = title.lower()
    for brand, sector in SECTOR_BY_BRAND.items():
        if re.search(rf"\b{re.escape(brand)}\b", lowered):
            return sector
    return None


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]


def to_post(row: dict[str, str]) -> dict:
    post = {
        "id": f"multiemotions-{int(row['row'])}",
        "text": row["comment"],
        "channel": CHANNEL_BY_TYPE[row["type"]],
        "public": True,
        # One thread per ad or video: the comments under it share a conversation.
        "conversation_id": f"multiemotions-{slug(row['title'])}",
        "language": "it",
    }
    sector = sector_of(row["title"])
    if sector is not None:
        post["sector"] = sector
    return post


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", required=True, type=Path, help="multiemotions_it_public_part.tsv")
    parser.add_argument("--out", required=True, type=Path, help="Posts JSONL to write (under build/ or var/).")
    parser.add_argument("--types", choices=sorted(TYPE_GROUPS), default="ads", help="Which comments (default: ads).")
    args = parser.parse_args(argv)

    wanted = TYPE_GROUPS[args.types]
    rows = [row for row in read_rows(args.tsv) if row["type"] in wanted]
    unknown = {row["type"] for row in read_rows(args.tsv)} - set(CHANNEL_BY_TYPE)
    if unknown:
        print(f"multiemotions_posts: unknown type(s) {sorted(unknown)} in {args.tsv}", file=sys.stderr)
        return 2
    rows = [row for row in rows if row["comment"].strip()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for row in sorted(rows, key=lambda r: int(r["row"])):
            f.write(json.dumps(to_post(row), ensure_ascii=False) + "\n")
    print(f"{len(rows)} posts ({args.types}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
