"""A PostgreSQL database named by URL: what libpq is given, and what may be shown of it.

The password (from the URL; else libpq reads ``PGPASSWORD`` or ``~/.pgpass``) is passed to
libpq only: never shown, logged or stored. ``?schema=NAME`` (aioudata's own parameter) keeps a
mirror in a schema of its own, so that several portals share one database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .config import MirrorError

__all__ = ["DB_URL_ENV", "SCHEMES", "DatabaseURL", "is_database_url"]

#: The PostgreSQL database of ``aioudata mirror`` and ``resources`` when neither --db nor
#: --db-url is given.
DB_URL_ENV = "AIOUDATA_DB_URL"
#: URL schemes naming a PostgreSQL database.
SCHEMES = ("postgresql", "postgres")
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def is_database_url(text: str) -> bool:
    """True when ``text`` names a PostgreSQL database (``postgresql://...``)."""
    return text.split("://", 1)[0].lower() in SCHEMES and "://" in text


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?schema=NAME&...]`` URL.

    Its repr and :attr:`shown` never hold the password.
    """

    url: str = field(repr=False)
    #: The schema (namespace) holding the mirror's tables.
    schema: str = "public"
    #: What may be shown: the URL without its password (and without ``schema``).
    shown: str = ""

    def __repr__(self) -> str:
        return f"DatabaseURL({self.shown!r}, schema={self.schema!r})"

    def __str__(self) -> str:
        return self.shown if self.schema == "public" else f"{self.shown} (schema {self.schema})"

    @classmethod
    def parse(cls, text: str) -> DatabaseURL:
        """Read ``text``; :class:`MirrorError` (exit 2) naming what is wrong, never the password."""
        try:
            parts = urlsplit(text)
            host, port = parts.hostname, parts.port
        except ValueError as error:
            raise MirrorError(f"--db: not a valid PostgreSQL URL ({error})", code=2) from None
        if parts.scheme.lower() not in SCHEMES:
            raise MirrorError("--db: a PostgreSQL URL starts with postgresql://", code=2)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((value for key, value in query if key == "schema"), "public")
        if not _SCHEMA.fullmatch(schema):
            raise MirrorError(
                f"--db: schema {schema!r} must be a lower-case SQL name (letters, digits, _)",
                code=2,
            )
        rest = urlencode([(key, value) for key, value in query if key != "schema"])
        user = quote(unquote(parts.username or ""), safe="")
        where = host or ""
        if ":" in where:  # IPv6
            where = f"[{where}]"
        netloc = f"{user}@{where}" if user else where
        netloc += f":{port}" if port else ""
        shown = urlunsplit(("postgresql", netloc, parts.path, "", ""))
        libpq = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        return cls(libpq, schema, shown)

    @property
    def dbname(self) -> str:
        """The database's name, as the URL says it (empty: libpq's default)."""
        return urlsplit(self.url).path.lstrip("/")
