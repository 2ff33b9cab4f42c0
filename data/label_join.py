"""Our labels for the rows of a public data set, joined with its texts only at build time.

A data set whose license keeps its texts out of this repository (e.g. MultiEmotions-It) is labelled
in a file of our own that names each row by the data set's `row` and the SHA-256 of its text
(`data/annotations/<data set>/labels.jsonl`). The texts come from posts JSONL made from the data
set's file by path (the ids are `<prefix><row>`). A text whose hash differs from the one labelled
means the file is another version, or was edited: the join refuses and names the rows, instead of
training on labels that belong to other words.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from data.errors import UserError
from data.schema import Post, PostValidationError, PostValidator

# The keys of a label line that are not taxonomy fields.
KEY_FIELDS = ("row", "text_sha256")
# Rows named in an error message at most; the count says how many more.
MAX_NAMED_ROWS = 20


class LabelJoinError(UserError, ValueError):
    """The labels cannot be joined with these texts; the message names the rows and the fix."""


@dataclass(frozen=True)
class RowLabels:
    row: int
    text_sha256: str
    labels: dict[str, str | list[str]]


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rows(rows: Sequence[int]) -> str:
    shown = ", ".join(str(row) for row in sorted(rows)[:MAX_NAMED_ROWS])
    return shown + (f" and {len(rows) - MAX_NAMED_ROWS} more" if len(rows) > MAX_NAMED_ROWS else "")


def read_row_labels(path: str | Path, field_names: Iterable[str]) -> list[RowLabels]:
    """Label lines: {"row": int, "text_sha256": hex, <taxonomy field>: label, ...}; a line may label
    some fields only (partial labels). Unknown keys, a missing key or a repeated row are errors
    naming the line."""
    path = Path(path)
    fields = set(field_names)
    seen: dict[int, int] = {}
    result = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabelJoinError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("row"), int) or not isinstance(raw.get("text_sha256"), str):
            raise LabelJoinError(f'{where}: each line needs "row" (an integer) and "text_sha256" (hex)')
        unknown = set(raw) - fields - set(KEY_FIELDS)
        if unknown:
            raise LabelJoinError(f"{where}: {sorted(unknown)} are not taxonomy fields (fields: {', '.join(sorted(fields))})")
        if raw["row"] in seen:
            raise LabelJoinError(f"{where}: row {raw['row']} is labelled twice (first on line {seen[raw['row']]})")
        seen[raw["row"]] = number
        labels = {name: value for name, value in raw.items() if name in fields}
        if not labels:
            raise LabelJoinError(f"{where}: row {raw['row']} has no label")
        result.append(RowLabels(raw["row"], raw["text_sha256"], labels))
    return result


def join_labels(posts: Iterable[Post], row_labels: Sequence[RowLabels], id_prefix: str, validator: PostValidator) -> list[Post]:
    """Each labelled row's post (id `<id_prefix><row>`) with the labels set, in the labels' order.
    Refuses, naming the rows, when a row has no post or its text's hash differs."""
    by_id = {post.id: post for post in posts}
    missing = [item.row for item in row_labels if f"{id_prefix}{item.row}" not in by_id]
    if missing:
        raise LabelJoinError(
            f"{len(missing)} labelled row(s) have no post with id {id_prefix}<row>: rows {_rows(missing)}; "
            "build the posts from the data set file these labels were made on (and check --id-prefix)"
        )
    changed = [item.row for item in row_labels if text_sha256(by_id[f"{id_prefix}{item.row}"].text) != item.text_sha256]
    if changed:
        raise LabelJoinError(
            f"{len(changed)} row(s) have a text whose SHA-256 differs from the labelled one: rows {_rows(changed)}; "
            "the texts are another version of the data set (or were edited): use the file the labels were made on, "
            "or re-annotate those rows"
        )
    joined = []
    for item in row_labels:
        post = by_id[f"{id_prefix}{item.row}"]
        try:
            joined.append(validator.validate({**post.model_dump(mode="json", exclude_none=True), "labels": item.labels}))
        except PostValidationError as exc:
            raise LabelJoinError(f"row {item.row}: {exc}") from None
    return joined
