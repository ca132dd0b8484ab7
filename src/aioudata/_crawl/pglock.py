"""One check or download run per PostgreSQL schema: a session advisory lock, held for the run's
life and released by the server when the session ends, however the process ended."""

from __future__ import annotations

from .._mirror.pglock import AdvisoryLock
from .._mirror.pgurl import DatabaseURL
from .._mirror.postgres import PgConnection
from .config import CheckError

__all__ = ["CheckAdvisoryLock"]


class CheckAdvisoryLock(AdvisoryLock):
    """``acquire()``: this process is the only check or download run in the URL's schema
    (mirror runs hold other locks: they may write the schema meanwhile)."""

    def __init__(self, url: DatabaseURL) -> None:
        super().__init__(url, ("run",))
        self.scope = f"aioudata resources {url.schema}"

    def _refusal(self, conn: PgConnection, entity: str) -> CheckError:
        return CheckError(
            f"{self.url} is being checked by another run{self.holder(conn, entity)}: wait for"
            " it to end, or use another --db"
        )
