"""The SQLite mirror: one table per entity, checkpoints, errors; one writer thread off the loop.

Every page is one transaction holding its rows, its resources, its quarantined records and the
checkpoint that says it is done: a run killed at any point resumes from the last committed page.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .config import MirrorError
from .entities import ENTITIES, RESOURCE_COLUMNS, EntitySpec
from .records import Batch, ErrorRow, Row

__all__ = ["AsyncStore", "Counts", "PassState", "Store", "export_jsonl", "utcnow"]

T = TypeVar("T")
#: Version of the tables; a database of an older one is upgraded in place when opened.
SCHEMA_VERSION = "2"
#: How each older version is brought to the next one.
_UPGRADES: dict[str, list[str]] = {
    "1": ["ALTER TABLE sync_state ADD COLUMN round INTEGER NOT NULL DEFAULT 0"],
}
_CHUNK = 500  # ids per IN (...) clause, below SQLite's variable limit


def utcnow() -> str:
    """Now, as the ISO text stored in the database."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _change(row: Row, before: tuple[Any, ...] | None, *, values_at: int) -> str:
    """How ``row`` differs from its stored ``(json, deleted_at, ..., *columns)``.

    ``new`` (not stored), ``updated`` (other JSON, or marked deleted), ``rewrite`` (same JSON
    but its columns were read otherwise: written again, counted unchanged) or ``same``.
    """
    if before is None:
        return "new"
    if before[0] != row.json or before[1] is not None:
        return "updated"
    return "rewrite" if before[values_at:] != row.values else "same"


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class Counts:
    """What writing changed: objects new, updated (JSON differs), unchanged, deleted, errors."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: int = 0
    resources_new: int = 0
    resources_updated: int = 0
    resources_deleted: int = 0
    #: Objects written with schema warnings (stored off their model: ``schema_warnings``);
    #: a dataset counts once, whatever number of its resources are off theirs.
    warned: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other`` into these counts."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


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


def _entity_ddl(spec: EntitySpec) -> list[str]:
    columns = ", ".join(f"{name}" for name in spec.column_names())
    table = spec.name
    statements = [
        f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, {columns},"
        " json TEXT NOT NULL, seen_pass INTEGER NOT NULL DEFAULT 0, deleted_at TEXT)"
    ]
    for column in ("organization_id", "owner_id", "last_modified", "slug"):
        if column in spec.column_names():
            statements.append(f"CREATE INDEX IF NOT EXISTS {table}_{column} ON {table} ({column})")
    return statements


_RESOURCE_NAMES = ("dataset_id", *(name for name, _ in RESOURCE_COLUMNS))
_RESOURCE_WRITTEN = (*_RESOURCE_NAMES, "json", "deleted_at")
_RESOURCE_UPSERT = (
    f"INSERT INTO resources (id, {', '.join(_RESOURCE_WRITTEN)})"
    f" VALUES ({', '.join('?' * (len(_RESOURCE_WRITTEN) + 1))}) ON CONFLICT(id) DO UPDATE SET"
    f" {', '.join(f'{name} = excluded.{name}' for name in _RESOURCE_WRITTEN)}"
)

_DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    *(ddl for spec in ENTITIES.values() for ddl in _entity_ddl(spec)),
    f"CREATE TABLE IF NOT EXISTS resources (id TEXT PRIMARY KEY, {', '.join(_RESOURCE_NAMES)},"
    " json TEXT NOT NULL, deleted_at TEXT)",
    "CREATE INDEX IF NOT EXISTS resources_dataset_id ON resources (dataset_id)",
    "CREATE TABLE IF NOT EXISTS errors (entity TEXT NOT NULL, key TEXT NOT NULL, item_id TEXT,"
    " raw TEXT, reason TEXT NOT NULL, recorded_at TEXT NOT NULL, PRIMARY KEY (entity, key))",
    "CREATE TABLE IF NOT EXISTS schema_warnings (entity TEXT NOT NULL, item_id TEXT NOT NULL,"
    " path TEXT NOT NULL, reason TEXT NOT NULL, recorded_at TEXT NOT NULL,"
    " PRIMARY KEY (entity, item_id, path))",
    "CREATE TABLE IF NOT EXISTS sync_state (entity TEXT PRIMARY KEY, pass_no INTEGER NOT NULL,"
    " kind TEXT, page INTEGER NOT NULL, page_size INTEGER NOT NULL, sort TEXT, t0 TEXT,"
    " since TEXT, finished INTEGER NOT NULL, full_done INTEGER NOT NULL, hwm TEXT,"
    " updated_at TEXT NOT NULL, round INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL,"
    " finished_at TEXT, status TEXT NOT NULL, options TEXT, summary TEXT)",
]


class Store:
    """The database, used from one thread only (the writer thread of :class:`AsyncStore`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # WAL with synchronous=NORMAL: a commit is not synced to disk (only checkpoints are),
        # so it survives the process being killed (kill -9, a crash), which is what resuming
        # needs; only an OS crash or power loss can lose the last commits.
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        with self.transaction():
            self._upgrade()
            for statement in _DDL:
                self.conn.execute(statement)
            self.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )

    def _upgrade(self) -> None:
        """Bring a database of an older schema to this one, in place; refuse a newer one."""
        conn = self.conn
        conn.execute(_DDL[0])  # meta
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = None if row is None else str(row[0])
        if version is None or version == SCHEMA_VERSION:
            return
        if version not in _UPGRADES:
            raise MirrorError(
                f"{self.path} holds a mirror of schema version {version}, newer than this"
                f" aioudata's ({SCHEMA_VERSION}): upgrade aioudata or use another --db",
                code=2,
            )
        while version in _UPGRADES:
            for statement in _UPGRADES[version]:
                conn.execute(statement)
            version = str(int(version) + 1)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))

    def close(self) -> None:
        """Close the connection (checkpoints the WAL)."""
        self.conn.close()

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def transaction(self) -> Store._Tx:
        """``with store.transaction():`` — everything inside commits together, or not at all."""
        return Store._Tx(self.conn)

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
        """Record a new run; its id."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (started_at, status, options) VALUES (?, 'running', ?)",
                (utcnow(), json.dumps(options, sort_keys=True)),
            )
        return int(cursor.lastrowid or 0)

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

    def _write_rows(
        self,
        conn: sqlite3.Connection,
        spec: EntitySpec,
        batch: Batch,
        pass_no: int,
        counts: Counts,
    ) -> None:
        """Upsert the batch's rows (a dataset's resources replaced with it), their schema
        warnings and its errors."""
        self._upsert(conn, spec, batch.rows, pass_no, counts)
        if spec.name == "datasets" and batch.resources:
            self._replace_all_resources(conn, batch.resources, counts)
        if batch.rows:
            self._schema_warnings(conn, spec, batch, counts)
        if batch.errors:
            self._errors(conn, batch.errors, counts)

    @staticmethod
    def _schema_warnings(
        conn: sqlite3.Connection, spec: EntitySpec, batch: Batch, counts: Counts
    ) -> None:
        """Each written row's warnings become the batch's (none: it fit its model).

        A warning already stored as is keeps its row (and ``recorded_at``): writing the same
        page again changes nothing.
        """
        notes = batch.warnings
        ids = list(dict.fromkeys(row.id for row in batch.rows))
        warned = [item for item in ids if item in notes] if notes else []
        clean = [item for item in ids if item not in notes] if notes else ids
        for chunk in _chunks(clean):
            conn.execute(
                "DELETE FROM schema_warnings WHERE entity = ?"
                f" AND item_id IN ({','.join('?' * len(chunk))})",
                (spec.name, *chunk),
            )
        if not warned:
            return
        counts.warned += len(warned)
        now = utcnow()
        stale: list[tuple[str, str, str]] = []
        fresh: list[tuple[str, str, str, str, str]] = []
        for item in warned:
            paths = notes[item]
            for (path,) in conn.execute(
                "SELECT path FROM schema_warnings WHERE entity = ? AND item_id = ?",
                (spec.name, item),
            ):
                if path not in paths:
                    stale.append((spec.name, item, path))
            fresh.extend((spec.name, item, path, reason, now) for path, reason in paths.items())
        conn.executemany(
            "DELETE FROM schema_warnings WHERE entity = ? AND item_id = ? AND path = ?", stale
        )
        conn.executemany(
            "INSERT INTO schema_warnings (entity, item_id, path, reason, recorded_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(entity, item_id, path) DO UPDATE SET"
            " reason = excluded.reason, recorded_at = excluded.recorded_at"
            " WHERE reason IS NOT excluded.reason",
            fresh,
        )

    def write_batch(
        self, spec: EntitySpec, batch: Batch, pass_no: int, state: PassState | None
    ) -> Counts:
        """One transaction: the batch's rows, resources, errors, seen marks and checkpoint."""
        counts = Counts()
        with self.transaction() as conn:
            self._write_rows(conn, spec, batch, pass_no, counts)
            good = [row.id for row in batch.rows]
            for chunk in _chunks(good):
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"DELETE FROM errors WHERE entity = ? AND item_id IN ({marks})",
                    (spec.name, *chunk),
                )
            written = set(good)
            listed = [item for item in batch.listed if item not in written]
            for chunk in _chunks(listed):
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"UPDATE {spec.name} SET seen_pass = ? WHERE id IN ({marks})"
                    " AND deleted_at IS NULL",
                    (pass_no, *chunk),
                )
            if state is not None:
                self._save_state(conn, state)
        return counts

    def _upsert(
        self,
        conn: sqlite3.Connection,
        spec: EntitySpec,
        rows: list[Row],
        pass_no: int,
        counts: Counts,
    ) -> None:
        """Write the rows that are new or differ; the unchanged ones only get their seen mark."""
        if not rows:
            return
        unique = list({row.id: row for row in rows}.values())  # last one wins
        names = spec.column_names()
        stored = self._stored(
            conn, spec.name, ("json", "deleted_at", "seen_pass", *names), [r.id for r in unique]
        )
        changed: list[Row] = []
        seen: list[str] = []
        for row in unique:
            before = stored.get(row.id)
            change = _change(row, before, values_at=3)
            if change == "new":
                counts.new += 1
            elif change == "updated":
                counts.updated += 1
            else:
                counts.unchanged += 1
            if change != "same":
                changed.append(row)
            elif before is not None and before[2] != pass_no:
                seen.append(row.id)
        if changed:
            columns = ", ".join(("id", *names, "json", "seen_pass", "deleted_at"))
            marks = ", ".join("?" * (len(names) + 4))
            updates = ", ".join(
                f"{name} = excluded.{name}" for name in (*names, "json", "seen_pass", "deleted_at")
            )
            conn.executemany(
                f"INSERT INTO {spec.name} ({columns}) VALUES ({marks})"
                f" ON CONFLICT(id) DO UPDATE SET {updates}",
                [(row.id, *row.values, row.json, pass_no, None) for row in changed],
            )
        for chunk in _chunks(seen):
            conn.execute(
                f"UPDATE {spec.name} SET seen_pass = ? WHERE id IN ({','.join('?' * len(chunk))})",
                (pass_no, *chunk),
            )

    @staticmethod
    def _stored(
        conn: sqlite3.Connection, table: str, columns: Sequence[str], ids: Sequence[str]
    ) -> dict[str, tuple[Any, ...]]:
        """id → the ``columns`` stored for it, for the stored ones among ``ids``."""
        found: dict[str, tuple[Any, ...]] = {}
        selected = ", ".join(("id", *columns))
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT {selected} FROM {table} WHERE id IN ({marks})", tuple(chunk)
            ):
                found[row[0]] = row[1:]
        return found

    @staticmethod
    def _existing(
        conn: sqlite3.Connection, table: str, ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None]]:
        found: dict[str, tuple[str, str | None]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for item_id, text, deleted_at in conn.execute(
                f"SELECT id, json, deleted_at FROM {table} WHERE id IN ({marks})", tuple(chunk)
            ):
                found[item_id] = (text, deleted_at)
        return found

    def _replace_all_resources(
        self, conn: sqlite3.Connection, resources: dict[str, list[Row]], counts: Counts
    ) -> None:
        """Each dataset's resources become its rows, for all the batch's datasets at once.

        The same as :meth:`_replace_resources` dataset after dataset, with a few statements
        for the whole batch. That holds while no resource goes from one of the batch's
        datasets to another (or is listed under two): then the datasets are done one by one.
        """
        owner: dict[str, str] = {}
        unique: list[Row] = []
        for dataset_id, rows in resources.items():
            for row in {row.id: row for row in rows}.values():
                if owner.setdefault(row.id, dataset_id) != dataset_id:
                    self._replace_each(conn, resources, counts)
                    return
                unique.append(row)
        stored = self._stored(conn, "resources", ("json", "deleted_at", *_RESOURCE_NAMES), [*owner])
        for rid, (_, _, stored_in, *_) in stored.items():
            if stored_in != owner[rid] and stored_in in resources:
                self._replace_each(conn, resources, counts)
                return
        changed: list[Row] = []
        for row in unique:
            change = _change(row, stored.get(row.id), values_at=2)
            if change == "new":
                counts.resources_new += 1
            elif change == "updated":
                counts.resources_updated += 1
            if change != "same":
                changed.append(row)
        gone: list[str] = []
        for chunk in _chunks(list(resources)):
            marks = ",".join("?" * len(chunk))
            for rid, dataset_id in conn.execute(
                f"SELECT id, dataset_id FROM resources WHERE dataset_id IN ({marks})"
                " AND deleted_at IS NULL",
                tuple(chunk),
            ):
                if owner.get(rid) != dataset_id:
                    gone.append(rid)
        if gone:
            now = utcnow()
            conn.executemany(
                "UPDATE resources SET deleted_at = ? WHERE id = ?", [(now, rid) for rid in gone]
            )
            counts.resources_deleted += len(gone)
        if changed:
            conn.executemany(
                _RESOURCE_UPSERT, [(row.id, *row.values, row.json, None) for row in changed]
            )

    def _replace_each(
        self, conn: sqlite3.Connection, resources: dict[str, list[Row]], counts: Counts
    ) -> None:
        for dataset_id, rows in resources.items():
            self._replace_resources(conn, dataset_id, rows, counts)

    def _replace_resources(
        self, conn: sqlite3.Connection, dataset_id: str, rows: list[Row], counts: Counts
    ) -> None:
        """The dataset's resources become ``rows``; the ones it no longer has are marked."""
        unique = list({row.id: row for row in rows}.values())
        existing = self._existing(conn, "resources", [row.id for row in unique])
        for row in unique:
            before = existing.get(row.id)
            if before is None:
                counts.resources_new += 1
            elif before != (row.json, None):
                counts.resources_updated += 1
        keep = [row.id for row in unique]
        marks = ",".join("?" * len(keep))
        cursor = conn.execute(
            "UPDATE resources SET deleted_at = ? WHERE dataset_id = ? AND deleted_at IS NULL"
            + (f" AND id NOT IN ({marks})" if keep else ""),
            (utcnow(), dataset_id, *keep),
        )
        counts.resources_deleted += max(cursor.rowcount, 0)
        if not unique:
            return
        conn.executemany(
            _RESOURCE_UPSERT, [(row.id, *row.values, row.json, None) for row in unique]
        )

    @staticmethod
    def _errors(conn: sqlite3.Connection, errors: Iterable[ErrorRow], counts: Counts) -> None:
        rows = [(e.entity, e.key, e.item_id, e.raw, e.reason, utcnow()) for e in errors]
        counts.errors += len(rows)
        conn.executemany(
            "INSERT INTO errors (entity, key, item_id, raw, reason, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity, key) DO UPDATE SET"
            " item_id = excluded.item_id, raw = excluded.raw, reason = excluded.reason,"
            " recorded_at = excluded.recorded_at",
            rows,
        )

    def clear_position_errors(self, entity: str) -> None:
        """Forget the items recorded by position only: a new full pass records them afresh."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM errors WHERE entity = ? AND key LIKE 'position:%'", (entity,))

    # --- the id pass and deletions ---------------------------------------------------------

    def stamps(
        self, spec: EntitySpec, ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, str | None], str | None]]:
        """id → ({stamp field: stored value}, deleted_at) for the stored ones among ``ids``."""
        fields = [name for name in spec.stamps if name in spec.column_names()]
        selected = ", ".join(("id", "deleted_at", *fields))
        found: dict[str, tuple[dict[str, str | None], str | None]] = {}
        for chunk in _chunks(ids):
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
                f"SELECT id FROM {spec.name} WHERE seen_pass < ? AND deleted_at IS NULL"
                " ORDER BY id",
                (pass_no,),
            )
        ]

    def finish_pass(
        self,
        spec: EntitySpec,
        batch: Batch,
        deleted: Sequence[str],
        pass_no: int,
        state: PassState,
    ) -> Counts:
        """One transaction: last refreshed rows, deletion marks and the finished checkpoint."""
        counts = Counts()
        now = utcnow()
        with self.transaction() as conn:
            self._write_rows(conn, spec, batch, pass_no, counts)
            for chunk in _chunks(deleted):
                marks = ",".join("?" * len(chunk))
                cursor = conn.execute(
                    f"UPDATE {spec.name} SET deleted_at = ? WHERE id IN ({marks})"
                    " AND deleted_at IS NULL",
                    (now, *chunk),
                )
                counts.deleted += max(cursor.rowcount, 0)
                if spec.name == "datasets":
                    cursor = conn.execute(
                        f"UPDATE resources SET deleted_at = ? WHERE dataset_id IN ({marks})"
                        " AND deleted_at IS NULL",
                        (now, *chunk),
                    )
                    counts.resources_deleted += max(cursor.rowcount, 0)
            self._save_state(conn, state)
        return counts

    # --- reading -------------------------------------------------------------------------

    def count(self, table: str) -> int:
        """Live rows of a table (errors: every row)."""
        where = "" if table == "errors" else " WHERE deleted_at IS NULL"
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}{where}").fetchone()[0])


class AsyncStore:
    """A :class:`Store` driven from asyncio: every call runs in one writer thread, in order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aioudata-sqlite")
        self._store: Store | None = None

    async def open(self) -> AsyncStore:
        """Open (and create) the database in the writer thread."""
        self._store = await self._run(Store, self.path)
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

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, functools.partial(function, *args))
        # Shielded: a transaction under way always ends (commit) before the caller goes on.
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Wait for pending writes, close the database and the thread."""
        if self._store is not None:
            store, self._store = self._store, None
            await asyncio.get_running_loop().run_in_executor(self._pool, store.close)
        self._pool.shutdown(wait=True)


def export_jsonl(store: Store, out: Path, entities: Sequence[str]) -> dict[str, int]:
    """Write ``<entity>.jsonl`` (live objects, JSON as received), resources, errors, deletions."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    tables = [*entities, *(["resources"] if "datasets" in entities else [])]
    for table in tables:
        written[table] = _write_lines(
            out / f"{table}.jsonl",
            (
                row[0]
                for row in store.conn.execute(
                    f"SELECT json FROM {table} WHERE deleted_at IS NULL ORDER BY id"
                )
            ),
        )
    written["errors"] = _write_lines(
        out / "errors.jsonl",
        (
            json.dumps(
                {"entity": e, "id": i, "reason": r, "raw": raw, "recorded_at": at},
                ensure_ascii=False,
            )
            for e, i, r, raw, at in store.conn.execute(
                "SELECT entity, item_id, reason, raw, recorded_at FROM errors ORDER BY entity, key"
            )
        ),
    )
    deletions = (
        json.dumps({"entity": table, "id": item_id, "deleted_at": at})
        for table in tables
        for item_id, at in store.conn.execute(
            f"SELECT id, deleted_at FROM {table} WHERE deleted_at IS NOT NULL ORDER BY id"
        )
    )
    written["deletions"] = _write_lines(out / "deletions.jsonl", deletions)
    return written


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write atomically (temporary file, then rename); the number of lines.

    The temporary file is created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``, a random name
    beginning with the target's) in the target's folder, so a file or symlink planted at a
    predictable name is never written through; it is removed if anything fails. Like
    ``tempfile.mkstemp``, but with mode 0o666 less the umask, as ``open()`` gives, not 0o600.
    ``os.replace`` then swaps it in: a symlink at ``path`` itself is replaced, not followed.
    """
    import contextlib
    import os
    import secrets

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):  # a clash of 48 random bits is already improbable
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name next to {path}")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
                handle.write("\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return count
