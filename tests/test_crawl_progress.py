"""The progress display of ``aioudata resources check`` / ``download``: the terminal captures,
every width, plain lines, and the updates a run gives (results so far, a smoothed ETA no
sooner than the slowest host allows)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from aioudata._crawl import CheckProgress, DownloadProgress, HostLimits, run_checks
from aioudata._crawl.progress import CrawlDisplay, plain_line, render_crawl
from tests.test_crawl_web import Web, config, make_mirror
from tests.test_crawl_web import webhosts as webhosts  # the fixture

# `aioudata resources check --per-host 2 --host-rate 20` on the stand-in web of
# benchmarks/bench_resources.py (40 hosts, 3,020 URLs, one throttling, two refusing), in tmux
# panes of 80 and 160 columns 11 s in (tmux capture-pane -p): what the renderer must still draw.
CAPTURE_80 = """\
check    ━━━━━━━━━━━━━━━╺━━━━━━━━━ 62% 1,866/3,020 URLs 128 URLs/s 0:11 ETA 0:49
hosts    2 active  2 backing off  0 down  1,931 requests  0 in flight
results  2xx 1,856  refused 10
"""
CAPTURE_160 = """\
check    ━━━━━━━━━━━━━━━━━━━━━━━━╸━━━━━━━━━━━━━━━ 62% 1,866/3,020 URLs 126 URLs/s 0:11 ETA 0:49
hosts    2 active  2 backing off  0 down  1,931 requests  0 in flight
results  2xx 1,856  refused 10
"""


def check_update(**values: Any) -> CheckProgress:
    fields: dict[str, Any] = {
        "total": 3020,
        "done": 1866,
        "requests": 1931,
        "in_flight": 0,
        "hosts": 40,
        "hosts_active": 2,
        "hosts_waiting": 2,
        "hosts_down": 0,
        "elapsed": 11.6,
        "urls_per_second": 128.3,
        "eta": 49.4,
        "outcomes": {"2xx": 1856, "refused": 10},
    }
    fields.update(values)
    return CheckProgress(**fields)


def download_update(**values: Any) -> DownloadProgress:
    fields: dict[str, Any] = {
        "total": 1000,
        "done": 412,
        "files": 409,
        "bytes": 57 * 2**20,
        "mismatches": 3,
        "in_flight": 8,
        "hosts": 8,
        "hosts_active": 8,
        "hosts_waiting": 0,
        "hosts_down": 0,
        "elapsed": 3725.0,
        "bytes_per_second": 12.5 * 2**20,
        "files_per_second": 91.3,
        "eta": 4000.0,
        "outcomes": {"downloaded": 409, "mismatch": 3},
    }
    fields.update(values)
    return DownloadProgress(**fields)


_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen(update: CheckProgress | DownloadProgress, width: int) -> str:
    """What a terminal of ``width`` columns shows, as ``capture-pane -p`` gives it."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system="truecolor")
    console.print(render_crawl(update, width))
    return "".join(_ESCAPE.sub("", line).rstrip() + "\n" for line in out.getvalue().splitlines())


@pytest.mark.parametrize(
    ("width", "capture", "speed"), [(80, CAPTURE_80, 128.3), (160, CAPTURE_160, 126.4)]
)
def test_the_display_matches_the_terminal_captures(width: int, capture: str, speed: float) -> None:
    assert screen(check_update(urls_per_second=speed), width) == capture


@pytest.mark.parametrize("width", range(40, 201, 8))
@pytest.mark.parametrize("make", [check_update, download_update])
def test_any_width_keeps_the_bar_and_the_eta_on_one_line(make: Any, width: int) -> None:
    lines = screen(make(), width).splitlines()
    assert len(lines) == 3  # bar, hosts, results: nothing wrapped
    assert all(len(line) <= width for line in lines)
    assert "━" in lines[0] and re.search(r"ETA (0:49|1:06:40)$", lines[0])
    assert lines[1].startswith("hosts    ") and lines[2].startswith("results  ")


def test_narrow_terminals_drop_the_least_useful_fields_first() -> None:
    shown = {width: screen(download_update(), width).splitlines() for width in (50, 80, 160)}
    assert "12.5 MiB/s" in shown[160][0] and "57.0 MiB" in shown[160][0]
    assert "1:02:05" in shown[160][0]
    assert "412/1,000 files" in shown[80][0] and "91.3 files/s" in shown[80][0]
    assert "1:02:05" not in shown[80][0]
    assert "41%" in shown[50][0] and "files/s" not in shown[50][0]
    assert "3 checksum mismatches" in shown[160][1]
    # What does not fit of the hosts and results says how much was left out.
    assert shown[50][1].endswith("more") and "0 backing off" in shown[50][1]


def test_the_last_update_says_done_and_every_result_kind() -> None:
    last = check_update(done=3020, final=True, eta=0.0, outcomes={"2xx": 3000, "4xx": 20})
    first = screen(last, 80).splitlines()
    assert first[0].endswith("100% 3,020/3,020 URLs 128 URLs/s 0:11 done")
    assert first[2] == "results  2xx 3,000  4xx 20"
    assert "ETA" not in plain_line(last) and "results: 2xx 3,000, 4xx 20" in plain_line(last)


def test_plain_lines_come_at_most_every_10_s_and_the_last_always() -> None:
    now = [100.0]
    out = io.StringIO()
    display = CrawlDisplay(out, "plain", clock=lambda: now[0])
    for step in range(25):  # 25 updates a second apart
        now[0] = 100.0 + step
        display(check_update(done=step))
    display(check_update(done=3020, final=True))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # at 10 s, at 20 s, the last
    assert "1/3,020" not in lines[0] and "10/3,020 URLs" in lines[0]
    assert lines[1].split("] ")[1].startswith("check: 1%, 20/3,020 URLs, 128 URLs/s")
    assert "hosts: 2 active, 2 backing off, 0 down, 1,931 requests" in lines[1]
    assert lines[2].endswith("results: 2xx 1,856, refused 10")


def test_a_terminal_gets_the_display_and_keeps_the_last_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    display = CrawlDisplay(out, "tty")
    display(check_update())
    display(check_update(done=3020, final=True))
    display.close()  # closed already by the last update: nothing more
    text = _ESCAPE.sub("", out.getvalue())
    assert "1,866/3,020 URLs" in text and "ETA 0:49" in text
    assert text.rstrip().splitlines()[-3].endswith("done")  # the last display stays


def test_an_off_display_writes_nothing() -> None:
    out = io.StringIO()
    CrawlDisplay(out, "off")(check_update(final=True))
    assert out.getvalue() == ""


async def test_a_run_reports_results_so_far_and_an_eta_no_sooner_than_its_slowest_host(
    webhosts: Web, tmp_path: Path
) -> None:
    paced, quick = await webhosts.host("paced"), await webhosts.host("quick")
    urls = [paced.add(f"/p{n}") for n in range(12)] + [quick.add(f"/q{n}") for n in range(30)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    updates: list[CheckProgress] = []
    # The paced host takes 5 URLs a second, one at a time: about 2.4 s for its 12 URLs,
    # while the quick host is done in a fraction of a second.
    options = config(db, per_host=HostLimits(4, None), host_limits={paced.key: HostLimits(1, 5)})
    summary = await run_checks(options, progress=updates.append, interval=0.2)

    last = updates[-1]
    assert last.final and last.done == last.total == 42 and last.eta == 0.0
    assert dict(last.outcomes) == summary.outcomes == {"2xx": 42}
    assert any(0 < sum(u.outcomes.values()) < 42 for u in updates)  # results as they came
    timed = [u for u in updates[:-1] if u.eta is not None]
    assert timed, "a run of ~2.4 s gives a speed and an ETA"
    first = timed[0]
    # The recent speed, the quick host's burst included, says a fraction of a second; the
    # paced host's queue says 0.2 s per URL left.
    assert first.eta is not None and first.eta >= 0.2 * (first.total - first.done - 1) - 0.1
    assert max(u.hosts_active for u in updates[:-1]) >= 1
