"""Decoding: tolerant of what udata really sends, strict on request, precise when it fails."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
import pytest

from aioudata import DecodeError, StrictDecodeError, decode, unknown_fields


class Ref(msgspec.Struct, kw_only=True):
    id: str
    class_: str | None = msgspec.field(name="class", default=None)


class Item(msgspec.Struct, kw_only=True):
    id: str
    title: str
    created_at: datetime
    day: date | None = None
    owner: Ref | None = None
    tags: list[str] | None = None
    extras: dict[str, object] | None = None


def test_nulls_and_missing_optional_fields_decode_to_none() -> None:
    item = decode(
        b'{"id": "1", "title": "t", "created_at": "2020-04-12T16:45:00+00:00",'
        b' "day": null, "owner": null}',
        Item,
    )
    assert item.day is None and item.owner is None and item.tags is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2014-04-17T18:21:36.879000", datetime(2014, 4, 17, 18, 21, 36, 879000)),
        ("2019-07-03T23:17:38+00:00", datetime(2019, 7, 3, 23, 17, 38, tzinfo=UTC)),
        ("2026-11-23T08:52:26.460601+00:00", datetime(2026, 11, 23, 8, 52, 26, 460601, UTC)),
    ],
)
def test_naive_and_aware_datetimes_with_or_without_fractions(text: str, expected: datetime) -> None:
    body = f'{{"id": "1", "title": "t", "created_at": "{text}"}}'.encode()
    assert decode(body, Item).created_at == expected


def test_unknown_fields_are_ignored_by_default_and_reported_in_strict_mode() -> None:
    body = (
        b'{"id": "1", "title": "t", "created_at": "2020-01-01T00:00:00", "new_field": 1,'
        b' "owner": {"id": "o", "class": "User", "avatar": "x"}}'
    )
    assert decode(body, Item).owner == Ref(id="o", class_="User")
    with pytest.raises(StrictDecodeError) as info:
        decode(body, Item, strict=True, url="http://h/api/1/x/")
    assert "$.new_field" in str(info.value) and "$.owner.avatar" in str(info.value)
    assert info.value.url == "http://h/api/1/x/"


def test_unknown_fields_walks_lists_and_dicts() -> None:
    items = decode(b'[{"id": "a", "x": 1}, {"id": "b"}]', list[Ref])
    raw = msgspec.json.decode(b'[{"id": "a", "x": 1}, {"id": "b"}]')
    assert unknown_fields(items, raw) == ["$[0].x"]


def test_decode_error_names_field_path_and_value() -> None:
    body = b'{"id": "1", "title": 42, "created_at": "2020-01-01T00:00:00"}'
    with pytest.raises(DecodeError) as info:
        decode(body, Item, url="http://h/api/1/datasets/1/")
    error = info.value
    assert error.path == "$.title"
    assert error.snippet == "42"
    assert error.model == "Item"
    assert "Expected `str`, got `int`" in str(error) and "http://h/api/1/datasets/1/" in str(error)


def test_decode_error_on_nested_list_item() -> None:
    body = b'[{"id": "a"}, {"id": 7}]'
    with pytest.raises(DecodeError) as info:
        decode(body, list[Ref])
    assert info.value.path == "$[1].id" and info.value.snippet == "7"


def test_decode_error_on_invalid_json_quotes_the_start_of_the_body() -> None:
    with pytest.raises(DecodeError) as info:
        decode(b"<html>Bad Gateway</html>", Item)
    assert info.value.snippet.startswith("<html>Bad Gateway")


def test_long_snippets_are_cut() -> None:
    body = b'{"id": "1", "title": ["' + b"x" * 500 + b'"], "created_at": "2020-01-01T00:00:00"}'
    with pytest.raises(DecodeError) as info:
        decode(body, Item)
    assert len(info.value.snippet) == 80 and info.value.snippet.endswith("…")


def test_generated_models_are_not_tracked_by_the_garbage_collector() -> None:
    import gc

    from aioudata.models import Dataset, DatasetPage

    assert Dataset.__struct_config__.gc is False and DatasetPage.__struct_config__.gc is False
    page = decode(
        b'{"data": [], "page": 1, "page_size": 20, "total": 0, "next_page": null}', DatasetPage
    )
    assert not gc.is_tracked(page)
