"""Bulk inserts into PostgreSQL (``PgConnection.executemany``): many narrow rows go through
``COPY`` and a staging table, with the statement's own conflict rule; the rows that arrive are
exactly the ones sent, whatever they hold, in or out of a transaction, after a failure too.

Against the real server of tests/postgres_fixture.py (skipped without one, failed in CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aioudata import MirrorDatabaseError as DatabaseError
from aioudata._mirror.pgurl import DatabaseURL
from aioudata._mirror.postgres import PgConnection, connect
from tests.postgres_fixture import fresh_database, fresh_schema
from tests.postgres_server import PASSWORD, PostgresServer

UPSERT = (
    "INSERT INTO t (id, a, n) VALUES (?, ?, ?)"
    " ON CONFLICT(id) DO UPDATE SET a = excluded.a, n = excluded.n WHERE a IS NOT excluded.a"
)
IGNORE = "INSERT OR IGNORE INTO t (id, a, n) VALUES (?, ?, ?)"
#: Enough narrow rows of three values for COPY (see postgres._COPY_VALUES).
MANY = 4000


@pytest.fixture
def pg(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PgConnection]:
    url = DatabaseURL.parse(fresh_schema(postgres))
    conn = PgConnection(connect(url), url)
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, a TEXT, n INTEGER NOT NULL)")
    copies: list[int] = []
    original = PgConnection._copy_insert

    def counted(self: PgConnection, bulk: Any, rows: Any) -> None:
        copies.append(len(rows))
        original(self, bulk, rows)

    monkeypatch.setattr(PgConnection, "_copy_insert", counted)
    conn.copies = copies  # type: ignore[attr-defined]
    try:
        yield conn
    finally:
        conn.close()


def rows_of(conn: PgConnection) -> dict[str, tuple[Any, ...]]:
    return {row[0]: tuple(row[1:]) for row in conn.execute("SELECT id, a, n FROM t")}


def staged(conn: PgConnection) -> int:
    (count,) = conn.execute("SELECT COUNT(*) FROM aioudata_in_t").fetchall()
    return int(count[0])


def test_many_narrow_rows_go_through_copy_and_arrive_exactly(pg: PgConnection) -> None:
    odd = ["tab\there", "new\nline", "back\\slash", "\\N", "", "é€😀", '{"k": "v\\n"}', None]
    rows = [(f"r{i:05d}", odd[i % len(odd)], i) for i in range(MANY)]
    pg.executemany(UPSERT, rows)  # autocommit: the copy and its insert in one transaction
    assert pg.copies == [MANY]  # type: ignore[attr-defined]
    assert rows_of(pg) == {i: (a, n) for i, a, n in rows}  # "\\N" a string, None a NULL
    assert staged(pg) == 0


def test_the_last_row_of_a_key_wins_and_the_conflict_rule_is_the_statements(
    pg: PgConnection,
) -> None:
    pg.executemany(UPSERT, [(f"r{i}", "first", 1) for i in range(MANY)])
    again = [(f"r{i}", "second", 2) for i in range(MANY)] + [("r0", "last", 3)]
    pg.executemany(UPSERT, again)
    found = rows_of(pg)
    assert found["r0"] == ("last", 3) and found["r1"] == ("second", 2)
    pg.executemany(IGNORE, [(f"r{i}", "ignored", 9) for i in range(MANY + 10)])
    found = rows_of(pg)
    assert found["r1"] == ("second", 2) and found[f"r{MANY + 5}"] == ("ignored", 9)
    assert len(found) == MANY + 10 and len(pg.copies) == 3  # type: ignore[attr-defined]


def test_two_inserts_in_one_transaction_each_insert_their_own_rows(pg: PgConnection) -> None:
    with pg.transaction():
        pg.executemany(UPSERT, [(f"a{i}", "a", i) for i in range(MANY)])
        pg.executemany(UPSERT, [(f"b{i}", "b", i) for i in range(MANY)])
        assert staged(pg) == 0  # the first insert emptied the staging table
    found = rows_of(pg)
    assert len(found) == 2 * MANY and found["a7"] == ("a", 7) and found["b7"] == ("b", 7)


def test_a_failed_insert_leaves_nothing_behind_for_the_next(pg: PgConnection) -> None:
    bad = [(f"x{i}", "x", i) for i in range(MANY)] + [("broken", "x", None)]  # n NOT NULL

    def insert_in_transaction() -> None:
        with pg.transaction():
            pg.executemany(UPSERT, bad)

    with pytest.raises(DatabaseError):
        insert_in_transaction()
    assert rows_of(pg) == {}
    pg.executemany(UPSERT, [(f"y{i}", "y", i) for i in range(MANY)])
    assert set(rows_of(pg)) == {f"y{i}" for i in range(MANY)}  # no x row came along


def test_few_or_wide_rows_are_one_multi_row_statement(pg: PgConnection) -> None:
    pg.executemany(UPSERT, [(f"s{i}", "s", i) for i in range(100)])  # 300 values
    wide = "w" * 2000
    pg.executemany(UPSERT, [(f"w{i}", wide, i) for i in range(MANY)])
    assert pg.copies == []  # type: ignore[attr-defined]
    found = rows_of(pg)
    assert len(found) == 100 + MANY and found["w3"] == (wide, 3)


def test_a_transaction_rolled_back_after_its_copy_does_not_lose_the_next_one(
    pg: PgConnection,
) -> None:
    # The staging table is made in the first transaction that copies; rolled back later on
    # (by another statement, or by the caller), the table goes with it and is made again.
    def failing_statement() -> None:
        with pg.transaction():
            pg.executemany(UPSERT, [(f"x{i}", "x", i) for i in range(MANY)])
            pg.execute("SELECT no_such_column FROM t")

    def caller_gives_up() -> None:
        with pg.transaction():
            pg.executemany(UPSERT, [(f"z{i}", "z", i) for i in range(MANY)])
            raise RuntimeError("the caller gives up")

    with pytest.raises(DatabaseError):
        failing_statement()
    with pytest.raises(RuntimeError):
        caller_gives_up()
    pg.executemany(UPSERT, [(f"y{i}", "y", i) for i in range(MANY)])
    assert set(rows_of(pg)) == {f"y{i}" for i in range(MANY)}


def test_inserts_are_held_to_the_end_but_a_statement_on_their_table_sees_them(
    pg: PgConnection,
) -> None:
    seen: list[int] = []
    pg.execute("CREATE TABLE other (id TEXT)")
    with pg.transaction():
        pg.executemany(UPSERT, [(f"h{i}", "h", i) for i in range(MANY)])  # COPY, then held
        pg.executemany("INSERT INTO other (id) VALUES (?)", [("o1",), ("o2",)])  # VALUES
        pg.execute("SELECT 1")  # on neither table: they stay held
        assert len(pg._held) == 2
        seen.append(len(pg.execute("SELECT id FROM t").fetchall()))  # t: released first
        assert pg._held == []
        pg.executemany(UPSERT, [("h0", "again", 0)])
        pg.meanwhile = lambda: seen.append(len(pg._held))
    pg.meanwhile = None
    assert seen == [MANY, 0]  # the read saw every row; meanwhile ran at the end
    assert rows_of(pg)["h0"] == ("again", 0) and len(rows_of(pg)) == MANY
    assert len(pg.execute("SELECT id FROM other").fetchall()) == 2


def test_meanwhile_runs_while_the_held_inserts_are_with_the_server(pg: PgConnection) -> None:
    states: list[Any] = []
    pg.meanwhile = lambda: states.append(pg.raw.pgconn.pipeline_status)
    with pg.transaction():
        pg.executemany(UPSERT, [(f"m{i}", "m", i) for i in range(MANY)])
    assert states and states[0] != 0  # in pipeline mode: sent, results not read yet
    assert len(rows_of(pg)) == MANY


def test_a_held_insert_that_fails_rolls_the_whole_transaction_back(pg: PgConnection) -> None:
    pg.execute("CREATE TABLE other (id TEXT)")

    def fails_at_the_end() -> None:
        with pg.transaction():
            pg.execute("INSERT INTO other (id) VALUES ('x')")
            pg.executemany(UPSERT, [(f"f{i}", "f", i) for i in range(10)] + [("bad", "f", None)])

    with pytest.raises(DatabaseError):
        fails_at_the_end()
    assert rows_of(pg) == {} and pg.execute("SELECT * FROM other").fetchall() == []
    pg.executemany(UPSERT, [("ok", "ok", 1)])  # the connection is usable again
    assert rows_of(pg) == {"ok": ("ok", 1)}


def test_a_savepoint_keeps_the_outer_rows_and_drops_its_own(pg: PgConnection) -> None:
    def inner_fails() -> None:
        with pg.transaction():
            pg.executemany(UPSERT, [(f"i{i}", "i", i) for i in range(MANY)])
            raise RuntimeError("inner")

    with pg.transaction():
        pg.executemany(UPSERT, [(f"o{i}", "o", i) for i in range(MANY)])
        with pytest.raises(RuntimeError):
            inner_fails()
    assert set(rows_of(pg)) == {f"o{i}" for i in range(MANY)}


def test_a_user_who_may_not_make_temporary_tables_gets_multi_row_statements(
    postgres: PostgresServer,
) -> None:
    url = fresh_database(postgres)
    name = url.rsplit("/", 1)[1]
    postgres.psql(f"REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC")
    postgres.psql(f"CREATE ROLE plain_{name} LOGIN PASSWORD 'plain-pw'")
    postgres.psql(f"GRANT CREATE ON DATABASE {name} TO plain_{name}")
    plain = DatabaseURL.parse(
        url.replace(f"aioudata:{PASSWORD}@", f"plain_{name}:plain-pw@") + "?schema=s"
    )
    conn = PgConnection(connect(plain), plain)
    try:
        conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, a TEXT, n INTEGER NOT NULL)")
        with conn.transaction():
            conn.executemany(UPSERT, [(f"r{i}", "a", i) for i in range(MANY)])
        assert conn._may_stage is False and len(rows_of(conn)) == MANY
    finally:
        conn.close()
