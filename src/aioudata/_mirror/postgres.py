"""The PostgreSQL mirror: the same tables, rows and guarantees as the SQLite one, via psycopg 3.

:class:`PostgresStore` is a :class:`~.store.Store` whose connection speaks PostgreSQL: the
store's and the page writes' SQL (:mod:`.writes`) run unchanged through :class:`PgConnection`,
which spells SQLite's few idioms the PostgreSQL way. JSON columns are of type ``json``: the
text exactly as received, read by PostgreSQL's ``->`` and ``->>`` operators. Every page and
its checkpoint commit in one transaction, as in SQLite; a run killed at any point resumes from
the last committed page. Every failure of the database is a :class:`DatabaseError` naming what
is wrong in one line, never the password.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .config import MirrorDatabaseError as DatabaseError
from .config import MirrorError
from .entities import EntitySpec
from .pgurl import DatabaseURL
from .records import Batch, Undecoded
from .schema import POSTGRESQL, SCHEMA_VERSION, ddl
from .store import PassState, Store, utcnow
from .writes import Counts

try:
    import psycopg
    from psycopg.types.string import TextLoader
except ImportError:  # pragma: no cover - the optional extra is missing
    psycopg = None  # type: ignore[assignment]

__all__ = [
    "DatabaseError",
    "PgConnection",
    "PostgresStore",
    "check_database",
    "connect",
    "refuse_foreign",
]

logger = logging.getLogger("aioudata.mirror")

#: Seconds a connection attempt may take before the server is called unreachable.
CONNECT_TIMEOUT = 10
_APPLICATION = "aioudata"


def _first_line(error: BaseException, secret: str | None) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if secret:
        text = text.replace(secret, "***")
    return text


def database_error(
    error: Exception,
    url: DatabaseURL,
    *,
    connected: bool,
    lost: bool = False,
    secret: str | None = None,
) -> DatabaseError:
    """The one line for a driver's error (``connected``: it came after connecting; ``lost``:
    the connection is no longer usable)."""
    state = getattr(error, "sqlstate", None) or ""
    text = _first_line(error, secret)
    if state == "42501":
        return DatabaseError(
            f"{url}: permission denied ({text}): the user needs to create tables in the schema"
            " (or own the mirror's), and to write them",
            kind="permission",
        )
    if connected and (lost or state.startswith(("08", "57P"))):
        return DatabaseError(
            f"the connection to {url} was lost mid-run ({text}): every committed page is"
            " kept; run the same command again to resume",
            kind="dropped",
        )
    if state in ("28P01", "28000") or "password" in text:
        return DatabaseError(
            f"{url}: authentication failed ({text}); the password comes from the URL,"
            " PGPASSWORD or ~/.pgpass",
            kind="auth",
        )
    if state == "3D000" or ("database" in text and "does not exist" in text):
        return DatabaseError(
            f"{url}: database {url.dbname!r} does not exist: create it (createdb"
            f" {url.dbname}) or use another --db",
            kind="missing",
        )
    if not connected:
        return DatabaseError(
            f"cannot reach the database server of {url}: {text}", kind="unreachable"
        )
    return DatabaseError(f"{url}: {text}", kind="failed")


def _password(url: DatabaseURL) -> str | None:
    found = psycopg.conninfo.conninfo_to_dict(url.url).get("password") if psycopg else None
    return None if found is None else str(found)


def connect(url: DatabaseURL, *, purpose: str = "mirror") -> psycopg.Connection[Any]:
    """An autocommit connection whose ``json`` values are read as text (exactly as stored),
    working in the URL's schema (created when missing); :class:`DatabaseError` if it cannot."""
    if psycopg is None:
        raise MirrorError(
            "a PostgreSQL --db needs the postgres extra: pip install 'aioudata[postgres]'",
            code=2,
        )
    try:
        conn = psycopg.connect(
            url.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"{_APPLICATION} {purpose} (pid {os.getpid()})",
        )
    except psycopg.Error as error:
        raise database_error(error, url, connected=False, secret=_password(url)) from None
    try:
        conn.adapters.register_loader("json", TextLoader)
        # A commit does not wait for its WAL flush: it survives the mirror being killed, as
        # SQLite's WAL with synchronous=NORMAL; a server crash may lose the last pages, and
        # their checkpoints with them (a page and its checkpoint commit together): the next
        # run does them again.
        conn.execute("SET synchronous_commit TO off")
        with contextlib.suppress(psycopg.Error):  # a server built without lz4 keeps pglz
            # Large JSON compressed with lz4: about a third less time than pglz per page.
            conn.execute("SET default_toast_compression TO lz4")
        _create_schema(conn, url.schema)
        conn.execute(f"SET search_path TO {url.schema}")
    except psycopg.Error as error:
        conn.close()
        raise database_error(error, url, connected=True) from None
    return conn


def _create_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create ``schema`` when missing: one session at a time (IF NOT EXISTS does not cover a
    creation under way in another), and not asked of a user who finds it there."""
    exists = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
    if conn.execute(exists, (schema,)).fetchone():
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ddl {schema}",))
        if not conn.execute(exists, (schema,)).fetchone():
            conn.execute(f"CREATE SCHEMA {schema}")


# --- SQLite's idioms, the PostgreSQL way ------------------------------------------------------

_OR_IGNORE = re.compile(r"^INSERT OR IGNORE INTO (.*)$", re.DOTALL)
# ``ON CONFLICT ... DO UPDATE ... WHERE col != excluded.col``: PostgreSQL wants the table named.
_UPDATE_WHERE = re.compile(
    r"^(INSERT INTO (\w+) .* WHERE) (\w+) (?:!=|IS NOT) excluded\.(\w+)$", re.DOTALL
)


_MARK = re.compile(r"\?")


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``sql`` (SQLite's, ``?`` parameters) as PostgreSQL takes it (``$1``... parameters)."""
    found = _OR_IGNORE.match(sql)
    if found:
        sql = f"INSERT INTO {found.group(1)} ON CONFLICT DO NOTHING"
    found = _UPDATE_WHERE.match(sql)
    if found:
        head, table, column, other = found.groups()
        sql = f"{head} {table}.{column} IS DISTINCT FROM excluded.{other}"
    numbers = itertools.count(1)
    return _MARK.sub(lambda _: f"${next(numbers)}", sql)


#: Parameters of one statement, at most (PostgreSQL's protocol counts them in 16 bits).
_MAX_PARAMETERS = 65_535
#: Values from which an insert of narrow rows goes through ``COPY`` (fewer: one multi-row
#: statement), and the width in characters of a row that is not narrow. Measured by the
#: server's own statistics on a mirror of 10,000 datasets: a page's 800 resources (16,000
#: values) take half the time with ``COPY``; 260 tags or 1,000 listed ids (3,000 values)
#: take less without it.
_COPY_VALUES, _WIDE_ROW = 8192, 1024
_INSERT_VALUES = re.compile(
    r"^(INSERT (?:OR IGNORE )?INTO (\w+) \(([^)]*)\)) VALUES \((?:\?, )*\?\)(.*)$", re.DOTALL
)
_CONFLICT_UPDATE = re.compile(r"ON CONFLICT\s*\(([^)]*)\)\s*DO UPDATE")


@dataclass(frozen=True, slots=True)
class BulkInsert:
    """An ``INSERT ... VALUES (?, ...) ...`` of many rows as one statement.

    ``head`` None: not such an insert. ``key``: positions of the ``ON CONFLICT (...) DO
    UPDATE`` columns: one statement may not update a row twice, so the last row of each key
    is kept (what running the rows one after another leaves).
    """

    head: str | None = None
    tail: str = ""
    key: tuple[int, ...] = ()
    table: str = ""
    columns: str = ""

    def unique(self, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """``rows``, the last of each conflict key only."""
        if not self.key:
            return list(rows)
        return list({tuple(r[i] for i in self.key): r for r in rows}.values())

    def statement(self, count: int, width: int) -> str:
        """The insert of ``count`` rows of ``width`` values (``$1``... parameters)."""
        return _rows_statement(self.head or "", self.tail, count, width)

    @property
    def staging(self) -> str:
        """The session's temporary table that ``COPY`` fills for this insert."""
        return f"aioudata_in_{self.table}"

    def from_staging(self) -> str:
        """The insert of the rows copied into :attr:`staging`, which it empties (the next
        insert of the same transaction finds it empty)."""
        return (
            f"WITH staged AS (DELETE FROM {self.staging} RETURNING {self.columns})"
            f" {self.head} SELECT {self.columns} FROM staged{self.tail}"
        )


@functools.lru_cache(maxsize=64)
def _rows_statement(head: str, tail: str, count: int, width: int) -> str:
    rows = (
        "(" + ", ".join(f"${n}" for n in range(start + 1, start + width + 1)) + ")"
        for start in range(0, count * width, width)
    )
    return f"{head} VALUES {', '.join(rows)}{tail}"


@functools.lru_cache(maxsize=256)
def bulk_insert(sql: str) -> BulkInsert:
    """How ``sql`` (SQLite's) runs as one multi-row statement, if it can."""
    pg = translate(sql)
    found = _INSERT_VALUES.match(sql)
    if found is None:
        return BulkInsert()
    table, columns = found.group(2), [name.strip() for name in found.group(3).split(",")]
    conflict = _CONFLICT_UPDATE.search(sql)
    key: tuple[int, ...] = ()
    if conflict is not None:
        key = tuple(columns.index(name.strip()) for name in conflict.group(1).split(","))
    head, _, tail = pg.partition(" VALUES ($")
    return BulkInsert(head, tail[tail.index(")") + 1 :], key, table, ", ".join(columns))


class PgConnection:
    """What the store's SQL needs of a connection (``execute``, ``executemany``), on psycopg.

    ``executemany`` of an insert (every upsert of a page write) is one multi-row statement
    with PostgreSQL's own ``$n`` parameters; any other statement is pipelined (one round
    trip). Measured on a page's resources (800 narrow rows), a statement per row cost more
    than the whole rest of the page's write.
    """

    def __init__(self, conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
        self.raw = conn
        self.url = url
        #: The temporary tables made for ``COPY`` in this session, and whether the user may
        #: make them (None: not asked yet; without, every insert is a multi-row statement).
        self._staged: set[str] = set()
        self._may_stage: bool | None = None
        #: In a transaction of :meth:`transaction`, bulk inserts are held back until its end
        #: (the statements, and the tables they write; see :meth:`_release`).
        self._holding = False
        self._held: list[tuple[str, list[Any]]] = []
        self._held_tables: set[str] = set()
        #: Work for this thread while the server runs a transaction's held inserts (the
        #: next page's decoding: see PostgresStore.write_batch); it must not raise.
        self.meanwhile: Callable[[], None] | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.RawCursor[Any]:
        """Run one statement; its cursor (rows, ``rowcount``)."""
        self._before(sql)
        with self.failures():
            return psycopg.RawCursor(self.raw).execute(translate(sql), tuple(params))
        raise AssertionError("unreachable")  # pragma: no cover

    def _before(self, sql: str) -> None:
        """Run the held inserts first if ``sql`` may read or write one of their tables."""
        if self._held and not self._held_tables.isdisjoint(_tables_named(sql)):
            self._release()

    def _hold(self, statement: str, params: list[Any], *tables: str) -> None:
        self._held.append((statement, params))
        self._held_tables.update(tables)

    def _release(self, *, overlap: bool = False) -> None:
        """Run the held inserts, in their order, pipelined: sent at once, their results read
        at the end; with ``overlap``, :attr:`meanwhile` runs while the server works."""
        held, self._held = self._held, []
        self._held_tables.clear()
        if not held:
            return
        with self.failures(), self.raw.pipeline():
            for statement, params in held:
                psycopg.RawCursor(self.raw).execute(statement, params)
            if overlap and self.meanwhile is not None:
                self.meanwhile()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` for each of ``rows``: an insert of many narrow rows through ``COPY``,
        another insert as multi-row statements (up to PostgreSQL's 65,535 parameters each),
        any other statement pipelined."""
        if not rows:
            return
        bulk = bulk_insert(sql)
        self._before(sql)
        with self.failures(), psycopg.RawCursor(self.raw) as cursor:
            if bulk.head is None:
                cursor.executemany(translate(sql), rows)
                return
            unique = bulk.unique(rows)
            width = len(unique[0])
            if len(unique) * width >= _COPY_VALUES and _narrow(unique[0]) and self._stages():
                self._copy_insert(bulk, unique)
                return
            step = _MAX_PARAMETERS // width
            for start in range(0, len(unique), step):
                chunk = unique[start : start + step]
                statement = bulk.statement(len(chunk), width)
                values = [v for r in chunk for v in r]
                if self._holding:
                    self._hold(statement, values, bulk.table)
                else:
                    cursor.execute(statement, values)

    def _stages(self) -> bool:
        """Whether the user may make the temporary tables ``COPY`` goes through (asked once:
        a database may refuse them, and the failure would abort the transaction)."""
        if self._may_stage is None:
            found = self.raw.execute(
                "SELECT has_database_privilege(current_database(), 'TEMPORARY')"
            ).fetchone()
            self._may_stage = bool(found and found[0])
        return self._may_stage

    def _copy_insert(self, bulk: BulkInsert, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` with ``COPY`` into a temporary table, then one ``INSERT ...
        SELECT`` with the statement's own ``ON CONFLICT``. Measured on both sides of the
        connection: half the time of a multi-row ``VALUES`` on a page's 800 resources (the
        server parses and plans no 16,000 parameters, the driver adapts none), but 1.7 times
        it on 100 datasets of 8 KiB of JSON (written twice, compressed twice): narrow rows
        only."""
        raw = self.raw
        idle = raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with raw.transaction() if idle else contextlib.nullcontext():
            if bulk.staging not in self._staged:
                raw.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {bulk.staging} ON COMMIT DELETE ROWS"
                    f" AS SELECT {bulk.columns} FROM {bulk.table} WITH NO DATA"
                )
                self._staged.add(bulk.staging)
            with raw.cursor().copy(f"COPY {bulk.staging} ({bulk.columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if self._holding:
                self._hold(bulk.from_staging(), [], bulk.table, bulk.staging)
            else:
                raw.execute(bulk.from_staging())

    @contextlib.contextmanager
    def failures(self) -> Iterator[None]:
        """The driver's errors as :class:`DatabaseError` (one line, the kind of failure)."""
        try:
            yield
        except psycopg.Error as error:
            self._staged.clear()  # a rollback may take the creation of any with it
            lost = self.raw.broken or self.raw.closed
            raise database_error(error, self.url, connected=True, lost=lost) from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """Everything inside commits together, or not at all.

        Its bulk inserts are held back and sent together at its end, pipelined, unless a
        statement that may read or write their tables comes first: the server runs them
        while this thread does :attr:`meanwhile`, and they still commit with the rest.
        """
        outer = not self._holding
        if not outer:
            self._release()  # a savepoint: nothing is held across its edges
        self._holding = outer
        try:
            with self.failures(), self.raw.transaction():
                yield self
                if outer:
                    self._release(overlap=True)
        except BaseException:
            self._held.clear()
            self._held_tables.clear()
            self._staged.clear()  # rolled back: the staging tables it made are gone
            raise
        finally:
            self._holding = not outer

    def close(self) -> None:
        """Close the connection."""
        self.raw.close()


_WORDS = re.compile(r"\w+")


def _tables_named(sql: str) -> set[str]:
    """The words of ``sql``: a table it reads or writes is among them (the ``resources``
    view stands for the tables it reads)."""
    words = set(_WORDS.findall(sql))
    if "resources" in words:
        words.update(("resource_rows", "datasets"))
    return words


def _next_page(upcoming: deque[Undecoded], batch: Batch | Undecoded) -> Undecoded | None:
    """Take ``batch`` off the pages queued for this thread; the next one, if any."""
    if any(page is batch for page in upcoming):
        while upcoming.popleft() is not batch:
            pass
    return upcoming[0] if upcoming else None


def _decode_quietly(page: Undecoded) -> None:
    """Decode ``page`` ahead (kept in it); a failure is left for its own write to raise."""
    with contextlib.suppress(Exception):
        page.decode()


def _narrow(row: Sequence[Any]) -> bool:
    """Whether ``row`` is narrow enough for ``COPY`` to pay (see ``_copy_insert``)."""
    return sum(len(v) for v in row if isinstance(v, str)) < _WIDE_ROW


def _tables(conn: PgConnection, schema: str) -> set[str]:
    """The tables and views of ``schema``, whoever may read them."""
    found = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ? AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
        (schema,),
    )
    return {str(row[0]) for row in found}


def refuse_foreign(conn: PgConnection, url: DatabaseURL) -> None:
    """Raise :class:`MirrorError` (exit 2) unless the URL's schema is empty or a mirror of a
    schema version this aioudata knows. Read only: nothing is written before."""
    names = _tables(conn, url.schema)
    if not names:
        return
    marks: dict[str, str] = {}
    if "meta" in names:
        with contextlib.suppress(DatabaseError):  # another application's meta table
            marks = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if marks.get("application") != _APPLICATION:
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise MirrorError(
            f"{url} holds other tables ({shown}): refusing to write into another"
            " application's database; use another database, or ?schema=NAME in the URL",
            code=2,
        )
    version = marks.get("schema_version", SCHEMA_VERSION)
    if not version.isdigit() or int(version) > int(SCHEMA_VERSION):
        raise MirrorError(
            f"{url} holds a mirror of schema version {version}, newer than this"
            f" aioudata's ({SCHEMA_VERSION}): upgrade aioudata or use another --db",
            code=2,
        )


def _check_privileges(conn: PgConnection, url: DatabaseURL) -> None:
    """Raise :class:`DatabaseError` (``permission``) unless the user may create the mirror's
    tables in the schema (a new mirror) or write every one of them (an existing one)."""
    names = _tables(conn, url.schema)
    if "meta" not in names:
        row = conn.execute(
            "SELECT current_user, has_schema_privilege(current_user, ?, 'CREATE')",
            (url.schema,),
        ).fetchone()
        if row is not None and not row[1]:
            raise DatabaseError(
                f"{url}: permission denied: {row[0]} may not create tables in schema"
                f" {url.schema} (GRANT CREATE ON SCHEMA {url.schema} TO {row[0]})",
                kind="permission",
            )
        return
    denied = [
        str(name)
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ? AND c.relkind = 'r' AND NOT ("  # each: a list means any
            + " AND ".join(
                f"has_table_privilege(current_user, c.oid, '{privilege}')"
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE")
            )
            + ") ORDER BY 1",
            (url.schema,),
        )
    ]
    if denied:
        raise DatabaseError(
            f"{url}: permission denied: the user may not write {', '.join(denied[:5])}"
            " (GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA"
            f" {url.schema} TO the user)",
            kind="permission",
        )


def check_database(url: DatabaseURL) -> None:
    """Before anything is written, on a connection of its own: another application's tables
    are refused (:func:`refuse_foreign`), and so is a user who could not write the mirror."""
    conn = PgConnection(connect(url, purpose="mirror check"), url)
    try:
        refuse_foreign(conn, url)
        _check_privileges(conn, url)
    finally:
        conn.close()


class PostgresStore(Store):
    """The mirror in a PostgreSQL schema: :class:`~.store.Store`'s methods, its tables."""

    prefetches: ClassVar[bool] = True

    def __init__(self, url: DatabaseURL) -> None:
        self.url = url
        self.path = url  # type: ignore[assignment]  # what messages name
        self.run_id: int | None = None
        self.upcoming: deque[Undecoded] = deque()
        # The store's SQL (and the page writes') runs on it unchanged: see PgConnection.
        self.pg = PgConnection(connect(url), url)
        self.conn = self.pg  # type: ignore[assignment]
        try:
            refuse_foreign(self.pg, url)
            with self.pg.transaction() as conn:
                # Runs of other entities may create the tables at the same moment: one at a
                # time (IF NOT EXISTS does not cover a creation under way in another session).
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"ddl {url.schema}",))
                for statement in ddl(POSTGRESQL):
                    conn.execute(statement)
                for key, value in (
                    ("application", _APPLICATION),
                    ("schema_version", SCHEMA_VERSION),
                ):
                    conn.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value)
                    )
        except BaseException:
            self.pg.close()
            raise

    def transaction(self) -> Any:
        """``with store.transaction():`` — everything inside commits together, or not at all."""
        return self.pg.transaction()

    def write_batch(
        self, spec: EntitySpec, batch: Batch | Undecoded, pass_no: int, state: PassState | None
    ) -> Counts:
        """:meth:`Store.write_batch`; while the server runs the page's inserts, the next page
        waiting for this thread is decoded (this thread would only wait: a decoding thread
        of its own measured slower, each of the two then waiting for the other's GIL)."""
        following = _next_page(self.upcoming, batch)
        if following is not None:
            self.pg.meanwhile = functools.partial(_decode_quietly, following)
        try:
            return super().write_batch(spec, batch, pass_no, state)
        finally:
            self.pg.meanwhile = None

    def close(self) -> None:
        """Close the connection."""
        self.pg.close()

    def start_run(self, options: dict[str, Any]) -> int:
        """Record a new run; its id.

        Other mirror processes may run on this schema at the same time (other entities): only
        the runs still ``running`` over one of this run's entities are marked ``interrupted``
        (this process holds those entities' locks, so they died without ending).
        """
        entities = set(options.get("entities", ()))
        with self.transaction() as conn:
            stale = [
                int(run_id)
                for run_id, text in conn.execute(
                    "SELECT id, options FROM runs WHERE status = 'running'"
                )
                if entities & set(json.loads(text or "{}").get("entities", ()))
            ]
            for run_id in stale:
                conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
            if stale:
                logger.warning(
                    "run %s of this database ended without recording it (killed?):"
                    " marked interrupted",
                    ", ".join(map(str, stale)),
                )
            row = conn.execute(
                "INSERT INTO runs (started_at, status, options) VALUES (?, 'running', ?)"
                " RETURNING id",
                (utcnow(), json.dumps(options, sort_keys=True)),
            ).fetchone()
        self.run_id = int(row[0])
        return self.run_id
