"""The vendored API v2 (openapi/v2/): fragments, manifest, the schemas shared with v1, share.py."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from codegen.spec import build, overlay, required, share, split
from codegen.spec_loader import fragment_paths, merge_fragments, version_dirs

JSON = dict[str, Any]
REPO = Path(__file__).resolve().parents[1]
OPENAPI = REPO / "openapi"
V2 = OPENAPI / "v2"
SCHEMA_REF = "#/components/schemas/"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fragments() -> dict[str, JSON]:
    return {p.relative_to(V2).as_posix(): load(p) for p in fragment_paths(V2)}


def only_operation(fragment: JSON) -> tuple[str, str, JSON]:
    ((path, item),) = fragment["paths"].items()
    methods = [m for m in item if m != "parameters"]
    assert len(methods) == 1, f"{path}: {methods}"
    return path, methods[0], item[methods[0]]


def test_v2_is_found_beside_v1_and_kept_apart_from_its_fragments() -> None:
    assert version_dirs(OPENAPI) == {1: OPENAPI, 2: V2}
    v1 = fragment_paths(OPENAPI)
    assert v1 and not [p for p in v1 if "v2" in p.relative_to(OPENAPI).parts]
    top = sorted(p.name for p in V2.iterdir() if p.is_file())
    assert top == ["SOURCE.md", "manifest.json", "overlay.json", "required.json", "shared.json"]


def test_v2_counts_match_its_manifest(fragments: dict[str, JSON]) -> None:
    manifest = load(V2 / "manifest.json")
    assert manifest["source"] == {
        "package": "udata",
        "version": "17.18.0",
        "document": "/api/2/swagger.json",
    }
    ids = sorted(only_operation(f)[2]["operationId"] for f in fragments.values())
    assert len(fragments) == manifest["operations"] == 36
    assert ids == manifest["operation_ids"]
    assert len({only_operation(f)[0] for f in fragments.values()}) == manifest["paths"] == 23
    assert manifest["operations_by_tag"]["topics"] == 13
    assert manifest["operations_by_tag"]["datasets"] == 12


def test_v2_fragments_are_self_contained_and_in_the_house_style(
    fragments: dict[str, JSON],
) -> None:
    for name, fragment in fragments.items():
        path, _method, operation = only_operation(fragment)
        assert fragment["info"] == {"title": "uData API", "version": "2.0"}, name
        assert fragment["servers"] == [{"url": "https://www.data.gouv.fr/api/2"}], name
        assert name.split("/")[0] == operation["tags"][0]
        schemas = fragment.get("components", {}).get("schemas", {})
        assert list(schemas) == split.referenced_schemas(fragment["paths"], schemas), name
    for path in [*fragment_paths(V2), *(V2 / n for n in ("manifest.json", "overlay.json"))]:
        text = path.read_text(encoding="utf-8")
        assert text == build.dumps(json.loads(text)), path


def test_v2_schemas_are_v1_s_or_named_v2(fragments: dict[str, JSON]) -> None:
    """One name, one schema across both versions: what v2 shares is v1's definition exactly
    (fixes and required fields included); its own models end in V2."""
    v1 = merge_fragments(OPENAPI)["components"]["schemas"]
    v2 = merge_fragments(V2)["components"]["schemas"]
    table = load(V2 / "shared.json")
    shared = {name for entry in table["shared"] for name in entry["schemas"]}
    for name, schema in v2.items():
        if name in v1:
            assert schema == v1[name], name
        else:
            assert re.fullmatch(r".+V2( \((read|write)\))?", name), name
    # Every shared schema is in the fragments (but the error bodies no operation documents).
    assert shared - set(v2) == {"Error", "ValidationError"}
    # The references v2 shares carry v1's id (the v2 document had dropped BaseReference)...
    assert v2["OrganizationReference"]["allOf"][0] == {"$ref": SCHEMA_REF + "BaseReference"}
    # ...its dataset has links where v1's has lists, and post datasets are v1 datasets.
    assert v2["DatasetV2"]["properties"]["resources"] == {
        "description": "Link to the dataset resources",
        "$ref": SCHEMA_REF + "SubsectionLinkV2",
    }
    post_items = v2["Post (read)"]["properties"]["datasets"]["items"]["allOf"][0]["$ref"]
    assert unquote(post_items) == SCHEMA_REF + "Dataset"


def test_v2_overlay_and_required_results(fragments: dict[str, JSON]) -> None:
    operations = {
        only_operation(f)[2]["operationId"]: only_operation(f) for f in fragments.values()
    }
    assert sorted(operations["create_topic"][2]["responses"]) == ["201", "400"]
    org_topics = operations["my_org_topics"][2]["responses"]["200"]["content"]
    assert org_topics["application/json"]["schema"] == {"$ref": SCHEMA_REF + "TopicPageV2"}
    resource = operations["get_resource"][2]["responses"]["200"]["content"]
    assert resource["application/json"]["schema"] == {"$ref": SCHEMA_REF + "SpecificResourceV2"}
    assert sum("security" in op for _, _, op in operations.values()) == 16
    assert "security" not in operations["search_datasets"][2]
    schemas = merge_fragments(V2)["components"]["schemas"]
    assert {"id", "resources", "community_resources", "tags"} <= set(
        schemas["DatasetV2"]["required"]
    )
    assert {"data", "page", "page_size", "total"} <= set(schemas["ResourcePageV2"]["required"])
    assert "last_modified" not in schemas["TopicV2"]["required"]
    assert schemas["DatasetV2"]["properties"]["access_audiences"]["type"] == "array"


def test_v2_tables_are_well_formed() -> None:
    overlay.validate(load(V2 / "overlay.json"))
    required.validate(load(V2 / "required.json"))
    decisions = share.validate(load(V2 / "shared.json"))
    assert sum(d.shared for d in decisions) == 40
    assert {d.schema for d in decisions if not d.shared} == {
        "Dataset",
        "DatasetPage",
        "ReusePage",
        "DiscussionPage",
        "PostPage",
    }


# --- share.py -------------------------------------------------------------------------------


def _doc(schemas: JSON, paths: JSON | None = None) -> JSON:
    return {"paths": paths or {}, "components": {"schemas": schemas}}


def _ref(name: str) -> JSON:
    return {"$ref": SCHEMA_REF + name}


V1_SCHEMAS: JSON = {
    "Base": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "class": {"type": "string"}},
    },
    "Ref": {
        "allOf": [_ref("Base"), {"type": "object", "properties": {"name": {"type": "string"}}}]
    },
    "Thing": {"type": "object", "properties": {"parts": {"type": "array"}, "owner": _ref("Ref")}},
}
V2_SCHEMAS: JSON = {
    "Ref": {"type": "object", "properties": {"name": {"type": "string"}}},
    "Thing": {"type": "object", "properties": {"parts": {"type": "object"}, "owner": _ref("Ref")}},
    "Thing (read)": {"type": "object", "properties": {"owner": _ref("Ref")}},
}
TABLE: JSON = {
    "shared": [{"schemas": ["Ref"], "why": "same fields", "source": "apiv2.inherit"}],
    "distinct": [{"schemas": ["Thing"], "why": "links", "source": "apiv2.model"}],
}


def test_share_takes_v1_definitions_and_renames_the_rest() -> None:
    paths = {"/things/": {"get": {"responses": {"200": {"schema": _ref("Thing%20%28read%29")}}}}}
    result, decisions = share.apply(_doc(V2_SCHEMAS, paths), _doc(V1_SCHEMAS), TABLE)
    schemas = result["components"]["schemas"]
    assert sorted(schemas) == ["Base", "Ref", "ThingV2", "ThingV2 (read)"]
    assert schemas["Ref"] == V1_SCHEMAS["Ref"] and schemas["Base"] == V1_SCHEMAS["Base"]
    assert schemas["ThingV2"]["properties"]["owner"] == _ref("Ref")
    # A percent-encoded ref stays encoded: the name's spelling in the document is kept.
    response = result["paths"]["/things/"]["get"]["responses"]["200"]["schema"]
    assert response == _ref("ThingV2%20%28read%29")
    assert [(d.schema, d.shared) for d in decisions] == [("Ref", True), ("Thing", False)]
    share.check_kept(result, _doc(V1_SCHEMAS), decisions)
    changed = copy.deepcopy(result)
    changed["components"]["schemas"]["Ref"]["allOf"][1]["required"] = ["name"]
    with pytest.raises(share.ShareError, match="changed shared schemas"):
        share.check_kept(changed, _doc(V1_SCHEMAS), decisions)


@pytest.mark.parametrize(
    ("table", "v2_schemas", "message"),
    [
        ({"shared": TABLE["shared"]}, V2_SCHEMAS, "neither shared nor distinct: .'Thing'"),
        (
            TABLE,
            {**V2_SCHEMAS, "Ref": {"type": "object", "properties": {"extra": {}}}},
            r"Ref: v2 sends \['extra'\]",
        ),
        (
            {**TABLE, "distinct": [{"schemas": ["Ref"], "why": "w", "source": "s"}], "shared": []},
            {**V2_SCHEMAS, "Ref": V1_SCHEMAS["Ref"]},
            "neither shared nor distinct|defines it as v1 does",
        ),
        (
            {**TABLE, "shared": [{"schemas": ["Gone"], "why": "w", "source": "s"}]},
            V2_SCHEMAS,
            "Gone: not defined by both versions",
        ),
        ({"shared": [{"schemas": ["Ref"]}]}, V2_SCHEMAS, "needs schemas, why and source"),
    ],
)
def test_share_refuses_what_does_not_apply(table: JSON, v2_schemas: JSON, message: str) -> None:
    with pytest.raises(share.ShareError, match=message):
        share.apply(_doc(v2_schemas), _doc(V1_SCHEMAS), table)


def test_v2_name_keeps_the_read_write_suffix() -> None:
    assert share.v2_name("Dataset") == "DatasetV2"
    assert share.v2_name("TopicElement (read)") == "TopicElementV2 (read)"
    assert share.v2_name("SpatialCoverage (write)") == "SpatialCoverageV2 (write)"
