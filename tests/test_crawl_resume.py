"""Resuming: a run killed (kill -9) or cancelled mid-way is resumed by the next one, which
requests only what was not recorded (the requests that were in flight, and those never
started); one check run per database at a time."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aioudata._crawl import CheckError, HostLimits, run_checks
from tests.test_crawl_web import Host, Web, config, make_mirror, query, results
from tests.test_crawl_web import webhosts as webhosts  # the fixture

CHILD = """
import asyncio, sys
from pathlib import Path
from aioudata._crawl import CheckConfig, HostLimits, run_checks
limit, concurrency = int(sys.argv[2]), int(sys.argv[3])
config = CheckConfig(
    db=Path(sys.argv[1]), concurrency=concurrency, per_host=HostLimits(limit, None), timeout=60
)
asyncio.run(run_checks(config))
"""


def recorded(db: Path) -> int:
    with contextlib.suppress(sqlite3.OperationalError):  # no table yet
        return int(query(db, "SELECT COUNT(*) FROM check_results")[0][0])
    return 0


async def until_stuck(db: Path, slow: Host, expected: int, done: object) -> None:
    """Wait (10 s at most) until ``expected`` results are committed and the slow host holds
    two requests; ``done()`` ends the wait early (the run ended)."""
    for _ in range(1000):
        if recorded(db) == expected and slow.waiting == 2:
            return
        if callable(done) and done():
            return
        await asyncio.sleep(0.01)


async def web_of(webhosts: Web) -> tuple[Host, Host, list[str]]:
    fast = await webhosts.host("fast")
    slow = await webhosts.host("slow", gate=asyncio.Event())
    urls = [fast.add(f"/f{n}") for n in range(30)] + [slow.add(f"/s{n}") for n in range(10)]
    return fast, slow, urls


async def test_a_run_killed_mid_way_is_resumed_with_only_what_was_not_recorded(
    webhosts: Web, tmp_path: Path
) -> None:
    fast, slow, urls = await web_of(webhosts)
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    log = tmp_path / "child.log"
    with log.open("wb") as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, str(db), "2", "8", stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        await until_stuck(db, slow, 30, lambda: child.returncode is not None)
        assert recorded(db) == 30 and slow.waiting == 2, log.read_text()
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        await child.wait()
    assert child.returncode == -9
    in_flight = {seen.path for seen in slow.seen}
    assert len(in_flight) == 2  # the two requests the killed run was waiting for
    assert query(db, "SELECT COUNT(*) FROM check_frontier") == [(10,)]
    assert query(db, "SELECT status FROM check_runs") == [("running",)]

    fast.seen.clear()
    slow.seen.clear()
    assert slow.gate is not None
    slow.gate.set()
    summary = await run_checks(config(db))

    assert summary.resumed and (summary.total, summary.checked) == (10, 10)
    assert fast.seen == []  # nothing recorded is checked again...
    paths = sorted(seen.path for seen in slow.seen)
    assert paths == sorted(f"/s{n}" for n in range(10))  # ...the rest once each
    assert in_flight <= set(paths)
    assert set(results(db)) == set(urls)
    assert query(db, "SELECT id, status FROM check_runs") == [(1, "ok")]
    assert query(db, "SELECT COUNT(*) FROM check_frontier") == [(0,)]


async def test_killed_at_any_moment_only_the_requests_in_flight_are_made_again(
    webhosts: Web, tmp_path: Path
) -> None:
    host = await webhosts.host("files", delay=0.002)
    urls = [host.add(f"/f{n}") for n in range(300)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(db), "4", "4", stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(1000):  # 10 s at most: until some results are committed, not all
            if recorded(db) >= 60 or child.returncode is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        child.kill()
        await child.wait()
    before = {seen.path for seen in host.seen}
    committed = {url.removeprefix(host.origin) for url in results(db)}
    assert 60 <= len(committed) < 300 and committed <= before
    host.seen.clear()

    summary = await run_checks(config(db, concurrency=4, per_host=HostLimits(4, None)))

    again = [seen.path for seen in host.seen]
    assert len(again) == len(set(again)) == 300 - len(committed) == summary.checked
    assert not committed & set(again)  # nothing recorded is checked again
    assert len(before & set(again)) <= 4  # but the requests in flight when it was killed
    assert len(results(db)) == 300


async def test_a_cancelled_run_is_interrupted_and_resumed(webhosts: Web, tmp_path: Path) -> None:
    fast, slow, urls = await web_of(webhosts)
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    task = asyncio.ensure_future(run_checks(config(db, per_host=HostLimits(2, None))))
    await until_stuck(db, slow, 30, task.done)
    assert recorded(db) == 30 and not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert query(db, "SELECT status FROM check_runs") == [("interrupted",)]

    fast.seen.clear()
    slow.seen.clear()
    assert slow.gate is not None
    slow.gate.set()
    summary = await run_checks(config(db))
    assert summary.resumed and summary.checked == 10 and fast.seen == []
    assert len(slow.seen) == 10 and len(results(db)) == 40


async def test_other_options_start_a_new_run(webhosts: Web, tmp_path: Path) -> None:
    _, slow, urls = await web_of(webhosts)
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    task = asyncio.ensure_future(run_checks(config(db)))
    await until_stuck(db, slow, 30, task.done)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert slow.gate is not None
    slow.gate.set()
    summary = await run_checks(config(db, host=(slow.key,), all=True))
    assert not summary.resumed and summary.total == 10
    assert query(db, "SELECT id, status FROM check_runs") == [(1, "abandoned"), (2, "ok")]


async def test_one_check_run_per_database(webhosts: Web, tmp_path: Path) -> None:
    _, slow, urls = await web_of(webhosts)
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    task = asyncio.ensure_future(run_checks(config(db)))
    try:
        await until_stuck(db, slow, 30, task.done)
        with pytest.raises(CheckError, match="being checked by another run"):
            await run_checks(config(db))
    finally:
        assert slow.gate is not None
        slow.gate.set()
        summary = await asyncio.wait_for(task, 30)
    assert summary.checked == 40
