"""Loading the vendored fragments of openapi/ and merging them into one document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

# Files of openapi/ that are not operation fragments.
NOT_FRAGMENTS = {"overlay.json", "manifest.json", "required.json", "shared.json"}
#: The folders of other API versions beside the tag folders: openapi/v2/ holds the API v2.
VERSION_FOLDER = re.compile(r"v\d+")


def fragment_paths(spec_dir: Path) -> list[Path]:
    """Every operation fragment below ``spec_dir`` (one folder per tag), sorted.

    A version folder (``v2/``) is not a tag: its fragments are another API's
    (:func:`version_dirs`).
    """
    return sorted(
        p
        for p in spec_dir.glob("*/*.json")
        if p.name not in NOT_FRAGMENTS and not VERSION_FOLDER.fullmatch(p.parent.name)
    )


def version_dirs(spec_dir: Path) -> dict[int, Path]:
    """API version -> its fragment folder: ``spec_dir`` is the API v1, ``spec_dir/v2`` the v2."""
    found = {1: spec_dir}
    for folder in sorted(spec_dir.iterdir()) if spec_dir.is_dir() else []:
        if folder.is_dir() and VERSION_FOLDER.fullmatch(folder.name):
            found[int(folder.name[1:])] = folder
    return dict(sorted(found.items()))


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


#: Prefix of the API v2's routes in a document merging both versions (``/@v2/topics/``): the
#: two APIs have routes in common (``/datasets/``), each relative to its own root.
V2_ROUTE = "/@v2"
#: Where a merged document keeps the API v2's tags (their descriptions are its own).
V2_TAGS = "x-aioudata-v2-tags"


def merge_versions(spec_dir: Path) -> JSON:
    """One document holding the API v1 (``spec_dir``) and any other version (``spec_dir/v2``).

    Schemas are merged as fragments are: a name means one schema in every version (the v2
    build renames the v2 models of their own, ``DatasetV2``), so two definitions of one name
    are an error. The v2 routes are keyed under :data:`V2_ROUTE` (see :func:`api_route`).
    """
    merged = merge_fragments(spec_dir)
    for version, folder in version_dirs(spec_dir).items():
        if version == 1:
            continue
        if version != 2:
            raise ValueError(f"{folder}: only the API v1 and v2 are known")
        other = merge_fragments(folder)
        merged[V2_TAGS] = other["tags"]
        for route, item in other["paths"].items():
            merged["paths"][V2_ROUTE + route] = item
        for section, entries in other["components"].items():
            known = merged["components"].setdefault(section, {})
            for name, value in entries.items():
                if name in known and known[name] != value:
                    raise ValueError(f"{folder}: components.{section}.{name} differs from v1's")
                known[name] = value
    return merged


def api_route(route: str) -> tuple[int, str]:
    """``(API version, route relative to that API's root)`` of a merged document's route."""
    if route.startswith(V2_ROUTE + "/"):
        return 2, route[len(V2_ROUTE) :]
    return 1, route
