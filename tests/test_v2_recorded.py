"""The API v2 responses recorded from the real udata server decode strictly, without loss, into
the generated v2 models (the v1 ones are tests/test_recorded.py's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aioudata import decode
from aioudata._generated import models as m
from aioudata._generated.v2.operations import topics

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
RECORDED = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in FIXTURES.glob("*.json")}


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


@pytest.mark.parametrize(
    ("name", "endpoint", "path"),
    [
        ("topic", topics.GET_TOPIC, "/api/2/topics/65927100000a000000000001/"),
        ("topics_page", topics.LIST_TOPICS, "/api/2/topics/"),
    ],
)
def test_recorded_v2_answers_decode_strictly_into_the_generated_models(
    name: str, endpoint: Any, path: str
) -> None:
    recorded = {n for n, f in RECORDED.items() if f["request"]["path"].startswith("/api/2/")}
    assert recorded == {"topic", "topics_page"}  # every v2 recording is checked here
    fixture = RECORDED[name]
    assert fixture["request"]["path"] == path and "/api/2" + endpoint.path.split("{")[0] in path
    body = msgspec.json.encode(fixture["body"])
    value = decode(body, endpoint.response, strict=True)
    assert _non_null_keys(msgspec.to_builtins(value)) == _non_null_keys(fixture["body"])
    partial = decode(body, endpoint.masked().response, strict=True)
    assert _non_null_keys(msgspec.to_builtins(partial)) == _non_null_keys(fixture["body"])


def test_a_recorded_topic_reads_as_typed_values() -> None:
    topic = decode(msgspec.json.encode(RECORDED["topic"]["body"]), m.TopicV2, strict=True)
    assert topic.elements is not None and topic.elements.total >= 1
    assert topic.elements.rel == "subsection" and "/api/2/topics/" in topic.elements.href
    owner = topic.organization or topic.owner
    assert owner is not None and owner.id  # the shared v1 reference, with its id
    page = decode(msgspec.json.encode(RECORDED["topics_page"]["body"]), m.TopicPageV2)
    assert page.total == len(page.data) and topic.id in {t.id for t in page.data}
