"""The annotator's side of the MultiEmotions-It brand-page annotation (docs/annotation.md).

    queue   print the next posts to label, in the project's task order (active learning first):
            row, the ad the comment is under, and the redacted text the interface shows
    submit  create an annotation through the Label Studio API (what Submit does in the interface)
            for every decided post that has none yet, recorded for the annotator's user
    labels  turn the exported data set (smista label export) into the committed label file,
            keyed by row and text hash, and compare each post with the champion's pre-annotation

Decisions are written by the annotator in a plain file under var/ (never committed: it sits next
to the texts), one post a line, `<row> <code>  # optional note`. A code is either a preset

    E   elogio / advocate / - / bassa / positivo            (praise of the ad, brand or product)
    R   reclamo / lamentoso / lamentela / normale / negativo (criticism of the campaign or brand)
    RD  as R plus disdetta                                   (boycott, "I won't buy any more")
    F0 F+ F-  fuori_tema / non_cliente / - / bassa / neutro, positivo, negativo

or the five fields spelt out with slashes, `intent/customer_type/actions/priority/sentiment`, each
by its id or by an abbreviation below, actions joined by `+` or `-` for none:
`inf/pot/acq/n/0` = informazioni, potenziale_cliente, [acquisto], normale, neutro.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy  # noqa: E402

ABBREVIATIONS = {
    "intent": {
        "inf": "informazioni", "ass": "assistenza_tecnica", "fat": "fatturazione", "con": "gestione_contratto",
        "rec": "reclamo", "acq": "acquisto", "elo": "elogio", "sug": "suggerimento", "lav": "lavoro",
        "sta": "stampa_istituzionale", "fuo": "fuori_tema",
    },
    "customer_type": {
        "lam": "lamentoso", "adv": "advocate", "ex": "ex_cliente", "pot": "potenziale_cliente",
        "att": "cliente_attivo", "non": "non_cliente",
    },
    "business_action": {"acq": "acquisto", "rin": "rinnovo", "dis": "disdetta", "lam": "lamentela"},
    "priority": {"u": "urgente", "a": "alta", "n": "normale", "b": "bassa"},
    "sentiment": {"-": "negativo", "0": "neutro", "+": "positivo"},
}
PRESETS = {
    "E": "elo/adv/-/b/+",
    "R": "rec/lam/lam/n/-",
    "RD": "rec/lam/lam+dis/n/-",
    "F0": "fuo/non/-/b/0",
    "F+": "fuo/non/-/b/+",
    "F-": "fuo/non/-/b/-",
}
FIELDS = ("intent", "customer_type", "business_action", "priority", "sentiment")
POST_PREFIX = "multiemotions-"
# Comments under brand ads and under music videos are kept in separate label files: the held-out
# evaluation set is ad comments, and a build should choose whether to add the music ones.
TYPES = {"ads": {"YouTube Ad", "Facebook Ad"}, "music": {"YouTube music video"}}
DEFAULT_OUT = {"ads": Path("data/annotations/multiemotions_it"), "music": Path("data/annotations/multiemotions_it/music")}


def expand(code: str, taxonomy) -> dict:
    """A decision code -> our label dict, checked against the taxonomy."""
    parts = PRESETS.get(code, code).split("/")
    if len(parts) != 5:
        raise ValueError(f"code {code!r}: expected a preset ({', '.join(PRESETS)}) or five fields joined by '/'")
    labels: dict = {}
    for name, part in zip(FIELDS, parts):
        allowed = {label.id for label in taxonomy.fields[name].labels}
        if name == "business_action":
            items = [] if part == "-" else part.split("+")
            values = [ABBREVIATIONS[name].get(item, item) for item in items]
            bad = [value for value in values if value not in allowed]
            if bad or len(set(values)) != len(values):
                raise ValueError(f"code {code!r}: bad business_action {part!r}")
            labels[name] = values
        else:
            value = ABBREVIATIONS[name].get(part, part)
            if value not in allowed:
                raise ValueError(f"code {code!r}: bad {name} {part!r}")
            labels[name] = value
    return labels


def read_decisions(path: Path, taxonomy) -> dict[int, dict]:
    decisions: dict[int, dict] = {}
    if not path.exists():
        return decisions
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            row_text, code = line.split()
            decisions[int(row_text)] = expand(code, taxonomy)
        except ValueError as exc:
            raise SystemExit(f"{path}:{number}: {exc}") from None
    return decisions


def read_tsv(path: Path) -> dict[int, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return {int(row["row"]): row for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)}


def row_of(task: dict) -> int | None:
    post_id = (task.get("data") or {}).get("post_id", "")
    return int(post_id[len(POST_PREFIX):]) if post_id.startswith(POST_PREFIX) else None


def connect(args):
    from labeling.client import LabelStudioClient, ServerAddress
    from labeling.project import find_project_id
    from labeling.settings import load_labeling_settings

    client = LabelStudioClient.connect(ServerAddress.from_environment(None, None))
    project_id = args.project_id or find_project_id(client, load_labeling_settings().project_title)
    return client, project_id


def cmd_queue(args) -> int:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_PATH)
    decided = read_decisions(args.decisions, taxonomy)
    rows = read_tsv(args.tsv)
    client, project_id = connect(args)
    shown = 0
    for task in client.iter_tasks(project_id):
        row = row_of(task)
        if row is None or row in decided or task.get("annotations"):
            continue
        title = rows[row]["title"][:40]
        print(f"{row}\t[{title}]\t{task['data']['text']}")
        shown += 1
        if shown >= args.n:
            break
    print(f"-- {shown} shown; {len(decided)} decided so far", file=sys.stderr)
    return 0


def _annotator_id(client, email: str) -> int:
    user = client.find_user(email)
    return user["id"] if user is not None else client.create_user(email, email.split("@")[0])["id"]


def cmd_submit(args) -> int:
    """Create the annotator's annotation for every decided task that has none; where the decision
    changed after a second look, update the annotation (Label Studio's Update), so the next
    incremental export carries the correction."""
    from labeling.config import labels_to_result, result_to_labels

    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_PATH)
    decided = read_decisions(args.decisions, taxonomy)
    client, project_id = connect(args)
    annotator = _annotator_id(client, args.annotator)
    created = updated = unchanged = 0
    for task in client.iter_tasks(project_id):
        row = row_of(task)
        if row not in decided:
            continue
        result = labels_to_result(decided[row], taxonomy)
        mine = [a for a in task.get("annotations") or [] if a.get("completed_by") == annotator]
        if not mine:
            client.create_annotation(task["id"], result, completed_by=annotator)
            created += 1
            continue
        current = result_to_labels(mine[-1]["result"], taxonomy)
        current["business_action"] = sorted(current.get("business_action") or [])
        wanted = dict(decided[row], business_action=sorted(decided[row]["business_action"]))
        if current != wanted:
            client.update_annotation(mine[-1]["id"], result)
            updated += 1
        else:
            unchanged += 1
    print(f"{created} annotations created, {updated} updated, {unchanged} unchanged for {args.annotator} "
          f"(user {annotator}); {len(decided)} decisions in {args.decisions}")
    return 0


def _prediction_labels(task: dict, taxonomy) -> dict | None:
    from labeling.config import result_to_labels

    predictions = [p for p in task.get("predictions") or [] if not str(p.get("model_version", "")).startswith("feedback:")]
    if not predictions:
        return None
    return result_to_labels(predictions[-1]["result"], taxonomy)


def cmd_labels(args) -> int:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_PATH)
    rows = read_tsv(args.tsv)
    labelled = [json.loads(line) for line in (args.dataset / "labelled.jsonl").read_text(encoding="utf-8").splitlines()]
    out_rows = []
    for post in labelled:
        if not post["id"].startswith(POST_PREFIX):
            continue
        row = int(post["id"][len(POST_PREFIX):])
        if rows[row]["type"] not in TYPES[args.types]:
            continue
        comment = rows[row]["comment"]
        labels = post["labels"]
        out_rows.append({
            "row": row,
            "text_sha256": hashlib.sha256(comment.encode("utf-8")).hexdigest(),
            "intent": labels["intent"],
            "customer_type": labels["customer_type"],
            "business_action": sorted(labels["business_action"]),
            "priority": labels["priority"],
            "sentiment": labels["sentiment"],
        })
    out_rows.sort(key=lambda r: r["row"])
    args.out = args.out or DEFAULT_OUT[args.types]
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "labels.jsonl").open("w", encoding="utf-8") as f:
        for record in out_rows:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    # Pre-annotation vs final label, per post and per field (the predictions live in Label Studio).
    final = {record["row"]: record for record in out_rows}
    client, project_id = connect(args)
    compared: list[dict] = []
    model_versions = Counter()
    for task in client.iter_tasks(project_id):
        row = row_of(task)
        if row not in final:
            continue
        predicted = _prediction_labels(task, taxonomy)
        if predicted is None:
            continue
        model_versions[task["predictions"][-1].get("model_version")] += 1
        predicted["business_action"] = sorted(predicted.get("business_action") or [])
        differs = {name: predicted.get(name) != final[row][name] for name in FIELDS}
        compared.append({"row": row, "predicted": {n: predicted.get(n) for n in FIELDS}, "differs": differs})
    compared.sort(key=lambda c: c["row"])
    with (args.out / "preannotation.jsonl").open("w", encoding="utf-8") as f:
        for item in compared:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    n = len(compared)
    summary = {
        "posts_labelled": len(out_rows),
        "posts_with_preannotation": n,
        "model_versions": dict(model_versions),
        "disagreement_rate": {name: round(sum(c["differs"][name] for c in compared) / n, 4) if n else None for name in FIELDS},
        "any_field_differs": round(sum(any(c["differs"].values()) for c in compared) / n, 4) if n else None,
        "label_counts": {
            name: dict(Counter(label for r in out_rows for label in (r[name] if name == "business_action" else [r[name]])).most_common())
            for name in FIELDS
        },
        "predicted_counts": {
            name: dict(Counter(label for c in compared for label in (c["predicted"][name] if name == "business_action" else [c["predicted"][name]])).most_common())
            for name in FIELDS
        },
        "posts_without_business_action": sum(1 for r in out_rows if not r["business_action"]),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-id", type=int, default=None, help="Default: the project titled as in configs/labeling.yaml.")
    commands = parser.add_subparsers(dest="command", required=True)
    queue = commands.add_parser("queue", help="Print the next posts to label.")
    queue.add_argument("--tsv", type=Path, required=True)
    queue.add_argument("--decisions", type=Path, default=Path("var/annotation/decisions.txt"))
    queue.add_argument("--n", type=int, default=40)
    queue.set_defaults(handler=cmd_queue)
    submit = commands.add_parser("submit", help="Create annotations for decided posts.")
    submit.add_argument("--decisions", type=Path, default=Path("var/annotation/decisions.txt"))
    submit.add_argument("--annotator", default="annotatore1@example.org", help="The annotator's e-mail (created if missing).")
    submit.set_defaults(handler=cmd_submit)
    labels = commands.add_parser("labels", help="Write labels.jsonl and the pre-annotation comparison.")
    labels.add_argument("--tsv", type=Path, required=True)
    labels.add_argument("--dataset", type=Path, default=Path("build/labeled-dataset"))
    labels.add_argument("--types", choices=sorted(TYPES), default="ads", help="Which comments (default: ads).")
    labels.add_argument("--out", type=Path, default=None, help="Default: data/annotations/multiemotions_it[/music].")
    labels.set_defaults(handler=cmd_labels)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
