"""The progress display of ``aioudata resources check`` and ``download`` on stderr.

A bar with done/total, speeds and the ETA, then the hosts (active, backing off, down) and the
results so far by kind, fitted to the terminal's width (rich, as the mirror's bars); plain
lines at most every 10 s when stderr is not a terminal or under CI; the last state shown
once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, TextIO

from .._display import PLAIN_INTERVAL, LiveView, Mode, clock, fit_columns, progress_mode
from .config import CheckProgress
from .download_config import DownloadProgress

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["CrawlDisplay", "plain_line", "render_crawl"]

Update = CheckProgress | DownloadProgress
_MIB = 1024 * 1024
#: Columns of the first line, left to right; the optional ones most useful first.
_ORDER = ("name", "bar", "percent", "done", "speed", "bytes", "rate", "elapsed", "eta")
_OPTIONAL = ("percent", "done", "speed", "rate", "bytes", "elapsed")
_RIGHT = frozenset({"percent", "done", "speed", "bytes", "rate", "elapsed"})
_LABEL = 9  # "download" and a space
BAR_MIN, BAR_MAX = 10, 40


def _per_second(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:,.0f} {unit}/s" if value >= 100 else f"{value:.1f} {unit}/s"


def _cells(update: Update) -> dict[str, str]:
    """The text of each column of the first line but the bar."""
    download = isinstance(update, DownloadProgress)
    unit = "files" if download else "URLs"
    fraction = update.done / update.total if update.total else 1.0
    cells = {
        "name": "download" if download else "check",
        "percent": f"{min(1.0, fraction):.0%}",
        "done": f"{update.done:,}/{update.total:,} {unit}",
        "elapsed": clock(update.elapsed),
        "eta": "done"
        if update.final
        else f"ETA {'-:--' if update.eta is None else clock(update.eta)}",
    }
    if isinstance(update, DownloadProgress):
        cells["speed"] = _per_second(update.files_per_second, "files")
        cells["bytes"] = f"{update.bytes / _MIB:,.1f} MiB"
        cells["rate"] = _per_second(
            None if update.bytes_per_second is None else update.bytes_per_second / _MIB, "MiB"
        )
    else:
        cells["speed"] = _per_second(update.urls_per_second, "URLs")
    return cells


def _hosts(update: Update) -> list[str]:
    parts = [
        f"{update.hosts_active:,} active",
        f"{update.hosts_waiting:,} backing off",
        f"{update.hosts_down:,} down",
    ]
    if isinstance(update, DownloadProgress):
        if update.mismatches:
            parts.append(f"{update.mismatches:,} checksum mismatches")
    else:
        parts.append(f"{update.requests:,} requests")
    return [*parts, f"{update.in_flight:,} in flight"]


def _results(outcomes: Mapping[str, int]) -> list[str]:
    """The results so far by kind, the most frequent first."""
    kinds = sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))
    return [f"{kind} {count:,}" for kind, count in kinds]


def _fit(label: str, parts: list[str], width: int, sep: str = "  ") -> str:
    """``label`` and as many of ``parts`` as fit in ``width``, then how many were left out."""
    line = f"{label:<{_LABEL}}"
    for index, part in enumerate(parts):
        more = len(parts) - index - 1
        tail = f"{sep}+{more} more" if more else ""
        candidate = line + (sep if index else "") + part
        if len(candidate + tail) > width:
            left = len(parts) - index
            return line + (f"{sep}+{left} more" if len(line) + len(sep) + 8 <= width else "")
        line = candidate
    return line


def render_crawl(update: Update, width: int) -> RenderableType:
    """The terminal display of ``update`` fitted to ``width`` columns: the bar line, the
    hosts, the results so far."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    cells = _cells(update)
    cells["name"] = f"{cells['name']:<{_LABEL - 1}}"
    chosen, bar_width = fit_columns(
        [cells], width, always=("name", "eta"), optional=_OPTIONAL, bar=(BAR_MIN, BAR_MAX)
    )
    table = Table.grid(padding=(0, 1))
    row: list[RenderableType] = []
    for name in _ORDER:
        if name == "bar":
            table.add_column(width=bar_width, no_wrap=True)
            completed = update.done / update.total if update.total else 1.0
            row.append(ProgressBar(total=1.0, completed=min(1.0, completed), width=bar_width))
        elif name in chosen:
            justify: Literal["left", "right"] = "right" if name in _RIGHT else "left"
            table.add_column(width=chosen[name], no_wrap=True, justify=justify)
            row.append(Text(cells[name], style="bold" if name == "name" else ""))
    table.add_row(*row)
    lines: list[RenderableType] = [table, Text(_fit("hosts", _hosts(update), width))]
    if update.outcomes:
        lines.append(Text(_fit("results", _results(update.outcomes), width)))
    return Group(*lines)


def plain_line(update: Update) -> str:
    """One line of text for a log: everything the terminal shows but the bar."""
    cells = _cells(update)
    head = [cells[name] for name in _ORDER if cells.get(name) and name not in ("name", "eta")]
    if not update.final:
        head.append(cells["eta"])
    text = f"{cells['name']}: " + ", ".join(head) + "; hosts: " + ", ".join(_hosts(update))
    if update.outcomes:
        text += "; results: " + ", ".join(_results(update.outcomes))
    return text


class CrawlDisplay:
    """The progress callback of the command line: a live display on a terminal (``tty``),
    a plain line at most every 10 s elsewhere (and the last one), nothing when ``off``."""

    def __init__(
        self,
        stream: TextIO,
        mode: Mode | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.mode: Mode = mode or progress_mode(stream)
        self.clock = clock
        self._printed_at = clock()
        self._live: LiveView | None = None

    def __call__(self, update: Update) -> None:
        if self.mode == "tty":
            if self._live is None:
                self._live = LiveView(self.stream)
            self._live.show(render_crawl(update, self._live.width))
            if update.final:
                self.close()
        elif self.mode == "plain":
            now = self.clock()
            if update.final or now - self._printed_at >= PLAIN_INTERVAL:
                self._printed_at = now
                self.stream.write(f"[{clock(update.elapsed):>7}] {plain_line(update)}\n")
                self.stream.flush()

    def close(self) -> None:
        """Leave the last display on the terminal (a run that ended without a final update
        included)."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()
