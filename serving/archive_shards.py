"""Cut an archive of posts into partitions that can be read, scored and written independently.

An archive is one or more JSONL or Parquet files, local or behind any fsspec URL (s3://, gs://,
hdfs://, file://...). A JSONL file is cut into byte ranges, as Hadoop splits text: a line belongs
to the range its first byte falls in, so a reader of one range needs no other (and the planner
never reads a file through: millions of lines on object storage cost one listing, not one
download). A Parquet file is cut along its row groups. Partition numbers follow the sorted sources,
so the same archive and the same size always give the same plan, which is what lets a killed job
resume: `serving.partitioned_output` keeps the plan beside the output and refuses another.

Line numbers: a reader knows how many lines start in its range; the driver adds those of earlier
ranges of the same file, which gives every line its number in the file (blank lines counted, as
`data.jsonl` counts them), so a reject is reported as `file:line`, like `smista serve batch` does.
For Parquet the number is the row's, from 1.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

import fsspec
import pyarrow.parquet as pq

from data.schema import Post, PostValidationError, PostValidator

SourceFormat = Literal["jsonl", "parquet"]
FORMATS: dict[str, SourceFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
# About 4,000 posts of a brand page: one to two minutes of the e5 model on 2 cores, so progress is
# reported often and a killed job loses little.
DEFAULT_PARTITION_BYTES = 1 << 20
_READ_BLOCK = 1 << 16


class ArchiveError(ValueError):
    """An input that cannot be planned: missing, empty, or of a format we do not read."""


@dataclass(frozen=True)
class Shard:
    index: int
    source: str             # the file, as a URL or an absolute local path
    format: SourceFormat
    start: int              # JSONL: first byte; Parquet: first row group
    end: int                # JSONL: byte after the range; Parquet: row group after the range
    first_row: int = 0      # Parquet: rows in the file before `start` (JSONL: 0, see the module docstring)

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ShardRead:
    """One partition read and validated: posts and rejects with their line (or row) in the shard,
    counted from 0, and how many lines start in the range."""

    posts: list[tuple[int, Post]]
    rejects: list[tuple[int, str, str]]  # (line in shard, reason, the raw line or row as JSON)
    line_count: int


def expand_sources(inputs: list[str]) -> list[tuple[str, SourceFormat, int]]:
    """(source, format, size in bytes) of every file named: a file, a directory (its JSONL and
    Parquet files, recursively) or a glob, sorted within each input, in the order given."""
    if not inputs:
        raise ArchiveError("no input given: name JSONL or Parquet files, directories or globs")
    found: list[tuple[str, SourceFormat, int]] = []
    for given in inputs:
        filesystem, path = fsspec.core.url_to_fs(given)
        if any(character in path for character in "*?["):
            paths = sorted(filesystem.glob(path))
        elif filesystem.isdir(path):
            paths = sorted(name for name in filesystem.find(path) if _format_of(name) is not None)
        elif filesystem.exists(path):
            paths = [path]
        else:
            raise ArchiveError(f"input {given!r}: no such file or directory")
        if not paths:
            raise ArchiveError(f"input {given!r}: no .jsonl or .parquet file in it")
        for name in paths:
            format_ = _format_of(name)
            if format_ is None:
                raise ArchiveError(
                    f"input {name!r}: unknown format; name files .jsonl (one post per line) or .parquet"
                )
            found.append((_url(filesystem, name), format_, int(filesystem.size(name))))
    duplicates = sorted({source for source, _, _ in found if sum(s == source for s, _, _ in found) > 1})
    if duplicates:
        raise ArchiveError(f"input named twice: {', '.join(duplicates)}")
    return found


def plan_shards(inputs: list[str], partition_bytes: int = DEFAULT_PARTITION_BYTES) -> list[Shard]:
    """The partitions of an archive, numbered from 0 in source order."""
    if partition_bytes < 1:
        raise ArchiveError(f"partition size must be at least 1 byte, got {partition_bytes}")
    shards: list[Shard] = []
    for source, format_, size in expand_sources(inputs):
        if format_ == "jsonl":
            ranges = [(start, min(start + partition_bytes, size), 0) for start in range(0, size, partition_bytes)]
        else:
            ranges = _row_group_ranges(source, partition_bytes)
        for start, end, first_row in ranges:
            shards.append(Shard(len(shards), source, format_, start, end, first_row))
    return shards


def read_shard(shard: Shard, validator: PostValidator) -> ShardRead:
    if shard.format == "jsonl":
        lines = _jsonl_lines(shard)
        read = ShardRead([], [], len(lines))
        for number, encoded in enumerate(lines):
            if not encoded.strip():
                continue  # blank lines are tolerated, as data.jsonl does
            try:
                line = encoded.decode("utf-8")
            except UnicodeDecodeError as exc:
                read.rejects.append((number, f"not valid UTF-8: byte {exc.start + 1} of the line",
                                     encoded.decode("utf-8", errors="replace")))
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                read.rejects.append((number, f"not valid JSON: {exc.msg} at column {exc.colno}", line))
                continue
            _validate(raw, number, line, validator, read)
        return read
    rows = _parquet_rows(shard)
    read = ShardRead([], [], len(rows))
    for number, row in enumerate(rows):
        # A null column is an absent field: Parquet has no way to leave a key out of one row.
        raw = {key: value for key, value in row.items() if value is not None}
        _validate(raw, number, json.dumps(raw, ensure_ascii=False, default=str), validator, read)
    return read


def _validate(raw: Any, number: int, line: str, validator: PostValidator, read: ShardRead) -> None:
    try:
        read.posts.append((number, validator.validate(raw)))
    except PostValidationError as exc:
        read.rejects.append((number, str(exc), line))


def _jsonl_lines(shard: Shard) -> list[bytes]:
    """The lines that start in [start, end), without their line ends (a line may run past `end`)."""
    filesystem, path = fsspec.core.url_to_fs(shard.source)
    data = bytearray()
    with filesystem.open(path, "rb") as handle:
        position = shard.start
        if position > 0:
            # The line under `start` belongs to the range where it began, unless it begins at `start`.
            handle.seek(position - 1)
            if handle.read(1) != b"\n":
                position += _skip_line(handle)
        else:
            handle.seek(0)
        # Read whole lines while the next one starts before `end`.
        while position < shard.end:
            line = handle.readline()
            if not line:
                break
            data += line
            position += len(line)
    lines = bytes(data).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line, it does not start another
    return [line.removesuffix(b"\r") for line in lines]


def _skip_line(handle) -> int:
    skipped = 0
    while True:
        block = handle.readline(_READ_BLOCK)
        skipped += len(block)
        if not block or block.endswith(b"\n"):
            return skipped


def _parquet_rows(shard: Shard) -> list[dict[str, Any]]:
    filesystem, path = fsspec.core.url_to_fs(shard.source)
    with filesystem.open(path, "rb") as handle:
        table = pq.ParquetFile(handle).read_row_groups(list(range(shard.start, shard.end)))
    return table.to_pylist()


def _row_group_ranges(source: str, partition_bytes: int) -> list[tuple[int, int, int]]:
    filesystem, path = fsspec.core.url_to_fs(source)
    with filesystem.open(path, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    ranges: list[tuple[int, int, int]] = []
    start, size, rows_before, rows_in_range = 0, 0, 0, 0
    for group in range(metadata.num_row_groups):
        size += metadata.row_group(group).total_byte_size
        rows_in_range += metadata.row_group(group).num_rows
        if size >= partition_bytes:
            ranges.append((start, group + 1, rows_before))
            start, size, rows_before, rows_in_range = group + 1, 0, rows_before + rows_in_range, 0
    if start < metadata.num_row_groups:
        ranges.append((start, metadata.num_row_groups, rows_before))
    return ranges


def _format_of(name: str) -> SourceFormat | None:
    lowered = name.lower()
    return next((format_ for suffix, format_ in FORMATS.items() if lowered.endswith(suffix)), None)


def _url(filesystem, path: str) -> str:
    """A name every worker can open: the absolute path for local files, the full URL otherwise."""
    protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]
    if protocol in ("file", "local"):
        return path
    return filesystem.unstrip_protocol(path)
