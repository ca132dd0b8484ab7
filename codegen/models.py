"""Models: datamodel-code-generator's msgspec output, rewritten to decode what udata sends.

datamodel-code-generator resolves every schema to a Python type (refs, allOf inheritance,
inline objects, formats). Its output is then read back with ``ast`` and re-emitted through
templates/models.py.jinja so that:
- an optional field is ``T | None = None`` (udata sends null for absent values), never UNSET;
- constraints (max_length, minimum...) are dropped: they would reject data the server sent;
- a union of several Structs (msgspec cannot tell untagged Structs apart) becomes a dict;
- descriptions become docstrings; enums are ours (prepare.py), fields stay plain ``str``;
- every model a masked call can answer with (operations taking an ``X-Fields`` header) gets a
  partial twin, ``<Name>Partial``: same fields, all optional, nested models partial too;
- fields are declared in the order udata sends them, the schema's (see ``wire_order``).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .prepare import Prepared, ref_name
from .render import render
from .spec_loader import JSON, operations

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class FieldDef:
    name: str
    type: str
    wire: str | None = None
    required: bool = False
    description: str = ""
    enum: str | None = None  # the StrEnum listing this field's known values


@dataclass
class ClassDef:
    name: str
    base: str
    description: str = ""
    fields: list[FieldDef] = field(default_factory=list)
    partial_of: str | None = None  # the full model this partial twin mirrors


#: Suffix of the partial twin of a model: what a call with an X-Fields mask decodes into.
PARTIAL = "Partial"


def run_datamodel_codegen(document: dict[str, object]) -> str:
    """datamodel-code-generator's output for ``document`` (settings: pyproject.toml)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        out = Path(tmp) / "models.py"
        spec.write_text(json.dumps(document), encoding="utf-8")
        command = [
            sys.executable, "-m", "datamodel_code_generator",
            "--input", str(spec), "--output", str(out),
        ]  # fmt: skip
        # Run from the repo root so that [tool.datamodel-codegen] in pyproject.toml applies.
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"datamodel-codegen failed:\n{result.stderr}")
        return out.read_text(encoding="utf-8")


def parse_classes(source: str, prepared: Prepared) -> list[ClassDef]:
    """Read datamodel-code-generator's classes back as plain data."""
    module = ast.parse(source)
    structs = {node.name for node in module.body if isinstance(node, ast.ClassDef)}
    classes: list[ClassDef] = []
    for node in module.body:
        if not isinstance(node, ast.ClassDef):
            continue
        base = ast.unparse(node.bases[0]) if node.bases else "Struct"
        cls = ClassDef(node.name, base, prepared.descriptions.get(node.name, ""))
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                cls.fields.append(_field(stmt.target.id, stmt, structs))
        classes.append(cls)
    return classes


def _field(name: str, stmt: ast.AnnAssign, structs: set[str]) -> FieldDef:
    description = ""
    members = _union_members(stmt.annotation)
    kept: list[str] = []
    for member in members:
        if isinstance(member, ast.Name) and member.id == "UnsetType":
            continue
        if _is_annotated(member):
            assert isinstance(member, ast.Subscript)
            assert isinstance(member.slice, ast.Tuple)
            inner, *metas = member.slice.elts
            description = description or _meta_description(metas)
            kept.append(ast.unparse(inner))
        else:
            kept.append(ast.unparse(member))
    struct_members = [k for k in kept if k in structs]
    if len(struct_members) > 1:
        # msgspec cannot decode a union of untagged Structs: keep the object as received.
        kept = ["dict[str, Any]"] + [k for k in kept if k not in structs]
    wire: str | None = None
    required = stmt.value is None
    if isinstance(stmt.value, ast.Call) and ast.unparse(stmt.value.func) == "field":
        for kw in stmt.value.keywords:
            if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                wire = str(kw.value.value)
        required = not any(kw.arg in {"default", "default_factory"} for kw in stmt.value.keywords)
    return FieldDef(name, " | ".join(dict.fromkeys(kept)), wire, required, description)


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    return [node]


def _is_annotated(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Annotated"
        and isinstance(node.slice, ast.Tuple)
    )


def _meta_description(metas: list[ast.expr]) -> str:
    for meta in metas:
        if isinstance(meta, ast.Call):
            for kw in meta.keywords:
                if kw.arg == "description" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
    return ""


def masked_roots(document: JSON) -> set[str]:
    """Classes a call with an ``X-Fields`` mask can answer with: the success responses of
    every operation taking that header."""
    roots: set[str] = set()
    for _route, _method, op, shared in operations(document):
        params = [*shared, *op.get("parameters", [])]
        if not any(p["in"] == "header" and p["name"].lower() == "x-fields" for p in params):
            continue
        for code, response in op.get("responses", {}).items():
            if code.startswith("2"):
                roots |= {ref_name(ref) for ref in _refs(response)}
    return roots


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def partial_classes(classes: list[ClassDef], roots: set[str]) -> list[ClassDef]:
    """The partial twin of every class ``roots`` reach (fields, items, bases), in the order of
    ``classes`` (a base before its subclasses): every field optional, and every model it
    mentions partial too, so that nested masks (``resources{id}``) decode as well."""
    by_name = {cls.name: cls for cls in classes}
    needed: set[str] = set()
    todo = [name for name in roots if name in by_name]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        cls = by_name[name]
        mentioned = {cls.base} | {t for f in cls.fields for t in _NAMES.findall(f.type)}
        todo.extend(t for t in mentioned if t in by_name and t not in needed)
    rename = {name: name + PARTIAL for name in needed}

    def partial(type_text: str) -> str:
        return _NAMES.sub(lambda m: rename.get(m[0], m[0]), type_text)

    return [
        ClassDef(
            name=rename[cls.name],
            base=rename.get(cls.base, cls.base),
            fields=[FieldDef(f.name, partial(f.type), f.wire) for f in cls.fields],
            partial_of=cls.name,
        )
        for cls in classes
        if cls.name in needed
    ]


_NAMES = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def wire_order(fields: list[FieldDef], schema: JSON) -> list[FieldDef]:
    """``fields`` in the order of ``schema``'s properties, which is the order udata sends them:
    sorted by name in the API v1, the model's order in the v2 (names the schema does not list
    go last, sorted).

    msgspec matches each key of an object against the field after the last one matched, then
    scans the others: in the server's order, that is one comparison a key. Required fields
    first (datamodel-code-generator's order) cost a scan of the struct at every key moving
    between the two runs: 13% of a dataset page's decoding time. The models are ``kw_only``,
    so a required field may follow an optional one.
    """
    parts = [schema, *(part for part in schema.get("allOf", []) if "$ref" not in part)]
    names = [name for part in parts for name in part.get("properties", {})]
    position = {name: index for index, name in enumerate(dict.fromkeys(names))}

    def key(f: FieldDef) -> tuple[int, str]:
        wire = f.wire or f.name
        return position.get(wire, len(position)), wire

    return sorted(fields, key=key)


def generate_models(prepared: Prepared) -> str:
    """The source of ``aioudata/_generated/models.py``."""
    classes = parse_classes(run_datamodel_codegen(prepared.document), prepared)
    enum_of = prepared.enum_fields
    schemas = prepared.document["components"]["schemas"]
    for cls in classes:
        cls.fields = wire_order(cls.fields, schemas.get(cls.name, {}))
        for f in cls.fields:
            f.enum = enum_of.get((cls.name, f.wire or f.name))
    partials = partial_classes(classes, masked_roots(prepared.document))
    return render(
        "models.py.jinja",
        classes=classes,
        partials=partials,
        enums=sorted(prepared.enums, key=lambda e: e.name),
        uses_datetime=any("datetime" in f.type for c in classes for f in c.fields),
        uses_date=any(_mentions(f.type, "date") for c in classes for f in c.fields),
    )


def _mentions(type_text: str, name: str) -> bool:
    return name in {t.strip("[], ") for t in type_text.replace("|", ",").split(",")}
