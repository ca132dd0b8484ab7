"""Every Endpoint the generated operation modules define, for tests that check them all."""

from __future__ import annotations

import importlib
from typing import Any

from aioudata import Endpoint
from aioudata._generated.namespaces import OPERATIONS


def all_endpoints() -> list[Endpoint[Any]]:
    """The Endpoint constants of every tag module of aioudata._generated.operations."""
    found: list[Endpoint[Any]] = []
    for tag in OPERATIONS:
        module = importlib.import_module(f"aioudata._generated.operations.{tag}")
        found += [value for value in vars(module).values() if isinstance(value, Endpoint)]
    return found
