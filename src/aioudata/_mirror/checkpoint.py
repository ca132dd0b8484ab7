"""WAL checkpoints off the write path: copied into the database by a thread of their own.

SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that page's
writer copies the WAL into the database and syncs it, about a third of the cost of writing a
page. Here the writer's connection never checkpoints on its own; every
:data:`EVERY` commits a *passive* checkpoint (it never blocks the writer, nor waits for it) runs
on a second connection in its own thread, where SQLite works without the GIL. Should the WAL
still grow past :data:`MAX_WAL_FRAMES`, or no checkpoint end in :data:`LATE` times
:data:`EVERY` commits (the checkpoints cannot keep up), the writer
checkpoints itself after each commit, as SQLite's own automatic checkpoint does: the WAL stays
bounded as it would be without this module (a reader holding the WAL back holds back both).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

__all__ = ["EVERY", "LATE", "MAX_WAL_FRAMES", "Checkpointer"]

logger = logging.getLogger("aioudata.mirror")

#: Commits between two background checkpoints.
EVERY = 4
#: WAL frames (database pages, 4 KiB by default) past which the writer checkpoints itself.
MAX_WAL_FRAMES = 64_000
#: The writer also checkpoints itself when no checkpoint ended in this many times EVERY
#: commits (the background ones are stuck or too slow).
LATE = 4


class Checkpointer:
    """Background checkpoints of the database at ``path``, written by ``writer``."""

    def __init__(
        self,
        path: Path,
        writer: sqlite3.Connection,
        *,
        every: int = EVERY,
        max_frames: int = MAX_WAL_FRAMES,
    ) -> None:
        self.writer = writer
        self.every = every
        self.max_frames = max_frames
        #: Checkpoints run in the background, and by the writer itself (the WAL too long).
        self.background = 0
        self.forced = 0
        #: The WAL's length in frames after the last checkpoint (background or forced).
        self.wal_frames = 0
        self._commits = 0
        #: Commits since the last checkpoint ended.
        self._since = 0
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aioudata-checkpoint")
        self._running: Future[None] | None = None
        writer.execute("PRAGMA wal_autocheckpoint=0")

    def committed(self) -> None:
        """Called by the writer after each commit: start a checkpoint when one is due."""
        self._commits += 1
        self._since += 1
        if self.wal_frames > self.max_frames or self._since > LATE * self.every:
            self._checkpoint_here()
            return
        if self._commits % self.every or (self._running and not self._running.done()):
            return
        self._running = self._pool.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        """A passive checkpoint on the background connection (its own thread)."""
        try:
            with self._lock:
                if self._conn is None:
                    self._conn = sqlite3.connect(
                        self._path, isolation_level=None, check_same_thread=False
                    )
                    self._conn.execute("PRAGMA busy_timeout=10000")
                busy, frames, done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.background += 1
            self.wal_frames = _length(frames, done)
            self._since = 0
            if busy:
                logger.debug("checkpoint: busy (%d of %d WAL frames copied)", done, frames)
        except sqlite3.Error as error:  # the next one (or the writer's own) will do
            logger.warning("background checkpoint failed: %s", error)

    def _checkpoint_here(self) -> None:
        """The WAL is too long: the writer checkpoints it now, as SQLite's automatic checkpoint
        does (passive: a reader holding the WAL back is never waited for)."""
        self._wait()
        _, frames, done = self.writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.forced += 1
        self.wal_frames = _length(frames, done)
        self._since = 0
        logger.debug("checkpoint by the writer: %d of %d WAL frames copied", done, frames)

    def _wait(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.result()

    def close(self) -> None:
        """Wait for the checkpoint under way; close the background connection and thread."""
        self._wait()
        self._pool.shutdown(wait=True)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _length(frames: int, done: int) -> int:
    """The WAL's length that counts after a checkpoint: none once it is all copied (the next
    commit starts it over), else all of it."""
    return 0 if frames <= 0 or done >= frames else frames
