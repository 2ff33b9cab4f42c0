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
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

import fsspec
import pyarrow.parquet as pq

from data.errors import UserError
from data.schema import Post, PostValidationError, PostValidator

SourceFormat = Literal["jsonl", "parquet"]
FORMATS: dict[str, SourceFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
# About 4,000 posts of a brand page: one to two minutes of the e5 model on 2 cores, so progress is
# reported often and a killed job loses little.
DEFAULT_PARTITION_BYTES = 1 << 20
_READ_BLOCK = 1 << 16
# Far above any valid post (5,000 characters of text, even escaped as \uXXXX): a longer line is a
# reject, read no further than this.
MAX_LINE_BYTES = 1 << 20


class ArchiveError(UserError, ValueError):
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


@dataclass(frozen=True)
class SourceFile:
    source: str             # a URL, or an absolute local path
    format: SourceFormat
    size: int
    modified: str | None    # modification time or etag, as the file system reports it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand_sources(inputs: list[str]) -> list[SourceFile]:
    """Every file named: a file, a directory (its JSONL and Parquet files, recursively) or a glob;
    names starting with "_" or "." skipped inside directories and globs (markers and leftovers of
    other tools, as Hadoop and Spark skip them). Sorted, whatever the order of the inputs, so that
    the same archive always gives the same plan."""
    if not inputs:
        raise ArchiveError("no input given: name JSONL or Parquet files, directories or globs")
    found: list[SourceFile] = []
    for given in inputs:
        filesystem, path = fsspec.core.url_to_fs(given)
        if any(character in path for character in "*?["):
            paths = [name for name in filesystem.glob(path) if not _hidden(name, path)]
        elif filesystem.isdir(path):
            paths = [name for name in filesystem.find(path) if _format_of(name) is not None and not _hidden(name, path)]
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
            info = filesystem.info(name)
            modified = info.get("mtime", info.get("LastModified", info.get("ETag", info.get("etag"))))
            found.append(SourceFile(_url(filesystem, name), format_, int(info["size"]),
                                    None if modified is None else str(modified)))
    counts = Counter(item.source for item in found)
    duplicates = sorted(source for source, count in counts.items() if count > 1)
    if duplicates:
        raise ArchiveError(f"input named twice: {', '.join(duplicates)}")
    return sorted(found, key=lambda item: item.source)


def plan_shards(inputs: list[str], partition_bytes: int = DEFAULT_PARTITION_BYTES) -> list[Shard]:
    """The partitions of an archive, numbered from 0 in (sorted) source order."""
    if partition_bytes < 1:
        raise ArchiveError(f"partition size must be at least 1 byte, got {partition_bytes}")
    return plan_sources(expand_sources(inputs), partition_bytes)


def plan_sources(sources: list[SourceFile], partition_bytes: int) -> list[Shard]:
    shards: list[Shard] = []
    for item in sources:
        if item.format == "jsonl":
            ranges = [(start, min(start + partition_bytes, item.size), 0) for start in range(0, item.size, partition_bytes)]
        else:
            ranges = _row_group_ranges(item.source, partition_bytes)
        for start, end, first_row in ranges:
            shards.append(Shard(len(shards), item.source, item.format, start, end, first_row))
    return shards


def read_shard(shard: Shard, validator: PostValidator) -> ShardRead:
    """Every line (or row) of the partition as a post or a reject: no content of a post can stop
    the job (a reject names the problem; the partition goes on)."""
    if shard.format == "jsonl":
        lines = _jsonl_lines(shard)
        read = ShardRead([], [], len(lines))
        for number, (encoded, too_long) in enumerate(lines):
            if too_long:
                read.rejects.append((number, f"line longer than {MAX_LINE_BYTES} bytes: not a post (a post's text "
                                             f"is at most {validator.max_text_chars} characters)",
                                     _excerpt(encoded.decode("utf-8", errors="replace"))))
                continue
            try:
                line = encoded.decode("utf-8")
            except UnicodeDecodeError as exc:
                read.rejects.append((number, f"not valid UTF-8: byte {exc.start + 1} of the line",
                                     encoded.decode("utf-8", errors="replace")))
                continue
            if not line.strip():
                continue  # blank lines (Unicode spaces too) are tolerated, as data.jsonl does
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                read.rejects.append((number, f"not valid JSON: {exc.msg} at column {exc.colno}", line))
                continue
            except (ValueError, RecursionError) as exc:  # a number of thousands of digits, nesting too deep
                read.rejects.append((number, f"not valid JSON: {exc}", _excerpt(line)))
                continue
            _validate(raw, number, line, validator, read)
        return read
    rows = _parquet_rows(shard)
    read = ShardRead([], [], len(rows))
    for number, row in enumerate(rows):
        if isinstance(row, Exception):
            read.rejects.append((number, f"unreadable row: {row}", ""))
            continue
        # A null column is an absent field: Parquet has no way to leave a key out of one row.
        raw = {key: value for key, value in row.items() if value is not None}
        _validate(raw, number, json.dumps(raw, ensure_ascii=False, default=str), validator, read)
    return read


def _validate(raw: Any, number: int, line: str, validator: PostValidator, read: ShardRead) -> None:
    try:
        post = validator.validate(raw)
    except PostValidationError as exc:
        read.rejects.append((number, str(exc), line))
        return
    try:
        # JSON may escape half of a surrogate pair ("\ud83d"): a str Python holds, but no encoder,
        # tokenizer or Parquet writer takes it.
        json.dumps(post.to_json_dict(), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        read.rejects.append((number, f"not valid Unicode: a lone surrogate {exc.object[exc.start:exc.end]!r}; "
                                     "send both halves of the pair, or the character itself",
                             line.encode("utf-8", errors="replace").decode("utf-8")))
        return
    read.posts.append((number, post))


def _excerpt(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _jsonl_lines(shard: Shard) -> list[tuple[bytes, bool]]:
    """The lines that start in [start, end), without their line ends (a line may run past `end`),
    each with whether it was longer than MAX_LINE_BYTES (then only that much is kept)."""
    filesystem, path = fsspec.core.url_to_fs(shard.source)
    lines: list[tuple[bytes, bool]] = []
    with filesystem.open(path, "rb") as handle:
        position = shard.start
        if position > 0:
            # The line under `start` belongs to the range where it began, unless it begins at `start`.
            handle.seek(position - 1)
            reader = _LineReader(handle)
            if handle.read(1) != b"\n":
                position += reader.readline()[0]
        else:
            handle.seek(0)
            reader = _LineReader(handle)
        # Whole lines while the next one starts before `end`.
        while position < shard.end:
            consumed, line, too_long = reader.readline()
            if not consumed:
                break
            position += consumed
            lines.append((line.removesuffix(b"\r"), too_long))
    return lines


class _LineReader:
    """Lines of a binary file in blocks, a line capped at MAX_LINE_BYTES (an fsspec file's
    readline takes no limit, and a file without newlines must not fill the memory)."""

    def __init__(self, handle):
        self.handle = handle
        self.buffer = b""

    def readline(self) -> tuple[int, bytes, bool]:
        """(bytes consumed, the line without its newline and capped, whether it was longer)."""
        kept = bytearray()
        consumed = 0
        length = 0
        while True:
            if not self.buffer:
                self.buffer = self.handle.read(_READ_BLOCK)
                if not self.buffer:
                    return consumed, bytes(kept), length > MAX_LINE_BYTES
            index = self.buffer.find(b"\n")
            piece = self.buffer if index < 0 else self.buffer[:index]
            self.buffer = b"" if index < 0 else self.buffer[index + 1:]
            consumed += len(piece) + (index >= 0)
            length += len(piece)
            kept += piece[:max(0, MAX_LINE_BYTES - len(kept))]
            if index >= 0:
                return consumed, bytes(kept), length > MAX_LINE_BYTES


def _parquet_rows(shard: Shard) -> list[dict[str, Any] | Exception]:
    filesystem, path = fsspec.core.url_to_fs(shard.source)
    try:
        with filesystem.open(path, "rb") as handle:
            table = pq.ParquetFile(handle).read_row_groups(list(range(shard.start, shard.end)))
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ArchiveError(f"{shard.source}: row groups {shard.start}-{shard.end - 1} cannot be read: {exc}") from None
    try:
        return table.to_pylist()
    except (ValueError, OverflowError):
        # A value Python cannot hold (a timestamp past year 9999...): find the rows, keep the others.
        rows: list[dict[str, Any] | Exception] = []
        for index in range(table.num_rows):
            try:
                rows.append(table.slice(index, 1).to_pylist()[0])
            except (ValueError, OverflowError) as exc:
                rows.append(exc)
        return rows


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


def _hidden(name: str, root: str) -> bool:
    """A name below `root` with a part starting with "_" or "."."""
    relative = name[len(root):] if name.startswith(root) else name.rsplit("/", 1)[-1]
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def _format_of(name: str) -> SourceFormat | None:
    lowered = name.lower()
    return next((format_ for suffix, format_ in FORMATS.items() if lowered.endswith(suffix)), None)


def _url(filesystem, path: str) -> str:
    """A name every worker can open: the absolute path for local files, the full URL otherwise."""
    protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]
    if protocol in ("file", "local"):
        return path
    return filesystem.unstrip_protocol(path)
