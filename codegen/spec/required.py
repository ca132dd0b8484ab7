"""Applying openapi/required.json: read-model fields udata always sends, made required.

udata's swagger marks few response fields ``required`` (flask-restx's ``required`` is about
input), so a generated client would type every id and list as optional. The table says which
fields the server always sends non-null, with the evidence per field; this module adds them to
the schemas' ``required`` after the overlay.

As strict as the overlay: a schema or field that does not exist, or a field the spec already
requires, stops the build, so an upstream rename or fix shows up instead of rotting silently.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

JSON = dict[str, Any]
_REF = "#/components/schemas/"


class RequiredError(ValueError):
    """A table entry that does not apply to the document."""


@dataclass(frozen=True)
class Promotion:
    """One field made required, and why."""

    schema: str
    field: str
    since: str
    why: str


def validate(table: JSON) -> list[Promotion]:
    """The table's promotions, in table order; its shape is checked on the way."""
    promotions: list[Promotion] = []
    seen: set[tuple[str, str]] = set()
    for entry in table.get("entries", []):
        schemas, fields = entry.get("schemas"), entry.get("fields")
        if not schemas or not fields or not entry.get("source"):
            raise RequiredError(f"an entry needs schemas, source and fields: {entry}")
        for schema in schemas:
            for name, evidence in fields.items():
                if not evidence.get("since") or not evidence.get("why"):
                    raise RequiredError(f"{schema}.{name}: say since when and why")
                if (schema, name) in seen:
                    raise RequiredError(f"{schema}.{name} is listed twice")
                seen.add((schema, name))
                promotions.append(Promotion(schema, name, evidence["since"], evidence["why"]))
    return promotions


def _properties(schemas: JSON, name: str) -> tuple[set[str], set[str]]:
    """(every property, every required property) of a schema, its allOf bases included."""
    schema = schemas[name]
    props = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            more, needed = _properties(schemas, unquote(part["$ref"][len(_REF) :]))
        else:
            more, needed = set(part.get("properties", {})), set(part.get("required", []))
        props |= more
        required |= needed
    return props, required


def apply(document: JSON, table: JSON) -> tuple[JSON, list[Promotion]]:
    """A copy of ``document`` with the table's fields added to their schemas' ``required``."""
    promotions = validate(table)
    result = copy.deepcopy(document)
    schemas: JSON = result["components"]["schemas"]
    for item in promotions:
        if item.schema not in schemas:
            raise RequiredError(f"{item.schema}: no such schema (renamed upstream?)")
        props, required = _properties(schemas, item.schema)
        if item.field not in props:
            raise RequiredError(f"{item.schema}.{item.field}: no such property")
        if item.field in required:
            raise RequiredError(f"{item.schema}.{item.field} is already required: fixed upstream?")
        schema = schemas[item.schema]
        # An allOf schema gets it in its own (last inline) part: its bases stay as they are.
        inline = [p for p in schema.get("allOf", []) if "$ref" not in p]
        target = inline[-1] if inline else schema
        target.setdefault("required", []).append(item.field)
    return result, promotions
