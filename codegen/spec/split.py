"""Cutting the full OpenAPI 3.1 document into one self-contained fragment per operation.

A fragment is a complete OpenAPI document (like the hand-made seed fragments): openapi, info,
the operation's one tag, servers, one path with one operation (plus the path item's shared
``parameters``), and only the components that operation reaches.

Schema order inside a fragment: depth-first pre-order of first appearance, walking the
operation in its key order (parameters, responses, requestBody) and each schema in its key
order, recursing into a schema as soon as it is first referenced. That is the order of the seed
fragments, it reads top-down (the response model first, then what it uses), and it depends only
on the document, so rebuilding gives identical files.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import unquote

from .convert import HTTP_METHODS, OPENAPI_REF

JSON = dict[str, Any]
Operation = tuple[str, str, JSON]  # (path, method, operation)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def operations(document: JSON) -> list[Operation]:
    """Every operation of the document, in document order."""
    return [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


def check_operations(document: JSON) -> None:
    """One tag per operation (it names the folder) and operationIds unique (they name files)."""
    ids = Counter(op.get("operationId") for _, _, op in operations(document))
    duplicated = sorted(str(i) for i, n in ids.items() if n > 1 or i is None)
    if duplicated:
        raise ValueError(f"missing or duplicated operationIds: {duplicated}")
    files = Counter(file_stem(str(i)) for i in ids)
    clashing = sorted(stem for stem, n in files.items() if n > 1)
    if clashing:
        raise ValueError(f"operationIds that map to the same file name: {clashing}")
    for path, method, op in operations(document):
        if len(op.get("tags", [])) != 1:
            raise ValueError(f"{method.upper()} {path}: expected exactly one tag, {op.get('tags')}")


def file_stem(operation_id: str) -> str:
    """The fragment's file name; udata's fallback ids embed the URL rule, slashes and all."""
    return _UNSAFE.sub("_", operation_id).strip("_")


def schema_name(ref: str) -> str | None:
    """The components.schemas key a ref points at ("Dataset%20%28read%29" → "Dataset (read)")."""
    if not ref.startswith(OPENAPI_REF):
        return None
    pointer = unquote(ref[len(OPENAPI_REF) :])
    return pointer.replace("~1", "/").replace("~0", "~")


def referenced_schemas(value: Any, schemas: JSON) -> list[str]:
    """Names of the schemas ``value`` reaches, transitively, in depth-first pre-order."""
    found: dict[str, None] = {}  # an ordered set

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, item in node.items():
            if key == "$ref" and isinstance(item, str):
                name = schema_name(item)
                if name is None or name not in schemas:
                    raise ValueError(f"dangling reference {item!r}")
                if name not in found:
                    found[name] = None
                    walk(schemas[name])
            elif key == "properties" and isinstance(item, dict):
                # Property names are data: a property may well be called "default".
                for prop in item.values():
                    walk(prop)
            elif key not in ("example", "examples", "default", "enum", "const"):
                walk(item)  # everything else may hold schemas; literals cannot

    walk(value)
    return list(found)


def _security_names(operation: JSON) -> list[str]:
    return list(dict.fromkeys(name for req in operation.get("security", []) for name in req))


def fragment(document: JSON, path: str, method: str) -> JSON:
    """The self-contained document for one operation."""
    item = document["paths"][path]
    operation = item[method]
    tag_name = operation["tags"][0]
    tag = next((t for t in document.get("tags", []) if t["name"] == tag_name), {"name": tag_name})
    path_item: JSON = {method: operation}
    if "parameters" in item:
        path_item["parameters"] = item["parameters"]
    all_schemas = document.get("components", {}).get("schemas", {})
    names = referenced_schemas(path_item, all_schemas)
    components: JSON = {}
    if names:
        components["schemas"] = {name: all_schemas[name] for name in names}
    security = _security_names(operation)
    if security:
        schemes = document.get("components", {}).get("securitySchemes", {})
        missing = [name for name in security if name not in schemes]
        if missing:
            raise ValueError(f"{operation['operationId']}: unknown security schemes {missing}")
        components["securitySchemes"] = {name: schemes[name] for name in security}
    out: JSON = {
        "openapi": document["openapi"],
        "info": document["info"],
        "tags": [tag],
        "servers": document["servers"],
        "paths": {path: path_item},
    }
    if components:
        out["components"] = components
    return out


def split(document: JSON) -> dict[str, JSON]:
    """``{"<tag>/<file stem>.json": fragment}`` for every operation, sorted by file name."""
    check_operations(document)
    fragments = {
        f"{op['tags'][0]}/{file_stem(op['operationId'])}.json": fragment(document, path, method)
        for path, method, op in operations(document)
    }
    return dict(sorted(fragments.items()))


def manifest(
    document: JSON, package: str, version: str, served_at: str = "/api/1/swagger.json"
) -> JSON:
    """What the generated client must cover; the codegen tests compare their stubs with it."""
    ops = operations(document)
    by_tag = Counter(op["tags"][0] for _, _, op in ops)
    return {
        "source": {"package": package, "version": version, "document": served_at},
        "paths": len(document["paths"]),
        "operations": len(ops),
        "operations_by_tag": dict(sorted(by_tag.items())),
        "operation_ids": sorted(op["operationId"] for _, _, op in ops),
    }
