"""One check run per database: an OS lock on ``<db>.check.lock``, released however the process
ends (``kill -9`` included). A mirror run may write the same database meanwhile: the checker
only writes its own tables. The mirror's run lock, on another side file."""

from __future__ import annotations

from .._mirror.lock import RunLock
from .config import CheckError

__all__ = ["CheckLock"]


class CheckLock(RunLock):
    """``with CheckLock(db):`` — the only check run on ``db`` inside; never waits."""

    suffix = ".check.lock"
    doing = "checked"
    error = CheckError
