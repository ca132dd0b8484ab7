"""Responses recorded from the real udata server decode without loss, errors map to types.

The fixtures in tests/fixtures/responses/ come from tests/udata_server/record.py. Each 2xx body
is decoded with the model of the operation that answered it, in strict mode: a field the model
does not declare fails the test, so spec drift or a lossy model shows up here. The fields
openapi/required.json makes required are typed without ``None``: decoding also proves every
recorded answer carries them, non-null. The partial twins (masked calls) take them as well.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aioudata import APIError, Endpoint, decode
from aioudata._client import _api_error
from aioudata._errors import (
    AuthenticationError,
    BadRequestError,
    GoneError,
    NotFoundError,
)
from tests.generated import all_endpoints

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
RECORDED = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in FIXTURES.glob("*.json")}
V1 = "/api/1"


def endpoint_for(method: str, path: str) -> Endpoint[Any]:
    """The operation whose path template matches ``path`` (the most literal one wins)."""
    matches = []
    for endpoint in all_endpoints():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(endpoint.path))
        if endpoint.method == method and re.fullmatch(pattern, path):
            matches.append(endpoint)
    assert matches, f"no operation serves {method} {path}"
    return min(matches, key=lambda e: e.path.count("{"))


SUCCESSES = sorted(
    name
    for name, fixture in RECORDED.items()
    if fixture["status"] < 300 and fixture["request"]["path"].startswith(V1)
)
ERRORS = sorted(name for name, fixture in RECORDED.items() if fixture["status"] >= 400)


def test_fixtures_cover_every_model_kind() -> None:
    expected = {
        "datasets_page", "dataset", "dataset_resource", "organization", "organizations_page",
        "reuse", "reuses_page", "user", "users_page", "me", "harvest_source",
        "harvest_sources_page", "harvest_job", "harvest_jobs_page", "site", "discussion",
        "discussions_page", "posts_page", "post",
    }  # fmt: skip
    assert expected <= set(SUCCESSES)
    assert len(ERRORS) >= 6
    # v2-only recordings (topics) are outside the v1 spec: they are the only ones left out.
    assert {n for n in RECORDED if not RECORDED[n]["request"]["path"].startswith(V1)} == {
        "topic",
        "topics_page",
    }


@pytest.mark.parametrize("name", SUCCESSES)
def test_recorded_response_decodes_strictly(name: str) -> None:
    fixture = RECORDED[name]
    endpoint = endpoint_for(fixture["request"]["method"], fixture["request"]["path"][len(V1) :])
    body = msgspec.json.encode(fixture["body"])
    value = decode(body, endpoint.response, strict=True)
    # Decoding then encoding keeps every non-null field of the original.
    again = msgspec.to_builtins(value)
    assert _non_null_keys(again) == _non_null_keys(fixture["body"])


@pytest.mark.parametrize("name", SUCCESSES)
def test_recorded_response_decodes_into_the_partial_model_too(name: str) -> None:
    # A mask naming every field gets the whole object: the partial twin must lose nothing.
    fixture = RECORDED[name]
    endpoint = endpoint_for(fixture["request"]["method"], fixture["request"]["path"][len(V1) :])
    if endpoint.partial is None:  # takes no mask, or answers with nothing typed (Any)
        return
    value = decode(msgspec.json.encode(fixture["body"]), endpoint.masked().response, strict=True)
    assert type(value).__name__.endswith("Partial") or isinstance(value, list)
    assert _non_null_keys(msgspec.to_builtins(value)) == _non_null_keys(fixture["body"])


def _non_null_keys(value: Any, path: str = "$") -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if item is not None:
                keys.add(f"{path}.{key}")
                keys |= _non_null_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            keys |= _non_null_keys(item, f"{path}[{index}]")
    return keys


def test_a_page_decodes_into_typed_items() -> None:
    fixture = RECORDED["datasets_page"]
    endpoint = endpoint_for("GET", "/datasets/")
    page = decode(msgspec.json.encode(fixture["body"]), endpoint.response)
    assert endpoint.paginated
    assert page.total == fixture["body"]["total"]
    assert [d.id for d in page.data] == [d["id"] for d in fixture["body"]["data"]]
    first = page.data[0]
    assert first.created_at.tzinfo is not None  # aware datetimes since udata 6.1
    assert isinstance(first.resources, list)


@pytest.mark.parametrize(
    ("name", "error_type", "field"),
    [
        ("error_400_bad_page_size", BadRequestError, "page_size"),
        ("error_400_validation", BadRequestError, "title"),
        ("error_401_bad_key", AuthenticationError, None),
        ("error_404_unknown_id", NotFoundError, None),
        ("error_404_page_past_end", NotFoundError, None),
        ("error_404_unknown_route", NotFoundError, None),
        ("error_410_deleted_dataset", GoneError, None),
    ],
)
def test_recorded_errors_map_to_typed_errors(
    name: str, error_type: type[APIError], field: str | None
) -> None:
    fixture = RECORDED[name]
    body = msgspec.json.encode(fixture["body"])
    error = _api_error(fixture["status"], fixture["request"]["method"], "http://h/x", body)
    assert type(error) is error_type
    assert error.status == fixture["status"]
    if field is not None:
        assert field in error.errors
        assert field in str(error)
    else:
        assert error.message
