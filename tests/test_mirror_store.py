"""The mirror's SQLite store: upserts, one transaction per page, errors, deletions, JSON Lines."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aioudata._mirror.config import MirrorError
from aioudata._mirror.entities import ENTITIES
from aioudata._mirror.export import export_jsonl
from aioudata._mirror.records import Batch, ErrorRow, decode_records
from aioudata._mirror.store import AsyncStore, PassState, Store

ROOT = Path(__file__).resolve().parent
DATASETS = ENTITIES["datasets"]


def dataset(number: int, *, resources: int = 2, title: str | None = None) -> dict[str, Any]:
    """A dataset as the real server sends it (recorded fixture), with its own ids."""
    body = json.loads((ROOT / "fixtures" / "responses" / "dataset.json").read_text())["body"]
    item = copy.deepcopy(body)
    item["id"] = f"{number:024x}"
    item["slug"] = f"dataset-{number}"
    item["title"] = title or f"Dataset {number}"
    template = item["resources"][0]
    item["resources"] = []
    for index in range(resources):
        resource = copy.deepcopy(template)
        resource["id"] = f"00000000-0000-4000-8000-{number:06d}{index:06d}"
        item["resources"].append(resource)
    return item


def raw(*items: Any) -> list[msgspec.Raw]:
    return [msgspec.Raw(json.dumps(item).encode()) for item in items]


def state(page: int, pass_no: int = 1) -> PassState:
    return PassState(
        "datasets", pass_no=pass_no, kind="full", page=page, page_size=2, finished=False
    )


def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """A new empty store: the SQLite file, or a schema of the test PostgreSQL server."""
    if kind == "sqlite":
        return Store(tmp_path / "mirror.sqlite")
    from aioudata._mirror.pgurl import DatabaseURL
    from aioudata._mirror.postgres import PostgresStore
    from tests.postgres_fixture import fresh_schema

    return PostgresStore(DatabaseURL.parse(fresh_schema(request.getfixturevalue("postgres"))))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same tests on both sinks."""
    opened = open_store(request.param, tmp_path, request)
    yield opened
    opened.close()


def rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    return sorted(store.conn.execute(f"SELECT * FROM {table}").fetchall())


def test_a_page_is_stored_with_its_columns_its_json_and_its_resources(store: Store) -> None:
    items = [dataset(1), dataset(2, resources=3)]
    batch = decode_records(DATASETS, raw(*items))
    counts = store.write_batch(DATASETS, batch, 1, state(1))
    assert (counts.new, counts.updated, counts.resources_new) == (2, 0, 5)
    found = store.conn.execute("SELECT id, title, slug, json FROM datasets ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in found] == [
        (items[0]["id"], "Dataset 1", "dataset-1"),
        (items[1]["id"], "Dataset 2", "dataset-2"),
    ]
    assert json.loads(found[0][3]) == items[0]  # the JSON as received
    resources = store.conn.execute("SELECT id, dataset_id, json FROM resources").fetchall()
    assert {(r[0], r[1]) for r in resources} == {
        (res["id"], item["id"]) for item in items for res in item["resources"]
    }
    assert all(json.loads(r[2])["id"] == r[0] for r in resources)
    assert store.load_state("datasets").page == 1


def test_upserting_the_same_page_again_changes_nothing(store: Store) -> None:
    batch = decode_records(DATASETS, raw(dataset(1), dataset(2)))
    store.write_batch(DATASETS, batch, 1, state(1))
    before = {t: rows(store, t) for t in ("datasets", "resources")}
    again = store.write_batch(
        DATASETS, decode_records(DATASETS, raw(dataset(1), dataset(2))), 1, state(1)
    )
    assert (again.new, again.updated, again.unchanged, again.resources_new) == (0, 0, 2, 0)
    assert {t: rows(store, t) for t in ("datasets", "resources")} == before


def test_a_changed_object_is_updated_in_place(store: Store) -> None:
    store.write_batch(DATASETS, decode_records(DATASETS, raw(dataset(1))), 1, state(1))
    counts = store.write_batch(
        DATASETS, decode_records(DATASETS, raw(dataset(1, title="Renamed"))), 1, state(1)
    )
    assert (counts.new, counts.updated) == (0, 1)
    assert store.conn.execute("SELECT title FROM datasets").fetchall() == [("Renamed",)]


def test_a_failing_batch_leaves_neither_rows_nor_checkpoint(store: Store) -> None:
    store.write_batch(DATASETS, decode_records(DATASETS, raw(dataset(1))), 1, state(1))
    batch = decode_records(DATASETS, raw(dataset(2), dataset(3)))
    # An error row without a reason violates NOT NULL: the whole page must roll back.
    batch.errors.append(ErrorRow("datasets", "k", None, "{}", None))  # type: ignore[arg-type]
    with pytest.raises((sqlite3.IntegrityError, MirrorError)):  # PostgreSQL: DatabaseError
        store.write_batch(DATASETS, batch, 1, state(2))
    assert [r[0] for r in store.conn.execute("SELECT id FROM datasets")] == [dataset(1)["id"]]
    assert store.conn.execute("SELECT COUNT(*) FROM resources").fetchone() == (2,)
    assert store.load_state("datasets").page == 1


def test_a_record_off_the_model_is_stored_with_a_warning_until_fixed(store: Store) -> None:
    bad = dataset(2)
    bad["created_at"] = "not a date"
    # Recorded in errors earlier (it failed server-side): storing it takes it out.
    failed = ErrorRow("datasets", bad["id"], bad["id"], None, "fails server-side: 500")
    assert store.write_batch(DATASETS, Batch(errors=[failed]), 1, state(1)).errors == 1
    batch = decode_records(DATASETS, raw(dataset(1), bad))
    assert [row.id for row in batch.rows] == [dataset(1)["id"], bad["id"]]
    assert batch.errors == []
    counts = store.write_batch(DATASETS, batch, 1, state(2))
    assert (counts.new, counts.errors, counts.warned) == (2, 0, 1)
    assert store.conn.execute("SELECT COUNT(*) FROM errors").fetchone() == (0,)
    assert store.conn.execute(
        "SELECT entity, item_id, path, reason FROM schema_warnings"
    ).fetchall() == [("datasets", bad["id"], "$.created_at", "Invalid RFC3339 encoded datetime")]
    assert store.conn.execute(
        "SELECT created_at, json FROM datasets WHERE id = ?", (bad["id"],)
    ).fetchone() == (None, json.dumps(bad))
    # The same record, fixed: its columns read, its warning gone.
    store.write_batch(DATASETS, decode_records(DATASETS, raw(dataset(2))), 1, state(3))
    assert store.conn.execute("SELECT COUNT(*) FROM schema_warnings").fetchone() == (0,)
    assert store.conn.execute(
        "SELECT created_at FROM datasets WHERE id = ?", (bad["id"],)
    ).fetchone() == (dataset(2)["created_at"],)
    assert store.count("datasets") == 2


def test_a_record_that_is_not_even_an_object_is_kept_by_digest() -> None:
    batch = decode_records(DATASETS, [msgspec.Raw(b"[1, 2]")])
    assert not batch.rows
    (error,) = batch.errors
    assert error.item_id is None and error.key.startswith("sha1:") and error.raw == "[1, 2]"


def test_resources_a_dataset_no_longer_has_are_marked_deleted(store: Store) -> None:
    store.write_batch(DATASETS, decode_records(DATASETS, raw(dataset(1, resources=3))), 1, state(1))
    counts = store.write_batch(
        DATASETS, decode_records(DATASETS, raw(dataset(1, resources=1))), 1, state(1)
    )
    assert counts.resources_deleted == 2
    live = store.conn.execute("SELECT id FROM resources WHERE gone_at IS NULL").fetchall()
    assert len(live) == 1 and store.conn.execute("SELECT COUNT(*) FROM resources").fetchone() == (
        3,
    )


def test_objects_a_complete_pass_did_not_list_are_marked_not_dropped(store: Store) -> None:
    store.write_batch(DATASETS, decode_records(DATASETS, raw(dataset(1), dataset(2))), 1, state(1))
    # Pass 2 lists only dataset 1 (the id pass marks it seen).
    listed = Batch(listed=[dataset(1)["id"]])
    store.write_batch(DATASETS, listed, 2, state(1, pass_no=2))
    unseen = store.unseen(DATASETS, 2)
    assert unseen == [dataset(2)["id"]]
    counts = store.finish_pass(DATASETS, Batch(), unseen, 2, PassState("datasets", pass_no=2))
    assert (counts.deleted, counts.resources_deleted) == (1, 2)
    deleted = store.conn.execute("SELECT id, gone_at FROM datasets WHERE gone_at IS NOT NULL")
    (item_id, when), *_ = deleted.fetchall()
    assert item_id == dataset(2)["id"] and when
    assert store.count("datasets") == 1 and store.conn.execute(
        "SELECT COUNT(*) FROM datasets"
    ).fetchone() == (2,)
    # Listed again later: alive again.
    store.write_batch(DATASETS, decode_records(DATASETS, raw(dataset(2))), 3, state(1, 3))
    assert store.count("datasets") == 2


def test_jsonl_export_writes_the_json_as_received(store: Store, tmp_path: Path) -> None:
    items = [dataset(1), dataset(2)]
    store.write_batch(DATASETS, decode_records(DATASETS, raw(*items)), 1, state(1))
    written = export_jsonl(store, tmp_path / "out", ["datasets"])
    assert written["datasets"] == 2 and written["resources"] == 4
    lines = (tmp_path / "out" / "datasets.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == sorted(items, key=lambda d: d["id"])


async def test_the_async_store_writes_from_its_own_thread(tmp_path: Path) -> None:
    store = await AsyncStore(tmp_path / "a.sqlite").open()
    try:
        batch = decode_records(DATASETS, raw(dataset(1)))
        counts = await store.call(store.sync.write_batch, DATASETS, batch, 1, state(1))
        assert counts.new == 1
        assert await store.call(store.sync.count, "datasets") == 1
    finally:
        await store.close()
    mode = sqlite3.connect(tmp_path / "a.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def _moved(item: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    moved = copy.deepcopy(item)
    moved["resources"] = [*moved["resources"], copy.deepcopy(resource)]
    return moved


@pytest.mark.parametrize(
    "scenario", ["same", "changed", "fewer", "moved within the page", "listed twice", "moved in"]
)
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_resources_follow_their_datasets(
    tmp_path: Path, scenario: str, kind: str, request: pytest.FixtureRequest
) -> None:
    first = [dataset(1, resources=3), dataset(2, resources=2), dataset(3, resources=1)]
    later = copy.deepcopy(first)
    if scenario == "changed":
        later[0]["resources"][1]["title"] = "Renamed"
    elif scenario == "fewer":
        later[1]["resources"] = later[1]["resources"][:1]
    elif scenario == "moved within the page":  # dataset 1's resource now under dataset 3
        later[2] = _moved(later[2], later[0]["resources"].pop())
    elif scenario == "listed twice":
        later[2] = _moved(later[2], later[0]["resources"][0])
    elif scenario == "moved in":  # from a dataset of another page
        other = dataset(9, resources=2)
        first.append(other)
        later[1] = _moved(later[1], other["resources"][0])
    store = open_store(kind, tmp_path, request)
    store.write_batch(DATASETS, decode_records(DATASETS, raw(*first)), 1, state(1))
    counts = store.write_batch(DATASETS, decode_records(DATASETS, raw(*later)), 2, state(1, 2))
    expected: dict[str, tuple[str, dict[str, Any]]] = {}
    listed_again = {item["id"] for item in later}
    for item in [*(d for d in first if d["id"] not in listed_again), *later]:
        for resource in item["resources"]:
            expected[resource["id"]] = (item["id"], resource)  # listed twice: the last wins
    live = store.conn.execute(
        "SELECT r.id, r.dataset_id, r.json, d.json FROM resources r"
        " JOIN datasets d ON d.id = r.dataset_id WHERE r.gone_at IS NULL"
    ).fetchall()
    assert {rid: (owner, json.loads(text)) for rid, owner, text, _ in live} == expected
    for _, _, text, dataset_text in live:
        assert text in dataset_text  # the JSON as received, stored once: in its dataset's
    before = {r["id"]: r for item in first for r in item["resources"]}
    gone = dict(store.conn.execute("SELECT id, json FROM resources WHERE gone_at IS NOT NULL"))
    if scenario == "moved in":  # dataset 9 was not listed again: its resources stay as they are
        assert not gone
    else:
        assert {rid: json.loads(text) for rid, text in gone.items()} == {
            rid: before[rid] for rid in before.keys() - expected.keys()
        }
    store.close()
    resources = (counts.resources_new, counts.resources_updated, counts.resources_deleted)
    assert (
        resources
        == {
            "same": (0, 0, 0),
            "changed": (0, 1, 0),
            "fewer": (0, 0, 1),
            "moved within the page": (0, 0, 0),
            "listed twice": (0, 0, 0),
            "moved in": (0, 0, 0),
        }[scenario]
    )


def test_an_unchanged_row_is_only_marked_listed(store: Store) -> None:
    store.write_batch(DATASETS, decode_records(DATASETS, raw(dataset(1))), 1, state(1))
    counts = store.write_batch(
        DATASETS, decode_records(DATASETS, raw(dataset(1))), 2, state(1, pass_no=2)
    )
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 1)
    assert store.conn.execute("SELECT pass_no FROM listed").fetchall() == [(2,)]
    # Stored columns that differ from what the JSON gives now are rewritten, JSON unchanged.
    store.conn.execute("UPDATE datasets SET title = 'stale'")
    counts = store.write_batch(
        DATASETS, decode_records(DATASETS, raw(dataset(1))), 2, state(1, pass_no=2)
    )
    assert counts.unchanged == 1
    assert store.conn.execute("SELECT title FROM datasets").fetchall() == [("Dataset 1",)]


def test_a_resource_moved_into_a_new_dataset_lives_on_under_it(store: Store) -> None:
    """A dataset new to the mirror has no resource rows of its own yet; one of its resources
    may still be stored, under the dataset it was in: it moves, live, JSON and all."""
    first = dataset(1, resources=2)
    store.write_batch(DATASETS, decode_records(DATASETS, raw(first)), 1, state(1))
    moved = first["resources"][1]
    second = {**dataset(2, resources=1), "resources": [moved]}
    kept = {**first, "resources": first["resources"][:1]}
    counts = store.write_batch(DATASETS, decode_records(DATASETS, raw(second, kept)), 1, state(2))
    assert counts.resources_deleted == 0 and counts.resources_new == 0
    rows = store.conn.execute(
        "SELECT id, dataset_id, gone_at, json FROM resources ORDER BY id"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (first["resources"][0]["id"], first["id"], None),
        (moved["id"], second["id"], None),
    ]
    assert json.loads(rows[1][3]) == moved
