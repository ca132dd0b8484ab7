"""What the progress displays of the mirror and of the resource crawler share: where they
show (terminal or plain lines), speeds over a window, a smoothed ETA, times as text, columns
fitted to a terminal's width, and the rich live display on a terminal.
"""

from __future__ import annotations

import math
import os
import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = [
    "ETA_SMOOTHING",
    "PLAIN_INTERVAL",
    "SPEED_MIN_SPAN",
    "SPEED_WINDOW",
    "Eta",
    "LiveView",
    "Mode",
    "Speed",
    "clock",
    "duration",
    "fit_columns",
    "progress_mode",
]

#: ``tty``: bars on a terminal; ``plain``: lines; ``callback``: no display, callbacks only.
Mode = Literal["tty", "plain", "callback", "off"]

#: Seconds between two plain lines (not a terminal, or CI).
PLAIN_INTERVAL = 10.0
#: Seconds of recent progress a speed (and so an ETA) is measured over.
SPEED_WINDOW = 30.0
#: A speed needs this many seconds of progress before an ETA is given.
SPEED_MIN_SPAN = 1.0
#: Seconds over which a new estimate moves the ETA shown (which counts down in between).
ETA_SMOOTHING = 5.0


def progress_mode(stream: TextIO, quiet: bool = False) -> Mode:
    """``off`` when quiet, ``plain`` when not a terminal or under CI, else ``tty``."""
    if quiet:
        return "off"
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return "plain"
    isatty = getattr(stream, "isatty", None)
    return "tty" if isatty is not None and isatty() else "plain"


def duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``2h05m``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{rest // 60}:{rest % 60:02d}"


class Speed:
    """Units per second over the last :data:`SPEED_WINDOW` seconds of samples.

    Counting starts at the first unit seen, so the time before it (connecting, the first
    page's latency) does not make the speed look slower than it is; a count going down (a new
    pass) starts over.
    """

    __slots__ = ("_samples", "_start")

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()
        self._start: float | None = None

    def sample(self, now: float, count: float) -> None:
        last = self._samples[-1][1] if self._samples else self._start
        if last is None or count < last:
            self._start, self._samples = count, deque()
            return
        if not self._samples and count == self._start:
            return
        self._samples.append((now, count))
        while len(self._samples) > 2 and self._samples[1][0] <= now - SPEED_WINDOW:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Units per second, None before :data:`SPEED_MIN_SPAN` seconds of progress."""
        if len(self._samples) < 2:
            return None
        (first, start), (last, end) = self._samples[0], self._samples[-1]
        if last - first < SPEED_MIN_SPAN:
            return None
        return (end - start) / (last - first)


class Eta:
    """The ETA shown: it counts down, and each new estimate pulls it a little (work arriving
    in bursts, as it does with several requests in flight, does not make it jump)."""

    __slots__ = ("at", "eta")

    def __init__(self) -> None:
        self.eta: float | None = None
        self.at = 0.0

    def smooth(self, now: float, estimate: float | None) -> float | None:
        """The ETA to show at ``now`` given a new ``estimate`` (None: unknown)."""
        if estimate is None or self.eta is None:
            self.eta = estimate
        else:
            elapsed = max(0.0, now - self.at)
            expected = max(0.0, self.eta - elapsed)
            pull = 1 - math.exp(-elapsed / ETA_SMOOTHING)
            self.eta = expected + pull * (estimate - expected)
        self.at = now
        return self.eta


def fit_columns(
    rows: Iterable[Mapping[str, str]],
    width: int,
    *,
    always: Sequence[str],
    optional: Sequence[str],
    bar: tuple[int, int],
) -> tuple[dict[str, int], int]:
    """The columns of ``rows`` that fit in ``width`` (with their widths) and the bar's width
    (between ``bar[0]`` and ``bar[1]``, 4 at the least).

    The ``always`` columns and the bar always show; then the ``optional`` ones, most useful
    first, as long as they fit (one space between columns; an empty column takes no room).
    """
    rows = list(rows)
    names = (*always, *optional)
    widths = {name: max((len(row.get(name, "")) for row in rows), default=0) for name in names}
    chosen = {name: widths[name] for name in always}
    used = sum(chosen.values()) + len(chosen) + bar[0]
    for name in optional:
        if not widths[name]:
            continue
        if used + widths[name] + 1 > width:
            break
        chosen[name] = widths[name]
        used += widths[name] + 1
    return chosen, max(4, min(bar[1], bar[0] + width - used))


class LiveView:
    """A rich live display on ``stream`` (a terminal): what :meth:`show` is given replaces
    what was drawn; the last one drawn stays on the screen after :meth:`stop`."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console: Console = Console(file=stream, force_terminal=True, highlight=False)
        # stderr written while the display shows (logs of --verbose) scrolls above it.
        self._live: Live | None = Live(
            console=self.console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=stream is sys.stderr,
        )
        self._live.start()

    @property
    def width(self) -> int:
        """The terminal's width now."""
        return self.console.width

    def show(self, renderable: RenderableType) -> None:
        if self._live is not None:
            self._live.update(renderable, refresh=True)

    def stop(self) -> None:
        """Leave the last display on the screen (once)."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()
