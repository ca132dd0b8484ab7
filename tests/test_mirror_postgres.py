"""The mirror into PostgreSQL: every scenario run into both sinks, the databases compared row by
row; resuming after kill -9 and after a lost connection; one clear line for each bad database.

A real PostgreSQL server is started for the session (tests/postgres_fixture.py); without one
these tests skip, unless AIOUDATA_REQUIRE_POSTGRES=1 (CI), which fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aioudata import MirrorConfig, MirrorDatabaseError, MirrorError, RetryPolicy, run_mirror
from aioudata._cli import main
from aioudata._mirror import postgres, records
from aioudata._mirror.pglock import AdvisoryLock
from aioudata._mirror.pgurl import DatabaseURL
from aioudata._mirror.postgres import PgConnection, PostgresStore
from aioudata._mirror.records import Undecoded
from aioudata._mirror.store import PassState, Store
from benchmarks._server import CatalogServer
from tests.postgres_fixture import fresh_database, fresh_schema
from tests.postgres_server import PASSWORD, PostgresServer
from tests.summaries import summary_rows
from tests.test_e2e_mirror import cli
from tests.test_mirror_job import FakeCatalog, catalog, config
from tests.test_mirror_store import dataset
from tests.udata_server.fixture import UdataServer

__all__ = ["catalog"]

ROOT = Path(__file__).resolve().parent.parent

#: Columns that say when a row was written: they differ between any two runs.
WHEN = {"written_at", "recorded_at", "updated_at", "started_at", "finished_at", "gone_at"}
#: What a resumed run's bookkeeping may hold otherwise: its run and pass numbers, and the mark
#: of an entity that had finished before the interruption (the rerun is incremental for it).
RESUMED = frozenset({"changed_run", "pass_no", "round", "since"})
TABLES = (
    "meta",
    "datasets",
    "organizations",
    "resource_rows",
    "resources",
    "tags",
    "listed",
    "errors",
    "schema_warnings",
    "sync_state",
)


@contextlib.contextmanager
def opened(db: Path | str) -> Iterator[Store]:
    store = Store(db) if isinstance(db, Path) else PostgresStore(DatabaseURL.parse(db))
    try:
        yield store
    finally:
        store.close()


def dump(db: Path | str, table: str, ignore: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """Every row of ``table``, without the columns saying when (``gone_at``: whether)."""
    with opened(db) as store:
        cursor = store.conn.execute(f"SELECT * FROM {table}")
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    kept = [i for i, name in enumerate(names) if name not in WHEN | ignore]
    gone = names.index("gone_at") if "gone_at" in names else None
    found = [
        (*(row[i] for i in kept), *(() if gone is None else (row[gone] is not None,)))
        for row in rows
    ]
    return sorted(found, key=repr)


def assert_same(sqlite: Path, postgres: str, ignore: frozenset[str] = frozenset()) -> None:
    for table in TABLES:
        left, right = dump(sqlite, table, ignore), dump(postgres, table, ignore)
        assert left == right, table
    assert len(dump(postgres, "datasets")) > 0


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with opened(url) as store:
        return store.conn.execute(sql).fetchall()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return fresh_schema(postgres)


async def test_a_full_mirror_holds_the_same_rows_in_both(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str
) -> None:
    catalog.items["datasets"][4]["last_update"] = {"not": "a date"}  # a schema warning
    catalog.broken.add(catalog.items["datasets"][7]["id"])  # quarantined (errors)
    catalog.items["datasets"][2]["tags"] = ["b", "a", "b"]
    lite = await run_mirror(config(catalog, tmp_path / "m.sqlite"))
    pg = await run_mirror(config(catalog, tmp_path / "unused", db_url=pg_url))
    assert lite.status == pg.status == "ok"
    assert pg.entities["datasets"].stored == 10 and pg.errors_stored == 1
    assert "test-only-pw" not in pg.database and pg.database.startswith("postgresql://")
    assert_same(tmp_path / "m.sqlite", pg_url)
    assert not (tmp_path / "unused").exists()
    # The JSON exactly as received, and readable with PostgreSQL's JSON operators.
    [(text, title, formats)] = query(
        pg_url,
        "SELECT json::text, json->>'title', json_array_length(json->'resources')"
        f" FROM datasets WHERE id = '{catalog.items['datasets'][0]['id']}'",
    )
    assert title == catalog.items["datasets"][0]["title"] and formats == 2
    with opened(tmp_path / "m.sqlite") as store:
        [(same,)] = store.conn.execute(
            "SELECT json FROM datasets WHERE id = ?", (catalog.items["datasets"][0]["id"],)
        ).fetchall()
    assert text == same


async def test_an_incremental_run_marks_edits_additions_and_deletions_alike(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str
) -> None:
    sqlite_db = tmp_path / "m.sqlite"
    for db in (sqlite_db, pg_url):
        await run_mirror(into(catalog, db))
    items = catalog.items["datasets"]
    items[1]["title"] = "Edited"
    items[1]["last_update"] = items[1]["last_modified"] = "2031-01-01T00:00:00+00:00"
    removed = [items.pop(5)["id"], items.pop(5)["id"]]
    items.extend([dataset(40), dataset(41)])
    for item in items[-2:]:
        item["last_update"] = item["last_modified"] = "2031-01-02T00:00:00+00:00"
    summaries = [await run_mirror(into(catalog, db)) for db in (sqlite_db, pg_url)]
    for summary in summaries:
        counts = summary.entities["datasets"]
        assert counts.mode == "incremental" and (counts.new, counts.deleted) == (2, 2)
        assert counts.updated == 1
    assert_same(sqlite_db, pg_url)
    gone = query(pg_url, "SELECT id FROM datasets WHERE gone_at IS NOT NULL ORDER BY id")
    assert [row[0] for row in gone] == sorted(removed)
    assert query(pg_url, f"SELECT title FROM datasets WHERE id = '{items[1]['id']}'") == [
        ("Edited",)
    ]


def _target(db: Path | str) -> dict[str, Any]:
    return {"db": db} if isinstance(db, Path) else {"db_url": db}


def into(catalog: FakeCatalog, db: Path | str, **options: Any) -> MirrorConfig:
    """The fake catalog's mirror into the SQLite file or PostgreSQL URL ``db``."""
    if isinstance(db, Path):
        return config(catalog, db, **options)
    return config(catalog, Path("unused.sqlite"), db_url=db, **options)


async def test_a_flaky_portal_gives_the_same_rows_in_both(tmp_path: Path, pg_url: str) -> None:
    patient = RetryPolicy(max_attempts=12, backoff=0.002, max_backoff=0.01, max_time=60)
    async with CatalogServer(datasets=300, organizations=30, reuses=20, seed=5) as server:
        server.reconfigure(fault_rate=0.10)
        for db in (tmp_path / "m.sqlite", pg_url):
            options = {"base_url": server.base_url, "rate": None, "page_size": 20}
            summary = await run_mirror(
                MirrorConfig(**options, concurrency=8, retry=patient, **_target(db))
            )
            assert summary.status == "ok" and summary.entities["datasets"].stored == 300
    assert_same(tmp_path / "m.sqlite", pg_url)


async def _wait_for_pages(url: str, pages: int, process: Any) -> None:
    for _ in range(400):  # at most 20 s
        await asyncio.sleep(0.05)
        assert process.returncode is None, "the run ended before it could be killed"
        with contextlib.suppress(MirrorError):
            if query(
                url, f"SELECT 1 FROM sync_state WHERE entity = 'datasets' AND page >= {pages}"
            ):
                return
    raise AssertionError("no page was committed in time")


async def test_kill_9_then_resume_gives_the_rows_of_an_uninterrupted_run(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str
) -> None:
    catalog.items["datasets"] = [dataset(n) for n in range(1, 31)]
    reference = tmp_path / "reference.sqlite"
    await run_mirror(config(catalog, reference, page_size=2))
    env = {**os.environ, "AIOUDATA_DB_URL": pg_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioudata",
        "--base-url",
        catalog.base_url,
        "mirror",
        "--entities",
        "datasets,organizations",
        "--page-size",
        "2",
        "--concurrency",
        "1",
        "--rate",
        "8",
        "--quiet",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_for_pages(pg_url, 3, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await process.wait()
    stored = query(pg_url, "SELECT COUNT(*) FROM datasets")[0][0]
    assert 0 < stored < 30
    summary = await run_mirror(config(catalog, tmp_path / "unused", db_url=pg_url, page_size=2))
    assert summary.entities["datasets"].mode.startswith("resumed full pass")
    assert query(pg_url, "SELECT status FROM runs ORDER BY id") == [("interrupted",), ("ok",)]
    assert_same(reference, pg_url, RESUMED)


async def slow_mirror_under_way(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str
) -> tuple[Path, asyncio.Future[Any]]:
    """The reference SQLite mirror of 30 datasets, and a slow mirror of them into ``pg_url``
    that has committed its second page (20 s at most)."""
    catalog.items["datasets"] = [dataset(n) for n in range(1, 31)]
    reference = tmp_path / "reference.sqlite"
    await run_mirror(config(catalog, reference, page_size=2))
    slow = config(catalog, tmp_path / "unused", db_url=pg_url, page_size=2, rate=10.0)
    task = asyncio.ensure_future(run_mirror(slow))
    for _ in range(400):
        await asyncio.sleep(0.05)
        with contextlib.suppress(MirrorError):
            if query(pg_url, "SELECT 1 FROM sync_state WHERE entity = 'datasets' AND page >= 2"):
                break
    return reference, task


async def test_a_connection_lost_mid_run_is_one_line_and_the_rerun_resumes(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str, postgres: PostgresServer
) -> None:
    reference, task = await slow_mirror_under_way(catalog, tmp_path, pg_url)
    postgres.terminate(f"aioudata mirror (pid {os.getpid()})")
    with pytest.raises(MirrorDatabaseError) as info:
        await task
    assert info.value.kind == "dropped" and info.value.code == 6
    assert "run the same command again to resume" in str(info.value)
    summary = await run_mirror(config(catalog, tmp_path / "unused", db_url=pg_url, page_size=2))
    assert summary.status == "ok"
    assert summary.entities["datasets"].mode.startswith("resumed full pass")
    assert_same(reference, pg_url, RESUMED)


async def test_one_run_per_entity_and_schema_others_side_by_side(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str
) -> None:
    url = DatabaseURL.parse(pg_url)
    holder = AdvisoryLock(url, ["datasets"])
    await asyncio.to_thread(holder.acquire)
    try:
        with pytest.raises(MirrorError) as info:
            await run_mirror(config(catalog, tmp_path / "x", db_url=pg_url))
        assert "datasets of postgresql://" in str(info.value)
        assert f"(aioudata mirror lock (pid {os.getpid()}))" in str(info.value)
        assert PASSWORD not in str(info.value)
        # Another entity of the same schema, at the same time: allowed.
        done = await run_mirror(
            config(catalog, tmp_path / "x", db_url=pg_url, entities=("organizations",))
        )
        assert done.status == "ok" and done.entities["organizations"].stored == 3
    finally:
        holder.release()
    both = await asyncio.gather(
        run_mirror(config(catalog, tmp_path / "x", db_url=pg_url, entities=("datasets",))),
        run_mirror(config(catalog, tmp_path / "x", db_url=pg_url, entities=("organizations",))),
    )
    assert [summary.status for summary in both] == ["ok", "ok"]
    assert query(pg_url, "SELECT status FROM runs ORDER BY id") == [("ok",)] * 3


def _cli(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--base-url", "http://127.0.0.1:9/api/1", "mirror", "--db", url, "--quiet"])
    err = capsys.readouterr().err
    return code, err


def test_bad_databases_are_one_line_and_exit_6(
    postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    free = postgres.url().replace(f":{postgres.port}/", ":9/")
    cases = {
        "cannot reach the database server": free,
        "authentication failed": postgres.url(password="wrong-secret"),
        "database 'absent' does not exist": postgres.url("absent"),
    }
    for expected, url in cases.items():
        code, err = _cli(url, capsys)
        assert code == 6 and expected in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert "wrong-secret" not in err and PASSWORD not in err


def test_a_database_of_another_application_is_refused_untouched(
    postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = fresh_database(postgres)
    name = url.rsplit("/", 1)[1]
    postgres.psql("CREATE TABLE invoices (id int); CREATE TABLE datasets (x int)", name)
    code, err = _cli(url, capsys)
    assert code == 2 and "holds other tables (datasets, invoices)" in err, err
    import psycopg

    with psycopg.connect(url) as conn:  # untouched: no table added
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert sorted(row[0] for row in tables) == ["datasets", "invoices"]


def test_missing_permissions_are_one_line(
    postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = fresh_database(postgres)
    name = url.rsplit("/", 1)[1]
    postgres.psql(f"CREATE ROLE reader_{name} LOGIN PASSWORD 'reader-pw'")
    reader = url.replace(f"aioudata:{PASSWORD}@", f"reader_{name}:reader-pw@")
    code, err = _cli(reader, capsys)
    assert code == 6 and "permission denied" in err and "reader-pw" not in err, err


def test_the_password_comes_from_pgpassword_and_is_never_stored(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres.url(password=None) + "?schema=pgpass_env"
    config = MirrorConfig(db_url=url, rate=None)
    assert PASSWORD not in repr(config)
    with opened(url) as store:  # connects with PGPASSWORD
        assert store.get_meta("application") == "aioudata"
    with_password = MirrorConfig(db_url=postgres.url() + "?schema=pgpass_env", rate=None)
    assert PASSWORD not in repr(with_password) and PASSWORD not in str(with_password.db_url)
    assert "schema pgpass_env" in with_password.target


def test_a_sqlite_url_or_path_stays_sqlite(tmp_path: Path) -> None:
    config = MirrorConfig(db=tmp_path / "m.sqlite")
    assert config.db_url is None and config.target == str(tmp_path / "m.sqlite")
    from_text = MirrorConfig(db="postgresql://u:secret@h:5/d")  # type: ignore[arg-type]
    assert from_text.db_url is not None and "secret" not in repr(from_text)
    with pytest.raises(MirrorError, match="JSON Lines"):
        MirrorConfig(db_url="postgresql://u@h/d", out=tmp_path)


def test_sqlite_is_untouched_by_the_postgres_rows(tmp_path: Path) -> None:
    """The SQLite DDL did not change: a database written before opens as it was."""
    with opened(tmp_path / "m.sqlite") as store:
        assert store.get_meta("schema_version") == "3"
    tables = sqlite3.connect(tmp_path / "m.sqlite").execute("SELECT COUNT(*) FROM sqlite_master")
    assert tables.fetchone()[0] > 10


def _layout_sqlite(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    names = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    ]
    layout = {name: [r[1] for r in conn.execute(f"PRAGMA table_info({name})")] for name in names}
    conn.close()
    return layout


def test_both_sinks_have_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    with opened(tmp_path / "m.sqlite"):
        pass
    with opened(pg_url) as store:
        rows = store.conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = ? ORDER BY table_name, ordinal_position",
            (DatabaseURL.parse(pg_url).schema,),
        ).fetchall()
    layout: dict[str, list[str]] = {}
    for table, column in rows:
        layout.setdefault(table, []).append(column)
    assert layout == _layout_sqlite(tmp_path / "m.sqlite")


async def test_the_documented_postgresql_queries_run(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str
) -> None:
    catalog.items["datasets"][0]["tags"] = ["transport"]
    await run_mirror(into(catalog, pg_url))
    text = (ROOT / "docs" / "schema.md").read_text()
    block = text.split("## PostgreSQL", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";") if s.strip().strip("-")]
    readme = (ROOT / "README.md").read_text().split('-- psql "$AIOUDATA_DB_URL"', 1)[1]
    readme = readme.split("```", 1)[0]
    statements += [s.strip() for s in readme.split(";") if s.strip()]
    assert len(statements) >= 6
    with opened(pg_url) as store:
        for statement in statements:
            sql = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
            rows = store.conn.execute(sql).fetchall()
            assert rows, sql
        tagged = store.conn.execute(
            'SELECT id FROM datasets WHERE json::jsonb @> \'{"tags": ["transport"]}\''
        ).fetchall()
    assert tagged == [(catalog.items["datasets"][0]["id"],)]


async def test_entities_write_side_by_side_each_in_order(pg_url: str, tmp_path: Path) -> None:
    """A run's store has a connection per entity (up to --concurrency): one entity's page
    blocked in the server does not hold back another's."""
    import psycopg

    from aioudata._mirror.entities import ENTITIES
    from aioudata._mirror.records import decode_records
    from aioudata._mirror.sink import LanedStore, sink_for
    from tests.test_mirror_store import raw, state

    sink = sink_for(MirrorConfig(db_url=pg_url, concurrency=4), ["datasets", "organizations"])
    assert sink.lanes == 2
    assert sink_for(MirrorConfig(db_url=pg_url, concurrency=1), ["datasets", "reuses"]).lanes == 1
    store = sink.store(tmp_path / "unused")
    assert isinstance(store, LanedStore)
    await store.open()
    url = DatabaseURL.parse(pg_url)
    blocker = psycopg.connect(url.url)  # holds datasets in a transaction
    try:
        blocker.execute(f"LOCK TABLE {url.schema}.datasets IN ACCESS EXCLUSIVE MODE")
        datasets = ENTITIES["datasets"]
        blocked = asyncio.ensure_future(
            store.call(
                store.sync.write_batch,
                datasets,
                decode_records(datasets, raw(dataset(1))),
                1,
                state(1),
            )
        )
        orgs = PassState("organizations", pass_no=1, kind="full", page=3, finished=False)
        await asyncio.wait_for(store.call(store.sync.save_state, orgs), timeout=10)
        assert (await store.call(store.sync.load_state, "organizations")).page == 3
        assert not blocked.done()
        blocker.rollback()
        counts = await asyncio.wait_for(blocked, timeout=10)
        assert counts.new == 1
    finally:
        blocker.close()
        await store.close()


def test_the_password_may_come_from_a_pgpass_file(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres.port}:*:aioudata:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with opened(postgres.url(password=None) + "?schema=pgpass_file") as store:
        assert store.get_meta("schema_version") == "3"
        stored = store.conn.execute("SELECT key, value FROM meta").fetchall()
    assert all(PASSWORD not in value for _, value in stored)


def test_the_resource_checker_works_on_a_postgresql_mirror(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_crawl_postgres import copy_mirror, rows
    from tests.test_crawl_web import make_mirror

    sqlite_db = tmp_path / "m.sqlite"
    ids = make_mirror(sqlite_db, ["ftp://ftp.example.org/a.csv", "not a URL"])
    copy_mirror(sqlite_db, pg_url)
    assert main(["resources", "check", "--db", pg_url]) == 0
    err = capsys.readouterr().err
    assert PASSWORD not in err and "2 checked" in err
    found = rows(pg_url, "check_results")
    assert {found[i]["error"] for i in ids} == {"unsupported_scheme", "invalid_url"}
    assert main(["resources", "download", "--db", pg_url, "--dir", str(tmp_path / "f")]) == 0
    assert PASSWORD not in capsys.readouterr().err
    assert {row["result"] for row in rows(pg_url, "download_results").values()} == {"failed"}


def test_aioudata_db_url_is_the_default_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from aioudata._cli import _database, build_parser

    monkeypatch.setenv("AIOUDATA_DB_URL", "postgresql://u@h:5/d")
    assert _database(build_parser().parse_args(["mirror"])) == {"db_url": "postgresql://u@h:5/d"}
    given = build_parser().parse_args(["mirror", "--db", "local.sqlite"])
    assert _database(given) == {"db": Path("local.sqlite")}
    url = build_parser().parse_args(["mirror", "--db-url", "postgresql://x@y/z"])
    assert _database(url) == {"db_url": "postgresql://x@y/z"}
    with pytest.raises(MirrorError, match="not both"):
        _database(
            build_parser().parse_args(["mirror", "--db", "a", "--db-url", "postgresql://x@y/z"])
        )


@pytest.mark.udata_server
def test_the_real_udata_server_mirrored_into_both_gives_the_same_rows(
    udata_server: UdataServer, tmp_path: Path, pg_url: str
) -> None:
    sqlite_db = tmp_path / "m.sqlite"
    for db in (str(sqlite_db), pg_url):
        done = cli("mirror", "--base-url", udata_server.base_url, "--db", db, "--rate", "0")
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stderr
    assert_same(sqlite_db, pg_url)
    public = set(udata_server.manifest["datasets"]["public"])
    assert {row[0] for row in query(pg_url, "SELECT id FROM datasets")} == public
    for db in (str(sqlite_db), pg_url):  # incremental: nothing changed, on both
        again = cli("mirror", "--base-url", udata_server.base_url, "--db", db, "--rate", "0")
        assert again.returncode == 0, again.stderr
        assert summary_rows(again.stderr)["datasets"]["mode"] == "incremental", again.stderr
    assert_same(sqlite_db, pg_url)


def test_a_newer_mirror_and_a_user_who_may_not_write_it_are_refused(
    postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = fresh_database(postgres)
    name = url.rsplit("/", 1)[1]
    with opened(url):
        pass  # an empty mirror, owned by the superuser
    postgres.psql(f"CREATE ROLE viewer_{name} LOGIN PASSWORD 'viewer-pw'")
    postgres.psql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO viewer_{name}", name)
    viewer = url.replace(f"aioudata:{PASSWORD}@", f"viewer_{name}:viewer-pw@")
    code, err = _cli(viewer, capsys)
    assert code == 6 and "may not write" in err and "viewer-pw" not in err, err
    postgres.psql("UPDATE meta SET value = '99' WHERE key = 'schema_version'", name)
    code, err = _cli(url, capsys)
    assert code == 2 and "schema version 99, newer" in err, err


async def test_runs_creating_the_tables_at_once_do_not_collide(pg_url: str) -> None:
    url = DatabaseURL.parse(pg_url)
    opened = await asyncio.gather(
        *(asyncio.to_thread(PostgresStore, url) for _ in range(4)), return_exceptions=True
    )
    stores = [store for store in opened if isinstance(store, PostgresStore)]
    try:
        assert len(stores) == 4, opened
        assert {store.get_meta("schema_version") for store in stores} == {"3"}
    finally:
        for store in stores:
            store.close()


def test_two_portals_in_two_schemas_run_side_by_side(postgres: PostgresServer) -> None:
    first, second = (DatabaseURL.parse(fresh_schema(postgres)) for _ in range(2))
    locks = [AdvisoryLock(first, ["datasets"]), AdvisoryLock(second, ["datasets"])]
    for lock in locks:
        lock.acquire()  # the same entity, another schema: allowed
    again = AdvisoryLock(first, ["organizations", "datasets"])
    try:
        with pytest.raises(MirrorError, match="datasets of postgresql://"):
            again.acquire()
        assert not again.held
    finally:
        for lock in locks:
            lock.release()
    again.acquire()  # released: the next run goes
    again.release()


@pytest.mark.parametrize("seed", [0, 7, 13])
async def test_a_catalog_moving_during_the_crawl_loses_nothing_in_postgresql(
    seed: int, postgres: PostgresServer
) -> None:
    """tests/test_mirror_moving.py's requirement, into PostgreSQL: full, then incremental."""
    from tests.moving import MovingCatalog
    from tests.test_mirror_moving import config as moving_config

    url = fresh_schema(postgres)
    catalog = MovingCatalog(300, seed=seed, mutations=30, horizon=20)
    plan, catalog.plan = catalog.plan, {}
    await catalog.start()
    try:
        first = await run_mirror(moving_config(catalog, Path("unused"), db_url=url))
        live = "SELECT id FROM datasets WHERE gone_at IS NULL"
        assert first.status == "ok" and {r[0] for r in query(url, live)} == catalog.initial
        catalog.plan = plan
        catalog.postpone(catalog.requests)
        second = await run_mirror(moving_config(catalog, Path("unused"), db_url=url))
    finally:
        await catalog.stop()
    stored = {row[0] for row in query(url, live)}
    assert second.entities["datasets"].mode == "incremental" and catalog.log
    assert catalog.stable <= stored and stored <= catalog.initial | catalog.added


async def test_the_next_page_is_decoded_while_the_server_writes_one(
    catalog: FakeCatalog, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.items["datasets"] = [dataset(n) for n in range(1, 46)]  # 15 pages of 3
    ahead: list[Undecoded] = []
    decoded: list[int] = []
    decode, release = records.decode_records, PgConnection._release

    def counted_decode(spec: Any, raws: Any, **options: Any) -> Any:
        decoded.append(len(raws))
        return decode(spec, raws, **options)

    def slow_release(self: PgConnection, *, overlap: bool = False) -> None:
        time.sleep(0.02)  # a busy server: the next pages are queued by then
        release(self, overlap=overlap)

    monkeypatch.setattr(records, "decode_records", counted_decode)
    monkeypatch.setattr(PgConnection, "_release", slow_release)
    lite = await run_mirror(config(catalog, tmp_path / "m.sqlite"))
    decoded.clear()
    monkeypatch.setattr(
        postgres, "_decode_quietly", lambda page: (ahead.append(page), page.decode())
    )
    pg = await run_mirror(config(catalog, tmp_path / "unused", db_url=pg_url))
    assert lite.status == pg.status == "ok" and pg.entities["datasets"].stored == 45
    assert len(ahead) >= 5  # most pages were decoded ahead...
    assert sum(decoded) == 45 + 3  # ...and each only once (the datasets' and organizations')
    assert_same(tmp_path / "m.sqlite", pg_url)
