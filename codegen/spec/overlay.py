"""Applying an OpenAPI Overlay 1.0 document (openapi/overlay.json) to the converted spec.

Semantics (Overlay Specification 1.0.0): each action's ``target`` is a JSONPath; ``update`` is
merged into every object it selects (objects merge recursively, any other value replaces) or
appended to every array it selects; ``remove: true`` deletes the selected nodes.

Stricter than the specification, on purpose: an action that selects nothing, or an update that
changes nothing, is an error. Both mean udata changed the place we patch (renamed it, or fixed
the bug), and the overlay must be revisited rather than silently rot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .jsonpath import Node, find

JSON = dict[str, Any]


class OverlayError(ValueError):
    """An overlay action that does not apply to the document any more."""


@dataclass(frozen=True)
class Applied:
    """What one action did: its target and how many nodes it touched."""

    target: str
    matched: int


def merge(target: Any, update: Any) -> Any:
    """``update`` merged into ``target`` (both left untouched); the Overlay 1.0 merge."""
    if isinstance(target, dict) and isinstance(update, dict):
        merged = dict(target)
        for key, value in update.items():
            merged[key] = merge(target[key], value) if key in target else copy.deepcopy(value)
        return merged
    if isinstance(target, list):
        return [*target, copy.deepcopy(update)]
    return copy.deepcopy(update)


def _update(nodes: list[Node], update: Any, target: str) -> None:
    for node in nodes:
        merged = merge(node.value, update)
        if merged == node.value:
            raise OverlayError(f"update of {target} changes nothing: fixed upstream?")
        # In place, so that a target of "$" (whose parent is a throwaway holder) works too.
        value = node.value
        if isinstance(value, dict):
            value.clear()
            value.update(merged)
        elif isinstance(value, list):
            value[:] = merged
        else:
            node.parent[node.key] = merged


def _remove(nodes: list[Node]) -> None:
    # Delete array items from the highest index down so earlier deletions do not shift them.
    for node in sorted(nodes, key=lambda n: n.key if isinstance(n.key, int) else 0, reverse=True):
        del node.parent[node.key]


def validate(overlay: JSON) -> None:
    """The overlay's own shape: version, info, and actions that each say why."""
    if overlay.get("overlay") != "1.0.0":
        raise OverlayError(f"unsupported overlay version {overlay.get('overlay')!r}")
    if not {"title", "version"} <= set(overlay.get("info", {})):
        raise OverlayError("overlay info needs a title and a version")
    for action in overlay.get("actions", []):
        label = action.get("target")
        if not isinstance(label, str) or not label.startswith("$"):
            raise OverlayError(f"action without a JSONPath target: {action}")
        if not action.get("description"):
            raise OverlayError(f"{label}: every action must say why (description)")
        if ("update" in action) == bool(action.get("remove")):
            raise OverlayError(f"{label}: an action either updates or removes")


def apply(document: JSON, overlay: JSON) -> tuple[JSON, list[Applied]]:
    """A copy of ``document`` with every action applied in order, and what each one matched."""
    validate(overlay)
    result = copy.deepcopy(document)
    applied = []
    for action in overlay.get("actions", []):
        target = action["target"]
        nodes = find(result, target)
        if not nodes:
            raise OverlayError(f"{target} matches nothing: renamed or removed upstream?")
        if action.get("remove"):
            _remove(nodes)
        else:
            _update(nodes, action["update"], target)
        applied.append(Applied(target, len(nodes)))
    return result, applied
