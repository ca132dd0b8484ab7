"""Operation stubs: one typed async method per operation of openapi/, one class per tag.

Our own generator (datamodel-code-generator only does models). Each method checks nothing
itself: it names its arguments and hands them, with a static Endpoint description, to the
core's single ``request`` (or ``paginate`` for listings) function.

The API v1 (openapi/) goes to ``operations/<tag>.py`` and ``namespaces.py`` (``client.datasets``);
the API v2 (openapi/v2/) to ``v2/operations/<tag>.py`` and ``v2/namespaces.py``, reached as
``client.v2.datasets``: its Endpoints say ``api=2``, so the core sends them below the API v2 root.
Each operation's Endpoint is a public constant of its module (``LIST_DATASETS``), for code that
drives the core directly (the mirror).

An operation taking an ``X-Fields`` mask has two typing overloads: without a mask it returns its
model, with one the model's partial twin (every field optional; see models.py), which is also
what the Endpoint's ``masked()`` variant decodes.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from .models import PARTIAL
from .prepare import Prepared, identifier, ref_name
from .render import add_globals, render
from .spec_loader import JSON, V2_TAGS, api_route, operations

# Bodies that are files or exports, not JSON: returned as bytes.
_BINARY_PATH = re.compile(
    r"(\.csv|\.atom|\.jsonld|/rdf(\.\{[^}]+\})?|catalog(\.\{[^}]+\})?|"
    r"/data\.\{[^}]+\}|/avatars/.*|/datasets/r/\{[^}]+\})$"
)
_KIND_TYPES = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}
#: Method names for flask-restx's fallback operation ids (``<method>_<resource class>``) where
#: the listing convention of every other tag reads better.
_METHOD_NAMES = {"get_topics_api": "list_topics"}


@dataclass
class ParamDef:
    name: str
    wire: str
    location: str  # path, query, header, body, form
    kind: str  # the aioudata._endpoint.Kind member name
    annotation: str
    required: bool
    description: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None


@dataclass
class OperationDef:
    operation_id: str
    tag: str
    method: str
    path: str
    summary: str
    description: str
    params: list[ParamDef]
    response: str  # expression for Endpoint.response
    returns: str  # the method's return annotation
    item: str | None = None  # item class of a paginated listing
    deprecated: bool = False
    masked: bool = False  # takes an X-Fields mask and returns a model: overloads, partial twin
    api: int = 1  # the API version whose root ``path`` is relative to

    @property
    def partial_returns(self) -> str:
        """What a call with a mask returns: the partial twin of every model in ``returns``."""
        return _partial(self.returns)

    @property
    def partial_item(self) -> str | None:
        return _partial(self.item) if self.item else None

    @property
    def partial_doc(self) -> str:
        """The partial model a masked call yields, for its docstring."""
        return (self.partial_item or self.partial_returns).replace("m.", "")

    @property
    def mask(self) -> ParamDef | None:
        """The X-Fields parameter."""
        return next((p for p in self.params if p.location == "header" and _is_mask(p)), None)

    @property
    def constant(self) -> str:
        """The module-level name of the operation's Endpoint (public: the mirror uses them)."""
        return self.operation_id.upper()

    @property
    def positional(self) -> list[ParamDef]:
        return [p for p in self.params if p.location == "path"]

    @property
    def keyword(self) -> list[ParamDef]:
        rest = [p for p in self.params if p.location != "path"]
        return sorted(rest, key=lambda p: not p.required)


@dataclass
class TagDef:
    name: str
    description: str
    operations: list[OperationDef] = field(default_factory=list)
    api: int = 1

    @property
    def module(self) -> str:
        return identifier(self.name)

    @property
    def class_name(self) -> str:
        version = f"V{self.api}" if self.api != 1 else ""
        return "".join(w.capitalize() for w in self.module.split("_")) + version + "Operations"


def _is_mask(param: ParamDef) -> bool:
    return param.wire.lower() == "x-fields"


def _partial(annotation: str) -> str:
    return re.sub(r"\bm\.(\w+)", rf"m.\1{PARTIAL}", annotation)


def collect(prepared: Prepared, api: int = 1) -> list[TagDef]:
    """Every operation of API ``api`` in the prepared document, grouped by tag."""
    doc = prepared.document
    schemas: JSON = doc["components"]["schemas"]
    tag_list = doc.get("tags", []) if api == 1 else doc.get(V2_TAGS, [])
    descriptions = {t["name"]: t.get("description", "") for t in tag_list}
    tags: dict[str, TagDef] = {}
    for key, method, op, shared in operations(doc):
        version, route = api_route(key)
        if version != api:
            continue
        tag = (op.get("tags") or ["default"])[0]
        tags.setdefault(tag, TagDef(tag, descriptions.get(tag, ""), api=api))
        operation = _operation(route, method, op, shared, tag, schemas)
        operation.api = api
        tags[tag].operations.append(operation)
    return [tags[name] for name in sorted(tags)]


def _operation(
    route: str, method: str, op: JSON, shared: list[JSON], tag: str, schemas: JSON
) -> OperationDef:
    op_id = method_name(op["operationId"])
    params = _parameters(route, op, shared)
    params += _body(op)
    _dedupe_names(op_id, params)
    response, returns, item = _response(route, method, op, schemas)
    masked = "m." in returns and any(p.location == "header" and _is_mask(p) for p in params)
    return OperationDef(
        operation_id=op_id,
        tag=tag,
        method=method,
        path=route,
        summary=op.get("summary", "").strip(),
        description=op.get("description", "").strip(),
        params=params,
        response=response,
        returns=returns,
        item=item,
        deprecated=bool(op.get("deprecated")),
        masked=masked,
    )


def method_name(operation_id: str) -> str:
    """The Python method name of an operation id.

    flask-restx derives some ids from the route when a resource has no explicit id:
    "get_datasets_csv_api_/organizations/<org:org>/datasets.csv" -> get_datasets_csv.
    """
    head = operation_id.split("_api_/", 1)[0] if "_api_/" in operation_id else operation_id
    head = _METHOD_NAMES.get(head, head)
    name = identifier(head)
    if keyword.iskeyword(name):
        name += "_"
    return name


def _parameters(route: str, op: JSON, shared: list[JSON]) -> list[ParamDef]:
    merged: dict[tuple[str, str], JSON] = {}
    for param in [*shared, *op.get("parameters", [])]:
        merged[(param["in"], param["name"])] = param  # operation-level wins
    path_order = re.findall(r"\{([^}]+)\}", route)
    result = []
    for (location, wire), param in merged.items():
        schema = param.get("schema", {})
        kind, annotation = _kind(schema)
        required = bool(param.get("required")) or location == "path"
        choices = tuple(str(v) for v in schema.get("enum", []) if isinstance(v, str))
        if choices and kind == "STRING":
            annotation = "Literal[" + ", ".join(repr(c) for c in choices) + "]"
        minimum = schema.get("minimum")
        if schema.get("exclusiveMinimum") is True and minimum is not None:
            minimum += 1  # Swagger 2.0 style boolean exclusiveMinimum on an integer
        elif isinstance(schema.get("exclusiveMinimum"), int | float):
            minimum = schema["exclusiveMinimum"] + 1
        result.append(
            ParamDef(
                name=identifier(wire),
                wire=wire,
                location=location,
                kind=kind,
                annotation=annotation,
                required=required,
                description=param.get("description", ""),
                choices=choices,
                minimum=minimum if kind == "INTEGER" else None,
            )
        )
    # Path parameters in the order they appear in the path, then the others as declared.
    result.sort(key=lambda p: path_order.index(p.wire) if p.location == "path" else len(route))
    return result


def _kind(schema: JSON) -> tuple[str, str]:
    type_ = schema.get("type")
    if isinstance(type_, list):
        type_ = next((t for t in type_ if t != "null"), "string")
    if type_ == "array":
        return "STRING_LIST", "str | Sequence[str]"
    if type_ == "string" and schema.get("format") == "binary":
        return "FILE", "bytes | IO[bytes]"
    if type_ in _KIND_TYPES:
        return str(type_).upper(), _KIND_TYPES[str(type_)]
    return "ANY", "Any"


def _body(op: JSON) -> list[ParamDef]:
    body = op.get("requestBody")
    if not body:
        return []
    content: JSON = body.get("content", {})
    required = bool(body.get("required"))
    if "application/json" in content:
        schema = content["application/json"].get("schema", {})
        model = _model_type(schema)
        annotation = f"{model} | Mapping[str, Any]" if model else "Mapping[str, Any] | list[Any]"
        return [ParamDef("body", "payload", "body", "BODY", annotation, required, "JSON body")]
    form = content.get("multipart/form-data") or content.get(
        "application/x-www-form-urlencoded", {}
    )
    schema = form.get("schema", {})
    needed = set(schema.get("required", []))
    params = []
    for wire, prop in schema.get("properties", {}).items():
        kind, annotation = _kind(prop)
        params.append(
            ParamDef(
                identifier(wire), wire, "form", kind, annotation, wire in needed,
                prop.get("description", ""),
            )
        )  # fmt: skip
    return params


def _model_type(schema: JSON) -> str | None:
    """``m.Class`` or ``list[m.Class]`` for a $ref (or array of $ref) schema, else None."""
    if "$ref" in schema:
        return "m." + ref_name(schema["$ref"])
    if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        return f"list[m.{ref_name(schema['items']['$ref'])}]"
    return None


def _response(route: str, method: str, op: JSON, schemas: JSON) -> tuple[str, str, str | None]:
    """``(Endpoint.response expression, return annotation, item class or None)``."""
    responses: JSON = op.get("responses", {})
    for code in sorted(responses):
        if not code.startswith("2"):
            continue
        content = responses[code].get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            continue
        model = _model_type(schema)
        if model is None:
            return "Any", "Any", None
        item = _page_item(model, schemas)
        return model, model, item
    if _BINARY_PATH.search(route) and method == "GET":
        return "bytes", "bytes", None
    if method == "DELETE" or "204" in responses:
        return "None", "None", None
    return "Any", "Any", None


def _page_item(model: str, schemas: JSON) -> str | None:
    """The item class when ``model`` is a page of a listing (data, page, page_size, total)."""
    if not model.startswith("m."):
        return None
    schema = schemas.get(model[2:], {})
    props = schema.get("properties", {})
    if not {"data", "page", "page_size", "total"} <= set(props):
        return None
    items = props["data"].get("items", {})
    refs = [part for part in items.get("allOf", []) if "$ref" in part]
    if "$ref" not in items and len(refs) == 1:
        items = refs[0]  # {"allOf": [{"$ref": ...}], "description": ...}: udata's Nested
    return "m." + ref_name(items["$ref"]) if "$ref" in items else None


def _dedupe_names(op_id: str, params: list[ParamDef]) -> None:
    seen: dict[str, ParamDef] = {}
    for param in params:
        if param.name in seen:
            # e.g. a path "{_format}" and a query "format": qualify the later one.
            param.name = f"{param.name}_{param.location}"
            if param.name in seen:
                raise ValueError(f"{op_id}: parameter name clash on {param.name}")
        seen[param.name] = param


def generate_operations(prepared: Prepared) -> dict[str, str]:
    """Relative file name -> source, for ``aioudata/_generated/``."""
    files: dict[str, str] = {}
    v2 = collect(prepared, api=2)
    for api, tags in ((1, collect(prepared)), (2, v2)):
        if not tags:
            continue
        folder = "" if api == 1 else f"v{api}/"
        up = "." * (api != 1)  # one package deeper: v2/operations/<tag>.py
        for tag in tags:
            files[f"{folder}operations/{tag.module}.py"] = render(
                "operations.py.jinja", tag=tag, api=api, up=up
            )
        files[f"{folder}operations/__init__.py"] = render(
            "operations_init.py.jinja", tags=tags, api=api
        )
        files[f"{folder}namespaces.py"] = render(
            "namespaces.py.jinja", tags=tags, api=api, up=up, has_v2=api == 1 and bool(v2)
        )
        if api != 1:
            files[f"{folder}__init__.py"] = render("version_init.py.jinja", api=api)
    return files


def count_operations(tags: list[TagDef]) -> int:
    """How many operations ``tags`` hold."""
    return sum(len(t.operations) for t in tags)


def uses(tag: TagDef, name: str) -> bool:
    """Whether any annotation of ``tag`` mentions ``name`` (to import only what is used)."""
    text = " ".join(p.annotation for op in tag.operations for p in op.params)
    text += " ".join(op.returns for op in tag.operations)
    text += " overload" if any(op.masked for op in tag.operations) else ""
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


add_globals(uses=uses)
