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
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import msgspec.inspect as mi

from .entities import Field, Getter

__all__ = ["Extractor", "extractor", "stamp"]

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
    #: ``function(model, side)`` (``function(lead, model, side)``) → the columns' values.
    function: Callable[..., tuple[Any, ...]]
    #: The second decode (datetime columns as text, resources raw); None: not needed.
    side: Callable[[bytes | msgspec.Raw], Any] | None
    #: The model type of the items of ``resources`` (when the side keeps them raw).
    item: type[Any] | None


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
    exprs = ["d"] if lead else []
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
    params = "d, m, s" if lead else "m, s"
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
