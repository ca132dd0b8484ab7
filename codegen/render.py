"""Rendering generated modules from the jinja templates in codegen/templates/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    autoescape=False,
)


def docstring(text: str, indent: int = 4) -> str:
    """``text`` as the body of a triple-quoted docstring: escaped, whitespace normalised."""
    text = " ".join(str(text).split()).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text += " "
    return text


def constant_name(value: str) -> str:
    """An UPPER_SNAKE member name for an enum value ("done-errors" -> DONE_ERRORS)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", value)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").upper()
    if not text:
        return "EMPTY"
    return "V_" + text if text[0].isdigit() else text


def enum_members(values: list[str]) -> list[tuple[str, str]]:
    """``(member name, value)`` pairs with unique names."""
    seen: dict[str, int] = {}
    members = []
    for value in values:
        name = constant_name(value)
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        members.append((name, value))
    return members


_env.filters["docstring"] = docstring
_env.filters["pyrepr"] = repr
_env.globals["enum_members"] = enum_members


def add_globals(**values: Any) -> None:
    """Make ``values`` callable from every template."""
    _env.globals.update(values)


def render(template: str, **context: Any) -> str:
    """Render ``template`` with ``context``."""
    return _env.get_template(template).render(**context)
