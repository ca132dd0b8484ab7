"""One mirror run per database; a run killed with kill -9 is not left ``running`` forever.

Issue 12, item 6: two mirrors on one database both ran (double traffic, a confusing "resumed
at page 1"). The run holds an OS lock on ``<db>.lock`` for its life: the second refuses at once,
and the lock goes with the process however it dies. The next run marks a run the database
still says is ``running`` as ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from aiohttp import web

from aioudata._mirror import MirrorError, run_mirror
from aioudata._mirror.lock import MirrorLock, lock_path
from tests.test_mirror_job import FakeCatalog, catalog, config

__all__ = ["catalog"]

ROOT = Path(__file__).resolve().parent.parent
HANG = 60.0  # only to stop a hang
HOLDER = """
import sys
from pathlib import Path
from aioudata._mirror.lock import MirrorLock
MirrorLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
sys.stdin.read()  # until killed, or its stdin closes
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "UDATA_API_KEY"}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


async def _hold(db: Path) -> asyncio.subprocess.Process:
    """Another process holding the database's lock."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        str(db),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=_env(),
    )
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), HANG) == b"locked\n"
    return holder


async def test_a_second_run_on_a_locked_database_refuses_at_once(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    holder = await _hold(db)
    try:
        with pytest.raises(MirrorError) as info:
            await run_mirror(config(catalog, db))
        message = str(info.value)
        assert "is being mirrored by another run" in message and f"pid {holder.pid}" in message
        assert catalog.requests == 0 and not db.exists()  # no traffic, nothing written
        # The command line says it in one line.
        command = await asyncio.create_subprocess_exec(
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
            env=_env(),
        )
        _, err = await asyncio.wait_for(command.communicate(), HANG)
        assert command.returncode == 1
        (line,) = err.decode().splitlines()
        assert "is being mirrored by another run" in line and "--db" in line
    finally:
        holder.kill()  # kill -9: the OS releases its lock
        await asyncio.wait_for(holder.wait(), HANG)
    summary = await run_mirror(config(catalog, db))
    assert summary.status == "ok"
    assert not lock_path(db).exists()  # removed when the run released it


async def test_the_lock_is_exclusive_within_a_process_and_released(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    with MirrorLock(db) as first:
        assert first.held
        with pytest.raises(MirrorError, match=f"pid {os.getpid()}"):
            MirrorLock(db).acquire()
    assert not first.held and not lock_path(db).exists()
    with MirrorLock(db):
        pass


class _Stalling(FakeCatalog):
    """The fake catalog whose dataset listing answers only once ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.listing = asyncio.Event()
        self.release = asyncio.Event()

    async def _list(self, request: web.Request) -> web.Response:
        self.listing.set()
        if request.match_info["entity"] == "datasets":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), HANG)
        return await super()._list(request)


async def test_a_run_killed_with_kill_9_is_marked_interrupted_by_the_next(
    tmp_path: Path,
) -> None:
    server = _Stalling()
    await server.start()
    try:
        db = tmp_path / "m.sqlite"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioudata",
            "mirror",
            "--base-url",
            server.base_url,
            "--db",
            str(db),
            "--entities",
            "datasets",
            "--quiet",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(),
        )
        try:
            await asyncio.wait_for(server.listing.wait(), HANG)  # its run is recorded
        finally:
            process.kill()
            await asyncio.wait_for(process.communicate(), HANG)
        assert process.returncode == -9
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("SELECT id, status FROM runs").fetchall() == [(1, "running")]
        finally:
            conn.close()
        server.release.set()
        summary = await run_mirror(config(server, db, entities=("datasets",)))
        assert summary.status == "ok"
        conn = sqlite3.connect(db)
        try:
            runs = conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
        finally:
            conn.close()
        assert runs == [(1, "interrupted"), (2, "ok")]
    finally:
        server.release.set()
        await server.stop()
