"""The checker's and the downloader's tables in a PostgreSQL mirror (``--db postgresql://...``).

The same stores as SQLite's (:class:`~.store.CheckStore`, :class:`~.download_store.DownloadStore`:
one writer thread, group commits, a result and the removal of its frontier row in one
transaction) on the mirror's PostgreSQL connection (:class:`~.._mirror.postgres.PgConnection`,
which runs their SQL), in the URL's schema, the tables from the same description
(``check_ddl(POSTGRESQL)``). What SQLite computes with Python functions inside SQL (a URL's
host, the host filter, whether a file is on disk) is computed here while the frontier is built:
the selected resources stream from a server-side cursor and the frontier rows go back in bulk,
in the same transaction.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

from .._mirror.config import MirrorDatabaseError as DatabaseError
from .._mirror.config import MirrorError
from .._mirror.pgurl import DatabaseURL
from .._mirror.postgres import PgConnection, check_database, connect
from .._mirror.schema import POSTGRESQL
from .config import CheckConfig, CheckError
from .download_store import DownloadStore, download_ddl
from .results import stamp
from .store import WALKED_DDL, CheckStore, Resource, _checksum, _host_of, check_ddl
from .urls import host_matches

__all__ = ["PgCheckStore", "PgDownloadStore", "postgres_store"]

S = TypeVar("S", bound=CheckStore)
_DELETE_BY_KEY = re.compile(r"^DELETE FROM \w+ WHERE \w+ = \?$")
#: Rows of the selection fetched at a time while the frontier is built.
_CHUNK = 5000
_WALKED = ("id", "dataset_id", "url", "format", "organization_id", "checksum_type")
_STAGE = (
    f"INSERT INTO walked ({', '.join(_WALKED)}, checksum_value) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(id) DO UPDATE SET"
    f" {', '.join(f'{c} = excluded.{c}' for c in (*_WALKED[1:], 'checksum_value'))}"
)


class _Batched:
    """A transaction's connection whose result writes (:meth:`PgCheckStore._put`) wait and
    run together (a multi-row statement each: a statement per result costs the driver more
    than the server's work). Any other statement runs them first, so that it sees what the
    transaction did so far, as on SQLite."""

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn
        self.writes: dict[str, list[Sequence[Any]]] = {}
        self.ids: set[str] = set()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.flush()
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.flush()
        self.conn.executemany(sql, rows)

    def flush(self) -> None:
        """Run the writes waiting."""
        writes, self.writes, self.ids = self.writes, {}, set()
        for sql, rows in writes.items():
            if _DELETE_BY_KEY.match(sql):  # one statement for every key
                keys = [row[0] for row in rows]
                self.conn.execute(f"{sql.removesuffix('= ?')}= ANY(?)", (keys,))
            else:
                self.conn.executemany(sql, rows)


class PgCheckStore(CheckStore):
    """The checker's tables in the PostgreSQL schema of ``url``."""

    ddl: Sequence[str] = check_ddl(POSTGRESQL)
    # The session's temporary table (searched before the schema).
    walked_source = (
        "SELECT id, dataset_id, url, format, organization_id, checksum_type, checksum_value"
        " FROM walked"
    )
    host_filter = None
    #: The frontier's columns, filled from :meth:`_entry`.
    frontier_columns: tuple[str, ...] = ("host", "resource_id", "dataset_id", "url")

    def __init__(self, url: DatabaseURL, config: CheckConfig, now: Callable[[], datetime]) -> None:
        super().__init__(url, config, now)  # type: ignore[arg-type]  # messages name it
        self.url = url

    async def open(self) -> Self:
        """Refuse another application's schema (or a user who could not write it), create
        the tables, start the writer thread."""
        writer, reader = await asyncio.to_thread(self._connect_both)
        self._start(writer, reader)
        return self

    def _connect_both(self) -> tuple[PgConnection, PgConnection]:
        try:
            check_database(self.url)  # read only: the mirror's own rule
        except DatabaseError:
            raise
        except MirrorError as error:  # another application's tables
            raise CheckError(str(error), code=error.code) from None
        writer = PgConnection(connect(self.url, purpose="resources"), self.url)
        try:
            with writer.transaction() as conn:
                # A mirror run may create the schema's tables at the same moment.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(?))", (f"ddl {self.url.schema}",)
                )
                for statement in self.ddl:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('application', ?)",
                    ("aioudata",),
                )
            writer.execute(WALKED_DDL)  # the writer's session's own
            reader = PgConnection(connect(self.url, purpose="resources reader"), self.url)
        except BaseException:
            writer.close()
            raise
        return writer, reader

    def _transaction(  # type: ignore[override]
        self, conn: Any, ops: list[Any]
    ) -> list[tuple[Any, Any, BaseException | None]]:
        with conn.transaction():
            batched = _Batched(conn)
            settled: list[tuple[Any, Any, BaseException | None]] = [
                (op, op.function(batched), None) for op in ops
            ]
            batched.flush()
        return settled

    def _get(self, conn: Any, sql: str, resource_id: str) -> Any:
        if isinstance(conn, _Batched) and resource_id not in conn.ids:
            conn = conn.conn  # what waits is of other resources: no need to run it first
        return super()._get(conn, sql, resource_id)

    def _put(self, conn: Any, sql: str, params: Sequence[Any], resource_id: str) -> None:
        if not isinstance(conn, _Batched):
            super()._put(conn, sql, params, resource_id)
            return
        conn.ids.add(resource_id)
        conn.writes.setdefault(sql, []).append(params)

    def has_mirror(self) -> bool:
        """The schema holds a mirror's ``resources`` (else resources come from the API)."""
        assert self.reader is not None
        found = self.reader.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ? AND c.relname = 'resources' AND c.relkind IN ('v', 'r')",
            (self.url.schema,),
        ).fetchone()
        return found is not None

    def _new_run(self, conn: Any, values: tuple[str, str, str]) -> int:
        row = conn.execute(
            f"INSERT INTO {self.runs} (started_at, status, source, options) VALUES"
            " (?, 'running', ?, ?) RETURNING id",
            values,
        ).fetchone()
        return int(row[0])

    async def stage(self, resources: Sequence[Resource]) -> None:
        """Resources walked from the API, staged for :meth:`build_frontier`."""
        rows = [
            (r.id, r.dataset_id, r.url, r.format, r.organization_id, *_checksum(r))
            for r in resources
        ]
        await self.call(lambda conn: conn.executemany(_STAGE, rows))

    # --- the frontier, built in Python from the selection -----------------------------------

    def _candidates(self, selected: str) -> str:
        """The selected resources due: ``(id, dataset id, URL)`` first."""
        due = "c.resource_id IS NULL OR c.url IS DISTINCT FROM s.url OR c.next_check_at <= ?"
        return (
            f"SELECT s.id, s.dataset_id, s.url FROM (SELECT * FROM {selected}) s"
            " LEFT JOIN check_results c ON c.resource_id = s.id"
            + ("" if self.config.all else f" WHERE {due}")
        )

    def _params(self, params: list[Any]) -> list[Any]:
        return params if self.config.all else [*params, stamp(self.now())]

    def _entry(self, row: Sequence[Any], host: str) -> tuple[Any, ...] | None:
        """The frontier row of a candidate (None: not to be fetched)."""
        resource_id, dataset_id, url = row[:3]
        return host, resource_id, dataset_id, "" if url is None else url

    def _frontier_built(self, conn: Any, selected: int, count: int, source: str) -> None:
        conn.execute(f"UPDATE {self.runs} SET frontier_ready = 1 WHERE id = ?", (self.run_id,))

    def _wanted(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Sequence[Any], str]]:
        """The candidates on the selected hosts, with their host (``name[:port]``)."""
        patterns = self.config.host
        hosts = [(row, _host_of(row[2])) for row in rows]
        if not patterns:
            return hosts
        return [(row, host) for row, host in hosts if host and host_matches(host, patterns)]

    async def build_frontier(self, source: str) -> int:
        """Put the resources due in the frontier; how many there are."""
        selected_sql, params = self.selection(source)
        sql, values = self._candidates(selected_sql), self._params(params)
        frontier = self.frontier
        insert = (
            f"INSERT OR IGNORE INTO {frontier} ({', '.join(self.frontier_columns)})"
            f" VALUES ({', '.join('?' * len(self.frontier_columns))})"
        )

        def work(conn: Any) -> int:
            conn.execute(f"DELETE FROM {frontier}")
            selected = 0
            # A cursor of the transaction: the selection streams, never held whole.
            conn.execute(f"DECLARE aioudata_frontier NO SCROLL CURSOR FOR {sql}", values)
            while chunk := conn.execute(f"FETCH {_CHUNK} FROM aioudata_frontier").fetchall():
                entries = [(host, self._entry(row, host)) for row, host in self._wanted(chunk)]
                selected += len(entries)
                conn.executemany(insert, [entry for _, entry in entries if entry is not None])
            conn.execute("CLOSE aioudata_frontier")
            conn.execute("DELETE FROM walked")
            (count,) = conn.execute(f"SELECT COUNT(*) FROM {frontier}").fetchone()
            self._frontier_built(conn, selected, count, source)
            return int(count)

        return await self.call(work)


class PgDownloadStore(PgCheckStore, DownloadStore):
    """The downloader's tables in the PostgreSQL schema of ``url``."""

    ddl = (*check_ddl(POSTGRESQL), *download_ddl(POSTGRESQL))
    frontier_columns = (*PgCheckStore.frontier_columns, "checksum_type", "checksum_value")

    def _candidates(self, selected: str) -> str:
        """Every selected file, with what says whether it is known unchanged."""
        return (
            "SELECT s.id, s.dataset_id, s.url, s.checksum_type, s.checksum_value, d.result,"
            " d.url, d.checksum_actual, d.path, d.size"
            f" FROM (SELECT * FROM {selected}) s"
            " LEFT JOIN download_results d ON d.resource_id = s.id"
        )

    def _params(self, params: list[Any]) -> list[Any]:
        return params

    def _entry(self, row: Sequence[Any], host: str) -> tuple[Any, ...] | None:
        """None for a file known unchanged (unless ``all``): its published checksum is the
        one of the good file on disk (what SQLite's frontier statement says)."""
        resource_id, dataset_id, url, ctype, cvalue = row[:5]
        result, last_url, actual, path, size = row[5:]
        ctype, cvalue = _normal(ctype), _normal(cvalue)
        unchanged = (
            result in ("downloaded", "not_modified")
            and last_url == url
            and cvalue is not None
            and actual == cvalue
            and self._file_ok(path, size)
        )
        if unchanged and not self.config.all:
            return None
        return host, resource_id, dataset_id, "" if url is None else url, ctype, cvalue

    def _frontier_built(self, conn: Any, selected: int, count: int, source: str) -> None:
        skipped = max(0, selected - count) if source == "mirror" else 0
        conn.execute(
            "UPDATE download_runs SET frontier_ready = 1, skipped = ? WHERE id = ?",
            (skipped, self.run_id),
        )


def _normal(value: str | None) -> str | None:
    """SQL's ``lower(trim(value))``."""
    return None if value is None else value.strip(" ").lower()


def postgres_store(store_type: type[S]) -> type[S]:
    """The PostgreSQL store of ``store_type`` (the checker's or the downloader's)."""
    found = PgDownloadStore if issubclass(store_type, DownloadStore) else PgCheckStore
    return found  # type: ignore[return-value]
