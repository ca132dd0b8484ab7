"""What the package index shows and installs: the license, the README's links and first steps.

Building the package (``python -m build``, ``twine check``) and installing the wheel in a fresh
venv happen in ``make package``, which CI runs: they need the package index, tests do not.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README = (ROOT / "README.md").read_text()


def test_the_license_file_is_the_one_pyproject_declares() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert (
        text.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in text
    )


def test_the_readme_starts_with_how_to_install_it_as_a_dependency() -> None:
    sections = re.findall(r"^## (.+)$", README, flags=re.MULTILINE)
    assert sections[0] == "Install"
    install = README.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "pip install aioudata" in install and "pyproject.toml" in install
    assert README.index("pip install aioudata") < README.index("make ")


def test_every_link_of_the_readme_works_on_the_package_index() -> None:
    """The index shows the README alone: relative links and bare anchors lead nowhere there."""
    links = re.findall(r"\]\(([^)\s]+)\)", README) + re.findall(r'(?:href|src)="([^"]+)"', README)
    assert links
    relative = [link for link in links if not re.match(r"https?://", link)]
    assert relative == []


def test_the_runtime_dependencies_cover_the_progress_bars_and_ci_builds_the_package() -> None:
    names = {re.split(r"[<>=!~ ]", spec)[0] for spec in PYPROJECT["project"]["dependencies"]}
    assert "rich" in names
    dev = {
        re.split(r"[<>=!~ ]", spec)[0]
        for spec in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    assert {"build", "twine"} <= dev
    assert "make package" in (ROOT / ".ci" / "run").read_text()
    assert "twine check" in (ROOT / "Makefile").read_text()
