"""A full disk, told apart from a busy database: the write failed for want of space, which
waiting a few seconds does not cure, and the health endpoint should say so.

What is remembered is this process's own last failure, for DISK_FULL_HOLD_S or until one of its
writes succeeds again: no shared state to write on a disk that is full. Each web process learns
of it on its own first failed write; a health check that lands on a process that has not tried
says ok, which is why the hold is several minutes long."""

import logging
import time

from django.db import OperationalError

logger = logging.getLogger("recognizer")

DISK_FULL_HOLD_S = 300.0
# The API's answer (507), from a view's handler (digitsite.api) or the middleware alike.
DISK_FULL_ANSWER = "The server's disk is full: the drawing was not stored. Try again later; nothing stored before is lost."
DISK_FULL_MESSAGES = ("database or disk is full", "no space left on device", "disk full")
DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full (psycopg.errors.DiskFull)

_last_full: float | None = None


def is_disk_full(error: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL), PostgreSQL's DiskFull (53100) or any
    "No space left on device" from the server, whatever driver wrapped it."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__ or error
    if getattr(cause, "sqlstate", None) == DISK_FULL_SQLSTATE:
        return True
    text = str(error).lower()
    return any(message in text for message in DISK_FULL_MESSAGES)


def disk_full_caught(error: BaseException) -> bool:
    """Whether `error` is a full disk (`is_disk_full`); if so it is logged, and health says
    degraded for a while (`disk_full_problem`)."""
    global _last_full
    if not is_disk_full(error):
        return False
    logger.error("database disk full: %s", error)
    _last_full = time.monotonic()
    return True


def disk_full_clear() -> None:
    global _last_full
    _last_full = None


def disk_full_problem() -> str | None:
    """Why health is degraded, while a write failed for a full disk not long ago."""
    if _last_full is None or time.monotonic() - _last_full > DISK_FULL_HOLD_S:
        return None
    ago = time.monotonic() - _last_full
    return f"the database's disk is full: a drawing could not be stored {ago:.0f} s ago; free space on it"
