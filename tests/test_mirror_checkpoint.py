"""WAL checkpoints off the write path (aioudata._mirror.checkpoint)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from aioudata._mirror import checkpoint
from aioudata._mirror.checkpoint import Checkpointer
from aioudata._mirror.entities import entity
from aioudata._mirror.records import Undecoded, decode_records
from aioudata._mirror.store import PassState, Store

from .test_mirror_store import dataset, raw

DATASETS = entity("datasets")
#: A commit of this test writes about this many WAL frames (4 KiB pages).
ROW = "x" * 40_000


def _writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT)")
    return conn


def _commits(conn: sqlite3.Connection, count: int, after: Checkpointer | None) -> int:
    """``count`` commits of ~10 frames each; the largest WAL file seen, in bytes."""
    wal = Path(f"{conn.execute('PRAGMA database_list').fetchone()[2]}-wal")
    largest = 0
    for n in range(count):
        conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (n % 5, ROW + str(n)))
        if after is not None:
            after.committed()
        largest = max(largest, wal.stat().st_size)
    return largest


def test_the_writer_never_checkpoints_on_its_own(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    try:
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    finally:
        store.close()


def test_pages_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    try:
        for n in range(1, 3 * checkpoint.EVERY + 1):
            batch = decode_records(DATASETS, raw(dataset(n, resources=2)))
            store.write_batch(DATASETS, batch, 1, PassState("datasets", page=n, finished=False))
            store.checkpoints._wait()  # each one ends before the next is due
        assert store.checkpoints.background >= 3
        assert store.checkpoints.forced == 0
        assert store.count("datasets") == 3 * checkpoint.EVERY
    finally:
        store.close()
    # Everything is in the database file itself once closed (the WAL is gone).
    assert not (tmp_path / "m.db-wal").exists()
    conn = sqlite3.connect(tmp_path / "m.db")
    assert conn.execute("SELECT COUNT(*) FROM datasets").fetchone() == (3 * checkpoint.EVERY,)
    conn.close()


def test_an_undecoded_page_is_decoded_where_it_is_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    try:
        page = Undecoded(DATASETS, raw(dataset(1, resources=3)))
        counts = store.write_batch(DATASETS, page, 1, None)
        assert (counts.new, counts.resources_new) == (1, 3)
        assert store.count("resources") == 3
    finally:
        store.close()


def test_the_wal_stays_bounded_when_checkpoints_cannot_keep_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without checkpoints at all, the WAL grows with every commit...
    conn = _writer(tmp_path / "alone.db")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    unbounded = _commits(conn, 60, None)
    conn.close()
    # ...with background ones that never end, the writer checkpoints itself when they are late.
    conn = _writer(tmp_path / "m.db")
    points = Checkpointer(tmp_path / "m.db", conn, every=2)
    monkeypatch.setattr(points, "_checkpoint", lambda: None)  # stuck: never ends one
    try:
        bounded = _commits(conn, 60, points)
        assert points.forced == 60 // (checkpoint.LATE * 2 + 1)
        assert points.background == 0
    finally:
        points.close()
        conn.close()
    per_commit = unbounded / 60
    assert bounded <= (checkpoint.LATE * 2 + 2) * per_commit
    assert unbounded > 5 * bounded


def test_a_long_wal_is_checkpointed_by_the_writer(tmp_path: Path) -> None:
    conn = _writer(tmp_path / "m.db")
    points = Checkpointer(tmp_path / "m.db", conn, every=10_000, max_frames=20)
    try:
        points.wal_frames = 21  # as a background checkpoint that could not finish reports
        _commits(conn, 1, points)
        assert (points.forced, points.wal_frames) == (1, 0)  # all of it copied
    finally:
        points.close()
        conn.close()


def test_a_failing_background_checkpoint_is_logged_and_writes_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn = _writer(tmp_path / "m.db")

    def refuse(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    points = Checkpointer(tmp_path / "m.db", conn, every=1)
    monkeypatch.setattr(checkpoint.sqlite3, "connect", refuse)
    try:
        with caplog.at_level(logging.WARNING, logger="aioudata.mirror"):
            _commits(conn, 3, points)
            points._wait()
        assert "background checkpoint failed: unable to open database file" in caplog.text
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (3,)
    finally:
        points.close()
        conn.close()
