"""The JSON Lines export never writes through a planted symlink (issue 12)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from aioudata._mirror.export import _write_lines

VICTIM_TEXT = "precious, not to be overwritten\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the export folder that a planted symlink points at."""
    path = tmp_path / "elsewhere" / "victim.txt"
    path.parent.mkdir()
    path.write_text(VICTIM_TEXT)
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    return folder


def test_a_symlink_at_the_old_temporary_name_is_left_alone(out: Path, victim: Path) -> None:
    target = out / "datasets.jsonl"
    planted = out / "datasets.jsonl.tmp"  # the predictable name the export used to write
    planted.symlink_to(victim)
    assert _write_lines(target, ['{"id": "a"}', '{"id": "b"}']) == 2
    assert victim.read_text() == VICTIM_TEXT
    assert stat.S_ISREG(os.lstat(target).st_mode)  # a regular file, not the symlink renamed
    assert target.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    assert planted.is_symlink()  # not ours: untouched


def test_a_symlink_at_the_target_is_replaced_not_followed(out: Path, victim: Path) -> None:
    target = out / "datasets.jsonl"
    target.symlink_to(victim)
    _write_lines(target, ["{}"])
    assert victim.read_text() == VICTIM_TEXT
    assert stat.S_ISREG(os.lstat(target).st_mode) and target.read_text() == "{}\n"


def test_a_failure_while_writing_leaves_no_temporary_file_and_the_old_export(out: Path) -> None:
    target = out / "datasets.jsonl"
    target.write_text("old\n")

    def lines() -> Iterator[str]:
        yield "{}"
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        _write_lines(target, lines())
    assert sorted(p.name for p in out.iterdir()) == ["datasets.jsonl"]
    assert target.read_text() == "old\n"


def test_the_export_has_the_permissions_open_would_give(out: Path) -> None:
    umask = os.umask(0o022)
    try:
        _write_lines(out / "datasets.jsonl", ["{}"])
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(out / "datasets.jsonl").st_mode) == 0o644
    assert sorted(p.name for p in out.iterdir()) == ["datasets.jsonl"]
