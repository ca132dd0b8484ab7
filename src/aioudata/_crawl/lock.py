"""One check run per database: an OS lock on ``<db>.check.lock``, released however the process
ends (``kill -9`` included). A mirror run may write the same database meanwhile: the checker
only writes its own tables."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import TracebackType

from .config import CheckError

__all__ = ["CheckLock"]

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class CheckLock:
    """``with CheckLock(db):`` — the only check run on ``db`` inside; never waits."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".check.lock")
        self.database = database
        self._fd: int | None = None

    def __enter__(self) -> CheckLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        for _ in range(5):
            fd = os.open(self.path, flags, 0o644)
            if not _try_lock(fd):
                os.close(fd)
                raise CheckError(
                    f"{self.database} is being checked by another run: wait for it to end,"
                    " or use another --db"
                )
            # The run before may have removed the file between our open and our lock.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return self
            os.close(fd)
        raise CheckError(f"cannot lock {self.path}: it keeps being replaced")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(fd)
