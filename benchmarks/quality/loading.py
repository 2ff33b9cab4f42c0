"""Read a benchmark's files into posts, and make the taxonomy its heads stand for.

The rest of the code (data set, model heads, evaluation) knows heads through a `Taxonomy`; a
benchmark gets one built from its spec, with a single `benchmark` channel. Posts keep a stable id
made of the file role and the row number, so folds and hashes do not depend on the file's own ids.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.quality.spec import BenchmarkSpec, BenchmarkSpecError, HeadDefinition
from data.schema import Post, PostValidator
from data.taxonomy import ChannelSpec, FieldSpec, LabelSpec, Taxonomy

BENCHMARK_CHANNEL = "benchmark"


@dataclass
class LoadedBenchmark:
    taxonomy: Taxonomy
    posts: dict[str, list[Post]]   # file role (train, test or all) -> posts
    skipped: dict[str, int]        # file role -> rows without text, left out


def label_id(value: str) -> str:
    """A data value as a label id: lower case, runs of other characters as '_', never starting with a digit."""
    slug = re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_")
    return slug if re.match(r"^[a-z]", slug) else f"l_{slug}"


def read_rows(spec: BenchmarkSpec, data_dir: Path, role: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of one file, with the spec's column names."""
    file_spec = spec.files[role]
    path = data_dir / file_spec.path
    if not path.is_file():
        raise BenchmarkSpecError(f"{spec.name}: {role} file {path} not found; pass the folder that holds it as --data-dir")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=spec.delimiter)
        names = next(reader) if file_spec.header else None
        names = spec.columns or names
        needed = {spec.text_column, *(head.column for head in spec.heads.values())}
        missing = sorted(needed - set(names or []))
        if missing:
            raise BenchmarkSpecError(f"{path}: no column(s) {missing}; its columns are {names}")
        rows = []
        first_line = 2 if file_spec.header else 1
        for number, values in enumerate(reader, start=first_line):
            if not values:
                continue
            if len(values) != len(names):
                raise BenchmarkSpecError(f"{path}:{number}: {len(values)} fields, expected {len(names)} ({', '.join(names)})")
            rows.append((number, dict(zip(names, values))))
    return rows


def value_maps(spec: BenchmarkSpec, rows: dict[str, list[tuple[int, dict[str, str]]]]) -> dict[str, dict[str, str]]:
    """head -> {value in the data: label id}. from_data heads take their values from the training rows."""
    training_role = "all" if "all" in rows else "train"
    maps = {}
    for name, head in spec.heads.items():
        if isinstance(head.labels, dict):
            maps[name] = {value: label for label, value in head.labels.items()}
            continue
        values = sorted({value for _, row in rows[training_role] for value in split_values(head, row[head.column])})
        ids = {value: label_id(value) for value in values}
        if len(set(ids.values())) != len(ids):
            raise BenchmarkSpecError(f"head {name}: values {values} give colliding label ids; list labels: in the spec")
        maps[name] = ids
    return maps


def split_values(head: HeadDefinition, cell: str) -> list[str]:
    if head.kind == "single":
        return [cell.strip()]
    return [value.strip() for value in cell.split(head.separator) if value.strip()]


def benchmark_taxonomy(spec: BenchmarkSpec, maps: dict[str, dict[str, str]]) -> Taxonomy:
    fields = {}
    for name, head in spec.heads.items():
        labels = [
            LabelSpec(id=label, name=value, description=f"{head.column} = {value}", guidance="As labelled in the data set.", examples=[value])
            for value, label in maps[name].items()
        ]
        fields[name] = FieldSpec(name=name, kind=head.kind, description=f"{spec.name}: column {head.column}", labels=labels)
    return Taxonomy(version=f"{spec.name}-1", fields=fields, channels=[ChannelSpec(id=BENCHMARK_CHANNEL, public=True)])


def load_benchmark(spec: BenchmarkSpec, data_dir: str | Path) -> LoadedBenchmark:
    """Every file of the spec as posts labelled by the spec's heads. A value outside a head's label
    set is an error naming the file, line, column and the known values; a row with no text is left
    out and counted."""
    data_dir = Path(data_dir)
    rows = {role: read_rows(spec, data_dir, role) for role in spec.files}
    maps = value_maps(spec, rows)
    taxonomy = benchmark_taxonomy(spec, maps)
    validator = PostValidator(taxonomy)
    posts: dict[str, list[Post]] = {}
    skipped: dict[str, int] = {}
    for role, role_rows in rows.items():
        posts[role], skipped[role] = [], 0
        for number, row in role_rows:
            text = row[spec.text_column]
            if not text.strip():
                skipped[role] += 1
                continue
            labels: dict[str, str | list[str]] = {}
            for name, head in spec.heads.items():
                values = split_values(head, row[head.column])
                unknown = [value for value in values if value not in maps[name]]
                if unknown or (head.kind == "single" and not values):
                    raise BenchmarkSpecError(
                        f"{data_dir / spec.files[role].path}:{number}: column {head.column} = {row[head.column]!r} is not "
                        f"a label of head {name} (values: {', '.join(maps[name])})"
                    )
                ids = [maps[name][value] for value in values]
                labels[name] = ids if head.kind == "multi" else ids[0]
            raw = {"id": f"{role}-{number:06d}", "text": text, "channel": BENCHMARK_CHANNEL, "language": spec.language, "labels": labels}
            posts[role].append(validator.validate(raw))
        if not posts[role]:
            raise BenchmarkSpecError(f"{spec.name}: the {role} file has no post with text")
    return LoadedBenchmark(taxonomy=taxonomy, posts=posts, skipped=skipped)
