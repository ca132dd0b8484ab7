"""The checker's tables in the mirror database, written by one thread with group commits.

The checker never touches the mirror's tables: it reads ``resources`` and keeps its own
(``check_*``, created here, documented in docs/schema.md). A run's URLs are first put in
``check_frontier`` (one row each, by host); a result and the removal of its frontier row commit
together, so a run killed at any moment resumes with exactly what was not recorded: the
requests that were in flight. The writer thread commits whatever results have arrived in one
transaction (a group commit): a result waits for its commit before its slot is given to
another URL, so no more than the run's in-flight requests are ever uncommitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from .._mirror.schema import SQLITE, Dialect
from .._mirror.store import Store
from .config import CheckConfig, CheckError
from .hosts import Job
from .results import RESULT_COLUMNS, SIGNATURE, Outcome, kind, merge, stamp
from .urls import host_key, host_matches

__all__ = [
    "CHECKSUMS",
    "DDL",
    "MIRROR_SOURCE",
    "TABLES",
    "WALKED_DDL",
    "CheckStore",
    "Recorded",
    "Resource",
    "check_ddl",
    "runs_ddl",
]

logger = logging.getLogger("aioudata.crawl")
T = TypeVar("T")

#: The tables the checker creates (docs/schema.md documents each one).
TABLES = ("check_results", "check_history", "check_frontier", "check_runs", "check_hosts")

_HISTORY = ("resource_id", "checked_at", *(c for c in SIGNATURE), "run_id")


def check_ddl(dialect: Dialect) -> list[str]:
    """The checker's tables as ``dialect`` spells them (docs/schema.md); ``meta`` first."""
    integer, real = dialect.integer, real_type(dialect)
    return [
        # The same statement as the mirror's: a new database says it is aioudata's.
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS check_results (resource_id TEXT PRIMARY KEY, dataset_id TEXT,"
        f" url TEXT NOT NULL, host TEXT NOT NULL, status {integer}, not_modified {integer}"
        f" NOT NULL, final_url TEXT, redirects {integer} NOT NULL, content_type TEXT,"
        f" length {integer}, etag TEXT, last_modified TEXT, method TEXT, elapsed {real},"
        " error TEXT, detail TEXT, checked_at TEXT NOT NULL, changed_at TEXT NOT NULL,"
        f" checks {integer} NOT NULL, changes {integer} NOT NULL, next_check_at TEXT NOT NULL,"
        f" run_id {integer})",
        "CREATE INDEX IF NOT EXISTS check_results_host ON check_results (host)",
        "CREATE INDEX IF NOT EXISTS check_results_next ON check_results (next_check_at)",
        "CREATE TABLE IF NOT EXISTS check_history (resource_id TEXT NOT NULL,"
        f" checked_at TEXT NOT NULL, status {integer}, final_url TEXT, content_type TEXT,"
        f" length {integer}, etag TEXT, last_modified TEXT, error TEXT, run_id {integer},"
        f" PRIMARY KEY (resource_id, checked_at)){dialect.narrow}",
        f"CREATE TABLE IF NOT EXISTS check_frontier (seq {dialect.run_key}, host TEXT NOT NULL,"
        " resource_id TEXT NOT NULL UNIQUE, dataset_id TEXT, url TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS check_frontier_host ON check_frontier (host, seq)",
        *runs_ddl("check_runs", dialect),
        "CREATE TABLE IF NOT EXISTS check_hosts (host TEXT PRIMARY KEY, blocked_until TEXT,"
        " reason TEXT, updated_at TEXT NOT NULL)",
    ]


def runs_ddl(table: str, dialect: Dialect, *extra: str) -> list[str]:
    """The runs table of the checker or the downloader (``extra``: its own columns)."""
    integer = dialect.integer
    columns = "".join(f" {column}," for column in extra)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (id {dialect.run_key}, started_at TEXT NOT NULL,"
        " finished_at TEXT, status TEXT NOT NULL, source TEXT NOT NULL, options TEXT NOT NULL,"
        f" frontier_ready {integer} NOT NULL DEFAULT 0,{columns} summary TEXT)"
    ]


def real_type(dialect: Dialect) -> str:
    """Seconds with a fraction: SQLite's REAL is 8 bytes, PostgreSQL's 4."""
    return "DOUBLE PRECISION" if dialect.typed else "REAL"


DDL = check_ddl(SQLITE)
#: Resources walked from the API (when there is no mirror), staged for the frontier.
WALKED_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS walked (id TEXT PRIMARY KEY, dataset_id TEXT, url TEXT,"
    " format TEXT, organization_id TEXT, checksum_type TEXT, checksum_value TEXT)"
)
#: The mirror's live resources, with (for downloads) their published checksums.
MIRROR_SOURCE = (
    "SELECT r.id AS id, r.dataset_id AS dataset_id, r.url AS url, r.format AS format,"
    " d.organization_id AS organization_id{} FROM resources r"
    " LEFT JOIN datasets d ON d.id = r.dataset_id WHERE r.gone_at IS NULL"
)
CHECKSUMS = ", r.checksum_type AS checksum_type, r.checksum_value AS checksum_value"
_WALKED_SOURCE = (
    "SELECT id, dataset_id, url, format, organization_id, checksum_type, checksum_value"
    " FROM temp.walked"
)
_UPSERT = (
    f"INSERT INTO check_results ({', '.join(RESULT_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(RESULT_COLUMNS))}) ON CONFLICT(resource_id) DO UPDATE SET"
    f" {', '.join(f'{c} = excluded.{c}' for c in RESULT_COLUMNS[1:])}"
)
# An upsert (not INSERT OR REPLACE): PostgreSQL runs it too.
_HISTORY_INSERT = (
    f"INSERT INTO check_history ({', '.join(_HISTORY)})"
    f" VALUES ({', '.join('?' * len(_HISTORY))}) ON CONFLICT(resource_id, checked_at)"
    f" DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _HISTORY[2:])}"
)
#: Results committed in one transaction at most (the calls of one turn of the loop go together).
_GROUP = 2000


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource as the API walk stages it."""

    id: str
    dataset_id: str | None
    url: str | None
    format: str | None
    organization_id: str | None
    checksum_type: str | None = None
    checksum_value: str | None = None


@dataclass(slots=True)
class Recorded:
    """What recording some results did: outcomes by kind, and how many changed."""

    count: int = 0
    changed: int = 0
    kinds: dict[str, int] | None = None

    def add(self, outcome: Outcome, changed: bool) -> None:
        self.count += 1
        self.changed += int(changed)
        if self.kinds is None:
            self.kinds = {}
        label = kind(outcome)
        self.kinds[label] = self.kinds.get(label, 0) + 1


class _Op(Generic[T]):
    __slots__ = ("function", "future", "loop")

    def __init__(
        self,
        function: Callable[[sqlite3.Connection], T],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[T],
    ) -> None:
        self.function = function
        self.loop = loop
        self.future = future


def _settle_all(settled: list[tuple[_Op[Any], Any, BaseException | None]]) -> None:
    for op, result, error in settled:
        if op.future.done():
            continue
        if error is not None:
            op.future.set_exception(error)
        else:
            op.future.set_result(result)


class CheckStore:
    """The checker's side of the database: a writer thread and a reader for the event loop.

    The downloader's store is this one on its own tables (``ddl``, ``frontier``, ``runs``),
    with its own frontier selection, job loading and result rows."""

    ddl: Sequence[str] = DDL
    frontier = "check_frontier"
    runs = "check_runs"
    #: What a check reads of the mirror's resources (no checksum: not needed).
    mirror_source = MIRROR_SOURCE.format("")
    #: The resources walked from the API.
    walked_source = _WALKED_SOURCE
    #: The selection's host filter (None: applied while the frontier is built).
    host_filter: str | None = "aioudata_host_wanted(aioudata_host(s.url))"

    def __init__(self, path: Path, config: CheckConfig, now: Callable[[], datetime]) -> None:
        self.path = path
        self.config = config
        self.now = now
        self.run_id = 0
        #: Now, for the writes of the transaction under way (one clock read per commit).
        self.group_now = now()
        self._queue: queue.SimpleQueue[list[_Op[Any]] | None] = queue.SimpleQueue()
        #: Calls made in this turn of the event loop, handed to the writer together at its end.
        self._pending: list[_Op[Any]] = []
        self._thread: threading.Thread | None = None
        self._writer: sqlite3.Connection | None = None
        self.reader: sqlite3.Connection | None = None

    # --- opening and closing ------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    async def open(self) -> Self:
        """Refuse another application's database, create the checker's tables, start the
        writer thread."""
        try:
            Store.refuse_foreign(self.path)  # read only; the mirror's own rule
        except CheckError:
            raise
        except Exception as error:
            raise CheckError(str(error), code=getattr(error, "code", 2)) from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = self._connect()
        # WAL, synchronous=NORMAL: a commit survives the process being killed (what resuming
        # needs); only an OS crash or a power loss may lose the last ones.
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA synchronous=NORMAL")
        self._functions(writer)
        writer.execute("BEGIN IMMEDIATE")
        try:
            for statement in self.ddl:
                writer.execute(statement)
            writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('application', ?)", ("aioudata",)
            )
            writer.execute(WALKED_DDL)
            writer.execute("COMMIT")
        except BaseException:
            writer.execute("ROLLBACK")
            writer.close()
            raise
        self._start(writer, self._connect())
        return self

    def _start(self, writer: Any, reader: Any) -> None:
        """Start the writer thread on ``writer``; ``reader`` serves the event loop."""
        self._writer = writer
        self.reader = reader
        self._thread = threading.Thread(target=self._write_loop, name="aioudata-crawl", daemon=True)
        self._thread.start()

    def _functions(self, conn: sqlite3.Connection) -> None:
        """SQL functions the writer's statements use."""
        patterns = self.config.host
        conn.create_function("aioudata_host", 1, _host_of, deterministic=True)
        conn.create_function(
            "aioudata_host_wanted",
            1,
            lambda host: int(bool(host) and host_matches(host, patterns)),
            deterministic=True,
        )

    async def close(self) -> None:
        """Let the pending writes commit, then close."""
        if self._thread is not None:
            self._hand_over()
            self._queue.put(None)
            thread, self._thread = self._thread, None
            await asyncio.to_thread(thread.join)
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    # --- the writer thread --------------------------------------------------------------

    def _write_loop(self) -> None:
        conn = self._writer
        assert conn is not None
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                ops: list[_Op[Any]] = first
                while len(ops) < _GROUP:
                    try:
                        following = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if following is None:
                        stop = True
                        break
                    ops.extend(following)
                self._commit(conn, ops)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, ops: list[_Op[Any]]) -> None:
        """One transaction for ``ops``; if one fails, each runs again in its own, so that it
        fails alone. Their callers are woken together."""
        self.group_now = self.now()
        settled: list[tuple[_Op[Any], Any, BaseException | None]]
        try:
            settled = self._transaction(conn, ops)
        except Exception:
            settled = []
            for op in ops:
                try:
                    settled.extend(self._transaction(conn, [op]))
                except Exception as error:
                    settled.append((op, None, error))
        loop = ops[0].loop
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle_all, settled)

    @staticmethod
    def _transaction(
        conn: sqlite3.Connection, ops: list[_Op[Any]]
    ) -> list[tuple[_Op[Any], Any, BaseException | None]]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            settled: list[tuple[_Op[Any], Any, BaseException | None]] = [
                (op, op.function(conn), None) for op in ops
            ]
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return settled

    async def call(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``function(conn)`` in the writer thread, in the next transaction; its result.

        The caller waits for the commit. Cancelling the caller does not undo the write.
        """
        if self._thread is None:
            raise RuntimeError("the check store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(_retrieved)
        if not self._pending:  # the first call of this turn: hand them over at its end
            loop.call_soon(self._hand_over)
        self._pending.append(_Op(function, loop, future))
        return await asyncio.shield(future)

    def _hand_over(self) -> None:
        """Give the writer thread the calls of this turn of the loop in one hand-over (one
        wake-up of the thread, not one per result)."""
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []

    # --- runs -----------------------------------------------------------------------------

    def has_mirror(self) -> bool:
        """The database holds a mirror's ``resources`` (else resources come from the API)."""
        assert self.reader is not None
        found = self.reader.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'resources' AND type IN ('view', 'table')"
        ).fetchone()
        if found is None:
            return False
        columns = {row[1] for row in self.reader.execute("PRAGMA table_info(resources)")}
        if "gone_at" not in columns:
            raise CheckError(
                f"{self.path} holds a mirror written by an older aioudata: run `aioudata"
                " mirror` on it once to upgrade it",
                code=2,
            )
        return True

    async def open_run(self, source: str) -> tuple[int, bool, bool]:
        """Resume the last run if it did not finish with the same options, else start one;
        ``(run id, resumed, frontier ready)``."""
        options = json.dumps(self.config.options(), sort_keys=True)
        when = stamp(self.now())
        runs, frontier = self.runs, self.frontier

        def work(conn: sqlite3.Connection) -> tuple[int, bool, bool]:
            last = conn.execute(
                f"SELECT id, status, options, source, frontier_ready FROM {runs}"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if last is not None and last[1] in ("running", "interrupted", "no_space"):
                if last[2] == options and last[3] == source:
                    conn.execute(f"UPDATE {runs} SET status = 'running' WHERE id = ?", (last[0],))
                    return int(last[0]), True, bool(last[4])
                conn.execute(
                    f"UPDATE {runs} SET status = 'abandoned', finished_at = ? WHERE id = ?",
                    (when, last[0]),
                )
            conn.execute(f"DELETE FROM {frontier}")
            return self._new_run(conn, (when, source, options)), False, False

        run_id, resumed, ready = await self.call(work)
        self.run_id = run_id
        return run_id, resumed, ready

    def _new_run(self, conn: Any, values: tuple[str, str, str]) -> int:
        """Insert a running run of ``values`` (started at, source, options); its id."""
        cursor = conn.execute(
            f"INSERT INTO {self.runs} (started_at, status, source, options) VALUES"
            " (?, 'running', ?, ?)",
            values,
        )
        return int(cursor.lastrowid or 0)

    async def finish_run(self, status: str, summary: dict[str, Any]) -> None:
        """Record how the run ended; a finished run leaves no frontier."""
        when, run_id = stamp(self.now()), self.run_id
        runs, frontier = self.runs, self.frontier

        def work(conn: sqlite3.Connection) -> None:
            if status == "ok":
                conn.execute(f"DELETE FROM {frontier}")
            conn.execute(
                f"UPDATE {runs} SET status = ?, finished_at = ?, summary = ? WHERE id = ?",
                (status, when, json.dumps(summary, sort_keys=True), run_id),
            )

        await self.call(work)

    # --- the frontier -----------------------------------------------------------------------

    async def stage(self, resources: Sequence[Resource]) -> None:
        """Resources walked from the API, staged for :meth:`build_frontier`."""
        rows = [
            (r.id, r.dataset_id, r.url, r.format, r.organization_id, *_checksum(r))
            for r in resources
        ]
        insert = "INSERT OR REPLACE INTO temp.walked VALUES (?, ?, ?, ?, ?, ?, ?)"

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(insert, rows)

        await self.call(work)

    def selection(self, source: str) -> tuple[str, list[Any]]:
        """The run's resources (``s``) as a FROM clause with its filters (the selection
        options), and the parameters."""
        config = self.config
        base = self.mirror_source if source == "mirror" else self.walked_source
        where: list[str] = []
        params: list[Any] = []
        if config.organization:
            where.append(f"s.organization_id IN ({', '.join('?' * len(config.organization))})")
            params.extend(config.organization)
        if config.format:
            where.append(f"lower(trim(s.format)) IN ({', '.join('?' * len(config.format))})")
            params.extend(config.format)
        if config.host and self.host_filter:
            where.append(self.host_filter)
        sql = f"({base}) s" + (f" WHERE {' AND '.join(where)}" if where else "")
        return sql, params

    def frontier_sql(self, source: str) -> tuple[str, list[Any]]:
        """The statement filling the frontier with the resources due, and its parameters."""
        selected, params = self.selection(source)
        due = "(c.resource_id IS NULL OR c.url IS NOT s.url OR c.next_check_at <= ?)"
        if not self.config.all:
            params.append(stamp(self.now()))
        sql = (
            "INSERT OR IGNORE INTO check_frontier (host, resource_id, dataset_id, url)"
            " SELECT aioudata_host(s.url), s.id, s.dataset_id, COALESCE(s.url, '')"
            f" FROM (SELECT * FROM {selected}) s"
            " LEFT JOIN check_results c ON c.resource_id = s.id"
            + ("" if self.config.all else f" WHERE {due}")
        )
        return sql, params

    async def build_frontier(self, source: str) -> int:
        """Put the resources due in the frontier; how many there are."""
        sql, params = self.frontier_sql(source)
        run_id, runs, frontier = self.run_id, self.runs, self.frontier

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(f"DELETE FROM {frontier}")
            conn.execute(sql, params)
            conn.execute("DELETE FROM temp.walked")
            conn.execute(f"UPDATE {runs} SET frontier_ready = 1 WHERE id = ?", (run_id,))
            return int(conn.execute(f"SELECT COUNT(*) FROM {frontier}").fetchone()[0])

        return await self.call(work)

    def frontier_hosts(self) -> dict[str, int]:
        """Host → URLs waiting in the frontier."""
        assert self.reader is not None
        return {
            str(host): int(count)
            for host, count in self.reader.execute(
                f"SELECT host, COUNT(*) FROM {self.frontier} GROUP BY host"
            )
        }

    def load(self, host: str, after: int, limit: int) -> list[Job]:
        """The next ``limit`` jobs of ``host`` after frontier row ``after``, with the
        validators of their last result (when it was for the same URL)."""
        assert self.reader is not None
        rows = self.reader.execute(
            "SELECT f.seq, f.resource_id, f.dataset_id, f.url, c.url, c.etag, c.last_modified"
            " FROM check_frontier f LEFT JOIN check_results c ON c.resource_id = f.resource_id"
            " WHERE f.host = ? AND f.seq > ? ORDER BY f.seq LIMIT ?",
            (host, after, limit),
        ).fetchall()
        jobs = []
        for seq, resource_id, dataset_id, url, last_url, etag, last_modified in rows:
            same = last_url == url
            jobs.append(
                Job(
                    seq=seq,
                    resource_id=resource_id,
                    dataset_id=dataset_id,
                    url=url,
                    host=host,
                    etag=etag if same else None,
                    last_modified=last_modified if same else None,
                )
            )
        return jobs

    def blocked_hosts(self) -> dict[str, float]:
        """Hosts that asked (by a long Retry-After) to be left alone: seconds left."""
        assert self.reader is not None
        now = self.now()
        found: dict[str, float] = {}
        for host, until in self.reader.execute(
            "SELECT host, blocked_until FROM check_hosts WHERE blocked_until > ?", (stamp(now),)
        ):
            found[str(host)] = (datetime.fromisoformat(until) - now).total_seconds()
        return found

    # --- results --------------------------------------------------------------------------

    def _write(
        self, conn: sqlite3.Connection, job: Job, outcome: Outcome, wait: float, done: Recorded
    ) -> None:
        found = self._get(
            conn,
            f"SELECT {', '.join(RESULT_COLUMNS)} FROM check_results WHERE resource_id = ?",
            job.resource_id,
        )
        previous = dict(zip(RESULT_COLUMNS, found, strict=True)) if found else None
        row, changed = merge(
            previous,
            (job.resource_id, job.dataset_id, job.url, job.host),
            outcome,
            self.group_now,
            self.run_id,
            self.config.min_interval,
            self.config.max_interval,
            wait,
        )
        self._put(conn, _UPSERT, [row[c] for c in RESULT_COLUMNS], job.resource_id)
        if changed:
            self._put(conn, _HISTORY_INSERT, [row[c] for c in _HISTORY], job.resource_id)
        self._put(conn, f"DELETE FROM {self.frontier} WHERE seq = ?", (job.seq,), job.resource_id)
        done.add(outcome, changed)

    def _get(self, conn: Any, sql: str, resource_id: str) -> Any:
        """The row ``sql`` reads of ``resource_id`` (its last result), or None."""
        return conn.execute(sql, (resource_id,)).fetchone()

    def _put(self, conn: Any, sql: str, params: Sequence[Any], resource_id: str) -> None:
        """One write of ``resource_id``'s result (a server database batches them until the
        transaction's end)."""
        conn.execute(sql, params)

    async def record(self, job: Job, outcome: Outcome) -> bool:
        """Record a resource's result and take it off the frontier, in one commit; whether
        it changed."""
        done = Recorded()
        await self.call(lambda conn: self._write(conn, job, outcome, 0.0, done))
        return bool(done.changed)

    async def give_up(
        self, host: str, outcome: Outcome, wait: float, keep: Iterable[int]
    ) -> Recorded:
        """Record every URL of ``host`` left in the frontier (but those of ``keep``, under way)
        as ``outcome``, without a request; the next check waits ``wait`` seconds at least."""
        kept = set(keep)
        done = Recorded()
        frontier = self.frontier

        def work(conn: sqlite3.Connection) -> Recorded:
            after = 0
            while True:
                rows = conn.execute(
                    f"SELECT seq, resource_id, dataset_id, url FROM {frontier}"
                    " WHERE host = ? AND seq > ? ORDER BY seq LIMIT 1000",
                    (host, after),
                ).fetchall()
                if not rows:
                    return done
                for seq, resource_id, dataset_id, url in rows:
                    after = seq
                    if seq not in kept:
                        job = Job(seq, resource_id, dataset_id, url, host)
                        self._write(conn, job, outcome, wait, done)

        return await self.call(work)

    async def block_host(self, host: str, seconds: float, reason: str) -> None:
        """Remember that ``host`` asked to be left alone for ``seconds`` (later runs too)."""
        now = self.now()
        until = stamp(now + timedelta(seconds=seconds))

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO check_hosts (host, blocked_until, reason, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(host) DO UPDATE SET"
                " blocked_until = excluded.blocked_until, reason = excluded.reason,"
                " updated_at = excluded.updated_at",
                (host, until, reason, stamp(now)),
            )

        await self.call(work)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a write's failure seen: its caller, cancelled meanwhile (the run stopping at the
    first failure), no longer waits for it."""
    if not future.cancelled():
        future.exception()


def _checksum(resource: Resource) -> tuple[str | None, str | None]:
    return resource.checksum_type, resource.checksum_value


def _host_of(url: object) -> str:
    return host_key(url) if isinstance(url, str) else ""
