"""Swagger 2.0 → OpenAPI 3.1, for the document udata serves at /api/1/swagger.json.

Pure functions on JSON values: no I/O, inputs are never mutated. Key order is kept as the input
has it (udata serves its swagger with sorted keys) so that re-running gives identical output;
where we build new objects the order follows the hand-converted seed fragments
(parameter: schema, description, in, name, required; operation: swagger order, requestBody last).
"""

from __future__ import annotations

import copy
from typing import Any

from .jsonpath import find

JSON = dict[str, Any]

OPENAPI_VERSION = "3.1.1"
SWAGGER_REF = "#/definitions/"
OPENAPI_REF = "#/components/schemas/"
RESPONSE_REF = "#/responses/"
JSON_MEDIA = "application/json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# Vendor key added by dump_swagger.py: the udata version, and the operationIds udata guards
# with @api.secure (under "secured_operations").
DUMP_KEY = "x-aioudata-dump"

# Swagger 2.0 parameter keys that become the parameter's `schema` in 3.x, in output order.
_PARAM_SCHEMA_KEYS = (
    "type",
    "format",
    "items",
    "default",
    "enum",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
)
# Swagger collectionFormat → (style, explode) for query parameters; csv is the 2.0 default.
_QUERY_STYLES = {
    "multi": ("form", True),
    "csv": ("form", False),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
}


# --- source quirks -------------------------------------------------------------------------


def sort_enums(document: JSON, targets: list[str]) -> JSON:
    """A copy of ``document`` whose enums at ``targets`` (JSONPaths to schemas) are sorted.

    Some udata enums are built from sets or from a task registry filled in import order
    (celery task states, periodic task names): their order changes from one run to the next.
    Sorting them, and the ``example`` flask-restx copies from the first value, makes the build
    reproducible. A target that matches no enum is an error, like an overlay action.
    """
    result = copy.deepcopy(document)
    for target in targets:
        nodes = [n for n in find(result, target) if isinstance(n.value, dict)]
        if not nodes or any("enum" not in n.value for n in nodes):
            raise ValueError(f"no enum to sort at {target}")
        for node in nodes:
            schema = node.value
            schema["enum"] = sorted(schema["enum"], key=str)
            if "example" in schema:
                schema["example"] = schema["enum"][0]
    return result


# --- schemas -------------------------------------------------------------------------------


def convert_ref(ref: str) -> str:
    """Point a definitions ref at components; the percent-encoding of the name is kept as is."""
    if ref.startswith(SWAGGER_REF):
        return OPENAPI_REF + ref[len(SWAGGER_REF) :]
    return ref


def _exclusive_bounds(schema: JSON) -> None:
    """2.0 ``exclusiveMinimum: true`` qualifies ``minimum``; 3.1 makes it the bound itself."""
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if flag not in schema or not isinstance(schema[flag], bool):
            continue
        exclusive = schema.pop(flag)
        if exclusive and bound in schema:
            schema[flag] = schema.pop(bound)


def _nullable(schema: JSON) -> JSON:
    """``x-nullable: true`` → a ``"null"`` type member (or anyOf when there is no plain type)."""
    if not schema.pop("x-nullable", False):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str) and "$ref" not in schema and "allOf" not in schema:
        schema["type"] = [kind, "null"]
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def convert_schema(schema: Any) -> Any:
    """One Swagger 2.0 schema object (recursively) as a JSON Schema 2020-12 / OAS 3.1 schema."""
    if isinstance(schema, list):
        return [convert_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = convert_ref(value)
        elif key == "properties" and isinstance(value, dict):
            # Property names are data, not keywords: convert only their values.
            out[key] = {name: convert_schema(prop) for name, prop in value.items()}
        elif key == "discriminator" and isinstance(value, str):
            # 2.0 names the property; 3.x wants a Discriminator Object.
            out[key] = {"propertyName": value}
        elif key in ("example", "default", "enum", "x-mask"):
            out[key] = copy.deepcopy(value)  # literal values, never schemas
        else:
            out[key] = convert_schema(value)
    if out.get("type") == "file":
        out["type"], out["format"] = "string", "binary"
    _exclusive_bounds(out)
    return _nullable(out)


def convert_definitions(definitions: JSON) -> JSON:
    """``definitions`` → ``components.schemas``, wire names ("Dataset (read)") unchanged."""
    return {name: convert_schema(schema) for name, schema in definitions.items()}


# --- parameters ----------------------------------------------------------------------------


def _param_schema(param: JSON) -> JSON:
    """The validation keys of a non-body parameter, moved into a schema."""
    schema: JSON = {}
    for key in _PARAM_SCHEMA_KEYS:
        if key not in param:
            continue
        value = param[key]
        if key == "items":
            # Items may nest a collectionFormat of their own; 3.x has no place for it.
            value = _param_schema(value)
        schema[key] = copy.deepcopy(value)
    if schema.get("type") == "file":
        schema["type"], schema["format"] = "string", "binary"
    _exclusive_bounds(schema)
    return _nullable({**schema, **({"x-nullable": True} if param.get("x-nullable") else {})})


def convert_parameter(param: JSON) -> JSON:
    """A query/path/header/cookie parameter in the 3.x shape."""
    out: JSON = {"schema": _param_schema(param)}
    for key in ("description", "in", "name"):
        if key in param:
            out[key] = param[key]
    if param.get("in") == "path":
        out["required"] = True  # mandatory in 3.x, implied in 2.0
    elif "required" in param:
        out["required"] = param["required"]
    if param.get("type") == "array" and param.get("in") == "query":
        style, explode = _QUERY_STYLES[param.get("collectionFormat", "csv")]
        out["style"], out["explode"] = style, explode
    if param.get("allowEmptyValue"):
        out["allowEmptyValue"] = True
    out.update({k: copy.deepcopy(v) for k, v in param.items() if k.startswith("x-")})
    out.pop("x-nullable", None)
    return out


def body_request(param: JSON, consumes: list[str]) -> JSON:
    """``in: body`` → ``requestBody`` with one media type per consumed content type."""
    schema = convert_schema(param.get("schema", {}))
    body: JSON = {}
    if "description" in param:
        body["description"] = param["description"]
    body["content"] = {media: {"schema": copy.deepcopy(schema)} for media in consumes}
    body["required"] = bool(param.get("required", False))
    return body


def form_request(params: list[JSON], consumes: list[str]) -> JSON:
    """``in: formData`` parameters → one object schema, sent as a form (files as binary)."""
    properties: JSON = {}
    required: list[str] = []
    for param in params:
        prop = _param_schema(param)
        if "description" in param:
            prop["description"] = param["description"]
        properties[param["name"]] = prop
        if param.get("required"):
            required.append(param["name"])
    schema: JSON = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    # A form with a file can only travel as multipart, whatever else the operation lists.
    medias = [m for m in consumes if m.startswith(("multipart/", "application/x-www-form"))]
    content = {m: {"schema": copy.deepcopy(schema)} for m in medias or ["multipart/form-data"]}
    return {"content": content, "required": bool(required)}


# --- responses and operations --------------------------------------------------------------


def resolve_response(response: JSON, shared: JSON) -> JSON:
    """Inline a ``#/responses/...`` ref so that every fragment stands alone."""
    ref = response.get("$ref")
    if not isinstance(ref, str):
        return response
    if not ref.startswith(RESPONSE_REF) or ref[len(RESPONSE_REF) :] not in shared:
        raise ValueError(f"unresolvable response ref {ref!r}")
    resolved: JSON = shared[ref[len(RESPONSE_REF) :]]
    return resolved


def convert_response(response: JSON, produces: list[str]) -> JSON:
    """A response: description, headers, and the schema under each produced media type."""
    out: JSON = {"description": response.get("description", "")}
    if "headers" in response:
        out["headers"] = {
            name: {
                **({"description": h["description"]} if "description" in h else {}),
                "schema": _param_schema(h),
            }
            for name, h in response["headers"].items()
        }
    if "schema" in response:
        schema = convert_schema(response["schema"])
        out["content"] = {media: {"schema": copy.deepcopy(schema)} for media in produces}
    examples = response.get("examples", {})
    for media, example in examples.items():
        out.setdefault("content", {}).setdefault(media, {})["example"] = copy.deepcopy(example)
    return out


def convert_operation(operation: JSON, document: JSON, secured: set[str]) -> JSON:
    """One operation; parameters split between ``parameters`` and ``requestBody``."""
    consumes = list(operation.get("consumes") or document.get("consumes") or [JSON_MEDIA])
    produces = list(operation.get("produces") or document.get("produces") or [JSON_MEDIA])
    shared_responses = document.get("responses", {})
    params = operation.get("parameters", [])
    out: JSON = {}
    for key, value in operation.items():
        if key in ("consumes", "produces", "schemes"):
            continue  # folded into media types / servers
        if key == "parameters":
            plain = [convert_parameter(p) for p in value if p["in"] not in ("body", "formData")]
            if plain:
                out[key] = plain
        elif key == "responses":
            out[key] = {
                code: convert_response(resolve_response(resp, shared_responses), produces)
                for code, resp in value.items()
            }
        else:
            out[key] = copy.deepcopy(value)
    if "security" not in out and document.get("security"):
        out["security"] = copy.deepcopy(document["security"])  # the 2.0 document-wide default
    if "security" not in out and operation.get("operationId") in secured:
        out["security"] = [{name: []} for name in document.get("securityDefinitions", {})]
    bodies = [p for p in params if p["in"] == "body"]
    forms = [p for p in params if p["in"] == "formData"]
    if bodies and forms:
        raise ValueError(f"{operation.get('operationId')}: both body and formData parameters")
    if bodies:
        out["requestBody"] = body_request(bodies[0], consumes)
    elif forms:
        out["requestBody"] = form_request(forms, consumes)
    return out


def convert_path_item(item: JSON, document: JSON, secured: set[str]) -> JSON:
    """A path item: its operations, then the parameters shared by all of them."""
    out: JSON = {}
    for key, value in item.items():
        if key in HTTP_METHODS:
            out[key] = convert_operation(value, document, secured)
        elif key == "parameters":
            out[key] = [convert_parameter(p) for p in value]
        else:
            out[key] = copy.deepcopy(value)
    # Shared parameters go last, after the operations, as the fragments list them.
    if "parameters" in out:
        out["parameters"] = out.pop("parameters")
    return out


def convert_security_schemes(definitions: JSON) -> JSON:
    """securityDefinitions → securitySchemes (only apiKey and basic exist in udata's world)."""
    schemes: JSON = {}
    for name, definition in definitions.items():
        if definition.get("type") == "basic":
            schemes[name] = {"type": "http", "scheme": "basic"}
        else:
            schemes[name] = {k: definition[k] for k in ("type", "in", "name") if k in definition}
            for key in ("description",):
                if key in definition:
                    schemes[name][key] = definition[key]
    return schemes


def server_url(document: JSON) -> str:
    """``schemes[0]://host/basePath``; udata only lists https when asked over https."""
    scheme = (document.get("schemes") or ["https"])[0]
    return f"{scheme}://{document['host']}{document.get('basePath', '')}"


def convert_document(document: JSON) -> JSON:
    """The whole Swagger 2.0 document as one OpenAPI 3.1 document."""
    if document.get("swagger") != "2.0":
        raise ValueError(f"not a Swagger 2.0 document: {document.get('swagger')!r}")
    secured = set(document.get(DUMP_KEY, {}).get("secured_operations", []))
    info = document.get("info", {})
    components: JSON = {"schemas": convert_definitions(document.get("definitions", {}))}
    if document.get("securityDefinitions"):
        components["securitySchemes"] = convert_security_schemes(document["securityDefinitions"])
    out: JSON = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": info.get("title", ""), "version": info.get("version", "")},
        "tags": copy.deepcopy(document.get("tags", [])),
        "servers": [{"url": server_url(document)}],
        "paths": {
            path: convert_path_item(item, document, secured)
            for path, item in document.get("paths", {}).items()
        },
        "components": components,
    }
    return out
