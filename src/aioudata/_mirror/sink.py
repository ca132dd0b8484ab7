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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .config import MirrorConfig
from .pgurl import DatabaseURL

if TYPE_CHECKING:
    from .entities import EntitySpec
    from .records import Batch
    from .store import Counts, PassState, Store

__all__ = ["MirrorStore", "RunGuard", "Sink", "sink_for"]


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
        )
    from .lock import MirrorLock
    from .store import Store

    path = config.database
    return Sink(
        str(path),
        functools.partial(Store, path),
        MirrorLock(path),
        functools.partial(Store.refuse_foreign, path),
    )


async def acquire(sink: Sink) -> None:
    """Take the sink's run guard off the event loop (a server may take a moment)."""
    await asyncio.to_thread(sink.guard.acquire)
