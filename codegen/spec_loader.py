"""Loading the vendored fragments of openapi/ and merging them into one document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

# Files of openapi/ that are not operation fragments.
NOT_FRAGMENTS = {"overlay.json", "manifest.json"}


def fragment_paths(spec_dir: Path) -> list[Path]:
    """Every operation fragment below ``spec_dir`` (one folder per tag), sorted."""
    return sorted(p for p in spec_dir.glob("*/*.json") if p.name not in NOT_FRAGMENTS)


def merge_fragments(spec_dir: Path) -> JSON:
    """One OpenAPI document holding every fragment's paths, tags and components.

    A schema that two fragments define differently is an error: fragments are cut from one
    document, so they must agree.
    """
    merged: JSON = {
        "openapi": "3.1.1",
        "info": {},
        "servers": [],
        "tags": [],
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    tags: dict[str, JSON] = {}
    for path in fragment_paths(spec_dir):
        fragment = json.loads(path.read_text(encoding="utf-8"))
        merged["info"] = merged["info"] or fragment.get("info", {})
        merged["servers"] = merged["servers"] or fragment.get("servers", [])
        for tag in fragment.get("tags", []):
            tags.setdefault(tag["name"], tag)
        for route, item in fragment["paths"].items():
            target = merged["paths"].setdefault(route, {})
            for key, value in item.items():
                if key in target and target[key] != value:
                    raise ValueError(f"{path}: {key} {route} conflicts with another fragment")
                target[key] = value
        for section, entries in fragment.get("components", {}).items():
            known = merged["components"].setdefault(section, {})
            for name, value in entries.items():
                if name in known and known[name] != value:
                    raise ValueError(f"{path}: components.{section}.{name} differs elsewhere")
                known[name] = value
    merged["tags"] = [tags[name] for name in sorted(tags)]
    return merged


def operations(document: JSON) -> list[tuple[str, str, JSON, list[JSON]]]:
    """``(path, METHOD, operation, path-level parameters)`` for every operation, sorted by id."""
    found = []
    for route, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            found.append((route, method.upper(), operation, shared))
    return sorted(found, key=lambda entry: entry[2]["operationId"])
