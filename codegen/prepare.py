"""Reshaping the merged spec before datamodel-code-generator sees it.

Four things datamodel-code-generator cannot be told to do, done here on the schema instead:
- name every schema as a Python class: "Dataset (read)" -> Dataset, "Dataset (write)" ->
  DatasetInput, a bare request form beside a read model -> DatasetInput;
- split request bodies from responses: a schema sent in a body loses its readOnly fields
  (a create payload must not demand the id or created_at the server assigns);
- take enums out of the schema (fields become plain strings, so a value the server adds later
  still decodes) and keep them aside, named after their owner and field, for real StrEnums;
- record which schema became which class, so the operation stubs use the same names.
"""

from __future__ import annotations

import copy
import keyword
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .spec_loader import JSON, operations

REF_PREFIX = "#/components/schemas/"
_SUFFIX = re.compile(r"^(?P<base>.*?)(?: \((?P<mode>read|write)\))?$")


@dataclass
class EnumSpec:
    """A set of known values for a string field; generated as a StrEnum, decoded as str."""

    name: str
    values: list[str]
    owner: str
    field: str
    description: str = ""


@dataclass
class Prepared:
    """The reshaped document plus what the generators need to know about it."""

    document: JSON
    names: dict[str, str]  # wire schema name -> class name
    inputs: set[str] = field(default_factory=set)  # class names used as request bodies
    enums: list[EnumSpec] = field(default_factory=list)
    enum_fields: dict[tuple[str, str], str] = field(default_factory=dict)  # (class, field) -> enum
    descriptions: dict[str, str] = field(default_factory=dict)  # class -> description


def prepare(document: JSON) -> Prepared:
    """Return a renamed, request/response-split, enum-free copy of ``document``."""
    doc = copy.deepcopy(document)
    schemas: JSON = doc["components"]["schemas"]
    names = class_names(list(schemas))
    doc["components"]["schemas"] = {names[k]: v for k, v in schemas.items()}
    unknown = _refs(doc) - set(names)
    if unknown:
        raise ValueError(f"$ref to schemas the document does not define: {sorted(unknown)}")
    _retarget(doc, names)
    prepared = Prepared(document=doc, names=names)
    _split_inputs(prepared)
    _extract_enums(prepared)
    for name, schema in doc["components"]["schemas"].items():
        if schema.get("description"):
            prepared.descriptions[name] = schema["description"]
    return prepared


def class_names(wire_names: list[str]) -> dict[str, str]:
    """Map each schema name of the spec to a unique Python class name.

    A bare name stays as it is; "X (read)" becomes X, or XRead beside a bare X; "X (write)"
    becomes XInput. A clash is an error, so a new udata version cannot rename silently.
    """
    bare = {n for n in wire_names if _SUFFIX.match(n)["mode"] is None}  # type: ignore[index]
    result: dict[str, str] = {}
    for wire in wire_names:
        match = _SUFFIX.match(wire)
        assert match is not None
        base, mode = _pascal(match["base"]), match["mode"]
        if mode == "write":
            result[wire] = base + "Input"
        elif mode == "read" and match["base"] in bare:
            result[wire] = base + "Read"
        else:
            result[wire] = base
    clashes = {c for c in result.values() if list(result.values()).count(c) > 1}
    if clashes:
        raise ValueError(f"schemas map to the same class name: {sorted(clashes)}")
    return result


def write_siblings(names: dict[str, str]) -> dict[str, str]:
    """Class of each read model -> class of its "(write)" sibling, where the spec has one."""
    writes = {
        _SUFFIX.match(wire)["base"]: cls  # type: ignore[index]
        for wire, cls in names.items()
        if wire.endswith(" (write)")
    }
    return {
        cls: writes[_SUFFIX.match(wire)["base"]]  # type: ignore[index]
        for wire, cls in names.items()
        if not wire.endswith(" (write)") and _SUFFIX.match(wire)["base"] in writes  # type: ignore[index]
    }


def ref_name(ref: str) -> str:
    """The schema name a local $ref points to (percent-decoded)."""
    if not ref.startswith(REF_PREFIX):
        raise ValueError(f"unsupported $ref {ref!r}")
    return unquote(ref[len(REF_PREFIX) :])


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref_name(ref))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _closure(schemas: JSON, roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]) - seen)
    return seen


def _has_read_only(schema: JSON) -> bool:
    props = schema.get("properties", {})
    if any(isinstance(p, dict) and p.get("readOnly") for p in props.values()):
        return True
    return any(_has_read_only(part) for part in schema.get("allOf", []) if isinstance(part, dict))


def _strip_read_only(schema: JSON) -> None:
    props = schema.get("properties", {})
    dropped = [k for k, v in props.items() if isinstance(v, dict) and v.get("readOnly")]
    for key in dropped:
        del props[key]
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in dropped]
        if not schema["required"]:
            del schema["required"]
    for part in schema.get("allOf", []):
        if isinstance(part, dict):
            _strip_read_only(part)


def _split_inputs(prepared: Prepared) -> None:
    doc = prepared.document
    schemas: JSON = doc["components"]["schemas"]
    body_roots: set[str] = set()
    response_roots: set[str] = set()
    for _route, _method, op, _shared in operations(doc):
        for media in op.get("requestBody", {}).get("content", {}).values():
            body_roots |= _refs(media.get("schema", {}))
        response_roots |= _refs(op.get("responses", {}))
        response_roots |= _refs(op.get("parameters", []))
    in_bodies = _closure(schemas, body_roots)
    in_responses = _closure(schemas, response_roots)
    # A body schema needs its own class when it (or something it embeds) has readOnly fields
    # and responses use it too; otherwise its readOnly fields are simply dropped in place.
    needs_copy = {
        name
        for name in in_bodies & in_responses
        if any(_has_read_only(schemas[n]) for n in _closure(schemas, {name}))
    }
    # Where udata has a "(write)" model for it, a body uses that; otherwise a copy is made.
    siblings = write_siblings(prepared.names)
    renames: dict[str, str] = {}
    for name in sorted(needs_copy):
        if name in siblings:
            renames[name] = siblings[name]
            continue
        new = name + "Input"
        if new in schemas:
            raise ValueError(f"request-body copy of {name} clashes with schema {new}")
        schemas[new] = copy.deepcopy(schemas[name])
        # The read model's "required" describes responses (fields the server always sends,
        # last_update for instance), not what a create or update must carry: the server
        # says what is missing in its 400 errors.
        schemas[new].pop("required", None)
        for part in schemas[new].get("allOf", []):
            if isinstance(part, dict):
                part.pop("required", None)
        renames[name] = new
        prepared.names[f"{name} (as request body)"] = new
    for name in sorted(in_bodies):
        target = renames.get(name, name)
        if target in siblings.values() and name in renames:
            continue  # an existing write model: leave it exactly as udata declares it
        _strip_read_only(schemas[target])
        _retarget(schemas[target], renames)
        prepared.inputs.add(target)
    prepared.inputs |= set(renames.values())
    for _route, _method, op, _shared in operations(doc):
        body = op.get("requestBody")
        if body:
            _retarget(body, renames)
    for name, schema in schemas.items():
        if name not in prepared.inputs:
            _drop_marker(schema)


def _retarget(node: Any, renames: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref_name(ref) in renames:
            node["$ref"] = REF_PREFIX + renames[ref_name(ref)]
        for value in node.values():
            _retarget(value, renames)
    elif isinstance(node, list):
        for value in node:
            _retarget(value, renames)


def _drop_marker(node: Any) -> None:
    # readOnly left on response models would make datamodel-code-generator split them again.
    if isinstance(node, dict):
        node.pop("readOnly", None)
        node.pop("writeOnly", None)
        for value in node.values():
            _drop_marker(value)
    elif isinstance(node, list):
        for value in node:
            _drop_marker(value)


def _extract_enums(prepared: Prepared) -> None:
    schemas: JSON = prepared.document["components"]["schemas"]
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[str, str, str]]] = {}
    for owner in sorted(schemas):
        for prop, node in _enum_nodes(schemas[owner]):
            values = tuple(v for v in node.pop("enum") if isinstance(v, str))
            node.setdefault("type", "string")
            key = (prop, values)
            groups.setdefault(key, []).append((owner, prop, node.get("description", "")))
    used: set[str] = set(schemas)
    for (_prop, values), owners in groups.items():
        # One StrEnum per field name and set of values, named after its most basic owner:
        # read models before inputs, then the shortest name.
        owner, prop, description = min(
            owners, key=lambda o: (o[0] in prepared.inputs, len(o[0]), o[0], o[1])
        )
        name = owner + _pascal(prop)
        while name in used:
            name += "Value"
        used.add(name)
        prepared.enums.append(EnumSpec(name, list(values), owner, prop, description))
        for other, other_prop, _ in owners:
            prepared.enum_fields[(other, other_prop)] = name


def _enum_nodes(schema: JSON) -> list[tuple[str, JSON]]:
    """``(field name, node holding "enum")`` for string enums of a schema's properties."""
    found: list[tuple[str, JSON]] = []
    parts = [schema, *[p for p in schema.get("allOf", []) if isinstance(p, dict)]]
    for part in parts:
        for prop, node in part.get("properties", {}).items():
            if not isinstance(node, dict):
                continue
            if "enum" in node:
                found.append((prop, node))
            elif isinstance(node.get("items"), dict) and "enum" in node["items"]:
                found.append((prop, node["items"]))
    return found


def _pascal(text: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", text)
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not name or name[0].isdigit():
        name = "X" + name
    return name


def identifier(wire: str) -> str:
    """A snake_case Python identifier for a wire name ("X-Fields" -> x_fields, "@id" -> id_)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", wire)
    text = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_").lower() or "value"
    if text[0].isdigit():
        text = "n_" + text
    if keyword.iskeyword(text) or wire.startswith("@"):
        text += "_"
    return text
