"""Turning an operation's Python arguments into the parts of an HTTP request.

Every check happens here, before any I/O: a missing, empty or wrongly typed argument raises
:class:`ArgumentError` (a ``ValueError``) or ``TypeError`` naming the operation and parameter.

Path parameters are percent-encoded whole, ``/`` included: a value is one path segment, never
more. A value that would make a segment ``.`` or ``..`` is refused with :class:`ArgumentError`
rather than sent: ``get_dataset("..")`` would request ``/datasets/../``, which the URL library,
proxies and the server resolve to another endpoint (``/api/1/``). Encoding the dots instead
(``%2E%2E``) is no cure: RFC 3986 (6.2.2.2) makes ``%2E`` equivalent to ``.``, so a normalising
hop may still resolve it (yarl itself does when it parses such a URL again, e.g. from a
redirect), and no udata id or slug is ``.`` or ``..``, so refusing loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import quote

import msgspec

from ._endpoint import Endpoint, Kind, Param
from ._errors import ArgumentError

__all__ = ["PreparedRequest", "prepare"]


@dataclass(slots=True)
class PreparedRequest:
    """What goes on the wire, relative to the root of API ``api`` (1: the client's base URL)."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    json: bytes | None = None
    form: list[tuple[str, Any]] | None = None
    api: int = 1


def prepare(endpoint: Endpoint[Any], args: Mapping[str, Any]) -> PreparedRequest:
    """Validate ``args`` against ``endpoint`` and build the request; raise before any I/O."""
    request = PreparedRequest(method=endpoint.method, path=endpoint.path, api=endpoint.api)
    path_values: dict[str, str] = {}
    for param in endpoint.params:
        value = args.get(param.name)
        if value is None:
            if param.required:
                raise TypeError(
                    f"{endpoint.operation_id}() missing required argument: {param.name!r}"
                )
            continue
        if param.location == "path":
            path_values[param.wire] = _path_segment(endpoint, param, value)
        elif param.location == "query":
            request.query.extend((param.wire, v) for v in _query_values(endpoint, param, value))
        elif param.location == "header":
            request.headers[param.wire] = _scalar(endpoint, param, value)
        elif param.location == "body":
            request.json = _body(endpoint, param, value)
        else:
            if request.form is None:
                request.form = []
            request.form.append((param.wire, _form_value(endpoint, param, value)))
    unknown = set(args) - {p.name for p in endpoint.params}
    if unknown:
        raise TypeError(
            f"{endpoint.operation_id}() got unexpected arguments: {', '.join(sorted(unknown))}"
        )
    if path_values:
        request.path = endpoint.path.format_map(path_values)
        _refuse_dot_segments(endpoint, request.path)
    return request


_DOT_SEGMENTS = frozenset({".", ".."})


def _refuse_dot_segments(endpoint: Endpoint[Any], path: str) -> None:
    """Raise :class:`ArgumentError` when a path parameter made a ``.`` or ``..`` segment.

    The filled path is checked, not the values alone, so that a template gluing a parameter to
    other text (``rdf.{_format}``) is judged by the segment that goes on the wire. Values cannot
    add segments (their ``/`` are escaped), so segments line up with the template's.
    """
    segments = path.split("/")
    if _DOT_SEGMENTS.isdisjoint(segments):
        return
    for template, segment in zip(endpoint.path.split("/"), segments, strict=True):
        if segment in _DOT_SEGMENTS and template != segment:
            names = [p.name for p in endpoint.params if "{" + p.wire + "}" in template]
            name = names[0] if len(names) == 1 else "a path argument"
            raise ArgumentError(
                f"{endpoint.operation_id}(): {name} must not be {segment!r}: a path segment"
                f" {segment!r} would make the URL name another endpoint"
            )


def _fail(endpoint: Endpoint[Any], param: Param, problem: str) -> ArgumentError:
    return ArgumentError(f"{endpoint.operation_id}(): {param.name} {problem}")


def _type_error(endpoint: Endpoint[Any], param: Param, expected: str, value: Any) -> TypeError:
    return TypeError(
        f"{endpoint.operation_id}(): {param.name} must be {expected}, not {type(value).__name__}"
    )


def _path_segment(endpoint: Endpoint[Any], param: Param, value: Any) -> str:
    text = _scalar(endpoint, param, value)
    if not text.strip():
        raise _fail(endpoint, param, "must not be empty")
    # Escape everything, "/" included: a slug or id is one path segment.
    return quote(text, safe="")


def _scalar(endpoint: Endpoint[Any], param: Param, value: Any) -> str:
    kind = param.kind
    if isinstance(value, Enum):
        value = value.value
    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise _type_error(endpoint, param, "a bool", value)
        return "true" if value else "false"
    if kind is Kind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(endpoint, param, "an int", value)
        if param.minimum is not None and value < param.minimum:
            raise _fail(endpoint, param, f"must be >= {param.minimum:g}, got {value}")
        return str(value)
    if kind is Kind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(endpoint, param, "a number", value)
        return str(value)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _type_error(endpoint, param, "a str", value)
    return str(value)


def _query_values(endpoint: Endpoint[Any], param: Param, value: Any) -> list[str]:
    if param.kind is Kind.STRING_LIST:
        items = [value] if isinstance(value, str | Enum) else value
        if not isinstance(items, Sequence):
            raise _type_error(endpoint, param, "a str or a sequence of str", value)
        scalar = Param(param.name, param.wire, param.location, Kind.STRING)
        return [_scalar(endpoint, scalar, item) for item in items]
    return [_scalar(endpoint, param, value)]


def _body(endpoint: Endpoint[Any], param: Param, value: Any) -> bytes:
    if not isinstance(value, msgspec.Struct | Mapping | list):
        raise _type_error(endpoint, param, "a model or a mapping", value)
    try:
        return msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise _fail(endpoint, param, f"cannot be encoded as JSON: {exc}") from None


def _form_value(endpoint: Endpoint[Any], param: Param, value: Any) -> Any:
    if param.kind is Kind.FILE:
        if isinstance(value, bytes | bytearray) or hasattr(value, "read"):
            return value if not isinstance(value, bytearray) else bytes(value)
        raise _type_error(endpoint, param, "bytes or a binary file", value)
    return _scalar(endpoint, param, value)
