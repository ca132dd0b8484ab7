"""The small part of JSONPath (RFC 9535) that our overlay actions use.

Supported: the root ``$``; child segments ``.name``, ``['quoted name']`` (single or double
quotes, backslash escapes), ``['a', 'b']`` (a union of names), ``[0]``, ``.*`` / ``[*]``;
descendant segments ``..name``, ``..['name']``, ``..*``; and equality filters
``[?@ == 'literal']``, ``[?@.a.b == 'literal']``, ``[?@['$ref'] == 'literal']`` (literal: quoted
string, integer, true, false, null). Filters are how an action guards itself: it selects the
node only while it still holds the wrong value we patch. Anything else is a ``ValueError`` rather
than a silent mismatch: an overlay whose target we misread must stop the build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"-?[0-9]+")
_QUOTED = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_FILTER = re.compile(
    rf"\?\s*@(?P<path>(?:\.[A-Za-z_][A-Za-z0-9_]*|\[(?:{_QUOTED})\])*)\s*==\s*"
    rf"(?P<literal>{_QUOTED}|-?[0-9]+|true|false|null)\s*"
)
_FILTER_STEP = re.compile(rf"\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<quoted>{_QUOTED})\]")


@dataclass(frozen=True)
class Selector:
    """One selector: ``kind`` is "name" (one or a union), "index", "wildcard" or "filter"."""

    kind: str
    names: tuple[str, ...] = ()
    index: int = 0
    path: tuple[str, ...] = ()
    literal: Any = None


@dataclass(frozen=True)
class Segment:
    selector: Selector
    descendant: bool = False


@dataclass(frozen=True)
class Node:
    """A matched value and where it lives, so that callers can replace or delete it."""

    parent: Any  # dict or list; the synthetic holder ``[document]`` for the root
    key: Any  # str for objects, int for arrays

    @property
    def value(self) -> Any:
        return self.parent[self.key]


def _quoted(text: str, start: int) -> tuple[str, int]:
    """A quoted name beginning at ``text[start]``; returns (name, index after closing quote)."""
    quote = text[start]
    i, chars = start + 1, []
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            chars.append({"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1]))
            i += 2
        elif char == quote:
            return "".join(chars), i + 1
        else:
            chars.append(char)
            i += 1
    raise ValueError(f"unterminated quoted name in {text!r}")


def _literal(token: str) -> Any:
    if token[0] in "'\"":
        return _quoted(token, 0)[0]
    return json.loads(token)


def _bracket(text: str, start: int) -> tuple[Selector, int]:
    """The selector inside ``[...]`` opening at ``text[start]``."""
    i = start + 1
    if i >= len(text):
        raise ValueError(f"unterminated '[' in {text!r}")
    if text[i] in "'\"":
        names = []
        while True:
            name, i = _quoted(text, i)
            names.append(name)
            while text[i : i + 1] == " ":
                i += 1
            if text[i : i + 1] != ",":
                break
            i += 1
            while text[i : i + 1] == " ":
                i += 1
        selector = Selector("name", names=tuple(names))
    elif text[i] == "*":
        selector, i = Selector("wildcard"), i + 1
    elif match := _INDEX.match(text, i):
        selector, i = Selector("index", index=int(match.group())), match.end()
    elif match := _FILTER.match(text, i):
        path = tuple(
            step["name"] or _quoted(step["quoted"], 0)[0]
            for step in _FILTER_STEP.finditer(match.group("path"))
        )
        selector = Selector("filter", path=path, literal=_literal(match.group("literal")))
        i = match.end()
    else:
        raise ValueError(f"unsupported selector at {i} in {text!r}")
    if i >= len(text) or text[i] != "]":
        raise ValueError(f"expected ']' at {i} in {text!r}")
    return selector, i + 1


def _dotted(text: str, start: int) -> tuple[Selector, int]:
    """The selector after ``.`` or ``..``: a member name or ``*``."""
    if start < len(text) and text[start] == "*":
        return Selector("wildcard"), start + 1
    match = _NAME.match(text, start)
    if not match:
        raise ValueError(f"expected a member name at {start} in {text!r}")
    return Selector("name", names=(match.group(),)), match.end()


def parse(expression: str) -> list[Segment]:
    """The segments of ``expression``; raises ValueError outside the supported subset."""
    if not expression.startswith("$"):
        raise ValueError(f"a JSONPath starts with '$': {expression!r}")
    segments, i = [], 1
    while i < len(expression):
        if expression.startswith("..", i):
            i += 2
            if i < len(expression) and expression[i] == "[":
                selector, i = _bracket(expression, i)
            else:
                selector, i = _dotted(expression, i)
            segments.append(Segment(selector, descendant=True))
        elif expression[i] == ".":
            selector, i = _dotted(expression, i + 1)
            segments.append(Segment(selector))
        elif expression[i] == "[":
            selector, i = _bracket(expression, i)
            segments.append(Segment(selector))
        else:
            raise ValueError(f"unexpected {expression[i]!r} at {i} in {expression!r}")
    return segments


def _children(value: Any) -> Iterator[Node]:
    if isinstance(value, dict):
        yield from (Node(value, key) for key in value)
    elif isinstance(value, list):
        yield from (Node(value, index) for index in range(len(value)))


def _descendants(node: Node) -> Iterator[Node]:
    """``node`` then everything below it, depth first, in document order."""
    yield node
    for child in _children(node.value):
        yield from _descendants(child)


def _follow(value: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


def _select(node: Node, selector: Selector) -> Iterator[Node]:
    value = node.value
    if selector.kind == "name":
        for name in selector.names:
            if isinstance(value, dict) and name in value:
                yield Node(value, name)
    elif selector.kind == "index":
        if isinstance(value, list) and -len(value) <= selector.index < len(value):
            yield Node(value, selector.index % len(value))
    elif selector.kind == "wildcard":
        yield from _children(value)
    else:
        for child in _children(value):
            found, item = _follow(child.value, selector.path)
            # Equality as JSON sees it: true is not 1.
            if found and type(item) is type(selector.literal) and item == selector.literal:
                yield child


def find(document: Any, expression: str) -> list[Node]:
    """Every node ``expression`` selects in ``document``, in document order, no duplicates."""
    nodes = [Node([document], 0)]
    for segment in parse(expression):
        starts = (d for n in nodes for d in _descendants(n)) if segment.descendant else nodes
        selected: list[Node] = []
        seen: set[tuple[int, Any]] = set()
        for start in starts:
            for found in _select(start, segment.selector):
                ident = (id(found.parent), found.key)
                if ident not in seen:
                    seen.add(ident)
                    selected.append(found)
        nodes = selected
    return nodes
