"""Fast column extraction: one compiled function per model, the same values as the getters.

A spec's columns are :class:`~.entities.Field` getters (an attribute path, then ``_value`` or
not). Called one by one they dispatch on each value's type; here the model's declared types
(``msgspec.inspect``) decide once per column how its value is stored, and one generated
function reads every column of a decoded model. A column whose type is not a plain one keeps
its getter, so the values are always the ones the getters give.

Datetime columns are stored as ``datetime.isoformat()`` text, which costs more than the rest
of a row: :func:`stamp` keeps the text as received when it already is that form. The text
comes from a second, cheap decode of the record (:func:`side_type`: the datetime columns as
``str``, and the resources as raw JSON when asked).

A record the model refuses (another udata version) is read by :func:`loose` instead: the same
columns from the plain JSON object, each value checked against its field's declared type
alone, so one field off the model costs that column only.
"""

from __future__ import annotations

import keyword
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Union, get_args, get_origin

import msgspec
import msgspec.inspect as mi

from .entities import Field, Getter, _value

__all__ = [
    "Extractor",
    "LooseReader",
    "extractor",
    "loose",
    "split_reason",
    "stamp",
    "struct_fields",
    "struct_of",
]

_BOOL: dict[bool | None, int | None] = {None: None, False: 0, True: 1}


def stamp(text: str | None, value: datetime | None) -> str | None:
    """``value.isoformat()``, taking ``text`` (the JSON string ``value`` was decoded from)
    as is when it already has that form: UTC, ``T``, no or six non-zero fraction digits."""
    if value is None:
        return None
    if text is not None and text[10:11] == "T" and text.endswith("+00:00"):
        size = len(text)
        if size == 25 or (size == 32 and text[19] == "." and text[20:26] != "000000"):
            return text
    return value.isoformat()


def _without_none(t: mi.Type) -> mi.Type | None:
    """``t`` itself, or the one type of ``t | None``; None for wider unions."""
    if isinstance(t, mi.UnionType):
        types = [x for x in t.types if not isinstance(x, mi.NoneType)]
        return types[0] if len(types) == 1 else None
    return t


def _fields(t: mi.Type | None) -> dict[str, mi.Field]:
    return {f.name: f for f in t.fields} if isinstance(t, mi.StructType) else {}


@dataclass(frozen=True, slots=True, eq=False)
class Extractor:
    """How to read a spec's columns from one model type."""

    model: type[Any]
    #: ``function(model, side)`` (``function(dataset_id, position, model, side)`` with
    #: ``lead``) → the columns' values, the leading ones first.
    function: Callable[..., tuple[Any, ...]]
    #: The second decode (datetime columns as text, resources raw); None: not needed.
    side: Callable[[bytes | msgspec.Raw], Any] | None
    #: The model type of the items of ``resources`` (when the side keeps them raw).
    item: type[Any] | None

    @property
    def parts(
        self,
    ) -> tuple[type[Any], Callable[[bytes | msgspec.Raw], Any] | None, Callable[..., Any]]:
        """``(model, side, function)``, to be read once before a loop."""
        return self.model, self.side, self.function


_MADE: dict[tuple[Any, ...], Extractor] = {}


def extractor(
    model: type[Any],
    columns: tuple[tuple[str, Getter], ...],
    *,
    lead: bool = False,
    resources: bool = False,
) -> Extractor:
    """The compiled extraction of ``columns`` from ``model`` (made once per arguments)."""
    key = (model, columns, lead, resources)
    made = _MADE.get(key)
    if made is None:
        made = _MADE[key] = _make(model, columns, lead=lead, resources=resources)
    return made


def _make(
    model: type[Any], columns: tuple[tuple[str, Getter], ...], *, lead: bool, resources: bool
) -> Extractor:
    info = mi.type_info(model)
    fields = _fields(info)
    exprs = ["d", "i"] if lead else []
    sides: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    getters: list[Getter] = []
    for _, getter in columns:
        expr = _expr(getter, fields, sides, rename)
        if expr is None:
            getters.append(getter)
            expr = f"_g[{len(getters) - 1}](m)"
        exprs.append(expr)
    item: type[Any] | None = None
    if resources and "resources" in fields:
        sides.append(("resources", list[msgspec.Raw] | None, None))
        rename["resources"] = fields["resources"].encode_name
        listed = _without_none(fields["resources"].type)
        if isinstance(listed, mi.ListType) and isinstance(listed.item_type, mi.StructType):
            item = listed.item_type.cls
    params = "d, i, m, s" if lead else "m, s"
    source = f"def extract({params}):\n    return ({', '.join(exprs)},)\n"
    namespace: dict[str, Any] = {"_stamp": stamp, "_bool": _BOOL, "_g": tuple(getters)}
    exec(compile(source, f"<columns of {model.__name__}>", "exec"), namespace)
    side = None
    if sides:
        side_type = msgspec.defstruct(f"_{model.__name__}Side", sides, rename=rename, gc=False)
        side = msgspec.json.Decoder(side_type).decode
    return Extractor(model, namespace["extract"], side, item)


def _expr(
    getter: Getter,
    fields: dict[str, mi.Field],
    sides: list[tuple[str, Any, Any]],
    rename: dict[str, str],
) -> str | None:
    """The Python expression reading ``getter``'s column from ``m`` (and ``s``), or None."""
    if not isinstance(getter, Field) or not all(_is_name(name) for name in getter.path):
        return None
    head = fields.get(getter.path[0])
    if head is None:
        return None
    if len(getter.path) == 1:
        attribute = f"m.{head.name}"
        if not getter.convert:
            return attribute
        kind = _without_none(head.type)
        if isinstance(kind, mi.StrType | mi.IntType | mi.FloatType):
            return attribute
        if isinstance(kind, mi.BoolType):
            return f"_bool[{attribute}]"
        if isinstance(kind, mi.DateTimeType):
            name = f"t{len(sides)}"
            sides.append((name, str | None, None))
            rename[name] = head.encode_name
            return f"_stamp(s.{name}, {attribute})"
        return None
    if len(getter.path) == 2 and not getter.convert:
        inner = _fields(_without_none(head.type)).get(getter.path[1])
        if inner is None:
            return None
        return f"(None if (v := m.{head.name}) is None else v.{inner.name})"
    return None


def _is_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def generic(columns: Sequence[tuple[str, Getter]], model: Any) -> tuple[Any, ...]:
    """The columns' values read by their getters one by one (the reference extraction)."""
    return tuple(getter(model) for _, getter in columns)


# --- the tolerant reading: columns from a plain JSON object -----------------------------------

_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def split_reason(message: str) -> tuple[str, str]:
    """A msgspec validation message as (reason, path relative to the value: ``""``, ``.a[0]``)."""
    match = _AT.match(message)
    if match is None:  # pragma: no cover - the pattern matches any string
        return message, ""
    return match["reason"], match["path"] or ""


_FIELDS: dict[type[Any], tuple[msgspec.structs.FieldInfo, ...]] = {}


def struct_fields(cls: type[Any]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """The fields of a struct type (kept: ``msgspec.structs.fields`` reads the hints)."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = msgspec.structs.fields(cls)
    return found


def struct_of(annotation: Any) -> type[Any] | None:
    """The struct type of ``annotation`` (``S`` or ``S | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        if len(kinds) == 1:
            return struct_of(kinds[0])
    return None


@dataclass(frozen=True, slots=True)
class _Step:
    """One name of a column's path: its JSON key, declared type and default."""

    key: str
    type: Any
    #: The getter of the rest of the path, applied to the default when the key is missing;
    #: None: the field is required (missing, the column is NULL).
    default: Callable[[], Any] | None


#: ``reader(obj, where, misfits)``: the columns' values read from the JSON object ``obj``;
#: a value not of its field's type is NULL, and ``misfits[where + path]`` says why.
LooseReader = Callable[[dict[str, Any], str, dict[str, str]], tuple[Any, ...]]

_LOOSE: dict[tuple[Any, ...], LooseReader] = {}


def loose(model: type[Any], columns: tuple[tuple[str, Getter], ...]) -> LooseReader:
    """The tolerant reading of ``columns`` (the model's field types, checked one by one).

    A value that fits its field is stored as the compiled extraction stores it; a missing
    optional field gives its default (as decoding into ``model`` would); a missing required
    one, or a value of another type, gives NULL. A column that is not a :class:`Field` path
    of the model is NULL.
    """
    key = (model, columns)
    made = _LOOSE.get(key)
    if made is None:
        made = _LOOSE[key] = _make_loose(model, columns)
    return made


def _make_loose(model: type[Any], columns: tuple[tuple[str, Getter], ...]) -> LooseReader:
    plans = [_steps(model, getter) for _, getter in columns]

    def read(obj: dict[str, Any], where: str, misfits: dict[str, str]) -> tuple[Any, ...]:
        return tuple(
            None if steps is None else _read(obj, steps, convert, where, misfits)
            for steps, convert in plans
        )

    return read


def _steps(model: type[Any], getter: Getter) -> tuple[tuple[_Step, ...] | None, bool]:
    if not isinstance(getter, Field) or not getter.path:
        return None, True
    steps: list[_Step] = []
    cls: type[Any] | None = model
    for at, name in enumerate(getter.path):
        found = None if cls is None else {f.name: f for f in struct_fields(cls)}.get(name)
        if found is None:
            return None, getter.convert
        rest = Field(getter.path[at + 1 :], getter.convert)
        steps.append(_Step(found.encode_name, found.type, _default(found, rest)))
        cls = struct_of(found.type)
    return tuple(steps), getter.convert


def _default(info: msgspec.structs.FieldInfo, rest: Field) -> Callable[[], Any] | None:
    if info.default is not msgspec.NODEFAULT:
        value = info.default
        return lambda: rest(value)
    factory = info.default_factory
    if factory is not msgspec.NODEFAULT:
        return lambda: rest(factory())
    return None


def _read(
    obj: dict[str, Any],
    steps: tuple[_Step, ...],
    convert: bool,
    where: str,
    misfits: dict[str, str],
) -> Any:
    value: Any = obj
    path = where
    last = len(steps) - 1
    for at, step in enumerate(steps):
        if not isinstance(value, dict):
            return None  # null, or not an object: the record's misfits say so
        path = f"{path}.{step.key}"
        if step.key not in value:
            return None if step.default is None else step.default()
        value = value[step.key]
        if at == last:
            try:
                value = msgspec.convert(value, step.type)
            except msgspec.ValidationError as error:
                reason, inner = split_reason(str(error))
                misfits.setdefault(path + inner, reason)
                return None
    return _value(value) if convert else value
