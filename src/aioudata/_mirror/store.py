"""The SQLite mirror: one table per entity, checkpoints, errors; one writer thread off the loop.

Every page is one transaction holding its rows, its resources, its quarantined records and the
checkpoint that says it is done: a run killed at any point resumes from the last committed page.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .checkpoint import Checkpointer
from .config import MirrorError
from .entities import EntitySpec
from .records import Batch, Undecoded
from .schema import DDL, SCHEMA_VERSION, upgrade
from .writes import Counts, Writes, chunks, utcnow

__all__ = ["AsyncStore", "Counts", "PassState", "Store", "utcnow"]

logger = logging.getLogger("aioudata.mirror")

T = TypeVar("T")
#: ``meta.application`` of a mirror database (see Store.refuse_foreign).
_APPLICATION = "aioudata"
#: Tables every aioudata mirror has had, to know one written before ``meta.application``.
_LEGACY = frozenset({"meta", "sync_state"})


@dataclass(slots=True)
class PassState:
    """The checkpoint of one entity: the pass under way (or last finished) and its page."""

    entity: str
    pass_no: int = 0
    kind: str | None = None
    page: int = 0
    page_size: int = 0
    sort: str | None = None
    t0: str | None = None
    since: str | None = None
    finished: bool = True
    full_done: bool = False
    hwm: str | None = None
    #: Verification round of an ``ids`` pass (1, 2...); 0 for the other kinds.
    round: int = 0


def _tables_and_marks(path: Path) -> tuple[set[str], dict[str, str]] | None:
    """The tables of the SQLite file ``path`` and its ``meta`` marks (application, schema
    version), read only; None when there is nothing to judge (no file, empty, no table)."""
    try:
        if path.stat().st_size == 0:
            return None
    except FileNotFoundError:
        return None
    except OSError as error:
        raise MirrorError(f"cannot open {path}: {error.strerror or error}", code=2) from None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as error:
        raise MirrorError(f"cannot open {path}: {error}", code=2) from None
    try:
        try:
            names = {
                str(row[0])
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE substr(name, 1, 7) != 'sqlite_'"
                )
            }
        except sqlite3.DatabaseError as error:
            raise MirrorError(
                f"{path} is not an SQLite database ({error}): use another --db", code=2
            ) from None
        marks: dict[str, str] = {}
        if "meta" in names:
            with contextlib.suppress(sqlite3.DatabaseError):  # another tool's meta table
                marks = {
                    str(key): str(value)
                    for key, value in conn.execute(
                        "SELECT key, value FROM meta WHERE key IN ('application', 'schema_version')"
                    )
                }
    finally:
        conn.close()
    return (names, marks) if names else None


def refuse_unless_ours(where: str, names: set[str], marks: dict[str, str]) -> None:
    """Raise :class:`MirrorError` unless a database holding the tables ``names``, whose
    ``meta`` says ``marks``, is an aioudata mirror this version can write (see
    :meth:`Store.refuse_foreign`); ``where`` names the database in the message."""
    version = marks.get("schema_version")
    known = version is None or (version.isdigit() and int(version) <= int(SCHEMA_VERSION))
    newer = not known
    if marks.get("application") == _APPLICATION or (
        "application" not in marks and version is not None and (newer or names >= _LEGACY)
    ):
        if newer:  # refused here, read only, rather than after opening it for writing
            raise MirrorError(
                f"{where} holds a mirror of schema version {version}, newer than this"
                f" aioudata's ({SCHEMA_VERSION}): upgrade aioudata or use another --db",
                code=2,
            )
        return  # a mirror (written before the marker existed, if it has none)
    shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
    raise MirrorError(
        f"{where} is not an aioudata mirror (it holds {shown}): refusing to write into"
        " another application's database; use another --db",
        code=2,
    )


class Store:
    """The database, used from one thread only (the writer thread of :class:`AsyncStore`)."""

    #: Whether pages queued for this store's thread are noted in ``upcoming`` (a store that
    #: decodes the next page ahead: PostgreSQL's). SQLite's writer has no time to spare.
    prefetches: ClassVar[bool] = False
    upcoming: deque[Undecoded]

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        Store.refuse_foreign(self.path)  # read only: another tool's file is left as it is
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        #: The run under way (``runs.id``): rows written say they changed in it.
        self.run_id: int | None = None
        # WAL with synchronous=NORMAL: a commit is not synced to disk (only checkpoints are),
        # so it survives the process being killed (kill -9, a crash), which is what resuming
        # needs; only an OS crash or power loss can lose the last commits.
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        self.checkpoints = Checkpointer(self.path, self.conn)
        self._mark_ours()
        with self.transaction():
            self._upgrade()
            for statement in DDL:
                self.conn.execute(statement)
            self.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )

    @staticmethod
    def refuse_foreign(path: Path) -> None:
        """Raise :class:`MirrorError` unless ``path`` is absent, empty or an aioudata mirror.

        Read only (nothing is written, the journal mode is not touched): a file of another
        application is refused in one line, left exactly as it was. A mirror says it is one in
        ``meta`` (``application = aioudata``); one written before that marker existed is known
        by its ``meta.schema_version`` and its ``sync_state`` table. A mirror of a newer schema
        is refused here too, read only.
        """
        read = _tables_and_marks(path)
        if read is not None:
            refuse_unless_ours(str(path), *read)

    def _mark_ours(self) -> None:
        """Say in ``meta`` that this database is an aioudata mirror (see refuse_foreign)."""
        with self.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('application', ?)",
                (_APPLICATION,),
            )

    def _upgrade(self) -> None:
        """Bring a database of an older schema to this one, in place; refuse a newer one."""
        conn = self.conn
        conn.execute(DDL[0])  # meta
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = None if row is None else str(row[0])
        if version is None or version == SCHEMA_VERSION:
            return
        if not version.isdigit() or int(version) > int(SCHEMA_VERSION):
            raise MirrorError(
                f"{self.path} holds a mirror of schema version {version}, newer than this"
                f" aioudata's ({SCHEMA_VERSION}): upgrade aioudata or use another --db",
                code=2,
            )
        version = upgrade(conn, version)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))

    def close(self) -> None:
        """Close the connection (checkpoints the WAL)."""
        self.checkpoints.close()
        self.conn.close()

    class _Tx:
        def __init__(self, store: Store) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store.conn.execute("BEGIN IMMEDIATE")
            return self.store.conn

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            self.store.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
            if exc_type is None:
                self.store.checkpoints.committed()

    def transaction(self) -> Store._Tx:
        """``with store.transaction():`` — everything inside commits together, or not at all."""
        return Store._Tx(self)

    # --- meta and runs -------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A value of the meta table."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str]) -> None:
        """Set meta values."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def start_run(self, options: dict[str, Any]) -> int:
        """Record a new run; its id.

        Runs still recorded as ``running`` are marked ``interrupted`` first: the caller holds
        the database's lock (see :mod:`.lock`), so they are runs that died without ending
        (``kill -9``, a crash, a power loss).
        """
        with self.transaction() as conn:
            self._mark_stale_runs(conn)
            cursor = conn.execute(
                "INSERT INTO runs (started_at, status, options) VALUES (?, 'running', ?)",
                (utcnow(), json.dumps(options, sort_keys=True)),
            )
        self.run_id = int(cursor.lastrowid or 0)
        return self.run_id

    @staticmethod
    def _mark_stale_runs(conn: sqlite3.Connection) -> list[int]:
        """Mark the runs still ``running`` as ``interrupted``; their ids."""
        stale = [
            int(row[0]) for row in conn.execute("SELECT id FROM runs WHERE status = 'running'")
        ]
        if stale:
            conn.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
            logger.warning(
                "run %s of this database ended without recording it (killed?): marked interrupted",
                ", ".join(map(str, stale)),
            )
        return stale

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        """Record how a run ended."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (utcnow(), status, json.dumps(summary, sort_keys=True), run_id),
            )

    # --- checkpoints ---------------------------------------------------------------------

    def load_state(self, entity: str) -> PassState:
        """The entity's checkpoint (an empty one when it was never mirrored)."""
        row = self.conn.execute(
            "SELECT pass_no, kind, page, page_size, sort, t0, since, finished, full_done, hwm,"
            " round FROM sync_state WHERE entity = ?",
            (entity,),
        ).fetchone()
        if row is None:
            return PassState(entity)
        return PassState(
            entity,
            pass_no=row[0],
            kind=row[1],
            page=row[2],
            page_size=row[3],
            sort=row[4],
            t0=row[5],
            since=row[6],
            finished=bool(row[7]),
            full_done=bool(row[8]),
            hwm=row[9],
            round=row[10],
        )

    def save_state(self, state: PassState) -> None:
        """Write a checkpoint on its own."""
        with self.transaction() as conn:
            self._save_state(conn, state)

    @staticmethod
    def _save_state(conn: sqlite3.Connection, state: PassState) -> None:
        conn.execute(
            "INSERT INTO sync_state (entity, pass_no, kind, page, page_size, sort, t0, since,"
            " finished, full_done, hwm, updated_at, round)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(entity) DO UPDATE SET pass_no = excluded.pass_no, kind = excluded.kind,"
            " page = excluded.page, page_size = excluded.page_size, sort = excluded.sort,"
            " t0 = excluded.t0, since = excluded.since, finished = excluded.finished,"
            " full_done = excluded.full_done, hwm = excluded.hwm,"
            " updated_at = excluded.updated_at, round = excluded.round",
            (
                state.entity,
                state.pass_no,
                state.kind,
                state.page,
                state.page_size,
                state.sort,
                state.t0,
                state.since,
                int(state.finished),
                int(state.full_done),
                state.hwm,
                utcnow(),
                state.round,
            ),
        )

    # --- pages ---------------------------------------------------------------------------

    def write_batch(
        self, spec: EntitySpec, batch: Batch | Undecoded, pass_no: int, state: PassState | None
    ) -> Counts:
        """One transaction: the batch's rows, resources, errors, seen marks and checkpoint
        (an undecoded page is decoded first, here)."""
        if isinstance(batch, Undecoded):
            batch = batch.decode()
        counts = Counts()
        with self.transaction() as conn:
            Writes(conn, self.run_id, counts).batch(spec, batch, pass_no)
            if state is not None:
                self._save_state(conn, state)
        return counts

    def clear_position_errors(self, entity: str) -> None:
        """Forget the items recorded by position only: a new full pass records them afresh."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM errors WHERE entity = ? AND key LIKE 'position:%'", (entity,))

    # --- the id pass and deletions ---------------------------------------------------------

    def stamps(
        self, spec: EntitySpec, ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, str | None], str | None]]:
        """id → ({stamp field: stored value}, gone_at) for the stored ones among ``ids``."""
        fields = [name for name in spec.stamps if name in spec.column_names()]
        selected = ", ".join(("id", "gone_at", *fields))
        found: dict[str, tuple[dict[str, str | None], str | None]] = {}
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                f"SELECT {selected} FROM {spec.name} WHERE id IN ({marks})", tuple(chunk)
            ):
                found[row[0]] = (dict(zip(fields, row[2:], strict=True)), row[1])
        return found

    def unseen(self, spec: EntitySpec, pass_no: int) -> list[str]:
        """Ids stored as live but not listed during pass ``pass_no``."""
        return [
            row[0]
            for row in self.conn.execute(
                f"SELECT t.id FROM {spec.name} t LEFT JOIN listed l"
                " ON l.entity = ? AND l.id = t.id"
                " WHERE t.gone_at IS NULL AND COALESCE(l.pass_no, 0) < ? ORDER BY t.id",
                (spec.name, pass_no),
            )
        ]

    def finish_pass(
        self,
        spec: EntitySpec,
        batch: Batch,
        gone: Sequence[str],
        pass_no: int,
        state: PassState,
    ) -> Counts:
        """One transaction: last refreshed rows, the gone ones marked, the finished checkpoint."""
        counts = Counts()
        with self.transaction() as conn:
            writes = Writes(conn, self.run_id, counts)
            writes.batch(spec, batch, pass_no)
            writes.gone(spec, gone)
            self._save_state(conn, state)
        return counts

    # --- reading -------------------------------------------------------------------------

    def count(self, table: str) -> int:
        """Live rows of a table (errors: every row)."""
        if table == "errors":
            return int(self.conn.execute("SELECT COUNT(*) FROM errors").fetchone()[0])
        table = "resource_rows" if table == "resources" else table
        sql = f"SELECT COUNT(*) FROM {table} WHERE gone_at IS NULL"
        return int(self.conn.execute(sql).fetchone()[0])


class AsyncStore:
    """A :class:`Store` driven from asyncio: every call runs in one writer thread, in order.

    ``opener`` opens another store than the SQLite file ``path`` (PostgreSQL: see
    :mod:`.sink`), in the writer thread too.
    """

    def __init__(self, path: str | Path, opener: Callable[[], Store] | None = None) -> None:
        self.path = Path(path)
        self._opener = opener or functools.partial(Store, self.path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aioudata-store")
        self._store: Store | None = None

    async def open(self) -> AsyncStore:
        """Open (and create) the database in the writer thread."""
        self._store = await self._run(self._opener)
        return self

    @property
    def sync(self) -> Store:
        """The underlying store (only to be called through :meth:`call`)."""
        if self._store is None:
            raise RuntimeError("store is not open")
        return self._store

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        """Run ``method(*args)`` in the writer thread; a cancelled caller lets it finish."""
        return await self._run(method, *args)

    async def apply(self, entity: str, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(store, *args)`` where ``entity``'s pages are written (its thread and
        connection), in order with them: several calls of the store as one."""
        return await self._run(function, self.sync, *args)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        queued(self._store, function, args)
        future = loop.run_in_executor(self._pool, functools.partial(function, *args))
        # Shielded: a transaction under way always ends (commit) before the caller goes on.
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Wait for pending writes, close the database and the thread."""
        if self._store is not None:
            store, self._store = self._store, None
            await asyncio.get_running_loop().run_in_executor(self._pool, store.close)
        self._pool.shutdown(wait=True)


def queued(store: Store | None, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Note a page queued for ``store``'s thread, if it decodes pages ahead (``prefetches``)."""
    if (
        store is not None
        and store.prefetches
        and getattr(function, "__name__", "") == "write_batch"
        and isinstance(args[1], Undecoded)
    ):
        store.upcoming.append(args[1])
