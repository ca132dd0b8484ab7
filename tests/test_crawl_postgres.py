"""The resource checker and downloader on a PostgreSQL mirror: the same results as on SQLite
(the tables compared row by row), incremental checks, resuming after kill -9, a checksum
mismatch and its fetch again, one run per schema, passwords never shown.

A real PostgreSQL server is started for the session (tests/postgres_fixture.py); without one
these tests skip, unless AIOUDATA_REQUIRE_POSTGRES=1 (CI), which fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aioudata import MirrorDatabaseError
from aioudata._cli import main
from aioudata._crawl import CheckError, run_checks, run_downloads
from aioudata._crawl.pglock import CheckAdvisoryLock
from aioudata._mirror.pgurl import DatabaseURL
from aioudata._mirror.postgres import PgConnection, PostgresStore, connect
from tests.download_web import (
    Files,
    digest,
    download_config,
    files_under,
    kill_when_under_way,
    mirror_with_checksums,
)
from tests.download_web import filehosts as filehosts  # the fixture
from tests.postgres_fixture import fresh_schema
from tests.postgres_server import PASSWORD, PostgresServer
from tests.test_crawl_resume import web_of
from tests.test_crawl_web import Host, Web, config, make_mirror
from tests.test_crawl_web import webhosts as webhosts  # the fixture

#: Columns that measure time spent: they differ between any two runs.
TIMED = {"elapsed"}
#: The mirror's tables the checker reads.
MIRROR_TABLES = ("datasets", "resource_rows")
BODY = bytes(range(256)) * 400


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return fresh_schema(postgres)


@contextlib.contextmanager
def pg(url: str) -> Iterator[PgConnection]:
    parsed = DatabaseURL.parse(url)
    conn = PgConnection(connect(parsed, purpose="test"), parsed)
    try:
        yield conn
    finally:
        conn.close()


def copy_mirror(sqlite_db: Path, url: str) -> None:
    """The mirror of ``sqlite_db`` into the PostgreSQL schema of ``url``: the same rows."""
    PostgresStore(DatabaseURL.parse(url)).close()  # the mirror's tables
    source = sqlite3.connect(sqlite_db)
    try:
        with pg(url) as conn, conn.transaction():
            for table in MIRROR_TABLES:
                columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
                rows = source.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    rows,
                )
    finally:
        source.close()


def rows(db: Path | str, table: str) -> dict[str, dict[str, Any]]:
    """``table``'s rows by resource id (``db``: an SQLite file or a PostgreSQL URL), without
    the columns of time spent."""
    sql = f"SELECT * FROM {table}"
    if isinstance(db, str):
        with pg(db) as conn:
            cursor = conn.execute(sql)
            names = [column.name for column in cursor.description or ()]
            found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    else:
        conn_ = sqlite3.connect(db)
        conn_.row_factory = sqlite3.Row
        try:
            found = [dict(row) for row in conn_.execute(sql)]
        finally:
            conn_.close()
    return {row["resource_id"]: {k: v for k, v in row.items() if k not in TIMED} for row in found}


def scalar(url: str, sql: str) -> Any:
    with pg(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def recorded(url: str) -> int:
    """Rows in ``check_results`` (0 before the table is created)."""
    with contextlib.suppress(MirrorDatabaseError):
        return int(scalar(url, "SELECT COUNT(*) FROM check_results"))
    return 0


async def until_stuck(url: str, slow: Host, done: Callable[[], bool]) -> None:
    """Wait (30 s at most: the machine may be busy) until the fast host's 30 results are
    committed and the slow host holds two requests; ``done()`` ends the wait early."""
    for _ in range(3000):
        if (recorded(url) == 30 and slow.waiting == 2) or done():
            return
        await asyncio.sleep(0.01)


async def slow_web_in(url: str, webhosts: Web, tmp_path: Path) -> tuple[Host, Host]:
    """A mirror in ``url`` of 30 URLs on a fast host and 10 on a slow one (held by its
    gate); the two hosts."""
    fast, slow, urls = await web_of(webhosts)
    make_mirror(tmp_path / "m.sqlite", urls)
    copy_mirror(tmp_path / "m.sqlite", url)
    return fast, slow


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_a_check_gives_the_same_rows_in_both_and_later_checks_are_incremental(
    webhosts: Web, tmp_path: Path, pg_url: str
) -> None:
    files = await webhosts.host("files")
    urls = [files.add(f"/f{n}.csv", b"x" * n) for n in range(1, 7)]
    urls += [files.url("/missing.csv"), "ftp://ftp.example.org/a.csv", "not a URL"]
    db = tmp_path / "m.sqlite"
    ids = make_mirror(db, urls)
    copy_mirror(db, pg_url)
    clock = Clock()  # both runs at the same moment: the same stamps

    on_sqlite = await run_checks(config(db, now=clock))
    on_postgres = await run_checks(config(None, db_url=pg_url, now=clock))

    assert on_postgres.source == "mirror" and on_postgres.total == on_sqlite.total == 9
    assert on_postgres.outcomes == on_sqlite.outcomes
    assert on_postgres.database == str(DatabaseURL.parse(pg_url))
    assert PASSWORD not in on_postgres.database and "(schema " in on_postgres.database
    for table in ("check_results", "check_history"):
        assert rows(pg_url, table) == rows(db, table), table
    assert set(rows(pg_url, "check_results")) == set(ids)
    assert scalar(pg_url, "SELECT COUNT(*) FROM check_frontier") == 0
    assert scalar(pg_url, "SELECT status FROM check_runs") == "ok"

    # Nothing due: no request. A day on, every file is asked for conditionally (304s).
    before = len(files.seen)
    again = await run_checks(config(None, db_url=pg_url, now=clock))
    assert again.total == 0 and len(files.seen) == before
    clock.now += timedelta(days=1)
    later = await run_checks(config(None, db_url=pg_url, now=clock))
    assert later.outcomes.get("not_modified") == 6
    # A URL changed in the mirror is due at once, and its validators are not sent.
    moved = files.add("/moved.csv")
    with pg(pg_url) as conn:
        conn.execute("UPDATE resource_rows SET url = ? WHERE id = ?", (moved, ids[0]))
    files.seen.clear()
    summary = await run_checks(config(None, db_url=pg_url, now=clock))
    assert summary.total == 1 and [s.path for s in files.seen] == ["/moved.csv"]
    assert "If-None-Match" not in files.seen[0].headers
    assert rows(pg_url, "check_results")[ids[0]]["checks"] == 1


async def test_the_host_and_format_filters_select_the_same_resources(
    webhosts: Web, tmp_path: Path, pg_url: str
) -> None:
    a, b = await webhosts.host("a"), await webhosts.host("b")
    urls = [(a.add("/1.csv"), "csv", None), (b.add("/2.csv"), "csv", None)]
    urls += [(a.add("/3.pdf"), "PDF ", None)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    copy_mirror(db, pg_url)
    for options in ({"host": (a.key,)}, {"format": ("pdf",)}):
        await run_checks(config(db, all=True, **options))
        await run_checks(config(None, db_url=pg_url, all=True, **options))
        assert set(rows(pg_url, "check_results")) == set(rows(db, "check_results")), options
    assert len(rows(pg_url, "check_results")) == 2  # a's two, then a's PDF again


CHILD = """
import asyncio, sys
from aioudata._crawl import CheckConfig, HostLimits, run_checks
config = CheckConfig(
    db_url=sys.argv[1], concurrency=8, per_host=HostLimits(2, None), timeout=60
)
asyncio.run(run_checks(config))
"""


async def test_a_check_killed_mid_way_is_resumed_with_only_what_was_not_recorded(
    webhosts: Web, tmp_path: Path, pg_url: str
) -> None:
    fast, slow = await slow_web_in(pg_url, webhosts, tmp_path)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, pg_url, stdout=subprocess.DEVNULL
    )
    try:
        await until_stuck(pg_url, slow, lambda: child.returncode is not None)
        # The other run holds the schema: a second one is refused at once.
        with pytest.raises(CheckError, match="being checked by another run"):
            await run_checks(config(None, db_url=pg_url))
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        await child.wait()
    assert child.returncode == -9
    assert recorded(pg_url) == 30
    assert scalar(pg_url, "SELECT COUNT(*) FROM check_frontier") == 10
    in_flight = {seen.path for seen in slow.seen}
    fast.seen.clear()
    slow.seen.clear()
    assert slow.gate is not None
    slow.gate.set()

    summary = await run_checks(config(None, db_url=pg_url))

    assert summary.resumed and (summary.total, summary.checked) == (10, 10)
    assert fast.seen == []  # nothing recorded is checked again
    assert sorted(s.path for s in slow.seen) == sorted(f"/s{n}" for n in range(10))
    assert len(in_flight) == 2 and in_flight <= {s.path for s in slow.seen}
    assert recorded(pg_url) == 40
    assert scalar(pg_url, "SELECT string_agg(status, ',') FROM check_runs") == "ok"


async def test_a_mismatch_is_recorded_alike_and_the_file_asked_for_whole_again(
    filehosts: Files, tmp_path: Path, pg_url: str
) -> None:
    host = await filehosts.host()
    good, bad = host.add("/good.csv", BODY), host.add("/bad.csv", BODY)
    host.corrupt["/bad.csv"] = BODY[:-1] + b"X"
    db = tmp_path / "m.sqlite"
    mirror_with_checksums(db, [(good, "sha256", digest(BODY)), (bad, "SHA256", digest(BODY))])
    copy_mirror(db, pg_url)
    clock = Clock()

    on_sqlite = await run_downloads(download_config(db, tmp_path / "a", now=clock))
    on_postgres = await run_downloads(
        download_config(None, tmp_path / "b", db_url=pg_url, now=clock)
    )

    assert on_postgres.outcomes == on_sqlite.outcomes == {"downloaded": 1, "mismatch": 1}
    assert rows(pg_url, "download_results") == rows(db, "download_results")
    assert files_under(tmp_path / "b") == files_under(tmp_path / "a")
    # Again: the good file is known unchanged (not asked for), the mismatch asked whole.
    host.seen.clear()
    del host.corrupt["/bad.csv"]
    summary = await run_downloads(download_config(None, tmp_path / "b", db_url=pg_url, now=clock))
    assert summary.skipped == 1 and [s.path for s in host.seen] == ["/bad.csv"]
    assert "If-None-Match" not in host.seen[0].headers and "Range" not in host.seen[0].headers
    assert {r["result"] for r in rows(pg_url, "download_results").values()} == {"downloaded"}
    assert scalar(pg_url, "SELECT skipped FROM download_runs ORDER BY id DESC LIMIT 1") == 1


DOWNLOAD_CHILD = """
import asyncio, sys
from pathlib import Path
from aioudata._crawl import DownloadConfig, HostLimits, run_downloads
config = DownloadConfig(
    db_url=sys.argv[1], dir=Path(sys.argv[2]), per_host=HostLimits(4, None), min_free=0,
    timeout=60, chunk_size=4096,
)
asyncio.run(run_downloads(config))
"""


async def test_a_download_killed_mid_transfer_resumes_its_parts(
    filehosts: Files, tmp_path: Path, pg_url: str
) -> None:
    host = await filehosts.host(chunk=4096, pause=0.004)  # ~1 MB/s a file: caught under way
    bodies = {f"/f{n}.bin": hashlib.sha256(bytes([n])).digest() * 36000 for n in range(12)}
    for path, body in bodies.items():
        host.add(path, body)
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(host.url(p), "sha256", digest(b)) for p, b in bodies.items()])
    copy_mirror(db, pg_url)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DOWNLOAD_CHILD, pg_url, str(out), stdout=subprocess.DEVNULL
    )
    await kill_when_under_way(child, out, 2)  # some files whole, others under way
    assert child.returncode == -9 and any(n.endswith(".part") for n in files_under(out))
    committed = scalar(pg_url, "SELECT COUNT(*) FROM download_results")
    host.seen.clear()

    summary = await run_downloads(download_config(None, out, db_url=pg_url))

    assert summary.resumed_run and summary.status == "ok" and summary.resumed >= 1
    assert sorted(files_under(out).values()) == sorted(bodies.values())
    assert summary.total == len(host.seen) == len(bodies) - committed
    assert scalar(pg_url, "SELECT COUNT(*) FROM download_results") == len(bodies)


async def test_one_run_per_schema(tmp_path: Path, pg_url: str) -> None:
    lock = CheckAdvisoryLock(DatabaseURL.parse(pg_url))
    lock.acquire()
    try:
        with pytest.raises(CheckError, match="being checked by another run") as refused:
            await run_downloads(download_config(None, tmp_path, db_url=pg_url))
        assert PASSWORD not in str(refused.value)
    finally:
        lock.release()
    PostgresStore(DatabaseURL.parse(pg_url)).close()  # an empty mirror: no API walk
    summary = await run_downloads(download_config(None, tmp_path, db_url=pg_url))
    assert summary.status == "ok" and (summary.source, summary.total) == ("mirror", 0)


def test_the_command_line_takes_the_url_and_never_shows_the_password(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aioudata._crawl import CheckConfig

    shown = repr(CheckConfig(db_url=pg_url))
    assert "DatabaseURL('postgresql://aioudata@" in shown and PASSWORD not in shown
    bad = pg_url.replace(PASSWORD, "wrong-secret")
    assert main(["resources", "check", "--db", bad, "--quiet"]) == 6
    err = capsys.readouterr().err
    assert "authentication failed" in err and "wrong-secret" not in err
    assert main(["resources", "check", "--db", "a.sqlite", "--db-url", bad, "--quiet"]) == 2
    assert "not both" in capsys.readouterr().err
    monkeypatch.setenv("AIOUDATA_DB_URL", bad)
    assert main(["resources", "download", "--quiet"]) == 6
    err = capsys.readouterr().err
    assert "authentication failed" in err and "wrong-secret" not in err


async def test_another_applications_schema_is_refused(tmp_path: Path, pg_url: str) -> None:
    with pg(pg_url) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(CheckError, match="other tables") as refused:
        await run_checks(config(None, db_url=pg_url))
    assert refused.value.code == 2 and PASSWORD not in str(refused.value)


async def test_the_tables_are_those_of_sqlite_and_the_documented_queries_run(
    filehosts: Files, tmp_path: Path, pg_url: str
) -> None:
    from tests.test_crawl_docs import created, section

    host = await filehosts.host()
    db = tmp_path / "m.sqlite"
    mirror_with_checksums(db, [(host.add("/a.csv", BODY), "sha256", digest(BODY))])
    copy_mirror(db, pg_url)
    await run_checks(config(db))
    await run_checks(config(None, db_url=pg_url))
    await run_downloads(download_config(db, tmp_path / "a"))
    await run_downloads(download_config(None, tmp_path / "b", db_url=pg_url))

    with pg(pg_url) as conn:
        columns: dict[str, set[str]] = {}
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND (table_name LIKE 'check%' OR table_name LIKE 'download%')",
            (DatabaseURL.parse(pg_url).schema,),
        ):
            columns.setdefault(table, set()).add(column)
        assert columns == {**created(db, "check_"), **created(db, "download_")}
        code = [
            line
            for block in section().split("```sql")[1:]
            for line in block.split("```", 1)[0].splitlines()
            if not line.startswith("--")
        ]
        queries = [q.strip() for q in "\n".join(code).split(";") if q.strip()]
        assert len(queries) >= 8
        for sql in queries:
            conn.execute(sql.replace("= ?", "= 'x'"))  # each runs on PostgreSQL too


async def test_without_a_mirror_the_api_is_walked_into_the_schema(
    webhosts: Web, tmp_path: Path, pg_url: str
) -> None:
    from tests.test_crawl_check import FakeApi
    from tests.test_crawl_web import resource_id

    files = await webhosts.host("files")
    api = FakeApi([])
    await api.start()
    urls = [files.add(f"/{n}.csv") for n in range(5)]
    api.datasets = [
        {
            "id": f"{n:024x}",
            "organization": {"id": "org"},
            "resources": [{"id": resource_id(n), "url": url, "format": "csv"}],
        }
        for n, url in enumerate(urls)
    ]
    # The last dataset listed twice (a catalog moving under the walk): staged once.
    api.datasets.append(api.datasets[-1])
    try:
        summary = await run_checks(
            config(None, db_url=pg_url, base_url=f"http://127.0.0.1:{api.port}/api/1", page_size=2)
        )
    finally:
        assert api.runner is not None
        await api.runner.cleanup()

    assert summary.source == "api" and summary.outcomes == {"2xx": 5}
    assert set(rows(pg_url, "check_results")) == {resource_id(n) for n in range(5)}
    assert scalar(pg_url, "SELECT source FROM check_runs") == "api"
    assert scalar(pg_url, "SELECT value FROM meta WHERE key = 'application'") == "aioudata"


async def test_a_connection_lost_mid_run_fails_in_one_line_and_the_rerun_resumes(
    webhosts: Web, tmp_path: Path, pg_url: str
) -> None:
    fast, slow = await slow_web_in(pg_url, webhosts, tmp_path)
    run = asyncio.ensure_future(run_checks(config(None, db_url=pg_url, concurrency=8)))
    try:
        await until_stuck(pg_url, slow, run.done)
        assert recorded(pg_url) == 30 and slow.waiting == 2 and not run.done()
        with pg(pg_url) as conn:  # the server ends the run's sessions (its writer's too)
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE 'aioudata resources%'"
            )
        assert slow.gate is not None
        slow.gate.set()
        with pytest.raises(MirrorDatabaseError) as lost:
            await asyncio.wait_for(run, 30)
    finally:
        run.cancel()
    assert lost.value.code == 6 and PASSWORD not in str(lost.value)
    assert "\n" not in str(lost.value) and lost.value.kind == "dropped", lost.value
    slow.seen.clear()
    fast.seen.clear()

    summary = await run_checks(config(None, db_url=pg_url))

    assert summary.resumed and summary.checked == 10 and fast.seen == []
    assert scalar(pg_url, "SELECT COUNT(*) FROM check_results") == 40


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_writes_of_one_group_commit_are_seen_by_the_next_ones(
    tmp_path: Path, pg_url: str, kind: str
) -> None:
    """A result and a host given up, in one transaction: the host's URLs but the recorded one
    are given up (on PostgreSQL the result's writes wait for the commit, but not past a read)."""
    from aioudata._crawl.pgstore import PgCheckStore
    from aioudata._crawl.results import Outcome
    from aioudata._crawl.store import CheckStore

    urls = [f"http://files.test/{n}.csv" for n in range(3)]
    db = tmp_path / "m.sqlite"
    ids = make_mirror(db, urls)
    copy_mirror(db, pg_url)
    target: Any = db if kind == "sqlite" else DatabaseURL.parse(pg_url)
    opener = CheckStore if kind == "sqlite" else PgCheckStore
    store = await opener(target, config(target), Clock()).open()
    try:
        await store.open_run("mirror")
        assert await store.build_frontier("mirror") == 3
        (first, *_) = store.load("files.test", 0, 10)
        assert first.resource_id == ids[0]
        await asyncio.gather(
            store.record(first, Outcome(status=200)),
            store.give_up("files.test", Outcome(error="host_down"), 60.0, ()),
        )
    finally:
        await store.close()
    found = rows(pg_url if kind == "postgresql" else db, "check_results")
    assert {i: (r["status"], r["error"]) for i, r in found.items()} == {
        ids[0]: (200, None),
        ids[1]: (None, "host_down"),
        ids[2]: (None, "host_down"),
    }
