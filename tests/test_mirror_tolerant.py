"""A portal of another udata version: every record with an id is stored, with what did not fit.

Records that decode into the models keep the fast path; the others (fields missing, values of
another type, dates in another format...) are stored all the same, JSON as received, the columns
that fit read from the plain object, and a note per misfit in ``schema_warnings``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aioudata import DecodeError
from aioudata._decoding import decode
from aioudata._mirror import run_mirror
from aioudata._mirror.columns import extractor, generic, loose
from aioudata._mirror.config import EntitySummary, MirrorSummary
from aioudata._mirror.entities import ENTITIES, RESOURCE_COLUMNS
from aioudata._mirror.records import Batch, decode_records, misfits, stamps_of
from aioudata._mirror.store import PassState, Store
from tests.test_mirror_columns import decodable
from tests.test_mirror_job import FakeCatalog, config, query
from tests.test_mirror_store import dataset

DATASETS = ENTITIES["datasets"]
NAMES = DATASETS.column_names()
RESOURCE_NAMES = ("dataset_id", "position", *(name for name, _ in RESOURCE_COLUMNS))
RESOURCE_MODEL: Any = extractor(DATASETS.model, DATASETS.columns, resources=True).item


def raw(*items: Any) -> list[msgspec.Raw]:
    return [msgspec.Raw(json.dumps(item).encode()) for item in items]


def columns(values: tuple[Any, ...], names: tuple[str, ...] = NAMES) -> dict[str, Any]:
    return dict(zip(names, values, strict=True))


def state(page: int, pass_no: int = 1) -> PassState:
    return PassState("datasets", pass_no=pass_no, kind="full", page=page, page_size=2)


def warnings_of(store: Store) -> set[tuple[str, str, str, str]]:
    return set(store.conn.execute("SELECT entity, item_id, path, reason FROM schema_warnings"))


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        for key in keys:
            del item[key]

    return change


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        item[key] = value

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        for one in changes:
            one(item)

    return change


MISSING = "Object missing required field `{}`"
NOT_A_DATE = "Invalid RFC3339 encoded datetime"

#: (change made to a udata 17 dataset, columns it then reads, its warnings).
SHAPES: dict[str, tuple[Callable[[dict[str, Any]], None], dict[str, Any], dict[str, str]]] = {
    "no last_update": (
        _drop("last_update"),
        {"last_update": None},
        {"$.last_update": MISSING.format("last_update")},
    ),
    "no title": (_drop("title"), {"title": None}, {"$.title": MISSING.format("title")}),
    # Sent by every udata since 1.0, so required: a portal that does not send it is off the model.
    "no private": (_drop("private"), {"private": None}, {"$.private": MISSING.format("private")}),
    "no created_at": (
        _drop("created_at"),
        {"created_at": None},
        {"$.created_at": MISSING.format("created_at")},
    ),
    "no title nor created_at": (
        _drop("title", "created_at"),
        {"title": None, "created_at": None},
        {"$.title": MISSING.format("title"), "$.created_at": MISSING.format("created_at")},
    ),
    "created_at a date without time": (
        _set("created_at", "2024-03-12"),
        {"created_at": None},
        {"$.created_at": NOT_A_DATE},
    ),
    "created_at in another format": (
        _set("created_at", "12/03/2024 10:30"),
        {"created_at": None},
        {"$.created_at": NOT_A_DATE},
    ),
    "created_at a number": (
        _set("created_at", 1710239400),
        {"created_at": None},
        {"$.created_at": "Expected `datetime`, got `int`"},
    ),
    "dates naive or in Z, with the title missing": (
        _both(
            _drop("title"),
            _set("created_at", "2024-03-12T10:30:00"),
            _set("last_modified", "2024-03-12T10:30:00.5Z"),
            _set("archived", "2024-03-13T10:30:00+02:00"),
        ),
        {
            "title": None,
            "created_at": "2024-03-12T10:30:00",
            "last_modified": "2024-03-12T10:30:00.500000+00:00",
            "archived": "2024-03-13T10:30:00+02:00",
        },
        {"$.title": MISSING.format("title")},
    ),
    "private sent as a string": (
        _set("private", "false"),
        {"private": None},
        {"$.private": "Expected `bool`, got `str`"},
    ),
    "a number where text is declared": (
        _set("license", 3),
        {"license": None},
        {"$.license": "Expected `str`, got `int`"},
    ),
    "the organization as a bare id": (
        _set("organization", "659271000003000000000002"),
        {"organization_id": None},
        {"$.organization": "Expected `object | null`, got `str`"},
    ),
    "an organization reference of another shape": (
        lambda item: item["organization"].pop("name"),
        {"organization_id": "659271000003000000000002"},
        {"$.organization.name": MISSING.format("name")},
    ),
    "quality of another type (no column)": (
        _set("quality", [0.5]),
        {},
        {"$.quality": "Expected `object | null`, got `array`"},
    ),
    "a nested list item off its model": (
        _set("badges", [{"kind": 3}]),
        {},
        {"$.badges[0].kind": "Expected `str`, got `int`"},
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_record_off_the_model_is_stored_with_the_columns_it_has_and_its_warnings(
    shape: str,
) -> None:
    change, changed, notes = SHAPES[shape]
    clean = dataset(1)
    item = copy.deepcopy(clean)
    change(item)
    text = json.dumps(item)
    with pytest.raises(DecodeError):  # the strict client decoding still refuses it
        decode(text.encode(), DATASETS.model)
    batch = decode_records(DATASETS, [msgspec.Raw(text.encode())])
    assert batch.errors == []
    ((row,),) = [batch.rows]
    assert (row.id, row.json) == (item["id"], text)  # the JSON exactly as received
    expected = {**columns(decode_records(DATASETS, raw(clean)).rows[0].values), **changed}
    assert columns(row.values) == expected
    assert batch.warnings == {item["id"]: notes}
    assert batch.listed == [item["id"]]
    assert [r.id for r in batch.resources[item["id"]]] == [r["id"] for r in item["resources"]]


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(_drop("quality"), id="no quality"),
        pytest.param(_set("spam", {"eggs": [1]}), id="an unknown field"),
        pytest.param(_set("created_at", "2024-03-12T10:30:00"), id="a naive created_at"),
    ],
)
def test_an_older_shape_that_fits_the_model_takes_the_fast_path_without_warnings(
    shape: Callable[[dict[str, Any]], None],
) -> None:
    item = dataset(1)
    shape(item)
    batch = decode_records(DATASETS, raw(item))
    assert batch.warnings == {} and batch.errors == []
    assert len(batch.rows) == 1 and len(batch.resources[item["id"]]) == 2


def test_bad_resources_cost_themselves_only() -> None:
    item = dataset(1, resources=5)
    good = copy.deepcopy(item["resources"][4])
    del item["resources"][0]["id"]  # not storable: quarantined
    del item["resources"][1]["filetype"]
    item["resources"][2]["filesize"] = "2048"  # a number sent as a string
    item["resources"][3]["created_at"] = "2024-01-01"
    batch = decode_records(DATASETS, raw(item))
    ((row,),) = [batch.rows]
    assert columns(row.values) == columns(decode_records(DATASETS, raw(dataset(1))).rows[0].values)
    resources = {r.id: columns(r.values, RESOURCE_NAMES) for r in batch.resources[item["id"]]}
    assert list(resources) == [r["id"] for r in item["resources"][1:]]
    for resource in batch.resources[item["id"]]:  # each one's JSON as received
        assert json.loads(resource.json) == next(
            r for r in item["resources"] if r.get("id") == resource.id
        )
    fitting = decode(json.dumps(good).encode(), RESOURCE_MODEL)
    ids = list(resources)
    reference = [  # each at its own position among the dataset's resources
        columns((item["id"], k, *generic(RESOURCE_COLUMNS, fitting)), RESOURCE_NAMES)
        for k in range(1, 5)
    ]
    assert resources[ids[0]] == {**reference[0], "filetype": None}
    assert resources[ids[1]] == {**reference[1], "filesize": None}
    assert resources[ids[2]] == {**reference[2], "created_at": None}
    assert resources[ids[3]] == reference[3]
    assert batch.warnings == {
        item["id"]: {
            "$.resources[0].id": MISSING.format("id"),  # quarantined, and noted
            "$.resources[1].filetype": MISSING.format("filetype"),
            "$.resources[2].filesize": "Expected `int | null`, got `str`",
            "$.resources[3].created_at": NOT_A_DATE,
        }
    }
    ((error,),) = [batch.errors]
    assert (error.entity, error.item_id) == ("resources", None)
    assert json.loads(error.raw or "") == item["resources"][0]
    assert error.reason == f"resource without an id in {item['id']}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"id": "x", "title": ',
            'Input data was truncated at $ (value: {"id": "x", "title": )',
        ),
        (b"[1, 2]", "Expected `object`, got `array` at $ (value: [1,2])"),
        (b'"a string"', 'Expected `object`, got `str` at $ (value: "a string")'),
        (b'{"title": "no id"}', "record without an id"),
        (b'{"id": "", "title": "empty id"}', "record without an id"),
        (b'{"id": 12, "created_at": "2024-03-12"}', "record without an id"),
    ],
)
def test_what_cannot_be_stored_is_still_quarantined(body: bytes, reason: str) -> None:
    batch = decode_records(DATASETS, [msgspec.Raw(body)])
    assert batch.rows == [] and batch.listed == [] and batch.warnings == {}
    ((error,),) = [batch.errors]
    assert (error.entity, error.item_id, error.raw) == ("datasets", None, body.decode())
    assert error.reason == reason


@pytest.mark.parametrize("name", sorted(ENTITIES))
def test_the_tolerant_reading_gives_the_fast_columns_on_the_recorded_objects(name: str) -> None:
    spec = ENTITIES[name]
    read = loose(spec.model, spec.columns)
    models = decodable(spec)
    assert models
    for model, body in models:
        notes: dict[str, str] = {}
        assert read(msgspec.json.decode(body), "$", notes) == generic(spec.columns, model)
        assert notes == {} and misfits(msgspec.json.decode(body), spec.model) == {}


def test_the_tolerant_reading_gives_the_fast_resource_columns() -> None:
    read = loose(RESOURCE_MODEL, RESOURCE_COLUMNS)
    seen = 0
    for model, body in decodable(DATASETS):
        for resource, obj in zip(
            model.resources or [], msgspec.json.decode(body)["resources"], strict=True
        ):
            assert read(obj, "$", {}) == generic(RESOURCE_COLUMNS, resource)
            seen += 1
    assert seen


def test_recorded_datasets_off_the_model_keep_every_column_that_fits() -> None:
    """Every recorded dataset, made to fail on a field that is no column: same columns."""
    models = decodable(DATASETS)
    items = [msgspec.json.decode(body) for _, body in models]
    for item in items:
        item["badges"] = "not a list"
    batch = decode_records(DATASETS, raw(*items))
    assert batch.errors == [] and len(batch.warnings) == len(items)
    fast = decode_records(DATASETS, [body for _, body in models])
    assert [r.values for r in batch.rows] == [r.values for r in fast.rows]
    assert {k: [r.values for r in v] for k, v in batch.resources.items()} == {
        k: [r.values for r in v] for k, v in fast.resources.items()
    }


def test_the_store_keeps_the_warnings_until_the_record_fits(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite")
    first, second = dataset(1), dataset(2)
    off = copy.deepcopy(first)
    del off["title"]
    del off["resources"][1]["filetype"]
    counts = store.write_batch(DATASETS, decode_records(DATASETS, raw(off, second)), 1, state(1))
    assert (counts.new, counts.warned, counts.errors) == (2, 1, 0)
    assert warnings_of(store) == {
        ("datasets", off["id"], "$.title", MISSING.format("title")),
        ("datasets", off["id"], "$.resources[1].filetype", MISSING.format("filetype")),
    }
    ((title, text),) = store.conn.execute(
        "SELECT title, json FROM datasets WHERE id = ?", (off["id"],)
    ).fetchall()
    assert (title, text) == (None, json.dumps(off))
    assert store.conn.execute(
        "SELECT filetype FROM resources WHERE id = ?", (off["resources"][1]["id"],)
    ).fetchall() == [(None,)]
    assert store.count("resources") == 4

    # The same page again: nothing changes, the warnings keep their time.
    before = store.conn.execute("SELECT * FROM schema_warnings ORDER BY path").fetchall()
    counts = store.write_batch(DATASETS, decode_records(DATASETS, raw(off, second)), 1, state(1))
    assert (counts.new, counts.updated, counts.unchanged, counts.warned) == (0, 0, 2, 1)
    assert store.conn.execute("SELECT * FROM schema_warnings ORDER BY path").fetchall() == before

    # Other misfits: the stale note goes, the kept one stays.
    other = copy.deepcopy(off)
    other["resources"][1]["filetype"] = "file"
    other["created_at"] = "2024-03-12"
    store.write_batch(DATASETS, decode_records(DATASETS, raw(other)), 1, state(2))
    assert warnings_of(store) == {
        ("datasets", off["id"], "$.title", MISSING.format("title")),
        ("datasets", off["id"], "$.created_at", NOT_A_DATE),
    }

    # Served cleanly later: its warnings go, in the same write.
    counts = store.write_batch(DATASETS, decode_records(DATASETS, raw(first)), 1, state(3))
    assert (counts.updated, counts.warned) == (1, 0)
    assert warnings_of(store) == set()
    assert store.conn.execute(
        "SELECT title FROM datasets WHERE id = ?", (first["id"],)
    ).fetchall() == [(first["title"],)]
    store.close()


def test_a_record_once_quarantined_leaves_errors_when_stored_off_the_model(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "m.sqlite")
    item = dataset(1)
    item["last_update"] = {"not": "a date"}
    store.conn.execute(
        "INSERT INTO errors (entity, key, item_id, raw, reason, recorded_at)"
        " VALUES ('datasets', ?, ?, ?, 'an older mirror quarantined it', 'then')",
        (item["id"], item["id"], json.dumps(item)),
    )
    counts = store.write_batch(DATASETS, decode_records(DATASETS, raw(item)), 1, state(1))
    assert (counts.new, counts.warned, counts.errors) == (1, 1, 0)
    assert store.count("errors") == 0
    assert warnings_of(store) == {
        ("datasets", item["id"], "$.last_update", "Expected `datetime`, got `object`")
    }
    store.close()


def test_finishing_a_pass_writes_the_refreshed_rows_warnings(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite")
    item = dataset(1)
    del item["created_at"]
    counts = store.finish_pass(DATASETS, decode_records(DATASETS, raw(item)), [], 1, state(1))
    assert counts.warned == 1
    assert warnings_of(store) == {
        ("datasets", item["id"], "$.created_at", MISSING.format("created_at"))
    }
    store.close()


def test_the_last_copy_of_a_record_in_a_batch_tells_its_warnings() -> None:
    off = dataset(1)
    del off["title"]
    batch = decode_records(DATASETS, raw(off, dataset(1)))
    assert batch.warnings == {}
    batch = decode_records(DATASETS, raw(off))
    batch.extend(decode_records(DATASETS, raw(dataset(1))))
    assert batch.warnings == {}
    batch = Batch()
    batch.extend(decode_records(DATASETS, raw(dataset(1))))
    batch.extend(decode_records(DATASETS, raw(off)))
    assert batch.warnings == {off["id"]: {"$.title": MISSING.format("title")}}


def test_other_entities_are_tolerated_too() -> None:
    spec = ENTITIES["organizations"]
    body = json.loads(
        (Path(__file__).parent / "fixtures" / "responses" / "organization.json").read_text()
    )["body"]
    del body["name"]
    body["created_at"] = "2020-01-01"
    batch = decode_records(spec, raw(body))
    ((row,),) = [batch.rows]
    values = columns(row.values, spec.column_names())
    assert values["name"] is None and values["created_at"] is None
    assert values["slug"] == body["slug"]
    assert batch.warnings == {
        body["id"]: {"$.name": MISSING.format("name"), "$.created_at": NOT_A_DATE}
    }


def test_the_id_pass_keeps_records_whose_timestamps_are_not_dates() -> None:
    found = stamps_of(
        [
            msgspec.Raw(b'{"id": "a", "last_modified": "2024-03-12", "last_update": null}'),
            msgspec.Raw(b'{"id": "b", "last_modified": "2024-03-12T10:30:00Z"}'),
            msgspec.Raw(b'{"id": "c", "last_modified": "2024-03-12T10:30:00Z", "last_update": 5}'),
            msgspec.Raw(b'{"last_modified": "2024-03-12"}'),
            msgspec.Raw(b"[1]"),
        ]
    )
    assert [item_id for item_id, _ in found] == ["a", "b", "c"]
    assert found[0][1] == {"last_modified": None, "last_update": None}
    assert found[2][1]["last_update"] is None
    assert found[2][1]["last_modified"] is not None


def test_the_summary_says_how_many_were_stored_with_warnings() -> None:
    summary = MirrorSummary("https://example.org/api/1", "m.sqlite")
    summary.entities["datasets"] = EntitySummary("datasets", stored=10)
    summary.entities["organizations"] = EntitySummary("organizations", stored=3, warned=2)
    lines = summary.lines()
    assert not any("schema warnings" in line for line in lines if "datasets" in line)
    assert sum("schema warnings" in line for line in lines) == 1
    assert lines[lines.index(next(x for x in lines if "organizations" in x)) + 1].strip() == (
        "2 stored with schema warnings"
    )


# --- a run ---------------------------------------------------------------------------------


@pytest.fixture
async def portal() -> AsyncIterator[FakeCatalog]:
    """A catalog of 6 datasets, 3 of them of another udata version's shape."""
    fake = FakeCatalog()
    fake.items["datasets"] = [dataset(n) for n in range(1, 7)]
    del fake.items["datasets"][1]["title"]
    del fake.items["datasets"][2]["resources"][0]["filetype"]
    fake.items["datasets"][3]["created_at"] = "2024-01-01"
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_a_run_stores_every_record_of_a_portal_of_another_version(
    portal: FakeCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    items = portal.items["datasets"]
    summary = await run_mirror(config(portal, db, entities=("datasets",), page_size=2))
    assert summary.status == "ok" and summary.quarantined == 0
    assert summary.entities["datasets"].stored == 6
    assert query(db, "SELECT COUNT(*) FROM errors") == [(0,)]
    assert query(db, "SELECT COUNT(*) FROM resources WHERE gone_at IS NULL") == [(12,)]
    stored = {row[0]: json.loads(row[1]) for row in query(db, "SELECT id, json FROM datasets")}
    assert stored == {item["id"]: item for item in items}
    assert set(query(db, "SELECT item_id, path, reason FROM schema_warnings")) == {
        (items[1]["id"], "$.title", MISSING.format("title")),
        (items[2]["id"], "$.resources[0].filetype", MISSING.format("filetype")),
        (items[3]["id"], "$.created_at", NOT_A_DATE),
    }
    assert query(db, f"SELECT title, created_at FROM datasets WHERE id = '{items[1]['id']}'") == [
        (None, "2024-01-01T09:00:00+00:00")
    ]

    # The portal is upgraded: the records fit, a full pass clears their warnings.
    items[1]["title"] = "Now titled"
    items[2]["resources"][0]["filetype"] = "file"
    items[3]["created_at"] = "2024-01-01T00:00:00+00:00"
    summary = await run_mirror(config(portal, db, entities=("datasets",), full=True))
    assert summary.status == "ok"
    assert query(db, "SELECT COUNT(*) FROM schema_warnings") == [(0,)]
    assert query(db, f"SELECT title FROM datasets WHERE id = '{items[1]['id']}'") == [
        ("Now titled",)
    ]


def test_a_record_the_walk_finds_no_misfit_in_keeps_the_decoders_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aioudata._mirror import records

    monkeypatch.setattr(records, "misfits", lambda obj, model: {})
    item = dataset(1)
    item["badges"] = "none"  # no column: only the decoder's error can tell
    batch = decode_records(DATASETS, raw(item))
    assert batch.warnings == {item["id"]: {"$.badges": "Expected `array`, got `str`"}}
    assert len(batch.rows) == 1 and batch.errors == []
