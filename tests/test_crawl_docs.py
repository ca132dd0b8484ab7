"""The checker's tables are documented in docs/schema.md (its own section, which the mirror's
documentation test skips), and created as documented."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from aioudata._crawl.download_store import DOWNLOAD_TABLES, DownloadStore
from aioudata._crawl.store import TABLES, CheckStore
from aioudata._crawl.urls import ERROR_CLASSES
from tests.download_web import download_config
from tests.test_crawl_web import config
from tests.test_mirror_schema import documented as mirror_documented

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
MARKER = "<!-- aioudata-checker-tables:"


def section() -> str:
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1
    return text.split(MARKER, 1)[1]


def documented() -> dict[str, set[str]]:
    """Table → columns, in the checker's section (``#### `table` `` then `` `column` | ``)."""
    found: dict[str, set[str]] = {}
    table = None
    for line in section().splitlines():
        heading = re.match(r"^#### `(\w+)`", line)
        if heading:
            table = heading.group(1)
            found[table] = set()
            continue
        cell = re.match(r"^`(\w+)` \|", line)
        if cell and table is not None:
            found[table].add(cell.group(1))
    return found


def created(db: Path, prefix: str) -> dict[str, set[str]]:
    conn = sqlite3.connect(db)
    try:
        return {
            name: {row[1] for row in conn.execute(f"PRAGMA table_info({name})")}
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
                (prefix + "%",),
            )
        }
    finally:
        conn.close()


async def test_every_checker_table_and_column_is_documented(tmp_path: Path) -> None:
    db = tmp_path / "fresh.sqlite"
    store = await CheckStore(db, config(db), lambda: datetime.now(UTC)).open()
    await store.close()
    tables = created(db, "check_")
    assert set(tables) == set(TABLES)
    assert {k: v for k, v in documented().items() if k.startswith("check_")} == tables


async def test_every_download_table_and_column_is_documented(tmp_path: Path) -> None:
    db = tmp_path / "fresh.sqlite"
    store = DownloadStore(db, download_config(db, tmp_path), lambda: datetime.now(UTC))
    await (await store.open()).close()
    tables = created(db, "download_")
    assert set(tables) == set(DOWNLOAD_TABLES)
    assert {k: v for k, v in documented().items() if k.startswith("download_")} == tables
    assert set(created(db, "check_")) == set(TABLES)  # and the checker's, which it shares


def test_the_mirror_documentation_test_does_not_see_them() -> None:
    assert not any(name.startswith(("check_", "download_")) for name in mirror_documented())


def test_every_error_class_is_documented() -> None:
    results = section().split("#### `check_results`", 1)[1].split("####", 1)[0]
    row = next(line for line in results.splitlines() if line.startswith("`error` |"))
    assert set(re.findall(r"`(\w+)`", row.split("|", 1)[1])) == set(ERROR_CLASSES)
