"""The ``postgres`` pytest fixture: one throwaway PostgreSQL server per test session.

When no server can start here (no binaries, no psycopg), tests using it are skipped, unless
``AIOUDATA_REQUIRE_POSTGRES=1`` (set in CI), which fails them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.postgres_server import PostgresServer, PostgresUnavailable

__all__ = ["REQUIRE_ENV", "fresh_database", "fresh_schema", "postgres"]

REQUIRE_ENV = "AIOUDATA_REQUIRE_POSTGRES"
_NUMBERS = itertools.count(1)


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
    pytest.skip(f"{reason} (set {REQUIRE_ENV}=1 to fail instead)")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL server on 127.0.0.1 and a unix socket, stopped at the end."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    try:
        server = PostgresServer().start()
    except (PostgresUnavailable, OSError) as error:
        _unavailable(f"cannot start a PostgreSQL server: {error}")
    try:
        yield server
    finally:
        server.stop()


def fresh_database(server: PostgresServer) -> str:
    """The URL of a new empty database on ``server``."""
    return server.create_database(f"mirror_{os.getpid()}_{next(_NUMBERS)}")


def fresh_schema(server: PostgresServer) -> str:
    """The URL of a new empty schema (``?schema=``) of the server's ``postgres`` database."""
    return f"{server.url()}?schema=t{os.getpid()}_{next(_NUMBERS)}"
