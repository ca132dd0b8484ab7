"""Required where the server always sends it: openapi/required.json, the spec and the models.

The table is applied by the spec build (codegen/spec/required.py); the vendored fragments carry
the result, the generated models type those fields ``T`` instead of ``T | None``, and every
recorded real response still decodes (tests/test_recorded.py decodes them all, strictly).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from aioudata import DecodeError, decode
from aioudata._generated import models as m
from codegen.prepare import class_names
from codegen.spec import build, required
from codegen.spec_loader import merge_fragments

REPO = Path(__file__).resolve().parents[1]
OPENAPI = REPO / "openapi"
TABLE = json.loads((OPENAPI / "required.json").read_text(encoding="utf-8"))
PROMOTIONS = required.validate(TABLE)
FIXTURES = REPO / "tests" / "fixtures" / "responses"


def body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["body"]


@pytest.fixture(scope="module")
def vendored() -> dict[str, Any]:
    return merge_fragments(OPENAPI)


def test_the_table_makes_ids_page_data_and_lists_required() -> None:
    promoted = {(p.schema, p.field) for p in PROMOTIONS}
    assert len(PROMOTIONS) == 83
    assert {("Dataset", "id"), ("Resource", "id"), ("DatasetPage", "data")} <= promoted
    assert {("Dataset", "resources"), ("Dataset", "tags"), ("OrganizationReference", "id")} <= (
        promoted
    )
    pages = {p.schema for p in PROMOTIONS if p.field == "data"}
    assert len(pages) == 18 and all(name.endswith("Page") for name in pages)
    assert all(p.since and p.why for p in PROMOTIONS)


def test_every_promoted_field_is_required_in_the_vendored_spec(vendored: dict[str, Any]) -> None:
    schemas = vendored["components"]["schemas"]
    for item in PROMOTIONS:
        _props, needed = required._properties(schemas, item.schema)
        assert item.field in needed, f"{item.schema}.{item.field}: run `make spec`"


def test_every_promoted_field_is_a_plain_type_in_its_model() -> None:
    names = class_names(sorted({p.schema for p in PROMOTIONS}))
    for item in PROMOTIONS:
        model = getattr(m, names[item.schema])
        info = mi.type_info(model)
        assert isinstance(info, mi.StructType)
        (field,) = [f for f in info.fields if f.encode_name == item.field]
        assert field.required, f"{model.__name__}.{item.field}"
        kinds = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
        assert not any(isinstance(k, mi.NoneType) for k in kinds), f"{model.__name__}.{item.field}"


def test_source_md_shows_the_table() -> None:
    text = (OPENAPI / "SOURCE.md").read_text(encoding="utf-8")
    assert build.required_section(TABLE, PROMOTIONS) in text, "run `make spec`"


def test_kept_optional_fields_stay_optional() -> None:
    names = class_names([k["schema"] for k in TABLE["kept_optional"]])
    for kept in TABLE["kept_optional"]:
        model = getattr(m, names[kept["schema"]])
        fields = {f.encode_name: f for f in msgspec.structs.fields(model)}
        for name in kept["fields"]:
            assert fields[name].default is None, f"{kept['schema']}.{name}"


# What udata 2.0.0 (2020-03-11) sent, read in its git tree: every field required now must be
# among them (fields added since stay optional: older portals do not send them).
SENT_BY_2_0 = {
    "Dataset": "id title acronym slug description created_at last_modified deleted private tags "
    "badges resources frequency frequency_date extras metrics organization owner temporal_coverage "
    "spatial license uri page last_update archived",  # its DEFAULT_MASK
    "Resource": "id title description filetype type format url latest checksum filesize mime "
    "created_at published last_modified metrics extras preview_url",
    "Organization": "id name acronym url slug description created_at last_modified deleted "
    "metrics uri page logo logo_thumbnail members badges",
    "Member": "user role",
    "UserReference": "id class first_name last_name slug page uri avatar avatar_thumbnail",
    "OrganizationReference": "id class name acronym uri slug page logo logo_thumbnail",
    "Reuse": "id title slug type url description tags badges featured private image "
    "image_thumbnail created_at last_modified deleted datasets organization owner metrics uri page",
    "User": "id slug first_name last_name avatar avatar_thumbnail website about roles active "
    "organizations since page uri metrics",
    "HarvestSource": "id name description url backend config created_at active autoarchive "
    "validation last_job owner organization deleted schedule",
    "Discussion": "id subject class title user created closed closed_by discussion url extras",
    "Post": "id name slug headline content image credit_to credit_url tags datasets reuses owner "
    "created_at last_modified published uri page",
}


@pytest.mark.parametrize("name", sorted(SENT_BY_2_0))
def test_every_required_field_was_sent_by_udata_2_0(name: str) -> None:
    fields = msgspec.structs.fields(getattr(m, name))
    needed = {f.encode_name for f in fields if f.required}
    assert needed <= set(SENT_BY_2_0[name].split()), f"{name}: added after 2.0.0"


def only(value: dict[str, Any], model: str, **nested: str) -> dict[str, Any]:
    """``value`` with only the keys udata 2.0.0 sent (``nested``: field -> model of its items)."""
    kept = {k: v for k, v in value.items() if k in SENT_BY_2_0[model].split()}
    for key, inner in nested.items():
        if isinstance(kept.get(key), list):
            kept[key] = [only(item, inner) for item in kept[key]]
        elif isinstance(kept.get(key), dict):
            kept[key] = only(kept[key], inner)
    return kept


@pytest.mark.parametrize(
    ("fixture", "model", "nested"),
    [
        ("dataset", "Dataset", {"resources": "Resource", "organization": "OrganizationReference"}),
        ("organization", "Organization", {"members": "Member"}),
        ("reuse", "Reuse", {"organization": "OrganizationReference"}),
        ("user", "User", {"organizations": "OrganizationReference"}),
        ("harvest_source", "HarvestSource", {"organization": "OrganizationReference"}),
        ("discussion", "Discussion", {"user": "UserReference"}),
        ("post", "Post", {"owner": "UserReference"}),
    ],
)
def test_what_a_2_0_portal_sends_still_decodes(
    fixture: str, model: str, nested: dict[str, str]
) -> None:
    old = only(body(fixture), model, **nested)
    if model == "Organization":
        for member in old["members"]:
            member["user"] = only(member["user"], "UserReference")
    decoded = decode(msgspec.json.encode(old), getattr(m, model))
    assert decoded.id == old["id"]


@pytest.mark.parametrize(
    ("name", "model", "path"),
    [
        ("dataset", m.Dataset, ["id"]),
        ("dataset", m.Dataset, ["resources"]),
        ("dataset", m.Dataset, ["resources", 0, "id"]),
        ("datasets_page", m.DatasetPage, ["data"]),
        ("organization", m.Organization, ["members"]),
        ("reuse", m.Reuse, ["datasets"]),
        ("harvest_source", m.HarvestSource, ["validation"]),
    ],
)
def test_an_answer_without_a_required_field_is_refused(
    name: str, model: type[Any], path: list[str | int]
) -> None:
    value = copy.deepcopy(body(name))
    node = value
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    with pytest.raises(DecodeError, match=f"missing required field `{path[-1]}`"):
        decode(msgspec.json.encode(value), model)
    node[path[-1]] = None
    with pytest.raises(DecodeError, match="got `null`"):
        decode(msgspec.json.encode(value), model)


# --- codegen/spec/required.py ---------------------------------------------------------------


def document() -> dict[str, Any]:
    base = {"properties": {"class": {"type": "string"}, "id": {"type": "string"}}}
    return {
        "components": {
            "schemas": {
                "Base": base,
                "Ref": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Base"},
                        {"properties": {"name": {"type": "string"}}, "required": ["name"]},
                    ]
                },
                "Page": {"properties": {"data": {"type": "array"}, "total": {"type": "integer"}}},
            }
        }
    }


def table(*entries: tuple[list[str], str]) -> dict[str, Any]:
    return {
        "entries": [
            {"schemas": schemas, "source": "s", "fields": {name: {"since": "1.0.0", "why": "w"}}}
            for schemas, name in entries
        ]
    }


def test_apply_adds_to_required_and_leaves_bases_alone() -> None:
    source = document()
    result, promotions = required.apply(source, table((["Page"], "data"), (["Ref"], "id")))
    schemas = result["components"]["schemas"]
    assert schemas["Page"]["required"] == ["data"]
    assert schemas["Ref"]["allOf"][1]["required"] == ["name", "id"]
    assert "required" not in schemas["Base"]
    assert source == document()  # a copy: the input is untouched
    assert [(p.schema, p.field) for p in promotions] == [("Page", "data"), ("Ref", "id")]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (((["Gone"], "data"),), "no such schema"),
        (((["Page"], "nope"),), "no such property"),
        (((["Ref"], "name"),), "already required"),
        (((["Page"], "data"), (["Page"], "data")), "listed twice"),
    ],
)
def test_apply_refuses_what_does_not_apply(
    entries: tuple[tuple[list[str], str], ...], message: str
) -> None:
    with pytest.raises(required.RequiredError, match=message):
        required.apply(document(), table(*entries))


def test_an_entry_must_say_why() -> None:
    entry = {"schemas": ["Page"], "source": "s", "fields": {"data": {"since": "1.0.0"}}}
    with pytest.raises(required.RequiredError, match="why"):
        required.validate({"entries": [entry]})
