"""JSON decoding into the generated models, tolerant by default and strict on request.

Tolerant: unknown fields are ignored, every optional field accepts null (the models say so).
Strict (for tests and drift checks): a field the model does not declare is an error.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar, cast

import msgspec

from ._errors import DecodeError, StrictDecodeError

__all__ = ["decode", "decode_body", "unknown_fields"]

T = TypeVar("T")

_AT_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_SNIPPET_LEN = 80


@cache
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    # One Decoder per type, built once: msgspec compiles the type the first time.
    return msgspec.json.Decoder(type_)


def decode(data: bytes, type_: type[T], *, strict: bool = False, url: str | None = None) -> T:
    """Decode a JSON body into ``type_``.

    Raises :class:`DecodeError` naming the field path and a snippet of the offending value, or,
    with ``strict=True``, :class:`StrictDecodeError` listing fields the model does not declare.
    """
    try:
        value = cast(T, _decoder(cast(Any, type_)).decode(data))
    except msgspec.DecodeError as exc:
        reason, path = _split(str(exc))
        raise DecodeError(
            reason, path=path, snippet=_snippet(data, path), model=_name(type_), url=url
        ) from None
    if strict:
        extra = unknown_fields(value, msgspec.json.decode(data))
        if extra:
            shown = ", ".join(extra[:10])
            if len(extra) > 10:
                shown += f" (+{len(extra) - 10} more)"
            raise StrictDecodeError(
                f"undeclared fields: {shown}",
                path=extra[0],
                snippet=_snippet(data, extra[0]),
                model=_name(type_),
                url=url,
            )
    return value


def decode_body(body: bytes, type_: Any, *, strict: bool = False, url: str | None = None) -> Any:
    """An operation's answer as its endpoint declares it: ``None``, raw ``bytes`` or a model.

    An empty (or blank) JSON body decodes to ``None``.
    """
    if type_ is None:
        return None
    if type_ is bytes:
        return body
    if not body or body.isspace():
        return None
    return decode(body, type_, strict=strict, url=url)


def unknown_fields(value: Any, raw: Any, path: str = "$") -> list[str]:
    """Paths of the keys in ``raw`` that the decoded ``value`` has no field for."""
    found: list[str] = []
    if isinstance(value, msgspec.Struct) and isinstance(raw, dict):
        known = {}
        for f in msgspec.structs.fields(value):
            known[f.encode_name] = f.name
        for key, item in raw.items():
            attr = known.get(key)
            if attr is None:
                found.append(f"{path}.{key}")
            else:
                found.extend(unknown_fields(getattr(value, attr), item, f"{path}.{key}"))
    elif isinstance(value, list) and isinstance(raw, list):
        for i, (v, r) in enumerate(zip(value, raw, strict=False)):
            found.extend(unknown_fields(v, r, f"{path}[{i}]"))
    elif isinstance(value, dict) and isinstance(raw, dict):
        for key, item in raw.items():
            if key in value:
                found.extend(unknown_fields(value[key], item, f"{path}.{key}"))
    return found


def _split(message: str) -> tuple[str, str]:
    match = _AT_PATH.match(message)
    if match is None:  # pragma: no cover - the pattern matches any string
        return message, "$"
    return match["reason"], match["path"] or "$"


def _snippet(data: bytes, path: str) -> str:
    """A short repr of the value at ``path`` in the raw JSON, or of the body's start."""
    try:
        node: Any = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return _cut(data.decode("utf-8", "replace"))
    for match in _PATH_PART.finditer(path):
        key, index = match.group(1), match.group(2)
        try:
            if key is not None:
                node = node[key]
            elif index is not None:
                node = node[int(index)]
            else:  # "[...]" : msgspec does not say which dict key
                break
        except (KeyError, IndexError, TypeError):
            break
    return _cut(msgspec.json.encode(node).decode("utf-8", "replace"))


def _cut(text: str) -> str:
    return text if len(text) <= _SNIPPET_LEN else text[: _SNIPPET_LEN - 1] + "…"


def _name(type_: Any) -> str:
    return getattr(type_, "__name__", None) or repr(type_)
