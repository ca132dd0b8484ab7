"""Progress lines: live on a terminal, plain elsewhere; the summary's lines."""

from __future__ import annotations

import io

import pytest

from aioudata._mirror.config import EntitySummary, MirrorSummary
from aioudata._mirror.progress import Progress, progress_mode


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mode_follows_the_terminal_and_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert progress_mode(_Terminal()) == "tty"
    assert progress_mode(io.StringIO()) == "plain"
    assert progress_mode(_Terminal(), quiet=True) == "off"
    monkeypatch.setenv("CI", "true")
    assert progress_mode(_Terminal()) == "plain"


def test_a_terminal_gets_lines_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    stream = _Terminal()
    progress = Progress(stream, "tty", totals=lambda: "total 3 requests, 1 retries")
    live = progress.entity("datasets")
    live.pages, live.pages_total, live.items, live.retries = 2, 8, 200, 1
    progress.render()
    progress.render()
    text = stream.getvalue()
    assert "datasets" in text and "page 2/8" in text and "retries 1" in text and "ETA" in text
    assert text.count("\x1b[2F") == 1  # the second drawing moves up over the first two lines
    monkeypatch.setenv("COLUMNS", "40")
    progress.render()
    assert all(len(line) <= 39 + 8 for line in stream.getvalue().splitlines()[-2:])


def test_plain_output_has_no_escape_codes() -> None:
    stream = io.StringIO()
    progress = Progress(stream, "plain")
    progress.entity("reuses").items = 5
    progress.note("reuses: full")
    progress.render()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\x1b" not in stream.getvalue()
    assert lines[0].endswith("reuses: full") and "5 items" in lines[1]


def test_off_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(stream, "off")
    progress.entity("datasets").items = 1
    progress.note("x")
    progress.render()
    assert stream.getvalue() == ""


def test_the_summary_counts_per_entity() -> None:
    summary = MirrorSummary(base_url="http://127.0.0.1:1/api/1", database="m.sqlite")
    summary.entities["datasets"] = EntitySummary(
        "datasets", mode="incremental", new=1, updated=2, deleted=3, errors=4, stored=10
    )
    summary.retries, summary.requests = 5, 6
    lines = summary.lines()
    assert lines[0].endswith(": ok")
    assert "1 new" in lines[1] and "2 updated" in lines[1] and "3 deleted" in lines[1]
    assert "4 quarantined" in lines[1] and "[incremental]" in lines[1]
    assert "5 retries" in lines[2] and summary.quarantined == 4
