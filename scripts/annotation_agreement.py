"""Agreement between two label files keyed by row (docs/annotation.md, "Agreement and adjudication").

    python scripts/annotation_agreement.py FIRST.jsonl SECOND.jsonl [--json OUT.json]

Each file holds one JSON object a line with a `row` and the taxonomy fields (intent, customer_type,
business_action, priority, sentiment); other keys (text_sha256, note) are ignored. On the rows the
two files share, the script prints Cohen's kappa and raw agreement per measured field, computed with
the project's agreement code (`labeling.agreement`): single-label fields as they are, the
multi-label business_action label by label (present / absent), as `agreement_by_field` measures it.
It also prints, for information, how often the whole business_action set and every field agree.
Rows whose text hash differs between the files are refused: they would not be the same comment.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy  # noqa: E402
from labeling.agreement import agreement_by_field, measured_values  # noqa: E402

FIRST, SECOND = "first", "second"


def read_labels(path: Path) -> dict[int, dict]:
    rows: dict[int, dict] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            row = int(record["row"])
            if row in rows:
                raise SystemExit(f"{path}:{number}: row {row} appears twice")
            rows[row] = record
    return rows


def agreement(first: dict[int, dict], second: dict[int, dict], taxonomy) -> dict:
    shared = sorted(set(first) & set(second))
    for row in shared:
        a, b = first[row].get("text_sha256"), second[row].get("text_sha256")
        if a and b and a != b:
            raise SystemExit(f"row {row}: the two files name different texts (text_sha256 differs)")
    fields = list(taxonomy.fields)
    tasks = [{FIRST: {f: first[row][f] for f in fields}, SECOND: {f: second[row][f] for f in fields}} for row in shared]
    by_field = agreement_by_field(tasks, taxonomy)
    measured = [(measured_values(t[FIRST], taxonomy), measured_values(t[SECOND], taxonomy)) for t in tasks]
    result: dict = {"rows_first": len(first), "rows_second": len(second), "rows_shared": len(shared), "fields": {}}
    for name, field_agreement in by_field.items():
        pair = field_agreement.cohen_kappa.get(f"{FIRST}|{SECOND}", {})
        pairs = [(a[name], b[name]) for a, b in measured if name in a and name in b]
        agreeing = sum(x == y for x, y in pairs)
        result["fields"][name] = {
            "items": len(pairs),
            "cohen_kappa": pair.get("kappa"),
            "raw_agreement": agreeing / len(pairs) if pairs else None,
            "disagreements": len(pairs) - agreeing,
        }
    whole = {}
    for name, spec in taxonomy.fields.items():
        same = sum(_norm(first[r][name], spec.is_multi_label) == _norm(second[r][name], spec.is_multi_label) for r in shared)
        whole[name] = {"raw_agreement": same / len(shared) if shared else None, "disagreements": len(shared) - same}
    every = sum(
        all(_norm(first[r][n], s.is_multi_label) == _norm(second[r][n], s.is_multi_label) for n, s in taxonomy.fields.items())
        for r in shared
    )
    result["whole_fields"] = whole
    result["all_fields"] = {"raw_agreement": every / len(shared) if shared else None, "rows_differing": len(shared) - every}
    return result


def _norm(value, multi: bool):
    return frozenset(value) if multi else value


def _fmt(value: float | None, digits: int = 3) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def print_table(result: dict, first_name: str, second_name: str) -> None:
    print(f"{first_name}: {result['rows_first']} rows; {second_name}: {result['rows_second']} rows; shared: {result['rows_shared']}")
    print()
    print("| field | Cohen's kappa | raw agreement | disagreements |")
    print("|---|---:|---:|---:|")
    for name, values in result["fields"].items():
        print(f"| {name} | {_fmt(values['cohen_kappa'])} | {_fmt(values['raw_agreement'])} | {values['disagreements']} |")
    print()
    print("Whole field (business_action as a set), raw agreement:")
    for name, values in result["whole_fields"].items():
        print(f"  {name}: {_fmt(values['raw_agreement'])} ({values['disagreements']} rows differ)")
    every = result["all_fields"]
    print(f"  all five fields: {_fmt(every['raw_agreement'])} ({every['rows_differing']} rows differ in at least one field)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--taxonomy", type=Path, default=DEFAULT_TAXONOMY_PATH)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    taxonomy = load_taxonomy(args.taxonomy)
    result = agreement(read_labels(args.first), read_labels(args.second), taxonomy)
    result["first"], result["second"] = str(args.first), str(args.second)
    print_table(result, str(args.first), str(args.second))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
