"""Generated models declare their fields in the order the server sends the keys.

msgspec looks a key up starting at the field after the last one matched: in the wire's order
that is one comparison a key, out of it a scan of the struct (13% of a dataset page's decoding
time when the required fields came first). Timings are not asserted: the order is.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from aioudata import decode
from aioudata._generated.models import TopicV2
from tests.test_recorded import RECORDED, SUCCESSES, V1, endpoint_for


def out_of_order(value: Any, raw: Any, path: str = "$") -> list[str]:
    """Paths of the keys of ``raw`` that come before a key of a field declared earlier.

    Only structs with no model base are checked: a base's fields come first whatever the wire
    order, so a subclass cannot follow it.
    """
    found: list[str] = []
    if isinstance(value, msgspec.Struct) and isinstance(raw, dict):
        fields = msgspec.structs.fields(value)
        index = {f.encode_name: i for i, f in enumerate(fields)}
        attr = {f.encode_name: f.name for f in fields}
        checked = type(value).__bases__ == (msgspec.Struct,)
        last = -1
        for key, item in raw.items():
            if key not in index:
                continue
            if checked and index[key] < last:
                found.append(f"{path}.{key}")
            last = index[key]
            found.extend(out_of_order(getattr(value, attr[key]), item, f"{path}.{key}"))
    elif isinstance(value, list) and isinstance(raw, list):
        for i, (v, r) in enumerate(zip(value, raw, strict=False)):
            found.extend(out_of_order(v, r, f"{path}[{i}]"))
    return found


def test_the_check_sees_a_struct_out_of_order() -> None:
    class Pair(msgspec.Struct, kw_only=True):
        b: int
        a: int | None = None

    raw = {"a": 1, "b": 2}
    assert out_of_order(msgspec.convert(raw, Pair), raw) == ["$.b"]


@pytest.mark.parametrize("name", SUCCESSES)
def test_v1_models_follow_the_sorted_keys_udata_sends(name: str) -> None:
    fixture = RECORDED[name]
    endpoint = endpoint_for(fixture["request"]["method"], fixture["request"]["path"][len(V1) :])
    body = msgspec.json.encode(fixture["body"])
    value = decode(body, endpoint.response)
    assert out_of_order(value, msgspec.json.decode(body)) == []


def test_v2_models_follow_the_model_order_udata_sends() -> None:
    raw = RECORDED["topic"]["body"]
    value = decode(msgspec.json.encode(raw), TopicV2)
    own = {key: item for key, item in raw.items() if not isinstance(item, dict)}
    assert list(raw)[:3] == ["id", "owner", "organization"]  # not sorted: the model's order
    assert out_of_order(value, own) == []
