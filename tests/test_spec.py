"""The vendored spec (openapi/) and the tools that build it (codegen/spec/).

Standard library and pytest only: no udata needed. The seed comparison needs the hand-made
seed fragments of ../shared/seeds/ and is skipped when the repository stands alone.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from codegen.spec import build, convert, jsonpath, overlay, split
from codegen.spec_loader import fragment_paths

JSON = dict[str, Any]
REPO = Path(__file__).resolve().parents[1]
OPENAPI = REPO / "openapi"
SEEDS = REPO / ".." / "shared" / "seeds"
SCHEMA_REF = "#/components/schemas/"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def fragment_files() -> list[Path]:
    """The API v1's fragments (openapi/v2/ has the v2's: tests/test_v2_spec.py)."""
    return fragment_paths(OPENAPI)


def only_operation(fragment: JSON) -> tuple[str, str, JSON]:
    ((path, item),) = fragment["paths"].items()
    methods = [m for m in item if m != "parameters"]
    assert len(methods) == 1, f"{path}: {methods}"
    return path, methods[0], item[methods[0]]


@pytest.fixture(scope="module")
def fragments() -> dict[str, JSON]:
    return {p.relative_to(OPENAPI).as_posix(): load(p) for p in fragment_files()}


@pytest.fixture(scope="module")
def manifest() -> JSON:
    document: JSON = load(OPENAPI / "manifest.json")
    return document


# --- converter ------------------------------------------------------------------------------


def swagger(paths: JSON, definitions: JSON | None = None, **extra: Any) -> JSON:
    return {
        "swagger": "2.0",
        "host": "www.example.org",
        "basePath": "/api/1",
        "schemes": ["https"],
        "info": {"title": "T", "version": "1.0", "description": "dropped"},
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "tags": [{"name": "t", "description": "The t tag"}],
        "paths": paths,
        "definitions": definitions or {},
        **extra,
    }


def test_body_parameter_becomes_request_body() -> None:
    operation = {
        "operationId": "create",
        "parameters": [
            {
                "in": "body",
                "name": "payload",
                "required": True,
                "schema": {"$ref": "#/definitions/A%20%28write%29"},
            },
            {"in": "header", "name": "X-Fields", "type": "string", "format": "mask"},
        ],
        "responses": {"201": {"description": "Created", "schema": {"$ref": "#/definitions/A"}}},
        "tags": ["t"],
    }
    converted = convert.convert_operation(operation, swagger({}), set())
    assert list(converted) == ["operationId", "parameters", "responses", "tags", "requestBody"]
    assert converted["requestBody"] == {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/A%20%28write%29"}}
        },
        "required": True,
    }
    assert converted["parameters"] == [
        {
            "schema": {"type": "string", "format": "mask"},
            "in": "header",
            "name": "X-Fields",
        }
    ]
    assert converted["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/A"
    }


def test_body_description_and_optional_body() -> None:
    param = {"in": "body", "name": "payload", "description": "A cron", "schema": {"type": "string"}}
    body = convert.body_request(param, ["application/json"])
    assert body == {
        "description": "A cron",
        "content": {"application/json": {"schema": {"type": "string"}}},
        "required": False,
    }


def test_query_parameter_shape_and_multi_array() -> None:
    page = {
        "default": 1,
        "description": "The page",
        "exclusiveMinimum": True,
        "in": "query",
        "minimum": 0,
        "name": "page",
        "type": "integer",
    }
    assert convert.convert_parameter(page) == {
        "schema": {"type": "integer", "default": 1, "exclusiveMinimum": 0},
        "description": "The page",
        "in": "query",
        "name": "page",
    }
    tags = {
        "collectionFormat": "multi",
        "in": "query",
        "items": {"type": "string"},
        "name": "tag",
        "type": "array",
        "required": True,
    }
    converted = convert.convert_parameter(tags)
    assert converted == {
        "schema": {"type": "array", "items": {"type": "string"}},
        "in": "query",
        "name": "tag",
        "required": True,
        "style": "form",
        "explode": True,
    }
    assert list(converted) == ["schema", "in", "name", "required", "style", "explode"]


def test_csv_array_and_path_parameter() -> None:
    csv = {"in": "query", "name": "ids", "type": "array", "items": {"type": "integer"}}
    assert convert.convert_parameter(csv)["explode"] is False
    path = {"in": "path", "name": "job", "type": "string"}
    assert convert.convert_parameter(path) == {
        "schema": {"type": "string"},
        "in": "path",
        "name": "job",
        "required": True,
    }


def test_inclusive_minimum_stays() -> None:
    param = {"in": "query", "name": "n", "type": "integer", "minimum": 1, "exclusiveMinimum": False}
    assert convert.convert_parameter(param)["schema"] == {"type": "integer", "minimum": 1}


def test_form_data_becomes_multipart_request_body() -> None:
    operation = {
        "operationId": "upload",
        "consumes": ["multipart/form-data"],
        "parameters": [
            {
                "in": "formData",
                "name": "file",
                "type": "file",
                "required": True,
                "description": "The file",
            },
            {"in": "formData", "name": "partindex", "type": "integer"},
        ],
        "responses": {"200": {"description": "Success"}},
        "tags": ["t"],
    }
    converted = convert.convert_operation(operation, swagger({}), set())
    assert "parameters" not in converted  # every parameter went into the body
    assert converted["requestBody"] == {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The file"},
                        "partindex": {"type": "integer"},
                    },
                    "required": ["file"],
                }
            }
        },
        "required": True,
    }
    assert converted["responses"] == {"200": {"description": "Success"}}


def test_refs_rewritten_and_wire_names_kept() -> None:
    definitions = {
        "Dataset (read)": {
            "properties": {
                "owner": {"allOf": [{"$ref": "#/definitions/UserReference"}]},
                "badges": {"items": {"$ref": "#/definitions/Badge (read)"}, "type": "array"},
                "default": {"type": "string", "enum": ["a"], "example": "a"},
            },
            "type": "object",
        }
    }
    schemas = convert.convert_definitions(definitions)
    props = schemas["Dataset (read)"]["properties"]
    assert props["owner"] == {"allOf": [{"$ref": "#/components/schemas/UserReference"}]}
    assert props["badges"]["items"] == {"$ref": "#/components/schemas/Badge (read)"}
    assert props["default"] == {"type": "string", "enum": ["a"], "example": "a"}
    assert convert.convert_ref("#/definitions/A%20%28read%29") == (
        "#/components/schemas/A%20%28read%29"
    )


def test_x_nullable() -> None:
    assert convert.convert_schema({"type": "string", "x-nullable": True}) == {
        "type": ["string", "null"]
    }
    assert convert.convert_schema({"type": "string", "enum": ["a"], "x-nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert convert.convert_schema({"$ref": "#/definitions/A", "x-nullable": True}) == {
        "anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]
    }
    assert convert.convert_schema({"type": "string", "x-nullable": False}) == {"type": "string"}
    param = {"in": "query", "name": "q", "type": "string", "x-nullable": True}
    assert convert.convert_parameter(param)["schema"] == {"type": ["string", "null"]}


def test_discriminator_and_file_schema() -> None:
    assert convert.convert_schema({"discriminator": "class", "type": "object"}) == {
        "discriminator": {"propertyName": "class"},
        "type": "object",
    }
    assert convert.convert_schema({"type": "file"}) == {"type": "string", "format": "binary"}


def test_shared_response_refs_are_inlined() -> None:
    operation = {
        "operationId": "x",
        "responses": {"403": {"$ref": "#/responses/PermissionDenied"}},
        "tags": ["t"],
    }
    document = swagger(
        {},
        responses={
            "PermissionDenied": {"description": "Denied", "schema": {"$ref": "#/definitions/E"}}
        },
    )
    converted = convert.convert_operation(operation, document, set())
    assert converted["responses"]["403"] == {
        "description": "Denied",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/E"}}},
    }
    with pytest.raises(ValueError, match="unresolvable"):
        convert.resolve_response({"$ref": "#/responses/Nope"}, {})


def test_security_kept_added_and_schemes() -> None:
    document = swagger(
        {
            "/a/": {
                "get": {"operationId": "a", "responses": {}, "tags": ["t"]},
                "post": {
                    "operationId": "b",
                    "responses": {},
                    "tags": ["t"],
                    "security": [{"x": []}],
                },
                "parameters": [{"in": "path", "name": "id", "type": "string", "required": True}],
            }
        },
        securityDefinitions={"apikey": {"in": "header", "name": "X-API-KEY", "type": "apiKey"}},
        **{convert.DUMP_KEY: {"udata": "1", "secured_operations": ["a"]}},
    )
    converted = convert.convert_document(document)
    item = converted["paths"]["/a/"]
    assert list(item) == ["get", "post", "parameters"]  # shared parameters after operations
    assert item["get"]["security"] == [{"apikey": []}]
    assert item["post"]["security"] == [{"x": []}]
    assert converted["components"]["securitySchemes"] == {
        "apikey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}
    }
    assert list(converted) == ["openapi", "info", "tags", "servers", "paths", "components"]
    assert converted["openapi"] == "3.1.1"
    assert converted["info"] == {"title": "T", "version": "1.0"}
    assert converted["servers"] == [{"url": "https://www.example.org/api/1"}]


def test_convert_rejects_other_versions() -> None:
    with pytest.raises(ValueError, match=r"Swagger 2\.0"):
        convert.convert_document({"openapi": "3.0.0"})


def test_sort_enums_is_stable_and_strict() -> None:
    document = {"definitions": {"T": {"enum": ["b", "a"], "example": "b", "type": "string"}}}
    sorted_document = convert.sort_enums(document, ["$.definitions.T"])
    assert sorted_document["definitions"]["T"] == {
        "enum": ["a", "b"],
        "example": "a",
        "type": "string",
    }
    assert document["definitions"]["T"]["enum"] == ["b", "a"]  # input untouched
    with pytest.raises(ValueError, match="no enum"):
        convert.sort_enums(document, ["$.definitions.U"])


# --- JSONPath subset --------------------------------------------------------------------


DOC: JSON = {
    "paths": {
        "/a/": {"get": {"operationId": "x", "r": {"$ref": "#/R"}}, "parameters": [1, 2]},
        "/b/": {"post": {"operationId": "y"}},
    },
    "s": {"A (read)": {"required": ["a", "b"]}, "B": {"required": ["b"], "n": 1, "t": True}},
}


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("$", [DOC]),
        ("$.s.B.n", [1]),
        ("$.s['A (read)'].required", [["a", "b"]]),
        ('$.s["A (read)"].required[1]', ["b"]),
        ("$.s['A (read)'].required[-1]", ["b"]),
        ("$.s['A (read)', 'B'].required[?@ == 'b']", ["b", "b"]),
        ("$.paths.*[?@.operationId == 'y']", [{"operationId": "y"}]),
        ("$.paths[*][?@.r['$ref'] == '#/R'].operationId", ["x"]),
        ("$..operationId", ["x", "y"]),
        ("$.paths..['$ref']", ["#/R"]),
        ("$.s.B[?@ == 1]", [1]),
        ("$.s.B[?@ == true]", [True]),
        ("$.s.nope", []),
        ("$.s.B.n.deeper", []),
    ],
)
def test_jsonpath_find(expression: str, values: list[Any]) -> None:
    assert [node.value for node in jsonpath.find(DOC, expression)] == values


def test_jsonpath_equality_is_typed() -> None:
    # true is not 1, 1 is not '1'
    assert [n.key for n in jsonpath.find({"a": True, "b": 1, "c": "1"}, "$[?@ == 1]")] == ["b"]


def test_jsonpath_escapes_in_quoted_names() -> None:
    document = {"it's": {"a\\b": 1}}
    assert [n.value for n in jsonpath.find(document, "$['it\\'s']['a\\\\b']")] == [1]


@pytest.mark.parametrize(
    "expression",
    ["a.b", "$.a[?@.b > 1]", "$.a[", "$.a['b'", "$.a..", "$.a[1:2]", "$ .a", "$.a.[0]"],
)
def test_jsonpath_rejects_what_it_does_not_support(expression: str) -> None:
    with pytest.raises(ValueError, match=r"JSONPath|unsupported|expected|unterminated"):
        jsonpath.parse(expression)


# --- overlay --------------------------------------------------------------------------------


def make_overlay(*actions: JSON) -> JSON:
    return {"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": list(actions)}


def test_overlay_update_merges_and_remove_deletes() -> None:
    document = {"s": {"A": {"required": ["a", "b", "c"], "p": {"type": "object", "d": "x"}}}}
    result, applied = overlay.apply(
        document,
        make_overlay(
            {"target": "$.s.A.p", "description": "why", "update": {"type": "string", "e": [1]}},
            {"target": "$.s.A.required[?@ == 'a']", "description": "why", "remove": True},
            {"target": "$.s.A.required[?@ == 'c']", "description": "why", "remove": True},
            {"target": "$.s.A.required", "description": "append", "update": "z"},
        ),
    )
    assert result == {
        "s": {"A": {"required": ["b", "z"], "p": {"type": "string", "d": "x", "e": [1]}}}
    }
    assert document["s"]["A"]["required"] == ["a", "b", "c"]  # input untouched
    assert [a.matched for a in applied] == [1, 1, 1, 1]


def test_overlay_removes_several_items_of_one_array() -> None:
    result, _ = overlay.apply(
        {"r": ["a", "b", "a", "c"]},
        make_overlay({"target": "$.r[?@ == 'a']", "description": "why", "remove": True}),
    )
    assert result == {"r": ["b", "c"]}


def test_overlay_update_of_the_root() -> None:
    result, _ = overlay.apply(
        {"a": 1}, make_overlay({"target": "$", "description": "why", "update": {"b": 2}})
    )
    assert result == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"target": "$.nope", "description": "why", "update": {"a": 1}}, "matches nothing"),
        ({"target": "$.a", "description": "why", "update": {"b": 1}}, "changes nothing"),
        ({"target": "$.a", "update": {"b": 2}}, "must say why"),
        ({"target": "$.a", "description": "why"}, "either updates or removes"),
        ({"target": "a", "description": "why", "remove": True}, "JSONPath"),
    ],
)
def test_overlay_refuses_stale_or_malformed_actions(action: JSON, message: str) -> None:
    with pytest.raises(overlay.OverlayError, match=message):
        overlay.apply({"a": {"b": 1}}, make_overlay(action))


def test_vendored_overlay_is_well_formed() -> None:
    document = load(OPENAPI / "overlay.json")
    overlay.validate(document)
    for action in document["actions"]:
        jsonpath.parse(action["target"])  # inside the supported subset
    targets = Counter(a["target"] for a in document["actions"])
    assert not [t for t, n in targets.items() if n > 1 and t.endswith("]")], "duplicate filters"


# --- split ----------------------------------------------------------------------------------


def test_referenced_schemas_depth_first_preorder() -> None:
    schemas = {
        "Page": {"properties": {"data": {"items": {"$ref": "#/components/schemas/A"}}}},
        "A": {
            "properties": {
                "default": {"$ref": "#/components/schemas/C%20%28read%29"},
                "b": {"allOf": [{"$ref": "#/components/schemas/B"}]},
            }
        },
        "B": {"properties": {"a": {"$ref": "#/components/schemas/A"}}},
        "C (read)": {"enum": [{"$ref": "not a ref: a literal"}]},
        "Unused": {},
    }
    operation = {
        "responses": {"200": {"content": {"a": {"schema": {"$ref": SCHEMA_REF + "Page"}}}}}
    }
    assert split.referenced_schemas(operation, schemas) == ["Page", "A", "C (read)", "B"]
    with pytest.raises(ValueError, match="dangling"):
        split.referenced_schemas({"$ref": SCHEMA_REF + "Nope"}, schemas)


def test_file_stem() -> None:
    assert split.file_stem("list_datasets") == "list_datasets"
    assert split.file_stem("get_csv_api_/organizations/<org:org>/datasets.csv") == (
        "get_csv_api__organizations_org_org_datasets.csv"
    )


def test_split_checks_operation_ids() -> None:
    document = convert.convert_document(
        swagger(
            {
                "/a/": {"get": {"operationId": "same", "responses": {}, "tags": ["t"]}},
                "/b/": {"get": {"operationId": "same", "responses": {}, "tags": ["t"]}},
            }
        )
    )
    with pytest.raises(ValueError, match="duplicated"):
        split.split(document)
    document["paths"]["/b/"]["get"]["operationId"] = "other"
    document["paths"]["/b/"]["get"]["tags"] = ["t", "u"]
    with pytest.raises(ValueError, match="exactly one tag"):
        split.split(document)


def test_build_helpers() -> None:
    assert build.pinned_version(build.REQUIREMENTS) == "17.18.0"
    text = "a\n<!-- BEGIN GENERATED x -->\nold\n<!-- END GENERATED x -->\nb"
    assert build.fill_section(text, "x", "new") == (
        "a\n<!-- BEGIN GENERATED x -->\nnew\n<!-- END GENERATED x -->\nb"
    )
    with pytest.raises(SystemExit):
        build.fill_section(text, "y", "new")


# --- the vendored fragments -----------------------------------------------------------------


def test_counts_match_manifest(fragments: dict[str, JSON], manifest: JSON) -> None:
    assert manifest["source"] == {
        "package": "udata",
        "version": "17.18.0",
        "document": "/api/1/swagger.json",
    }
    ids = [only_operation(f)[2]["operationId"] for f in fragments.values()]
    assert len(fragments) == manifest["operations"] == 247
    assert len(set(ids)) == len(ids), "operationIds must be unique"
    assert sorted(ids) == manifest["operation_ids"]
    assert len({only_operation(f)[0] for f in fragments.values()}) == manifest["paths"] == 178
    by_tag = Counter(name.split("/")[0] for name in fragments)
    assert dict(sorted(by_tag.items())) == manifest["operations_by_tag"]
    assert sum(manifest["operations_by_tag"].values()) == manifest["operations"]


def test_only_fragments_in_tag_folders() -> None:
    top = sorted(p.name for p in OPENAPI.iterdir() if p.is_file())
    assert top == ["SOURCE.md", "manifest.json", "overlay.json", "required.json"]
    tags = [p for p in OPENAPI.iterdir() if p.is_dir() and p.name != "v2"]
    assert all(p.suffix == ".json" for tag in tags for p in tag.iterdir())
    assert not [p for tag in tags for p in tag.glob("*/*")], "no deeper nesting"


def _refs(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                found.add(item)
            elif key not in ("example", "default", "enum"):
                found |= _refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= _refs(item)
    return found


def test_fragments_are_self_contained(fragments: dict[str, JSON]) -> None:
    for name, fragment in fragments.items():
        path, method, operation = only_operation(fragment)
        assert list(fragment)[:5] == ["openapi", "info", "tags", "servers", "paths"], name
        assert fragment["openapi"] == "3.1.1"
        assert fragment["info"] == {"title": "uData API", "version": "1.0"}
        assert fragment["servers"] == [{"url": "https://www.data.gouv.fr/api/1"}]
        assert [t["name"] for t in fragment["tags"]] == operation["tags"] == [name.split("/")[0]]
        # udata declares every namespace with a description but "transfer".
        assert bool(fragment["tags"][0].get("description")) != (operation["tags"] == ["transfer"])
        assert name.split("/")[1] == split.file_stem(operation["operationId"]) + ".json"
        schemas = fragment.get("components", {}).get("schemas", {})
        for ref in _refs(fragment):
            assert ref.startswith(SCHEMA_REF), (name, ref)
            assert unquote(ref[len(SCHEMA_REF) :]) in schemas, (name, ref)
        # Nothing more than what the operation reaches, in the documented order.
        assert list(schemas) == split.referenced_schemas(fragment["paths"], schemas), name
        schemes = fragment.get("components", {}).get("securitySchemes")
        if "security" in operation:
            assert schemes == {"apikey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}}
        else:
            assert schemes is None, name
        assert set(re.findall(r"\{(\w+)\}", path)) == {
            p["name"]
            for p in [
                *fragment["paths"][path].get("parameters", []),
                *operation.get("parameters", []),
            ]
            if p["in"] == "path"
        }, name
        assert method in convert.HTTP_METHODS


def test_identical_schemas_across_fragments(fragments: dict[str, JSON]) -> None:
    seen: dict[str, Any] = {}
    for name, fragment in fragments.items():
        for schema, value in fragment.get("components", {}).get("schemas", {}).items():
            assert seen.setdefault(schema, value) == value, (name, schema)


def test_fragments_are_in_the_house_style() -> None:
    for path in [*fragment_files(), OPENAPI / "manifest.json", OPENAPI / "overlay.json"]:
        text = path.read_text(encoding="utf-8")
        assert text == build.dumps(json.loads(text)), path


def test_secured_operations_and_overlay_results(fragments: dict[str, JSON]) -> None:
    """Spot checks of what the dump record and the overlay must have produced."""
    operations = {
        only_operation(f)[2]["operationId"]: only_operation(f) for f in fragments.values()
    }
    assert "security" in operations["create_dataset"][2]
    assert "security" not in operations["list_datasets"][2]
    assert sum("security" in op for _, _, op in operations.values()) == 145
    listing = operations["list_harvest_sources"][2]["responses"]["200"]
    assert listing["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HarvestSourcePage"
    }
    created = operations["create_harvest_source"][2]["responses"]
    assert sorted(created) == ["201"]
    dataset_page = fragments["datasets/list_datasets.json"]["components"]["schemas"]["DatasetPage"]
    assert dataset_page["properties"]["data"]["items"] == {"$ref": "#/components/schemas/Dataset"}
    temporal = fragments["datasets/get_dataset.json"]["components"]["schemas"]["TemporalCoverage"]
    assert {p["format"] for p in temporal["properties"].values()} == {"date"}


# --- agreement with the seed fragments ------------------------------------------------------
#
# ../shared/seeds/ holds hand-made OpenAPI 3.1 fragments of the harvest operations, converted
# from an older udata (a gitbook export). Ours must agree with them once known renames are
# normalised, except for the differences listed in EXPECTED, each with its reason.

SEED_FILE = "001_56fcb22c446c7aeb.txt"
_SUFFIX_READ = re.compile(r" \(read\)$")

# Normalisations (applied to both sides before comparing):
# - schema names: percent-decoded, " (read)" dropped (the seed's udata named read models
#   "HarvestSource", ours "HarvestSource (read)"; some were already "Badge (read)" in the seed).
#   " (write)" is kept: 17.x split request models off, so that shows up as a difference;
# - the path parameter rename /harvest/job/{ident}/ → /harvest/job/{job}/ (same URL);
# - parameters are compared as a mapping by (in, name): their order carries no meaning;
# - `required` lists are compared as sets, one difference per name ("required+x"/"required-x").
PATH_RENAMES = {"/harvest/job/{ident}/": "/harvest/job/{job}/"}

DRIFT = "version drift: the seed comes from an older udata than 17.18.0"
JOB_ITEMS = DRIFT + " (a job's items became a subsection link, its source a reference)"
EXPECTED: list[tuple[str, str, str, str]] = [
    # (scope glob, pointer glob, kind glob, reason); the first entry that matches explains.
    # -- the overlay (openapi/overlay.json; the seed carries the upstream bugs) --
    (
        "op harvest_backends",
        "/responses/200/content/application/json/schema/*",
        "*",
        "overlay: /harvest/backends/ sends an array",
    ),
    (
        "op list_harvest_sources",
        "/responses/200/content/application/json/schema/*",
        "*",
        "overlay: /harvest/sources/ sends one page, not an array of pages",
    ),
    ("op create_harvest_source", "/responses/20[01]", "only-*", "overlay: 201 Created"),
    ("op delete_harvest_source", "/responses/20[04]", "only-*", "overlay: 204 No Content"),
    (
        "op delete_harvest_source",
        "/components/*",
        "only-seed",
        "overlay: a 204 has no body, so no schema is reached",
    ),
    (
        "schema SpatialCoverage",
        "/properties/granularity/*",
        "only-*",
        "overlay: granularity is an id, or an object with X-Get-Datasets-Full-Objects",
    ),
    (
        "schema SpatialCoverage",
        "/properties/zones/*",
        "*",
        "overlay: zones are a list of ids, or of objects with X-Get-Datasets-Full-Objects",
    ),
    (
        "op preview_*",
        "/components/Geo[GZ]*",
        "only-ours",
        "overlay: GeoGranularity and GeoZoneReference, the full-objects forms of spatial",
    ),
    (
        "schema GeoJSON",
        "/properties/coordinates/items/type",
        "only-seed",
        "overlay: coordinates are nested arrays of numbers",
    ),
    ("schema GeoJSON", "/required", "required-coordinates", "overlay: zones send null geometry"),
    ("schema GeoJSON", "/required", "required-type", "overlay: zones send null geometry"),
    (
        "schema TemporalCoverage",
        "/properties/*/format",
        "changed",
        "overlay: dates, not date-times",
    ),
    (
        "schema BaseReference",
        "/required",
        "required-id",
        "overlay: last_job.source is {class: NoneType, id: null}",
    ),
    ("schema Resource", "/required", "required-format", "overlay: format is sent as null"),
    ("schema Resource", "/required", "required-type", "overlay: old resources have no type"),
    ("schema HarvestJobPreview", "/required", "required-id", "overlay: a preview job has no id"),
    (
        "schema BaseReference",
        "/discriminator",
        "only-seed",
        "overlay: no mapping, and the wire's class names are not schema names; generators "
        "turned every reference field into an undecodable union",
    ),
    # -- the converter --
    (
        "op *",
        "/security",
        "only-ours",
        "converter: security recovered from @api.secure (udata drops it from its swagger)",
    ),
    ("fragment *", "/servers", "changed", "converter: production is https; the seed said http"),
    # -- version drift between the seed's udata and 17.18.0 --
    (
        "op *",
        "/parameters/query:page*/schema/exclusiveMinimum",
        "only-ours",
        DRIFT + " (page and page_size must be positive, udata 17.0.3)",
    ),
    (
        "op get_harvest_job",
        "/parameters/query:page*",
        "only-seed",
        DRIFT + " (the job's items moved to /harvest/job/{job}/items/, paginated there)",
    ),
    ("op list_harvest_sources", "/parameters/query:organization", "only-ours", DRIFT),
    ("op list_harvest_sources", "/parameters/query:*/description", "*", DRIFT + " (wording)"),
    (
        "op *",
        "/requestBody/content/application/json/schema/$ref",
        "changed",
        DRIFT + " (request bodies use the '(write)' models)",
    ),
    ("op *", "/components/* (write)", "only-ours", DRIFT + " (the '(write)' models)"),
    (
        "op preview_harvest_source_config",
        "/components/*",
        "only-seed",
        DRIFT + " (its body is HarvestSource (write), which does not reach the read model's "
        "HarvestSource, HarvestJob, permissions and validation)",
    ),
    ("op *", "/components/HarvestItem", "only-seed", JOB_ITEMS),
    ("op *", "/components/Data*Reference", "only-seed", JOB_ITEMS),
    ("op *", "/components/HarvestSourceReference", "only-ours", JOB_ITEMS),
    ("schema HarvestJob*", "/properties/items/*", "*", JOB_ITEMS),
    ("schema HarvestJob*", "/properties/source/*", "only-*", JOB_ITEMS),
    ("schema HarvestJob*", "/required", "required-source", JOB_ITEMS),
    ("op preview_*", "/components/Geopf*Metadata", "only-ours", DRIFT + " (geopf metadata)"),
    ("op preview_*", "/components/HarvestLog", "only-ours", DRIFT + " (harvest item logs)"),
    ("schema *", "/properties/geopf", "only-ours", DRIFT + " (geopf metadata)"),
    ("schema *", "/properties/doi", "only-ours", DRIFT + " (DOIs)"),
    ("schema HarvestDatasetMetadata", "/properties/archived", "only-seed", DRIFT),
    ("schema HarvestDatasetMetadata", "/properties/archived_reason", "only-ours", DRIFT),
    ("schema HarvestDatasetMetadata", "/properties/source_url", "only-ours", DRIFT),
    ("schema HarvestResourceMetadata", "/properties/last_update", "only-ours", DRIFT),
    ("schema HarvestError", "/properties/level", "only-seed", DRIFT),
    ("schema HarvestError", "/properties/created_at", "only-ours", DRIFT),
    ("schema HarvestError", "/properties/details", "only-ours", DRIFT),
    ("schema HarvestError", "/required", "required-level", DRIFT),
    ("schema HarvestError", "/required", "required-message", DRIFT),
    ("schema HarvestError", "/required", "required+created_at", DRIFT),
    (
        "schema Harvest*",
        "/properties/errors/items/*",
        "only-*",
        DRIFT + " (list items wrapped as allOf [$ref] with a description)",
    ),
    (
        "schema HarvestItemPreview",
        "/properties/logs/items/*",
        "only-*",
        DRIFT + " (list items wrapped as allOf [$ref] with a description)",
    ),
    ("schema HarvestItemPreview", "/required", "required-remote_id", DRIFT),
    ("schema HarvestSource", "/properties/slug", "only-ours", DRIFT + " (sources got slugs)"),
    ("schema HarvestSource", "/required", "required+id", DRIFT),
    ("schema HarvestSource", "/properties/name/maxLength", "only-ours", DRIFT),
    (
        "schema HarvestSource",
        "/properties/backend/enum",
        "only-seed",
        DRIFT + " (17.x validates the backend with a check function, no enum; the seed's enum "
        "listed the backends enabled where it was exported)",
    ),
    ("schema HarvestSource", "/properties/*/default", "only-seed", DRIFT),
    ("schema HarvestItemPreview", "/properties/*/default", "only-seed", DRIFT),
    ("schema ContactPoint", "/required", "required-name", DRIFT),
    ("schema *Reference", "/allOf", "changed", DRIFT + " (reference fields reshaped)"),
    (
        "schema *",
        "/properties/*/example",
        "only-ours",
        DRIFT + " (17.x flask-restx adds the first enum value as example)",
    ),
    ("schema *", "/properties/*readOnly", "only-ours", DRIFT + " (17.x marks server-set fields)"),
    ("schema *", "/properties/*/description", "*", DRIFT + " (wording)"),
    # -- openapi/required.json: fields udata always sends non-null (its swagger's `required` is
    # about input). The seed's older udata did declare HarvestSource active and autoarchive so.
    (
        "schema *",
        "/required",
        "required+*",
        "required.json: sent non-null by every udata since 2.0.0 (tests/test_types_required.py)",
    ),
]

Diff = tuple[str, str, str]  # (scope, pointer, kind)


def _normalise(value: Any) -> Any:
    """Schema names decoded and without " (read)", parameters keyed by (in, name)."""
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: JSON = {}
    for key, item in value.items():
        if key == "$ref" and isinstance(item, str) and item.startswith(SCHEMA_REF):
            out[key] = SCHEMA_REF + _schema_key(item[len(SCHEMA_REF) :])
        elif key == "parameters" and isinstance(item, list):
            out[key] = {f"{p['in']}:{p['name']}": _normalise(p) for p in item}
        else:
            out[key] = _normalise(item)
    return out


def _schema_key(name: str) -> str:
    return _SUFFIX_READ.sub("", unquote(name))


def _diff(seed: Any, ours: Any, scope: str, pointer: str = "") -> list[Diff]:
    if isinstance(seed, dict) and isinstance(ours, dict):
        found: list[Diff] = []
        for key in dict.fromkeys([*seed, *ours]):
            here = f"{pointer}/{key}"
            if key not in ours:
                found.append((scope, here, "only-seed"))
            elif key not in seed:
                found.append((scope, here, "only-ours"))
            elif key == "required" and isinstance(seed[key], list):
                found += [
                    (scope, here, f"required-{n}") for n in sorted(set(seed[key]) - set(ours[key]))
                ]
                found += [
                    (scope, here, f"required+{n}") for n in sorted(set(ours[key]) - set(seed[key]))
                ]
            else:
                found += _diff(seed[key], ours[key], scope, here)
        return found
    return [] if seed == ours else [(scope, pointer, "changed")]


def _seed_fragments() -> list[JSON]:
    seed_file = SEEDS / SEED_FILE
    if not seed_file.exists():
        pytest.skip("../shared/seeds/ is not there: the repository stands alone")
    text = seed_file.read_text(encoding="utf-8")
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)]


def seed_differences(ours_by_id: dict[str, JSON]) -> list[Diff]:
    """Every difference between the seed fragments and ours, after normalisation."""
    found: list[Diff] = []
    seed_schemas: dict[str, Any] = {}
    our_schemas: dict[str, Any] = {}
    for seed in _seed_fragments():
        path, method, operation = only_operation(seed)
        assert list(seed["paths"][path]) == [method], "the seed has no path-level parameters"
        ours = ours_by_id[operation["operationId"]]
        our_path, our_method, our_operation = only_operation(ours)
        assert (PATH_RENAMES.get(path, path), method) == (our_path, our_method)
        scope = f"op {operation['operationId']}"
        found += _diff(_normalise(operation), _normalise(our_operation), scope)
        for key in ("openapi", "info", "tags", "servers"):
            found += _diff(seed[key], ours[key], f"fragment {operation['operationId']}", f"/{key}")
        theirs = {_schema_key(k): v for k, v in seed["components"]["schemas"].items()}
        mine = {_schema_key(k): v for k, v in ours.get("components", {}).get("schemas", {}).items()}
        found += [(scope, f"/components/{n}", "only-seed") for n in theirs if n not in mine]
        found += [(scope, f"/components/{n}", "only-ours") for n in mine if n not in theirs]
        for name in set(theirs) & set(mine):
            # Each side must be consistent across its own fragments; compare each name once.
            assert seed_schemas.setdefault(name, theirs[name]) == theirs[name], name
            assert our_schemas.setdefault(name, mine[name]) == mine[name], name
    for name in sorted(seed_schemas):
        found += _diff(
            _normalise(seed_schemas[name]), _normalise(our_schemas[name]), f"schema {name}"
        )
    return found


def _expected(difference: Diff) -> int | None:
    """The index of the first EXPECTED entry that explains ``difference``."""
    scope, pointer, kind = difference
    for index, (scope_glob, pointer_glob, kind_glob, _reason) in enumerate(EXPECTED):
        if (
            fnmatch.fnmatchcase(scope, scope_glob)
            and fnmatch.fnmatchcase(pointer, pointer_glob)
            and fnmatch.fnmatchcase(kind, kind_glob)
        ):
            return index
    return None


def test_seed_harvest_fragments_agree(fragments: dict[str, JSON]) -> None:
    seeds = _seed_fragments()
    assert len(seeds) == 11
    ours_by_id = {only_operation(f)[2]["operationId"]: f for f in fragments.values()}
    differences = seed_differences(ours_by_id)
    unexpected = [d for d in differences if _expected(d) is None]
    assert not unexpected, "differences from the seed nobody explained:\n" + "\n".join(
        map(str, unexpected)
    )
    # Every expectation must still be needed, or it would hide a future regression.
    used = {_expected(d) for d in differences}
    stale = [e for i, e in enumerate(EXPECTED) if i not in used]
    assert not stale, f"expected differences that no longer occur: {stale}"


def test_seed_comparison_catches_a_regression(fragments: dict[str, JSON]) -> None:
    """The comparison is not vacuous: a changed summary or parameter type fails it."""
    _seed_fragments()
    ours_by_id = {only_operation(f)[2]["operationId"]: copy.deepcopy(f) for f in fragments.values()}
    _, _, operation = only_operation(ours_by_id["get_harvest_source"])
    operation["summary"] = "Something else"
    operation["parameters"][0]["schema"]["type"] = "integer"
    unexpected = [d for d in seed_differences(ours_by_id) if _expected(d) is None]
    assert ("op get_harvest_source", "/summary", "changed") in unexpected
    assert ("op get_harvest_source", "/parameters/header:X-Fields/schema/type", "changed") in (
        unexpected
    )
