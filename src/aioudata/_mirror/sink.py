"""Where a mirror run writes: one store shape (:class:`MirrorStore`), two implementations.

SQLite (:class:`~.store.Store`, a file, the default) and PostgreSQL
(:class:`~.postgres.PostgresStore`, ``--db postgresql://...``) hold the same tables, columns
and rows, with the same guarantees: a page and its checkpoint in one transaction, a run killed
anywhere resuming from its last committed page. The passes only call a :class:`MirrorStore`,
through :class:`~.store.AsyncStore` (its calls run in order, off the event loop).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .config import MirrorConfig
from .entities import ENTITIES
from .pgurl import DatabaseURL
from .store import AsyncStore, Store, queued

if TYPE_CHECKING:
    from .entities import EntitySpec
    from .records import Batch
    from .store import Counts, PassState

T = TypeVar("T")

__all__ = ["LanedStore", "MirrorStore", "RunGuard", "Sink", "acquire", "sink_for"]


class MirrorStore(Protocol):
    """What a mirror run asks of its database; every method is one transaction or a read."""

    run_id: int | None

    def close(self) -> None: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, values: dict[str, str]) -> None: ...
    def start_run(self, options: dict[str, Any]) -> int: ...
    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None: ...
    def load_state(self, entity: str) -> PassState: ...
    def save_state(self, state: PassState) -> None: ...
    def write_batch(
        self, spec: EntitySpec, batch: Batch, pass_no: int, state: PassState | None
    ) -> Counts: ...
    def clear_position_errors(self, entity: str) -> None: ...
    def stamps(
        self, spec: EntitySpec, ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, str | None], str | None]]: ...
    def unseen(self, spec: EntitySpec, pass_no: int) -> list[str]: ...
    def finish_pass(
        self,
        spec: EntitySpec,
        batch: Batch,
        gone: Sequence[str],
        pass_no: int,
        state: PassState,
    ) -> Counts: ...
    def count(self, table: str) -> int: ...


class RunGuard(Protocol):
    """One run at a time over what a run writes: ``acquire`` refuses at once, never waits."""

    def acquire(self) -> None: ...
    def release(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Sink:
    """How a run opens, guards and names its database."""

    #: The database as messages name it (never a password).
    shown: str
    opener: Callable[[], Store]
    guard: RunGuard
    #: Refuses another application's database before anything is written (read only).
    check: Callable[[], None]
    #: Writer threads, each with its connection (a server database: one per entity, up to
    #: the run's concurrency; SQLite has one writer).
    lanes: int = 1
    #: A database server (its guard connects to it), not a file.
    remote: bool = False

    def store(self, path: Path) -> AsyncStore:
        """The store the run calls (not open yet)."""
        if self.lanes > 1:
            return LanedStore(path, self.opener, self.lanes)
        return AsyncStore(path, self.opener)


def sink_for(config: MirrorConfig, entities: Sequence[str]) -> Sink:
    """The SQLite file, or the PostgreSQL database, ``config`` names."""
    if isinstance(config.db_url, DatabaseURL):
        from .pglock import AdvisoryLock  # psycopg is needed for PostgreSQL only
        from .postgres import PostgresStore, check_database

        url = config.db_url
        return Sink(
            str(url),
            functools.partial(PostgresStore, url),
            AdvisoryLock(url, entities),
            functools.partial(check_database, url),
            lanes=min(config.concurrency, len(entities)),
            remote=True,
        )
    from .lock import MirrorLock

    path = config.database
    return Sink(
        str(path),
        functools.partial(Store, path),
        MirrorLock(path),
        functools.partial(Store.refuse_foreign, path),
    )


async def acquire(sink: Sink) -> None:
    """Take the sink's run guard: a file lock at once, a server's off the event loop (it
    may take a moment); cancelled meanwhile, it waits for the attempt to end, so that the
    caller's ``release()`` releases what it took."""
    if not sink.remote:
        sink.guard.acquire()
        return
    attempt = asyncio.ensure_future(asyncio.to_thread(sink.guard.acquire))
    try:
        await asyncio.shield(attempt)
    except asyncio.CancelledError:
        await asyncio.gather(attempt, return_exceptions=True)
        raise


class LanedStore(AsyncStore):
    """An :class:`AsyncStore` with a writer thread and a connection per entity (up to
    ``lanes``): the entities' pages write in parallel, each entity's in order (its checkpoints
    never go back). Calls about no entity (meta, runs, totals) go to the first lane."""

    def __init__(self, path: Path, opener: Callable[[], Store], lanes: int) -> None:
        super().__init__(path, opener)
        self._count = max(1, lanes)
        self._lanes: list[tuple[ThreadPoolExecutor, Store]] = []
        self._of: dict[str, int] = {}

    async def open(self) -> LanedStore:
        """Open the first lane's store (it creates the tables), then the others'."""
        await super().open()
        loop = asyncio.get_running_loop()
        for number in range(1, self._count):
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"aioudata-store-{number}")
            self._lanes.append((pool, await loop.run_in_executor(pool, self._opener)))
        return self

    def _lane(self, args: tuple[Any, ...]) -> tuple[ThreadPoolExecutor, Store] | None:
        first = args[0] if args else None
        # An EntitySpec (pages, stamps), a PassState (checkpoints) or an entity's name.
        name = getattr(first, "name", getattr(first, "entity", first))
        if not isinstance(name, str) or name not in ENTITIES:
            return None
        number = self._of.setdefault(name, len(self._of) % self._count)
        return None if number == 0 else self._lanes[number - 1]

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        lane = self._lane(args)
        if lane is None or getattr(method, "__self__", None) is not self._store:
            return await super().call(method, *args)
        return await self._in_lane(lane, getattr(lane[1], getattr(method, "__name__", "")), *args)

    async def apply(self, entity: str, function: Callable[..., T], *args: Any) -> T:
        lane = self._lane((entity,))
        if lane is None:
            return await super().apply(entity, function, *args)
        return await self._in_lane(lane, function, lane[1], *args)

    async def _in_lane(
        self, lane: tuple[ThreadPoolExecutor, Store], function: Callable[..., T], *args: Any
    ) -> T:
        """``function(*args)`` in ``lane``'s thread, whose store writes for this run."""
        pool, store = lane
        store.run_id = self.sync.run_id  # rows say in which run they changed
        queued(store, function, args)
        future = asyncio.get_running_loop().run_in_executor(
            pool, functools.partial(function, *args)
        )
        return await asyncio.shield(future)  # a transaction under way always ends

    async def close(self) -> None:
        """Close every lane's store and thread, then the first's."""
        loop = asyncio.get_running_loop()
        lanes, self._lanes = self._lanes, []
        for pool, store in lanes:
            await loop.run_in_executor(pool, store.close)
            pool.shutdown(wait=True)
        await super().close()
