"""A database of another application is refused in one line, before anything is written.

Issue 12, item 5: ``--db x.db`` on another tool's SQLite file switched it to WAL for good and
then failed (a conflicting ``datasets`` table), or silently added the mirror's tables to it.
Only an absent or empty file, or an aioudata mirror (``meta.application``), is written to.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from aioudata._mirror import MirrorError, run_mirror
from aioudata._mirror.store import Store
from tests.test_mirror_job import FakeCatalog, catalog, config

__all__ = ["catalog"]

ROOT = Path(__file__).resolve().parent.parent
HANG = 60.0  # only to stop a hang


def _other_application(path: Path, table: str) -> None:
    """An SQLite file another tool wrote (rollback journal, its own tables)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany(f"INSERT INTO {table} (name) VALUES (?)", [("a",), ("b",)])
    conn.close()


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("table", ["datasets", "notes"])
async def test_another_applications_database_is_refused_and_left_untouched(
    catalog: FakeCatalog, tmp_path: Path, table: str
) -> None:
    db = tmp_path / "x.db"
    _other_application(db, table)
    before = db.read_bytes()
    assert _journal_mode(db) == "delete"
    with pytest.raises(MirrorError) as info:
        await run_mirror(config(catalog, db))
    message = str(info.value)
    assert info.value.code == 2 and "\n" not in message
    assert "is not an aioudata mirror" in message and table in message
    assert db.read_bytes() == before and _journal_mode(db) == "delete"
    assert os.listdir(tmp_path) == ["x.db"]  # no -wal, no -shm, no lock file
    assert catalog.requests == 0  # refused before the portal is asked anything
    with pytest.raises(MirrorError, match="is not an aioudata mirror"):
        Store(db)  # the store refuses it too, whoever opens it
    assert db.read_bytes() == before


async def test_a_file_that_is_not_a_database_is_refused_untouched(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("not a database, but someone's notes\n" * 200)
    before = db.read_bytes()
    with pytest.raises(MirrorError, match="is not an SQLite database") as info:
        await run_mirror(config(catalog, db))
    assert info.value.code == 2 and db.read_bytes() == before


async def test_an_empty_file_and_a_mirror_are_written(catalog: FakeCatalog, tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    assert (await run_mirror(config(catalog, db))).status == "ok"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'application'").fetchone() == (
            "aioudata",
        )
        # A mirror written before the marker existed is still known as one, and marked.
        with conn:
            conn.execute("DELETE FROM meta WHERE key = 'application'")
    finally:
        conn.close()
    assert (await run_mirror(config(catalog, db))).status == "ok"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'application'").fetchone() == (
            "aioudata",
        )
    finally:
        conn.close()


async def test_the_command_refuses_it_in_one_line(catalog: FakeCatalog, tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    _other_application(db, "datasets")
    before = db.read_bytes()
    env = {k: v for k, v in os.environ.items() if k != "UDATA_API_KEY"}
    env["PYTHONPATH"] = str(ROOT / "src")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioudata",
        "mirror",
        "--base-url",
        catalog.base_url,
        "--db",
        str(db),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _, err = await asyncio.wait_for(process.communicate(), HANG)
    assert process.returncode == 2
    (line,) = err.decode().splitlines()
    assert line.startswith("aioudata: error:") and "is not an aioudata mirror" in line
    assert db.read_bytes() == before and _journal_mode(db) == "delete"
