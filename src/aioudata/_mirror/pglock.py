"""One run per schema and entity on PostgreSQL: session advisory locks, held for the run's life.

Mirror processes of other entities, or of other schemas (portals), run side by side; a second
run of an entity already being mirrored in the same schema is refused at once, naming the
process holding it. The server releases a session's locks when its connection ends, however
the process ended (``kill -9`` included): a dead run never blocks the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import MirrorError
from .pgurl import DatabaseURL
from .postgres import PgConnection, connect

__all__ = ["AdvisoryLock"]

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

    @property
    def held(self) -> bool:
        """True while this object holds the locks."""
        return self._conn is not None

    def acquire(self) -> None:
        """Take every entity's lock, or raise :class:`MirrorError` naming the holder."""
        if self._conn is not None:
            return
        conn = PgConnection(connect(self.url, purpose="mirror lock"), self.url)
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

    def release(self) -> None:
        """Release the locks (ending the session releases them)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
