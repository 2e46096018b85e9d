"""Folders and files the site writes: made private, and put in place atomically."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def private_dir(path: Path) -> Path:
    """`path` and any missing parents, made 0700: the site's data folder holds the database,
    the secret key and model copies. A folder that exists keeps its mode (an operator's choice)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_file(path: Path, *, mode: int = 0o600, replace: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write that appears at `path` whole or not at all: a reader sees the old
    file or the new one, never half of one.

    What is written goes to a temporary file beside `path` (its folder made as `private_dir`
    makes it, if missing), with `mode` from the start, so the file is never more readable than
    that. When the block ends without an error the file is synced and then either renamed over
    `path` (`replace=True`), or linked to it (`replace=False`): that fails with FileExistsError
    if `path` exists, so of several processes making one file the first wins. The temporary
    file is removed in every case; after an error `path` is left as it was.
    """
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            yield file
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one (`atomic_file`)."""
    with atomic_file(path, mode=mode) as file:
        file.write(data)
