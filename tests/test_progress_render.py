"""The progress bars as a terminal shows them: the captures of a real run, and every width."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from aioudata import EntityStatus, ProgressUpdate
from aioudata._mirror.progress import render_bars

# `aioudata mirror --rate 3 --page-size 5` on the local udata server (300 datasets), seen in tmux
# panes of 80 and 160 columns 8 s in (tmux capture-pane -p): what the renderer must still draw.
CAPTURE_80 = """\
datasets        full pass ━━━╺━━━━━━  30% 18/60 pages 12.1 items/s 0:08 ETA 0:18
organizations             ━━━━━━━━━━ 100%   2/2 pages              0:03 done
reuses                    ━━━━━━━━━━ 100%   3/3 pages              0:05 done
harvest_sources           ━━━━━━━━━━ 100%   2/2 pages              0:03 done
users                     ━━━━━━━━━━                                    skipped
total           29 requests, 0 retries, 0:08
"""
CAPTURE_160 = """\
datasets        full pass ━━━━━━━━━━━━╺━━━━━━━━━━━━━━━━━━━━━━━━━━━  30% 18/60 pages 90 items 12.1 items/s 90 new 0 updated 0 deleted 0:08 ETA 0:18
organizations             ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 100%   2/2 pages  5 items              5 new 0 updated 0 deleted  0:03 done
reuses                    ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 100%   3/3 pages  6 items              6 new 0 updated 0 deleted  0:05 done
harvest_sources           ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 100%   2/2 pages  2 items              2 new 0 updated 0 deleted  0:03 done
users                     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━                                                                        skipped
total           29 requests, 0 retries, 0:08
"""  # noqa: E501


def status(name: str, phase: str, **counts: float | None) -> EntityStatus:
    values: dict[str, float | None] = {
        "pages": 0,
        "pages_total": None,
        "resumed": 0,
        "items": 0,
        "new": 0,
        "updated": 0,
        "deleted": 0,
        "errors": 0,
        "retries": 0,
        "elapsed": 0.0,
        "items_per_second": None,
        "eta": None,
    }
    values.update(counts)
    return EntityStatus(name, phase, **values)


def done(name: str, pages: int, items: int, elapsed: float) -> EntityStatus:
    return status(
        name, "done", pages=pages, pages_total=pages, items=items, new=items, elapsed=elapsed, eta=0
    )


CAPTURED = ProgressUpdate(
    (
        status(
            "datasets",
            "full pass",
            pages=18,
            pages_total=60,
            items=90,
            new=90,
            elapsed=8.4,
            items_per_second=12.1,
            eta=18.2,
        ),
        done("organizations", 2, 5, 3.1),
        done("reuses", 3, 6, 5.2),
        done("harvest_sources", 2, 2, 3.0),
        status("users", "skipped", elapsed=1.0, eta=0),
    ),
    requests=29,
    retries=0,
    elapsed=8.6,
)

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen(update: ProgressUpdate, width: int) -> str:
    """What a terminal of ``width`` columns shows: colours on (rich draws the empty part of a
    bar only in colour), then the escape codes taken out, as ``capture-pane -p`` gives it."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system="truecolor")
    console.print(render_bars(update, width))
    return "".join(_ESCAPE.sub("", line).rstrip() + "\n" for line in out.getvalue().splitlines())


@pytest.mark.parametrize(("width", "capture"), [(80, CAPTURE_80), (160, CAPTURE_160)])
def test_the_bars_match_the_terminal_captures(width: int, capture: str) -> None:
    assert screen(CAPTURED, width) == capture


RUNNING = ProgressUpdate(
    (
        status(
            "harvest_sources",
            "verifying",
            pages=738,
            pages_total=815,
            resumed=200,
            items=73_800,
            new=70_000,
            updated=3_800,
            deleted=12,
            errors=3,
            retries=41,
            elapsed=3725,
            items_per_second=1234.5,
            eta=4000,
        ),
        status("reuses", "changes pass", pages=3, items=300, elapsed=8, items_per_second=45.2),
        status("organizations", "waiting"),
    ),
    requests=12_345,
    retries=41,
    elapsed=3725,
)


@pytest.mark.parametrize("width", range(40, 201, 4))
def test_any_width_keeps_the_bar_and_the_eta_on_one_line_each(width: int) -> None:
    lines = screen(RUNNING, width).splitlines()
    assert len(lines) == 4  # a row per entity and the totals: nothing wrapped
    assert all(len(line) <= width for line in lines)
    verifying, changes, waiting = lines[:3]
    assert verifying.startswith("harvest_sources") and "━" in verifying
    assert verifying.endswith("ETA 1:06:40")
    assert changes.endswith("ETA -:--") and "━" in changes  # unknown length: it pulses
    assert waiting.startswith("organizations") and waiting.endswith("waiting")


def test_narrow_terminals_drop_the_least_useful_fields_first() -> None:
    shown = {width: screen(RUNNING, width).splitlines()[0] for width in (60, 80, 120, 200)}
    assert "3 quarantined" in shown[200] and "41 retries" in shown[200]
    assert "70,000 new 3,800 updated 12 deleted" in shown[200]
    assert "quarantined" not in shown[120] and "73,800 items" in shown[120]
    assert "1,234 items/s" in shown[80] and "1:02:05" in shown[80] and "items " not in shown[80]
    assert "91%" in shown[60] and "738/815 pages" in shown[60] and "items/s" not in shown[60]
    for line in shown.values():
        assert "ETA 1:06:40" in line
