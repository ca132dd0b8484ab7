"""A run guard that can be lost is watched: its loss ends the run, never leaves it unguarded.

A PostgreSQL run lock lives as long as its connection: a connection dropped mid-run (the server
restarted, the backend terminated, the network cut) releases it, and another run could take it
and write beside this one. :func:`watched` checks the guard every :data:`CHECK_INTERVAL`
seconds, off the event loop (one cheap query), and ends the work inside with the guard's error
(:class:`~aioudata.MirrorDatabaseError`, exit status 6) when it is lost. A file lock cannot be
lost while the process lives: it is not watched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

__all__ = ["CHECK_INTERVAL", "LosableGuard", "watched"]

#: Seconds between two checks of a run guard that can be lost.
CHECK_INTERVAL = 5.0


@runtime_checkable
class LosableGuard(Protocol):
    """A run guard that can be lost while held: ``check()`` raises when it was."""

    def check(self) -> None: ...


async def _watch(guard: LosableGuard, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(guard.check)


@contextlib.asynccontextmanager
async def watched(guard: object, interval: float | None = None) -> AsyncIterator[None]:
    """The work inside runs while ``guard`` holds: cancelled, and the guard's error raised,
    when a check finds it lost. The work's own errors go through unchanged."""
    if not isinstance(guard, LosableGuard):
        yield
        return
    failed: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(_watch(guard, interval or CHECK_INTERVAL))
            try:
                yield
            except Exception as error:  # the work's: not the watcher's to wrap in a group
                failed = error
            finally:
                watcher.cancel()
    except BaseExceptionGroup as lost:  # only the watcher's error gets here
        raise lost.exceptions[0] from None
    if failed is not None:
        raise failed
