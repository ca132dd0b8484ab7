"""The mirror's compiled column extraction gives what the getters give, one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aioudata._mirror.columns import extractor, generic, stamp
from aioudata._mirror.entities import ENTITIES, RESOURCE_COLUMNS, EntitySpec, Field, Getter
from aioudata._mirror.records import decode_records

RESPONSES = Path(__file__).resolve().parent / "fixtures" / "responses"


def recorded_items() -> list[dict[str, Any]]:
    """Every object of the recorded answers: listing pages' items and single objects."""
    items: list[dict[str, Any]] = []
    for path in sorted(RESPONSES.glob("*.json")):
        body = json.loads(path.read_text())["body"]
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            items.extend(item for item in body["data"] if isinstance(item, dict))
        elif isinstance(body, dict):
            items.append(body)
    return items


def decodable(spec: EntitySpec) -> list[tuple[Any, bytes]]:
    found = []
    for item in recorded_items():
        raw = json.dumps(item).encode()
        try:
            found.append((msgspec.json.decode(raw, type=spec.model), raw))
        except msgspec.ValidationError:
            continue
    return found


@pytest.mark.parametrize("name", sorted(ENTITIES))
def test_compiled_columns_equal_the_getters_on_the_recorded_objects(name: str) -> None:
    spec = ENTITIES[name]
    plan = extractor(spec.model, spec.columns, resources=name == "datasets")
    models = decodable(spec)
    assert models, f"no recorded {name}"
    for model, raw in models:
        side = plan.side(raw) if plan.side else None
        assert plan.function(model, side) == generic(spec.columns, model)


def test_compiled_resource_columns_equal_the_getters() -> None:
    spec = ENTITIES["datasets"]
    plan = extractor(spec.model, spec.columns, resources=True)
    assert plan.item is not None and plan.side is not None
    items = extractor(plan.item, RESOURCE_COLUMNS, lead=True)
    seen = 0
    for model, raw in decodable(spec):
        raws = plan.side(raw).resources or []
        for resource, resource_raw in zip(model.resources or [], raws, strict=True):
            side = items.side(resource_raw) if items.side else None
            expected = ("d", 3, *generic(RESOURCE_COLUMNS, resource))
            assert items.function("d", 3, resource, side) == expected
            seen += 1
    assert seen


def test_every_mirrored_column_is_compiled_not_read_by_its_getter() -> None:
    for name, spec in ENTITIES.items():
        plan = extractor(spec.model, spec.columns, resources=name == "datasets")
        assert plan.function.__globals__["_g"] == (), name  # no getter left to call


def test_a_column_of_another_type_keeps_its_getter() -> None:
    class Odd(msgspec.Struct):
        id: str
        tags: list[str] = []
        when: datetime | int | None = None

    columns: tuple[tuple[str, Getter], ...] = (
        ("tags", Field(("tags",))),
        ("when", Field(("when",))),
        ("title", Field(("title",))),
        ("id", Field(("id",), convert=False)),
    )
    plan = extractor(Odd, columns)
    assert plan.function.__globals__["_g"] == (columns[0][1], columns[1][1], columns[2][1])
    model = Odd(id="x", tags=["a"], when=datetime(2024, 1, 2, tzinfo=UTC))
    assert plan.function(model, None) == generic(columns, model)
    assert plan.function(model, None) == ("['a']", "2024-01-02T00:00:00+00:00", None, "x")


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-12T10:30:00+00:00",
        "2024-03-12T10:30:00.123456+00:00",
        "2024-03-12T10:30:00.000001+00:00",
        "2024-03-12T10:30:00.000000+00:00",
        "2024-03-12T10:30:00.5+00:00",
        "2024-03-12T10:30:00.123+00:00",
        "2024-03-12T10:30:00.1234567+00:00",
        "2024-03-12T10:30:00.9999995+00:00",
        "2024-03-12T10:30:00Z",
        "2024-03-12T10:30:00z",
        "2024-03-12T10:30:00.123456Z",
        "2024-03-12T10:30:00.12345Z",
        "2024-03-12T10:30:00.1234Z",
        "2024-03-12T10:30:00-00:00",
        "2024-03-12T10:30:00.123456-00:00",
        "2024-03-12T10:30:00+01:00",
        "2024-03-12T10:30:00-05:30",
        "2024-03-12T10:30:00.250000+02:00",
        "2024-03-12t10:30:00+00:00",
        "2024-03-12 10:30:00+00:00",
        "2024-03-12 10:30:00.123456+00:00",
        "2024-03-12T10:30:00",
        "2024-03-12T10:30:00.123456",
        "2024-03-12T10:30:00+0000",
    ],
)
def test_a_timestamp_is_stored_as_isoformat_gives_it(text: str) -> None:
    try:
        value = msgspec.json.decode(json.dumps(text).encode(), type=datetime)
    except msgspec.ValidationError:
        pytest.skip("not a datetime msgspec takes")
    assert stamp(text, value) == value.isoformat()
    assert stamp(None, value) == value.isoformat()
    assert stamp(text, None) is None


def test_stamps_of_many_datetimes_equal_isoformat() -> None:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    for step in range(2000):
        value = start + timedelta(seconds=step * 7919, microseconds=(step * 997) % 3 * 250_000)
        for shown in (value, value.astimezone(timezone(timedelta(hours=2)))):
            text = msgspec.json.encode(shown).decode()[1:-1]
            decoded = msgspec.json.decode(msgspec.json.encode(text), type=datetime)
            assert stamp(text, decoded) == decoded.isoformat()
            assert stamp(decoded.isoformat(), decoded) == decoded.isoformat()


def test_records_decode_to_the_getters_values() -> None:
    spec = ENTITIES["datasets"]
    models = decodable(spec)
    batch = decode_records(spec, [raw for _, raw in models])
    assert [row.values for row in batch.rows] == [generic(spec.columns, m) for m, _ in models]
    for model, _ in models:
        rows = batch.resources[model.id]
        expected = enumerate(model.resources or [])
        assert [row.values for row in rows] == [
            (model.id, i, *generic(RESOURCE_COLUMNS, r)) for i, r in expected
        ]


@pytest.mark.parametrize("indent", [None, 1, 12])
def test_each_resource_is_located_in_its_datasets_json_whatever_the_layout(
    indent: int | None,
) -> None:
    """``at`` points at the resource's own JSON in its dataset's, compact or indented (past
    the quick look after the previous one), and at the same text when two are alike."""
    spec = ENTITIES["datasets"]
    item = next(item for item in recorded_items() if len(item.get("resources") or []) >= 2)
    first = item["resources"][0]
    twin = {**first, "id": first["id"]}  # the same JSON twice in a row
    item = {**item, "resources": [first, twin, *item["resources"][1:]]}
    raw = json.dumps(item, indent=indent).encode()
    batch = decode_records(spec, [raw])
    text = batch.rows[0].json
    rows = batch.resources[item["id"]]
    assert len(rows) == len(item["resources"])
    starts = [row.at for row in rows]
    assert all(starts) and starts == sorted(set(starts))
    for row in rows:
        assert text[row.at - 1 : row.at - 1 + len(row.json)] == row.json
