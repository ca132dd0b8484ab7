"""A PostgreSQL run lock lost mid-run ends the run, never leaves it going on unprotected.

The lock is a session advisory lock: the server releases it when its connection ends, so a
lock connection dropped mid-run would let another run take it. The run checks its lock every
few seconds (here every 50 ms) and stops with ``MirrorDatabaseError`` (``kind`` ``lock``, exit
status 6, one line); the rerun resumes. Real server: its lock backend is terminated mid-run
(``pg_terminate_backend``), and only that one; unit tests of the watcher need no server.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aioudata import MirrorDatabaseError, run_checks, run_mirror
from aioudata._cli import _failure
from aioudata._mirror import watch
from aioudata._mirror.lock import MirrorLock
from aioudata._mirror.pglock import AdvisoryLock, _with_keepalives
from aioudata._mirror.pgurl import DatabaseURL
from tests.postgres_fixture import fresh_schema
from tests.postgres_server import PASSWORD, PostgresServer
from tests.test_crawl_postgres import pg, scalar, slow_web_in, until_stuck
from tests.test_crawl_web import Web, config
from tests.test_crawl_web import webhosts as webhosts  # the fixture
from tests.test_mirror_job import FakeCatalog
from tests.test_mirror_job import catalog as catalog  # the fixture
from tests.test_mirror_job import config as mirror_config
from tests.test_mirror_postgres import RESUMED, assert_same, query, slow_mirror_under_way

LOCK_APP = f"aioudata mirror lock (pid {os.getpid()})"


class Guard:
    """A guard lost at its ``lost_at``-th check."""

    def __init__(self, lost_at: int) -> None:
        self.lost_at = lost_at
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.checks >= self.lost_at:
            raise MirrorDatabaseError("the run lock was lost", kind="lock")


async def _work(guard: Guard, reached: list[str], error: Exception | None = None) -> None:
    async with watch.watched(guard, interval=0.01):
        await asyncio.sleep(0.05 if error else 30)
        if error is not None:
            raise error
        reached.append("end")


async def test_a_lost_guard_cancels_the_work_with_its_error() -> None:
    guard, reached = Guard(lost_at=3), list[str]()
    with pytest.raises(MirrorDatabaseError, match="lock was lost") as info:
        await asyncio.wait_for(_work(guard, reached), 10)
    assert info.value.kind == "lock" and guard.checks == 3 and reached == []


async def test_the_work_s_own_error_goes_through_unchanged() -> None:
    guard, reached = Guard(lost_at=1_000), []
    error = ValueError("bad")
    error.__cause__ = KeyError("k")
    with pytest.raises(ValueError, match="bad") as info:
        await _work(guard, reached, error)
    assert info.value is error and isinstance(error.__cause__, KeyError) and guard.checks >= 1


async def test_work_done_before_a_check_is_not_held_back() -> None:
    guard = Guard(lost_at=1)
    async with watch.watched(guard, interval=60):
        await asyncio.sleep(0)
    assert guard.checks == 0


async def test_a_cancelled_run_is_still_cancelled() -> None:
    guard = Guard(lost_at=1_000)

    async def work() -> None:
        async with watch.watched(guard, interval=0.01):
            await asyncio.sleep(30)

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert guard.checks >= 1


def test_a_file_lock_is_not_watched(tmp_path: Path) -> None:
    assert not isinstance(MirrorLock(tmp_path / "m.db"), watch.LosableGuard)


def test_the_lock_connection_gets_keepalives_unless_the_url_sets_them() -> None:
    plain = _with_keepalives(DatabaseURL.parse(f"postgresql://u:{PASSWORD}@h/d?schema=s"))
    assert "keepalives_idle=30" in plain.url and "tcp_user_timeout=60000" in plain.url
    assert plain.schema == "s" and PASSWORD not in repr(plain)
    own = _with_keepalives(DatabaseURL.parse("postgresql://h/d?keepalives_idle=5"))
    assert own.url.count("keepalives_idle") == 1 and "keepalives_idle=5" in own.url


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return fresh_schema(postgres)


@pytest.fixture
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "CHECK_INTERVAL", 0.05)


def _assert_lock_lost(error: MirrorDatabaseError) -> None:
    assert error.kind == "lock" and error.code == 6, error
    assert "the run lock on postgresql://" in str(error) and "was lost" in str(error)
    assert "\n" not in str(error) and PASSWORD not in str(error)
    code, line = _failure(error)
    assert code == 6 and "run the same command again to resume" in line


async def test_a_mirror_whose_lock_is_lost_stops_and_the_rerun_resumes(
    catalog: FakeCatalog,
    tmp_path: Path,
    pg_url: str,
    postgres: PostgresServer,
    quick_checks: None,
) -> None:
    reference, task = await slow_mirror_under_way(catalog, tmp_path, pg_url)
    # Only the lock's session: the run's writers go on, and would write unprotected.
    postgres.terminate(LOCK_APP)
    with pytest.raises(MirrorDatabaseError) as info:
        await asyncio.wait_for(task, 30)
    _assert_lock_lost(info.value)
    assert query(pg_url, "SELECT status FROM runs ORDER BY id") == [("failed",)]
    summary = await run_mirror(mirror_config(catalog, tmp_path / "unused", db_url=pg_url))
    assert summary.status == "ok"
    assert summary.entities["datasets"].mode.startswith("resumed full pass")
    assert_same(reference, pg_url, RESUMED)


async def test_a_check_whose_lock_is_lost_stops_and_the_rerun_resumes(
    webhosts: Web, tmp_path: Path, pg_url: str, quick_checks: None
) -> None:
    fast, slow = await slow_web_in(pg_url, webhosts, tmp_path)
    run = asyncio.ensure_future(run_checks(config(None, db_url=pg_url, concurrency=8)))
    try:
        await until_stuck(pg_url, slow, run.done)
        assert scalar(pg_url, "SELECT COUNT(*) FROM check_results") == 30 and not run.done()
        with pg(pg_url) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE application_name = '{LOCK_APP}'"
            )
        # The slow host still holds its two requests: only the watcher can end this run.
        with pytest.raises(MirrorDatabaseError) as info:
            await asyncio.wait_for(run, 30)
    finally:
        run.cancel()
        assert slow.gate is not None
        slow.gate.set()
    _assert_lock_lost(info.value)
    # The lock is free again: another run may take it (which is why this one had to stop).
    other = AdvisoryLock(DatabaseURL.parse(pg_url), ("run",))
    other.scope = f"aioudata resources {other.url.schema}"
    await asyncio.to_thread(other.acquire)
    other.release()
    fast.seen.clear()
    summary = await run_checks(config(None, db_url=pg_url))
    assert summary.resumed and summary.checked == 10 and fast.seen == []
    assert scalar(pg_url, "SELECT COUNT(*) FROM check_results") == 40
