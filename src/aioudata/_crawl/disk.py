"""Large files written and hashed off the event loop: a file's chunks, in their order, go to one
of a few threads that write them and feed its checksum, while the loop goes on receiving.

Measured on loopback (64 files of 4 MiB, 8 hosts): a plain aiohttp download that hashes each
body in the loop ran at 0.61 of its own speed without the hash; the same work in two threads, at
0.77. Small files stay in the loop: for them, the hand-over cost more than it saved (see
``benchmarks/FINDINGS.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["BACKLOG", "DiskWriters", "Stream"]

#: Bytes of one file received but not yet written, beyond which its transfer waits.
BACKLOG = 1024 * 1024

_Item = tuple["Stream", bytes | None]


class DiskWriters:
    """A few threads writing files' chunks (started on the first file, ended by
    :meth:`close`); each file's chunks go to one of them, in their order."""

    def __init__(self, threads: int = 2) -> None:
        self._count = threads
        self._queues: list[queue.SimpleQueue[_Item | None]] = []
        self._threads: list[threading.Thread] = []
        self._turn = 0

    def stream(self, write: Callable[[bytes], None], hasher: Any) -> Stream:
        """A file's stream: ``write`` and ``hasher.update`` each of its chunks, in a thread."""
        if not self._threads:
            for number in range(self._count):
                line: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=_work, args=(line,), name=f"aioudata-disk-{number}", daemon=True
                )
                thread.start()
                self._queues.append(line)
                self._threads.append(thread)
        self._turn += 1
        return Stream(self._queues[self._turn % self._count], write, hasher)

    def close(self) -> None:
        """End the threads once their chunks are written (blocks: call it in a thread)."""
        for line in self._queues:
            line.put(None)
        for thread in self._threads:
            thread.join()
        self._queues, self._threads = [], []


class Stream:
    """One file's chunks on their way to its thread (used from the event loop)."""

    def __init__(
        self,
        line: queue.SimpleQueue[_Item | None],
        write: Callable[[bytes], None],
        hasher: Any,
    ) -> None:
        self._line = line
        self._loop = asyncio.get_running_loop()
        self.write = write
        self.hasher = hasher
        #: Bytes handed over (by the loop) and written (by the thread).
        self.queued = 0
        self.done = 0
        #: The first failure of a write (the thread's), raised in the loop.
        self.error: BaseException | None = None
        self.room: asyncio.Event | None = None
        self.finished: asyncio.Future[None] | None = None

    async def put(self, chunk: bytes) -> None:
        """Hand ``chunk`` over; waits while more than :data:`BACKLOG` bytes are not written
        yet. Raises the failure of an earlier write."""
        if self.error is not None:
            raise self.error
        self.queued += len(chunk)
        self._line.put((self, chunk))
        if self.queued - self.done > BACKLOG:
            self.room = asyncio.Event()  # set before looking again: the thread sees it
            if self.queued - self.done > BACKLOG:
                await self.room.wait()
            self.room = None

    async def finish(self) -> None:
        """Wait until every chunk handed over is written and hashed; raises the first
        failure of a write."""
        self.finished = self._loop.create_future()
        self._line.put((self, None))
        await self.finished
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Write none of the chunks still waiting (the transfer was given up)."""
        if self.error is None:
            self.error = asyncio.CancelledError("abandoned")

    def wake(self, waiting: asyncio.Event | asyncio.Future[None] | None) -> None:
        """From the thread: wake the loop waiting on ``waiting``, if it still runs."""
        if waiting is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(_set, waiting)


def _set(waiting: asyncio.Event | asyncio.Future[None]) -> None:
    if isinstance(waiting, asyncio.Event):
        waiting.set()
    elif not waiting.done():
        waiting.set_result(None)


def _work(line: queue.SimpleQueue[_Item | None]) -> None:
    while (item := line.get()) is not None:
        stream, chunk = item
        if chunk is None:
            stream.wake(stream.finished)
            continue
        if stream.error is None:
            try:
                stream.write(chunk)
                stream.hasher.update(chunk)
            except BaseException as error:  # raised in the loop, at its next put or finish
                stream.error = error
        stream.done += len(chunk)  # before looking at room: see Stream.put
        if stream.queued - stream.done <= BACKLOG:
            stream.wake(stream.room)
