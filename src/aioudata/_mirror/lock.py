"""One run per database: an OS lock on a side file (``<db>.lock`` for a mirror run), held for
the run's life.

The lock is ``flock`` (``msvcrt.locking`` on Windows) on a side file: the operating system
releases it when the process ends, however it ends (``kill -9`` included), so a dead run never
blocks the next one. The side file holds the pid of the run holding it (for the message the
next one prints) and is removed when the lock is released.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import TracebackType

from .config import MirrorError

__all__ = ["MirrorLock", "RunLock", "lock_path"]

#: Attempts at locking a side file another run removed meanwhile (see MirrorLock.acquire).
_ATTEMPTS = 5

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


def lock_path(database: Path) -> Path:
    """The side file locked while ``database`` is being mirrored."""
    return MirrorLock(database).path


class RunLock:
    """``with RunLock(db):`` — this process is the only run of its kind on ``db`` inside.

    Acquiring never waits: when another run holds the lock it raises :attr:`error` at once,
    naming that run's pid. Subclasses say which side file (``suffix``) and which kind of run.
    """

    #: Added to the database's file name: the side file locked.
    suffix = ".lock"
    #: What the other run is doing to the database, for the message.
    doing = "mirrored"
    error: type[MirrorError] = MirrorError

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + self.suffix)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :attr:`error` when another run holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        for _ in range(_ATTEMPTS):
            fd = os.open(self.path, flags, 0o644)
            if not _try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                by = f" (pid {holder})" if holder else ""
                raise self.error(
                    f"{self.database} is being {self.doing} by another run{by}: wait for it"
                    " to end, or use another --db"
                )
            # The run before may have removed the file between our open and our lock: then
            # this lock is on a file nobody else will open. Lock the one at the path instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                _write_pid(fd)
                return
            os.close(fd)
        raise self.error(f"cannot lock {self.path}: it keeps being replaced")

    def release(self) -> None:
        """Remove the side file and release the lock (closing the file releases it)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still held: the next run locks a new file
        os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class MirrorLock(RunLock):
    """``with MirrorLock(db):`` — the only mirror run on ``db`` inside (``<db>.lock``)."""


def _write_pid(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii").strip()
        return int(text) if text else None
    return None
