"""The output directory of an archive job: one Parquet (and/or JSONL) file per partition, written
whole or not at all, so that a killed job resumes where it stopped and writes no post twice.

    OUT/_manifest.json              the plan and the model: a rerun with another refuses
    OUT/parquet/part-00000.parquet  the scored posts of partition 0 (the folder reads as one table)
    OUT/jsonl/part-00000.jsonl      the same as JSON lines, when asked for
    OUT/rejects/part-00000.jsonl    its bad rows, each with its file, line and reason
    OUT/_done/part-00000.json       written last: the partition is complete (its counts)
    OUT/_summary.json               written when every partition is done

A partition's files are written beside their names and renamed into place, and its `_done` marker
goes last, so a partition either has a marker and all its files, or is scored again from its
start (its leftovers are overwritten).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data.atomic_files import replaced_atomically
from data.errors import UserError

OUTPUT_FORMATS = ("parquet", "jsonl")
MANIFEST = "_manifest.json"
SUMMARY = "_summary.json"
_TEMPORARY_PREFIX = ".tmp-"

# One column per route field (a test checks that none is missing); reasons stay JSON, their shape
# varies by rule.
ROUTE_COLUMNS: dict[str, pa.DataType] = {
    "action": pa.string(),
    "queue": pa.string(),
    "team": pa.string(),
    "priority": pa.string(),
    "sla_deadline": pa.timestamp("us", tz="UTC"),
    "needs_human": pa.bool_(),
    "confidence_tier": pa.string(),
    "reply_channel": pa.string(),
    "out_of_hours": pa.bool_(),
    "auto_reply": pa.string(),
    "crisis": pa.bool_(),
    "crisis_id": pa.int64(),
    "pii": pa.list_(pa.string()),
    "reasons": pa.string(),
    "suggested_reply": pa.string(),
}


class OutputMismatch(UserError, ValueError):
    """The output directory holds a job planned differently (other inputs, model or settings)."""


def parquet_schema(heads: Iterable[str]) -> pa.Schema:
    """Columns of a scored post: provenance, versions, each head's labels, probabilities and
    confidence, every field of the route. One schema for every partition, so that the directory
    reads as one table (pyarrow.dataset, DuckDB, Spark)."""
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("model_version", pa.string()),
        pa.field("taxonomy_version", pa.string()),
        pa.field("routing_version", pa.string()),
    ]
    for head in heads:
        fields += [
            pa.field(f"{head}_labels", pa.list_(pa.string())),
            pa.field(f"{head}_probabilities", pa.map_(pa.string(), pa.float64())),
            pa.field(f"{head}_confidence", pa.float64()),
        ]
    fields += [pa.field(name, kind) for name, kind in ROUTE_COLUMNS.items()]
    fields.append(pa.field("history", pa.string()))  # the author's contact history as JSON, null when anonymous
    return pa.schema(fields)


def flat_row(record: dict[str, Any], heads: Iterable[str]) -> dict[str, Any]:
    """A JSONL record (serving.batch.output_record plus source and line) as a Parquet row."""
    row = {key: record[key] for key in ("id", "source", "line", "model_version", "taxonomy_version", "routing_version")}
    for head in heads:
        prediction = record["predictions"][head]
        row[f"{head}_labels"] = prediction["labels"]
        row[f"{head}_probabilities"] = list(prediction["probabilities"].items())
        row[f"{head}_confidence"] = prediction["confidence"]
    route = record["route"]
    for name in ROUTE_COLUMNS:
        row[name] = route.get(name)
    row["reasons"] = json.dumps(route["reasons"], ensure_ascii=False)
    history = record.get("history")
    row["history"] = json.dumps(history, ensure_ascii=False) if history is not None else None
    if row["sla_deadline"] is not None:
        row["sla_deadline"] = datetime.fromisoformat(row["sla_deadline"])
    return row


class PartitionedOutput:
    def __init__(self, directory: Path, formats: Iterable[str], heads: Iterable[str]):
        self.directory = Path(directory)
        self.formats = tuple(formats)
        unknown = [name for name in self.formats if name not in OUTPUT_FORMATS]
        if unknown or not self.formats:
            raise ValueError(f"output formats {unknown or 'none'}: choose one or both of {', '.join(OUTPUT_FORMATS)}")
        self.heads = tuple(heads)
        self.schema = parquet_schema(self.heads)

    def check(self, manifest: dict[str, Any]) -> None:
        """Refuse to resume here a job planned otherwise, naming what differs (nothing is written)."""
        path = self.directory / MANIFEST
        if not path.is_file():
            return
        previous = json.loads(path.read_text(encoding="utf-8"))
        differences = [key for key in sorted(set(previous) | set(manifest)) if previous.get(key) != manifest.get(key)]
        if differences:
            raise OutputMismatch(
                f"{self.directory} holds a job with other {', '.join(differences)} "
                f"(see {path}): resume it with the same inputs, model and settings, or score into a new --output"
            )

    def prepare(self, manifest: dict[str, Any]) -> None:
        """Start a job here, or resume the one whose manifest matches; remove the leftovers of a
        killed one (files never renamed into place)."""
        self.check(manifest)
        self.directory.mkdir(parents=True, exist_ok=True)
        for folder in self._folders():
            folder.mkdir(exist_ok=True)
        path = self.directory / MANIFEST
        if not path.is_file():
            _write_atomically(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        for folder in (self.directory, *self._folders()):
            for stale in folder.glob(f"{_TEMPORARY_PREFIX}*"):
                stale.unlink(missing_ok=True)

    def done(self, name: str) -> dict[str, Any] | None:
        """The counts of a finished partition, None if it has to be scored (again)."""
        marker = self.directory / "_done" / f"{name}.json"
        return json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None

    def written_ids(self, name: str) -> Iterator[tuple[str, str, int]]:
        """(id, source, line) of each post a finished partition wrote, to find duplicates on resume."""
        if "parquet" in self.formats:
            path = self.directory / "parquet" / f"{name}.parquet"
            if path.is_file():
                table = pq.read_table(path, columns=["id", "source", "line"])
                yield from zip(*(table.column(column).to_pylist() for column in ("id", "source", "line")))
            return
        path = self.directory / "jsonl" / f"{name}.jsonl"
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    yield record["id"], record["source"], record["line"]

    def write(self, name: str, records: list[dict[str, Any]], rejects: list[dict[str, Any]],
              counts: dict[str, Any]) -> None:
        """Every file of one partition, its `_done` marker last."""
        if "parquet" in self.formats:
            table = pa.Table.from_pylist([flat_row(record, self.heads) for record in records], schema=self.schema)
            _write_atomically(self.directory / "parquet" / f"{name}.parquet", table)
        if "jsonl" in self.formats:
            _write_atomically(self.directory / "jsonl" / f"{name}.jsonl", _jsonl(records))
        _write_atomically(self.directory / "rejects" / f"{name}.jsonl", _jsonl(rejects))
        _write_atomically(self.directory / "_done" / f"{name}.json", json.dumps(counts) + "\n")

    def _folders(self) -> list[Path]:
        return [self.directory / name for name in (*self.formats, "rejects", "_done")]

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_atomically(self.directory / SUMMARY, json.dumps(summary, indent=2) + "\n")


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _write_atomically(path: Path, content: str | pa.Table) -> None:
    # Durable: after a power cut a `_done` marker never stands beside a partition file that did not make it.
    with replaced_atomically(path, prefix=f"{_TEMPORARY_PREFIX}{path.name}.", durable=True) as temporary:
        if isinstance(content, pa.Table):
            pq.write_table(content, temporary)
        else:
            temporary.write_text(content, encoding="utf-8")
