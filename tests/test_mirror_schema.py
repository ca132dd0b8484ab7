"""The mirror's tables: upgrades of older databases in place, and their documentation.

``tests/fixtures/mirror_schema_<N>.sql`` are dumps of databases written by aioudata at schema
version N (the same small mirror: 4 datasets with 2 resources each and tags on one, then a
full run after one dataset was deleted, and 2 organizations).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from aioudata._mirror.config import MirrorError
from aioudata._mirror.entities import ENTITIES
from aioudata._mirror.records import decode_records
from aioudata._mirror.schema import SCHEMA_VERSION
from aioudata._mirror.store import PassState, Store
from tests.test_mirror_store import dataset, raw

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load(version: int, path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / f"mirror_schema_{version}.sql").read_text())
    return conn


def layout(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Table or view → its columns."""
    names = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    ]
    return {name: [r[1] for r in conn.execute(f"PRAGMA table_info({name})")] for name in names}


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_database_is_upgraded_in_place(version: int, tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = load(version, path)
    before_datasets = dict(old.execute("SELECT id, json FROM datasets"))
    before_gone = dict(
        old.execute("SELECT id, deleted_at FROM datasets WHERE deleted_at IS NOT NULL")
    )
    before_resources = {
        rid: (dataset_id, json.loads(text), deleted_at)
        for rid, dataset_id, text, deleted_at in old.execute(
            "SELECT id, dataset_id, json, deleted_at FROM resources"
        )
    }
    old.close()
    assert len(before_gone) == 1 and len(before_resources) == 8

    store = Store(path)
    try:
        fresh = Store(tmp_path / "fresh.sqlite")
        assert layout(store.conn) == layout(fresh.conn)  # the same tables, columns, views
        fresh.close()
        assert store.get_meta("schema_version") == SCHEMA_VERSION
        assert dict(store.conn.execute("SELECT id, json FROM datasets")) == before_datasets
        gone = dict(
            store.conn.execute("SELECT id, gone_at FROM datasets WHERE gone_at IS NOT NULL")
        )
        assert gone == before_gone
        resources = {
            rid: (dataset_id, json.loads(text), gone_at)
            for rid, dataset_id, text, gone_at in store.conn.execute(
                "SELECT id, dataset_id, json, gone_at FROM resources"
            )
        }
        assert resources == before_resources
        checksums = store.conn.execute(
            "SELECT COUNT(*) FROM resources WHERE checksum_type = 'sha1' AND checksum_value != ''"
        ).fetchone()
        assert checksums == (8,)  # read from each resource's JSON
        tags = set(store.conn.execute("SELECT entity, tag FROM tags"))
        assert {("datasets", "transport"), ("datasets", "bus")} <= tags
        state = store.load_state("datasets")
        assert state.finished and state.full_done and state.round == version - 1

        # It goes on as any mirror: a changed dataset is written, its resources with it.
        item = dataset(1, resources=1)
        item["title"] = "Renamed"
        store.run_id = 7
        counts = store.write_batch(
            ENTITIES["datasets"], decode_records(ENTITIES["datasets"], raw(item)), 9, None
        )
        assert (counts.updated, counts.resources_deleted) == (1, 1)
        row = store.conn.execute(
            "SELECT title, changed_run, written_at IS NOT NULL FROM datasets WHERE id = ?",
            (item["id"],),
        ).fetchone()
        assert row == ("Renamed", 7, 1)
        live = store.conn.execute(
            "SELECT json FROM resources WHERE dataset_id = ? AND gone_at IS NULL", (item["id"],)
        ).fetchall()
        assert [json.loads(text) for (text,) in live] == item["resources"]
    finally:
        store.close()


def test_a_database_of_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(MirrorError) as info:
        Store(path)
    assert info.value.code == 2 and "newer than this aioudata" in str(info.value)
    assert path.read_bytes() == before


def documented() -> dict[str, set[str]]:
    """Table → the columns docs/schema.md documents (``### `table` `` then ``| `column` |``)."""
    found: dict[str, set[str]] = {}
    table = None
    for line in (ROOT / "docs" / "schema.md").read_text().splitlines():
        heading = re.match(r"^### `(\w+)`", line)
        if heading:
            table = heading.group(1)
            found[table] = set()
            continue
        cell = re.match(r"^\| `(\w+)` \|", line)
        if cell and table is not None:
            found[table].add(cell.group(1))
    return found


def test_every_table_and_column_is_documented(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite")
    try:
        tables = {name: set(columns) for name, columns in layout(store.conn).items()}
    finally:
        store.close()
    assert documented() == tables


def test_a_checkpoint_keeps_its_round(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite")
    try:
        store.save_state(
            PassState("datasets", pass_no=4, kind="ids", page=2, round=3, finished=False)
        )
        assert store.load_state("datasets").round == 3
    finally:
        store.close()


async def test_changes_runs_tags_and_checksums_are_queryable(tmp_path: Path) -> None:
    from aioudata._mirror import run_mirror
    from tests.test_mirror_job import FakeCatalog, config

    fake = FakeCatalog()
    fake.items["datasets"] = [dataset(n, resources=2) for n in range(1, 7)]
    fake.items["datasets"][0]["tags"] = ["transport", "bus"]
    await fake.start()
    db = tmp_path / "m.sqlite"
    try:
        await run_mirror(config(fake, db, entities=("datasets",)))
        edited, removed = fake.items["datasets"][1], fake.items["datasets"].pop(5)
        edited["title"] = "Edited"
        edited["tags"] = ["rail"]
        edited["last_modified"] = "2030-01-01T00:00:00+00:00"  # metadata: not last_update
        await run_mirror(config(fake, db, entities=("datasets",)))
    finally:
        await fake.stop()
    conn = sqlite3.connect(db)
    (last,) = conn.execute("SELECT MAX(id) FROM runs").fetchone()
    changed = dict(
        conn.execute("SELECT id, gone_at IS NOT NULL FROM datasets WHERE changed_run = ?", (last,))
    )
    assert changed == {edited["id"]: 0, removed["id"]: 1}  # "what changed in the last sync"
    resources = conn.execute(
        "SELECT COUNT(*) FROM resources WHERE changed_run = ? AND gone_at IS NOT NULL", (last,)
    ).fetchone()
    assert resources == (2,)  # the removed dataset's
    tags = set(conn.execute("SELECT id, tag FROM tags WHERE entity = 'datasets'"))
    every = [*fake.items["datasets"], removed]  # a gone object keeps its last tags, as its row
    assert tags == {(item["id"], tag) for item in every for tag in item["tags"]}
    assert (edited["id"], "rail") in tags and (every[0]["id"], "bus") in tags
    checksums = conn.execute(
        "SELECT checksum_type, checksum_value FROM resources WHERE id = ?",
        (edited["resources"][0]["id"],),
    ).fetchone()
    assert checksums == (
        edited["resources"][0]["checksum"]["type"],
        edited["resources"][0]["checksum"]["value"],
    )
    never_changed = conn.execute(
        "SELECT COUNT(*) FROM datasets WHERE changed_run < ? AND written_at IS NOT NULL", (last,)
    ).fetchone()
    assert never_changed == (4,)
    conn.close()


async def test_json_lines_resources_carry_their_dataset(tmp_path: Path) -> None:
    from aioudata._mirror import run_mirror
    from tests.test_mirror_job import FakeCatalog, config

    fake = FakeCatalog()
    fake.items["datasets"] = [dataset(n, resources=2) for n in range(1, 4)]
    await fake.start()
    try:
        out = tmp_path / "out"
        await run_mirror(
            config(fake, tmp_path / "x", entities=("datasets",), format="jsonl", out=out)
        )
    finally:
        await fake.stop()
    lines = [json.loads(line) for line in (out / "resources.jsonl").read_text().splitlines()]
    expected = {
        r["id"]: {"dataset_id": d["id"], **r}
        for d in fake.items["datasets"]
        for r in d["resources"]
    }
    assert {line["id"]: line for line in lines} == expected
    assert all(next(iter(line)) == "dataset_id" for line in lines)
