"""Precision and recall of data/pii.py per kind, on two hand-checked sets:

1. real comments under Italian brand ads (MultiEmotions-It), 260 of them hand-labelled for personal
   data by a reader blind to the detector (data/annotations/pii/multiemotions_pii.jsonl: row, text
   hash and spans only; the texts are read from the data set's TSV by path and never stored);
2. the fake personal data planted in the bundled seed posts (docs/data.md): every IBAN, codice
   fiscale, test card, example.com address and 000000 / 1234567 phone number in them.

    .venv/bin/python scripts/pii_benchmark.py --tsv ../shared/datasets/multiemotions_it/multiemotions_it_public_part.tsv

A prediction counts as found when it overlaps a labelled span of the same kind.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.pii import PII_KINDS, find_pii  # noqa: E402  (after the path: runnable from anywhere)

LABELS = ROOT / "data" / "annotations" / "pii" / "multiemotions_pii.jsonl"
# The planted fakes of the seed posts (docs/data.md, tests/test_seed_data.py).
PLANTED = {
    "iban": re.compile(r"IT60 ?X054 ?2811 ?1010 ?0000 ?0123 ?456", re.IGNORECASE),
    "codice_fiscale": re.compile(r"RSSMRA80A01H501U", re.IGNORECASE),
    "card": re.compile(r"4111[ -]?1111[ -]?1111[ -]?1111"),
    "email": re.compile(r"[\w.+-]+@example\.(?:com|it|org)"),
    "phone": re.compile(r"(?:(?:\+|00)39[ .-]?)?(?:3\d\d|0\d{1,3})[ .-]?(?:000[ .-]?0000|123[ .-]?4567|1234567)"),
}


class LabelError(ValueError):
    pass


def score(items: Iterable[tuple[str, Sequence[dict]]], kinds: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per kind: labelled spans, predicted spans, found (overlapping, same kind), precision, recall."""
    counts = {kind: Counter() for kind in kinds}
    for text, gold in items:
        predicted = [match for match in find_pii(text) if match.kind in kinds]
        for kind in kinds:
            gold_spans = [(g["start"], g["end"]) for g in gold if g["kind"] == kind]
            pred_spans = [(m.start, m.end) for m in predicted if m.kind == kind]
            counts[kind]["labelled"] += len(gold_spans)
            counts[kind]["predicted"] += len(pred_spans)
            counts[kind]["found"] += sum(any(s < ge and gs < e for s, e in pred_spans) for gs, ge in gold_spans)
            counts[kind]["correct"] += sum(any(s < ge and gs < e for gs, ge in gold_spans) for s, e in pred_spans)
    table = {}
    for kind, count in counts.items():
        table[kind] = {
            "labelled": count["labelled"], "predicted": count["predicted"],
            "precision": count["correct"] / count["predicted"] if count["predicted"] else None,
            "recall": count["found"] / count["labelled"] if count["labelled"] else None,
        }
    return table


def real_comments(tsv: Path) -> list[tuple[str, list[dict]]]:
    with tsv.open(encoding="utf-8", newline="") as handle:
        texts = {int(row["row"]): row["comment"] for row in csv.DictReader(handle, delimiter="\t")}
    items, mismatched = [], []
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        text = texts.get(label["row"])
        if text is None or hashlib.sha256(text.encode("utf-8")).hexdigest() != label["text_sha256"]:
            mismatched.append(label["row"])
            continue
        items.append((text, label["spans"]))
    if mismatched:
        raise LabelError(f"{tsv}: rows {mismatched[:10]} are missing or their text changed (hash mismatch)")
    return items


def seed_posts() -> list[tuple[str, list[dict]]]:
    items = []
    for path in sorted((ROOT / "data" / "seed").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = json.loads(line)["text"]
                gold = [{"start": m.start(), "end": m.end(), "kind": kind}
                        for kind, pattern in PLANTED.items() for m in pattern.finditer(text)]
                items.append((text, gold))
    return items


def format_table(title: str, table: dict[str, dict[str, float]]) -> str:
    def pct(value):
        return "n/a" if value is None else f"{value:.2f}"

    lines = [title, f"{'kind':16} {'labelled':>8} {'predicted':>9} {'precision':>9} {'recall':>7}"]
    for kind, row in table.items():
        lines.append(f"{kind:16} {row['labelled']:>8} {row['predicted']:>9} {pct(row['precision']):>9} {pct(row['recall']):>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", type=Path, required=True, help="multiemotions_it_public_part.tsv")
    parser.add_argument("--json-output", type=Path, default=None)
    args = parser.parse_args(argv)
    kinds = [kind for kind in PII_KINDS]
    real = score(real_comments(args.tsv), kinds)
    seeds = score(seed_posts(), list(PLANTED))
    print(format_table(f"Real ad comments ({len(LABELS.read_text().splitlines())}, hand-labelled):", real))
    print()
    print(format_table("Seed posts, planted fakes:", seeds))
    if args.json_output:
        args.json_output.write_text(json.dumps({"real_comments": real, "seed_planted": seeds}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
