"""The README's Use examples are type-checked: tests/typing/readme.py holds each one verbatim.

mypy --strict (make typecheck) checks tests/typing/; this test keeps that copy in sync with the
README, so an example that stops type-checking (an id to narrow, a list that may be None...)
fails the build instead of misleading readers.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def use_examples() -> list[str]:
    """The ```python blocks of the README's Use section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Use\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_every_use_example_is_type_checked_as_written() -> None:
    checked = (REPO / "tests" / "typing" / "readme.py").read_text(encoding="utf-8")
    examples = use_examples()
    assert len(examples) >= 2
    for example in examples:
        indented = textwrap.indent(example, "    ", lambda line: line.strip() != "")
        assert indented in checked, (
            f"copy this README example into tests/typing/readme.py:\n{example}"
        )


def test_the_examples_use_ids_and_lists_without_narrowing() -> None:
    first = use_examples()[0]
    assert "get_resource(dataset.id, resource.id)" in first
    assert "for resource in dataset.resources:" in first and "len(page.data)" in first
    assert any('x_fields="data{' in example for example in use_examples())
