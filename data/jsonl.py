"""Read and write posts as JSONL, reporting every bad line by its number.

Two modes for bad lines: "raise" stops at the first one; "skip" keeps going and returns a report
of every skipped line. A bad line is never dropped without being reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from data.atomic_files import replaced_atomically
from data.errors import UserError
from data.schema import Post, PostValidationError, PostValidator

OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class LineError:
    path: Path
    line_number: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_number}: {self.message}"


class PostFileError(UserError, ValueError):
    """A JSONL file of posts has a bad line (or lines); the message gives file and line number."""

    def __init__(self, errors: list[LineError]):
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


@dataclass
class ReadReport:
    """What a lenient read kept and what it skipped."""

    posts: list[Post] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def iter_posts(
    path: str | Path, validator: PostValidator, on_error: OnError = "raise", errors: list[LineError] | None = None
) -> Iterator[Post]:
    """Yield valid posts in file order. Bad lines raise, or (on_error="skip") go to `errors`.

    Blank lines are tolerated (editors add them); duplicate ids are an error because every
    downstream step (splits, Label Studio import, feedback) keys on the id.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if on_error == "skip" and errors is None:
        raise ValueError("on_error='skip' needs an `errors` list to report the skipped lines into")
    path = Path(path)
    first_line_of_id: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                post = _parse_line(line, validator)
                if post.id in first_line_of_id:
                    raise PostValidationError(
                        f"id: duplicate id {post.id!r}, first seen on line {first_line_of_id[post.id]}"
                    )
            except PostValidationError as exc:
                error = LineError(path, line_number, str(exc))
                if on_error == "raise":
                    raise PostFileError([error]) from None
                errors.append(error)  # type: ignore[union-attr]
                continue
            first_line_of_id[post.id] = line_number
            yield post


def read_posts(path: str | Path, validator: PostValidator, on_error: OnError = "raise") -> ReadReport:
    """Read a whole file; see iter_posts for the error modes."""
    report = ReadReport()
    report.posts = list(iter_posts(path, validator, on_error=on_error, errors=report.errors))
    return report


def _parse_line(line: str, validator: PostValidator) -> Post:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PostValidationError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    return validator.validate(raw)


def write_posts(path: str | Path, posts: Iterable[Post]) -> int:
    """Write posts as JSONL atomically: the target is replaced only once every line is written,
    so a failure half-way never leaves a truncated file where a good one stood."""
    count = 0
    with replaced_atomically(path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for post in posts:
            handle.write(json.dumps(post.to_json_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count
