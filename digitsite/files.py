"""Folders and files the site writes: made private, and replaced atomically."""

import os
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path` and any missing parents, made 0700: the site's data folder holds the database,
    the secret key and model copies. A folder that exists keeps its mode (an operator's choice)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never half of
    one: a temporary file in the same folder, synced, then renamed over `path`."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
