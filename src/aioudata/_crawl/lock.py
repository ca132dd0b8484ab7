"""One check or download run per database: an OS lock on ``<db>.check.lock`` for SQLite, a
session advisory lock for a PostgreSQL schema (:mod:`.pglock`); either is released however
the process ends (``kill -9`` included). A mirror run may write the same database meanwhile:
the checker only writes its own tables. The mirror's run lock is another."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .._mirror.lock import RunLock
from .._mirror.pgurl import DatabaseURL
from .config import CheckError

__all__ = ["CheckLock", "Guard", "run_lock"]


class CheckLock(RunLock):
    """``with CheckLock(db):`` — the only check run on ``db`` inside; never waits."""

    suffix = ".check.lock"
    doing = "checked"
    error = CheckError


class Guard(Protocol):
    """``acquire()`` refuses at once (:class:`CheckError`) when another run holds it."""

    def acquire(self) -> None: ...
    def release(self) -> None: ...


def run_lock(db: Path | DatabaseURL) -> Guard:
    """The lock of the check and download runs of ``db``."""
    if isinstance(db, DatabaseURL):
        from .pglock import CheckAdvisoryLock  # psycopg is needed for PostgreSQL only

        return CheckAdvisoryLock(db)
    return CheckLock(db)
