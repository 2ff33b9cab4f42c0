"""Write a file so that readers see the old content or the new one, never half of it.

Every file of ours that someone may read while it is written (data sets, raw Label Studio pulls,
reports, drift references, partitions of a scored archive, ONNX manifests) goes through
`replaced_atomically`: the content goes to a temporary file beside the target, which is renamed over
it only once complete; a failure removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path: str | Path, *, prefix: str | None = None, exclusive: bool = False,
                        durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block ends without error, move it to `path`.

    The temporary file is created like any file the user writes (the umask's permissions, not
    mkstemp's private 0600): what we write is meant to be read by others.
    prefix: the temporary file's name before a random part (default `.<name>.`), for callers that
        clean up what a killed run left behind.
    exclusive: refuse to replace an existing file (FileExistsError), e.g. immutable raw pulls.
    durable: fsync the file before the rename and the folder after it, so that after a power cut a
        file written later never stands on disk beside one written earlier that did not make it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f"{prefix if prefix is not None else f'.{path.name}.'}{uuid.uuid4().hex}.tmp"
    try:
        yield temporary
        if durable:
            _fsync(temporary)
        if exclusive:
            os.link(temporary, path)  # fails if `path` exists, unlike os.replace
            temporary.unlink()
        else:
            os.replace(temporary, path)
        if durable:
            _fsync(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str, *, exclusive: bool = False, durable: bool = False) -> Path:
    """Write `text` (UTF-8, newlines as given) through `replaced_atomically`; returns `path`."""
    with replaced_atomically(path, exclusive=exclusive, durable=durable) as temporary:
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return Path(path)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
