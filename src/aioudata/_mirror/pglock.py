"""One run per schema and entity on PostgreSQL: session advisory locks, held for the run's life.

Mirror processes of other entities, or of other schemas (portals), run side by side; a second
run of an entity already being mirrored in the same schema is refused at once, naming the
process holding it. The server releases a session's locks when its connection ends, however
the process ended (``kill -9`` included): a dead run never blocks the next one.

So a lock connection lost mid-run releases the locks while the run goes on: :meth:`check`
(called every few seconds by :func:`~.watch.watched`) finds it and ends the run. TCP keepalives
on that connection make a silent network cut fail the check instead of hanging it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .config import MirrorDatabaseError, MirrorError
from .pgurl import DatabaseURL
from .postgres import PgConnection, connect

__all__ = ["AdvisoryLock"]

#: libpq's TCP keepalives for the lock's connection, unless the URL sets them: a peer gone
#: silent is found in about a minute (idle 30 s, then 3 probes 10 s apart), and a request
#: unanswered for 60 s fails (``tcp_user_timeout``, in ms, where the system has it).
_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}
# The advisory locks this session holds (two-key ones: objsubid 2).
_HELD = (
    "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'"
    " AND granted AND objsubid = 2"
)

_TRY = "SELECT pg_try_advisory_lock(hashtext(?), hashtext(?))"
# Who holds a two-key advisory lock: keys are int4, shown by pg_locks as oids (unsigned).
_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
    " AND l.classid::bigint = (hashtext(?)::bigint & 4294967295)"
    " AND l.objid::bigint = (hashtext(?)::bigint & 4294967295) LIMIT 1"
)


class AdvisoryLock:
    """``acquire()``: this process is the only mirror run of ``entities`` in the URL's schema."""

    def __init__(self, url: DatabaseURL, entities: Sequence[str]) -> None:
        self.url = url
        self.entities = tuple(dict.fromkeys(entities))
        self.scope = f"aioudata mirror {url.schema}"
        self._conn: PgConnection | None = None
        # A check (in a worker thread) and the release never use the connection together.
        self._using = threading.Lock()

    @property
    def held(self) -> bool:
        """True while this object holds the locks."""
        return self._conn is not None

    def acquire(self) -> None:
        """Take every entity's lock, or raise :class:`MirrorError` naming the holder."""
        if self._conn is not None:
            return
        conn = PgConnection(connect(_with_keepalives(self.url), purpose="mirror lock"), self.url)
        try:
            for name in self.entities:
                row = conn.execute(_TRY, (self.scope, name)).fetchone()
                if not (row and row[0]):
                    raise self._refusal(conn, name)
        except BaseException:
            conn.close()  # releases the locks taken
            raise
        self._conn = conn

    def holder(self, conn: PgConnection, name: str) -> str:
        """`` (the holder's application name)`` of lock ``name``, or nothing."""
        row: Any = conn.execute(_HOLDER, (self.scope, name)).fetchone()
        return f" ({row[0]})" if row and row[0] else ""

    def _refusal(self, conn: PgConnection, entity: str) -> MirrorError:
        by = self.holder(conn, entity)
        return MirrorError(
            f"{entity} of {self.url} is being mirrored by another run{by}: wait for it to"
            " end, or mirror other entities"
        )

    def check(self) -> None:
        """Raise :class:`MirrorDatabaseError` (``kind`` ``lock``) when the locks are no longer
        held: their connection was lost, and another run may have taken them since."""
        with self._using:
            conn = self._conn
            if conn is None:
                return
            try:
                row: Any = conn.execute(_HELD).fetchone()
            except MirrorError as error:
                raise self._lost(f"its connection ended: {_cause(error)}") from None
        if not row or row[0] < len(self.entities):
            raise self._lost("the server no longer holds it")

    def _lost(self, why: str) -> MirrorDatabaseError:
        return MirrorDatabaseError(
            f"the run lock on {self.url} was lost ({why}): the run stopped rather than go on"
            " unprotected; every committed page is kept, run the same command again to resume",
            kind="lock",
        )

    def release(self) -> None:
        """Release the locks (ending the session releases them)."""
        with self._using:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _with_keepalives(url: DatabaseURL) -> DatabaseURL:
    """``url`` with :data:`_KEEPALIVES` added where it does not set them itself."""
    parts = urlsplit(url.url)
    given = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = "&".join(f"{key}={value}" for key, value in _KEEPALIVES.items() if key not in given)
    if not extra:
        return url
    joined = f"{parts.query}&{extra}" if parts.query else extra
    return dataclasses.replace(url, url=parts._replace(query=joined).geturl())


def _cause(error: BaseException) -> str:
    """The driver's first line under ``error`` (never a password: the session was open)."""
    cause = error.__cause__ or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]
