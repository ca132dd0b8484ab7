"""Checked by mypy --strict (make typecheck), never run: both sinks are a MirrorStore."""

from __future__ import annotations

from aioudata._mirror.postgres import PostgresStore
from aioudata._mirror.sink import MirrorStore
from aioudata._mirror.store import Store


def both_sinks(sqlite: Store, postgres: PostgresStore) -> tuple[MirrorStore, MirrorStore]:
    """The passes call a MirrorStore: each implementation must be one."""
    return sqlite, postgres
