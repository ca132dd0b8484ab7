"""Progress: the updates (speeds, a smoothed ETA), the plain lines, the bars, the summary."""

from __future__ import annotations

import io
import logging

import pytest

from aioudata import EntityStatus, ProgressCallback, ProgressUpdate
from aioudata._mirror.config import EntitySummary, MirrorSummary
from aioudata._mirror.progress import PLAIN_INTERVAL, Progress, as_progress, progress_mode
from tests.summaries import summary_rows


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_mode_follows_the_terminal_and_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert progress_mode(_Terminal()) == "tty"
    assert progress_mode(io.StringIO()) == "plain"
    assert progress_mode(_Terminal(), quiet=True) == "off"
    monkeypatch.setenv("CI", "true")
    assert progress_mode(_Terminal()) == "plain"


def test_the_eta_leaves_out_the_start_and_follows_the_recent_speed() -> None:
    clock = Clock()
    progress = Progress(mode="callback", clock=clock)
    live = progress.entity("datasets")
    live.phase, live.pages_total = "full pass", 60
    progress.snapshot()
    # 8 s before the first page (connecting, slow first answers), then 2 pages a second.
    clock.now += 8
    live.pages = 1
    progress.snapshot()
    assert progress.snapshot().entity("datasets").eta is None  # no speed measured yet
    for _ in range(20):
        clock.now += 0.5
        live.pages += 1
        live.items += 100
        status = progress.snapshot().entity("datasets")
    assert status.pages == 21
    assert status.eta == pytest.approx((60 - 21) / 2)
    assert status.items_per_second == pytest.approx(200)
    # Pages arriving in bursts of 4 (4 in flight): the ETA counts down smoothly, near the truth.
    etas: list[float] = []
    for tick in range(1, 17):
        clock.now += 0.5
        if tick % 4 == 0:
            live.pages += 4
        eta = progress.snapshot().entity("datasets").eta
        assert eta is not None and abs(eta - (19.5 - tick / 2)) < 1.5, (tick, eta)
        etas.append(eta)
    assert etas == sorted(etas, reverse=True)


def test_a_resumed_pass_counts_its_speed_from_this_run_only() -> None:
    clock = Clock()
    progress = Progress(mode="callback", clock=clock)
    live = progress.entity("datasets")
    live.phase = "full pass"
    progress.snapshot()
    clock.now += 1
    live.pages = live.resumed = 15  # what walk() does at a checkpoint
    live.pages_total = 30
    progress.snapshot()
    for _ in range(4):
        clock.now += 1
        live.pages += 1
        status = progress.snapshot().entity("datasets")
    assert (status.pages, status.pages_total, status.resumed) == (19, 30, 15)
    assert status.fraction == pytest.approx(19 / 30)
    assert status.eta == pytest.approx(11)  # 1 page/s, not 19 pages in 5 s


def test_waiting_changes_and_finished_entities() -> None:
    clock = Clock()
    progress = Progress(mode="callback", clock=clock)
    waiting = progress.entity("reuses")
    changes = progress.entity("datasets")
    changes.phase, changes.pages, changes.pages_total = "changes pass", 3, 740
    done = progress.entity("organizations")
    done.phase, done.pages, done.pages_total = "done", 14, 14
    done.started, done.finished = clock.now - 12, clock.now - 2
    clock.now += 5
    update = progress.snapshot()
    assert update.entity("reuses").waiting and update.entity("reuses").fraction is None
    assert waiting.phase == "waiting"
    # A changes pass stops where the last run was: the listing's total says nothing.
    assert update.entity("datasets").pages_total is None
    assert update.entity("datasets").eta is None
    finished = update.entity("organizations")
    assert finished.finished and finished.fraction == 1.0 and finished.eta == 0.0
    assert finished.elapsed == pytest.approx(10)
    with pytest.raises(KeyError):
        update.entity("users")


def test_plain_lines_only_for_what_changed_at_most_every_10_s() -> None:
    clock = Clock()
    stream = io.StringIO()
    progress = Progress(stream, "plain", clock=clock)
    datasets, reuses = progress.entity("datasets"), progress.entity("reuses")
    datasets.phase, datasets.pages, datasets.pages_total, datasets.items = "full pass", 1, 10, 100
    progress.refresh()
    clock.now += PLAIN_INTERVAL - 1
    datasets.pages = 2
    progress.refresh()
    assert stream.getvalue() == ""  # not 10 s yet
    clock.now += 1
    progress.refresh()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\x1b" not in stream.getvalue()
    assert "datasets: full pass, 2/10 pages (20%), 100 items" in lines[0]
    assert "100 items" in lines[0] and "0 new, 0 updated, 0 deleted" in lines[0]
    assert lines[1].endswith("reuses: waiting")
    clock.now += PLAIN_INTERVAL
    datasets.pages = 3
    progress.refresh()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "datasets: full pass, 3/10" in lines[2]  # reuses unchanged
    clock.now += PLAIN_INTERVAL
    progress.refresh()
    assert len(stream.getvalue().splitlines()) == 3  # nothing changed: nothing printed
    progress.note("reuses: full")
    assert stream.getvalue().splitlines()[-1].endswith("] reuses: full")  # events at once
    reuses.phase, reuses.finished = "done", clock.now
    progress.refresh(final=True)  # the end: what changed since, without waiting
    last = stream.getvalue().splitlines()[-1]
    assert "reuses: done" in last and " in " in last


def test_off_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(stream, "off")
    progress.entity("datasets").items = 1
    progress.note("x")
    progress.refresh(final=True)
    assert stream.getvalue() == "" and not progress.active


async def test_a_terminal_gets_bars_drawn_by_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    stream = _Terminal()
    progress = Progress(stream, "tty", totals=lambda: (3, 1))
    live = progress.entity("datasets")
    live.phase, live.pages, live.pages_total, live.items, live.retries = "full pass", 4, 8, 40, 1
    progress.entity("reuses")
    progress.start()
    progress.refresh()
    progress.refresh()
    await progress.stop()
    text = stream.getvalue()
    assert "━" in text and "50%" in text and "4/8 pages" in text and "ETA -:--" in text
    assert "waiting" in text and "3 requests, 1 retries" in text
    assert "\x1b[2K" in text  # rich redraws the lines in place
    assert "\x1b[?25h" in text  # and gives the cursor back when it stops


def test_a_callback_gets_updates_and_a_failing_one_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    updates: list[ProgressUpdate] = []
    progress = as_progress(updates.append)
    assert progress.mode == "callback" and progress.active
    progress.entity("datasets").items = 3
    progress.note("datasets: full")
    progress.refresh()
    progress.refresh(final=True)
    assert [update.final for update in updates] == [False, True]
    assert updates[0].notes == ("datasets: full",) and updates[1].notes == ()
    assert isinstance(updates[0].entities[0], EntityStatus)
    assert updates[0].entity("datasets").items == 3

    calls = []

    def broken(update: ProgressUpdate) -> None:
        calls.append(update)
        raise RuntimeError("display gone")

    callback: ProgressCallback = broken
    failing = as_progress(callback)
    with caplog.at_level(logging.ERROR, logger="aioudata.mirror"):
        failing.refresh()
        failing.refresh()
    assert len(calls) == 1 and "progress callback" in caplog.text
    with pytest.raises(TypeError):
        as_progress(42)  # type: ignore[arg-type]
    assert as_progress(None).mode == "off"


def test_the_summary_counts_per_entity() -> None:
    summary = MirrorSummary(base_url="http://127.0.0.1:1/api/1", database="m.sqlite")
    summary.entities["datasets"] = EntitySummary(
        "datasets", mode="incremental", new=1, updated=2, deleted=3, errors=4, stored=10
    )
    summary.retries, summary.requests = 5, 6
    lines = summary.lines()
    assert lines[0].endswith(": ok")
    header, row = lines[1].split(), lines[2].split()
    assert header == ["stored", "new", "updated", "deleted", "errors", "pages"]
    assert row == ["datasets", "10", "1", "2", "3", "4", "0", "incremental"]
    assert "5 retries" in lines[3] and summary.quarantined == 4


def test_the_summary_fits_80_columns() -> None:
    summary = MirrorSummary(base_url="http://127.0.0.1:1/api/1", database="m.sqlite")
    big = 10**7  # numbers as large as data.gouv.fr's
    for name, mode in (
        ("datasets", "resumed full pass at page 16 (round 2)"),
        ("harvest_sources", "incremental"),
        ("organizations", "full"),
    ):
        summary.entities[name] = EntitySummary(
            name,
            mode=mode,
            new=big,
            updated=big,
            deleted=big,
            errors=99_999,
            stored=big,
            pages=7_400,
        )
    summary.entities["harvest_sources"] = EntitySummary(
        "harvest_sources", mode="incremental", new=12, stored=1_500, pages=2
    )
    summary.requests = 123_456
    lines = summary.lines()
    assert all(len(line) <= 80 for line in lines[1:]), [len(line) for line in lines]
    at = lines.index(next(line for line in lines if line.lstrip().startswith("datasets")))
    assert lines[at + 1].strip() == "resumed full pass at page 16 (round 2)"  # its own line
    assert next(line for line in lines if "harvest_sources" in line).endswith("  incremental")
    rows = summary_rows("\n".join(lines))  # and the tests read it back as printed
    assert rows["datasets"]["mode"] == "resumed full pass at page 16 (round 2)"
    assert rows["harvest_sources"] == {
        "stored": "1500",
        "new": "12",
        "updated": "0",
        "deleted": "0",
        "errors": "0",
        "pages": "2",
        "mode": "incremental",
    }
