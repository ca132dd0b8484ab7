"""Applying openapi/v2/shared.json: the API v2 schemas that are the API v1's own models.

udata builds most of its API v2 models from the v1 ones: ``apiv2.inherit("Resource",
resource_fields)`` registers the very fields v1 marshals with, so the wire objects are the same.
Its v2 swagger describes them less well than the v1 one (an inherited base such as
``BaseReference`` is dropped from the document, not from the answers: v2 references still carry
their ``id`` and ``class``), and the v1 overlay and required table fixed the v1 copies. So every
schema the table lists as shared is replaced by its v1 definition (after v1's overlay and required
table), bringing along the v1 schemas it references: the generated client then uses one class
for both versions.

Every other v2 schema (a v2 model of its own, ``apiv2.model(...)``) is renamed with a ``V2``
suffix before any ``(read)``/``(write)``: ``Dataset`` -> ``DatasetV2``, ``TopicElement (read)``
-> ``TopicElementV2 (read)``. udata's v2 document reuses v1 names for other models (its
``Dataset`` has links where v1's has lists, while the ``Post (read)`` it shares with v1 holds v1
datasets), so one name could not mean both; after the renaming a name means one schema across
openapi/ and openapi/v2/, and merging the two for code generation needs no further care.

The table must decide every name both documents define: each is either ``shared`` or
``distinct``. Like the overlay, whatever no longer applies stops the build: a listed schema gone
from either document, a shared schema whose v2 definition names a property v1 does not have
(udata made them diverge), a distinct schema v2 now defines exactly as v1, or a schema both define
that the table does not decide.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

JSON = dict[str, Any]
_REF = "#/components/schemas/"
_MODE = re.compile(r"^(?P<base>.*?)(?P<mode> \((?:read|write)\))?$")
#: Appended to the name of every schema of the API v2 that is not the API v1's.
SUFFIX = "V2"


class ShareError(ValueError):
    """A table entry that does not apply to the documents, or a name it leaves undecided."""


@dataclass(frozen=True)
class Decision:
    """One schema both versions define: shared (the v1 definition) or distinct, and why."""

    schema: str
    shared: bool
    why: str
    source: str


def _name(ref: str) -> str:
    return unquote(ref[len(_REF) :])


def refs(node: Any) -> set[str]:
    """Names of the schemas ``node`` references directly."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(_name(ref))
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def closure(schemas: JSON, roots: set[str]) -> set[str]:
    """``roots`` and every schema they reach."""
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(sorted(refs(schemas[name]) - seen))
    return seen


def properties(schemas: JSON, name: str) -> tuple[set[str], set[str]]:
    """(the schema's own and inline properties, those it inherits through allOf $refs)."""
    schema = schemas[name]
    own = set(schema.get("properties", {}))
    inherited: set[str] = set()
    for part in schema.get("allOf", []):
        if "$ref" in part:
            more, deeper = properties(schemas, _name(part["$ref"]))
            inherited |= more | deeper
        else:
            own |= set(part.get("properties", {}))
    return own, inherited


def validate(table: JSON) -> list[Decision]:
    """The table's decisions, checked for shape: every entry says why and where."""
    decisions: list[Decision] = []
    seen: set[str] = set()
    for kind in ("shared", "distinct"):
        for entry in table.get(kind, []):
            schemas, why, source = entry.get("schemas"), entry.get("why"), entry.get("source")
            if not schemas or not why or not source:
                raise ShareError(f"a {kind} entry needs schemas, why and source: {entry}")
            for schema in schemas:
                if schema in seen:
                    raise ShareError(f"{schema} is listed twice")
                seen.add(schema)
                decisions.append(Decision(schema, kind == "shared", why, source))
    return decisions


def apply(v2: JSON, v1: JSON, table: JSON) -> tuple[JSON, list[Decision]]:
    """A copy of ``v2`` whose shared schemas are v1's, with what they reference."""
    decisions = validate(table)
    result = copy.deepcopy(v2)
    ours: JSON = result["components"]["schemas"]
    theirs: JSON = v1["components"]["schemas"]
    both = set(ours) & set(theirs)
    decided = {d.schema for d in decisions}
    for decision in decisions:
        if decision.schema not in ours or decision.schema not in theirs:
            raise ShareError(f"{decision.schema}: not defined by both versions (renamed upstream?)")
    undecided = sorted(both - decided)
    if undecided:
        raise ShareError(f"schemas both versions define, neither shared nor distinct: {undecided}")
    shared = {d.schema for d in decisions if d.shared}
    for name in sorted(shared):
        mine, _ = properties(ours, name)
        own, inherited = properties(theirs, name)
        extra = sorted(mine - own - inherited)
        if extra:
            raise ShareError(f"{name}: v2 sends {extra}, which v1 does not define: not shared")
    for decision in decisions:
        if not decision.shared and _same(ours, theirs, decision.schema, shared):
            raise ShareError(f"{decision.schema}: v2 defines it as v1 does: list it as shared")
    renames = {name: v2_name(name) for name in ours if name not in shared}
    taken = sorted(set(renames.values()) & (set(ours) | set(theirs)))
    if taken:
        raise ShareError(f"renamed v2 schemas would take existing names: {taken}")
    result = _renamed(result, renames)
    ours = result["components"]["schemas"]
    for name in sorted(closure(theirs, shared)):
        ours[name] = copy.deepcopy(theirs[name])
    return result, decisions


def v2_name(name: str) -> str:
    """The name a v2 model of its own gets: ``TopicElement (read)`` -> ``TopicElementV2 (read)``."""
    match = _MODE.match(name)
    assert match is not None
    return match["base"] + SUFFIX + (match["mode"] or "")


def _renamed(document: JSON, renames: dict[str, str]) -> JSON:
    """``document`` with schemas renamed, every $ref to them rewritten (percent-encoded)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: walk(value) for key, value in node.items()}
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF) and _name(ref) in renames:
                new = renames[_name(ref)]
                encoded = ref != _REF + _name(ref)  # udata writes some refs percent-encoded
                out["$ref"] = _REF + (quote(new, safe="") if encoded else new)
            return out
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    result: JSON = walk(document)
    schemas = result["components"]["schemas"]
    result["components"]["schemas"] = {renames.get(k, k): v for k, v in schemas.items()}
    return result


def _same(ours: JSON, theirs: JSON, name: str, shared: set[str]) -> bool:
    """Whether v2 defines ``name`` exactly as v1, referencing only schemas they share."""
    return ours[name] == theirs[name] and all(
        ref in shared or (ref in theirs and ours.get(ref) == theirs[ref])
        for ref in refs(ours[name])
    )


def check_kept(v2: JSON, v1: JSON, decisions: list[Decision]) -> None:
    """After the v2 overlay and required table: shared schemas must still be v1's."""
    ours, theirs = v2["components"]["schemas"], v1["components"]["schemas"]
    changed = sorted(d.schema for d in decisions if d.shared and ours[d.schema] != theirs[d.schema])
    if changed:
        raise ShareError(f"the v2 overlay or required table changed shared schemas {changed}")
