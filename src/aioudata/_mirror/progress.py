"""Progress of a mirror run: the counters the job updates, the updates an application gets, and
the displays on stderr.

The job updates one :class:`EntityProgress` per entity in place. :class:`Progress` samples them
on a timer into a :class:`ProgressUpdate` (speeds and a smoothed ETA computed there) and hands it
to its display and to the application's callbacks: rich progress bars on a terminal, one plain
line per entity that changed (at most every 10 s) elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

from .._display import (
    PLAIN_INTERVAL,
    Eta,
    LiveView,
    Mode,
    Speed,
    clock,
    duration,
    fit_columns,
    progress_mode,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = [
    "EntityProgress",
    "EntityStatus",
    "Progress",
    "ProgressCallback",
    "ProgressUpdate",
    "as_progress",
    "progress_mode",
    "render_bars",
]

logger = logging.getLogger("aioudata.mirror")

#: Phases after which an entity has nothing left to do.
FINAL_PHASES = frozenset({"done", "partial", "skipped"})


@dataclass(slots=True)
class EntityProgress:
    """Live counters of one entity, updated in place by the job."""

    name: str
    #: waiting, full pass, changes pass, verifying, deletions, then done, partial or skipped.
    phase: str = "waiting"
    #: Pages of the entity's passes done (a resumed pass counts from its checkpoint).
    pages: int = 0
    #: Pages done plus those the current pass has left (None until its first page).
    pages_total: int | None = None
    #: Pages done by an earlier run, before its checkpoint: not counted in speeds.
    resumed: int = 0
    items: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    #: Records quarantined (the ``errors`` table).
    errors: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None


@dataclass(frozen=True, slots=True)
class EntityStatus:
    """Where one entity of a mirror run is, as of one :class:`ProgressUpdate`.

    ``pages`` counts the pages of the entity's passes (a verification round after a full pass
    adds its pages to ``pages_total``, which is None while unknown, and during a changes pass:
    that pass stops where the previous run was, its length is not known ahead). After a
    resume, ``pages`` starts at the checkpoint and ``resumed`` says how many of them an earlier
    run did. ``items_per_second`` (of the current phase) and ``eta`` (seconds) are measured
    over the last 30 s of this run's progress; None until known.
    """

    name: str
    phase: str
    pages: int
    pages_total: int | None
    resumed: int
    items: int
    new: int
    updated: int
    deleted: int
    #: Records quarantined (stored in the ``errors`` table).
    errors: int
    retries: int
    elapsed: float
    items_per_second: float | None
    eta: float | None

    @property
    def waiting(self) -> bool:
        """Not started yet."""
        return self.phase == "waiting"

    @property
    def finished(self) -> bool:
        """Done, partial or skipped: nothing left to do."""
        return self.phase in FINAL_PHASES

    @property
    def fraction(self) -> float | None:
        """Share of the pages done (0 to 1), None when their number is unknown."""
        if self.pages_total is None:
            return 1.0 if self.finished and self.phase != "skipped" else None
        return min(1.0, self.pages / self.pages_total) if self.pages_total else 1.0


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """The state of a mirror run, given to progress callbacks about once a second.

    ``notes`` are the events since the previous update ("datasets: resumed full pass at page
    16", "datasets: verification round 1"...). The last update of a run has ``final`` set.
    """

    entities: tuple[EntityStatus, ...]
    requests: int
    retries: int
    elapsed: float
    notes: tuple[str, ...] = ()
    final: bool = False

    def entity(self, name: str) -> EntityStatus:
        """The status of entity ``name`` (KeyError when the run has no such entity)."""
        for status in self.entities:
            if status.name == name:
                return status
        raise KeyError(name)


class ProgressCallback(Protocol):
    """What ``run_mirror(progress=...)`` accepts to drive an application's own display.

    Called in the event loop with each :class:`ProgressUpdate` (about once a second, and once
    more at the end with ``final`` set): it must return quickly. An exception it raises is
    logged on ``aioudata.mirror`` and the callback is not called again; the run goes on.
    """

    def __call__(self, update: ProgressUpdate, /) -> object: ...


@dataclass(slots=True)
class _Tracker:
    """The speeds and the ETA of one entity's current phase."""

    phase: str
    pages: Speed = field(default_factory=Speed)
    items: Speed = field(default_factory=Speed)
    eta: Eta = field(default_factory=Eta)


class Progress:
    """Turns the job's :class:`EntityProgress` counters into updates while a run goes on, and
    shows them: bars on a terminal (``tty``), plain lines (``plain``), or only to ``callback``.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        mode: Mode | None = None,
        *,
        interval: float | None = None,
        totals: Callable[[], tuple[int, int]] | None = None,
        callback: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.mode: Mode = mode or progress_mode(self.stream)
        #: Seconds between two samples (and redraws).
        self.interval = interval or (0.25 if self.mode == "tty" else 1.0)
        #: The run's (requests, retries) so far.
        self.totals = totals
        self.callbacks: list[ProgressCallback] = [callback] if callback is not None else []
        self.entities: dict[str, EntityProgress] = {}
        self.clock = clock
        self._started = clock()
        self._trackers: dict[str, _Tracker] = {}
        self._notes: list[str] = []
        self._printed: dict[str, tuple[object, ...]] = {}
        self._printed_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._live: LiveView | None = None

    def entity(self, name: str) -> EntityProgress:
        """The counters of ``name`` (created on first use)."""
        if name not in self.entities:
            self.entities[name] = EntityProgress(name, started=self.clock())
        return self.entities[name]

    @property
    def active(self) -> bool:
        """Something shows or receives the updates."""
        return self.mode != "off" or bool(self.callbacks)

    def start(self) -> None:
        """Start sampling and showing in the background (nothing when no one watches)."""
        if not self.active or self._task is not None:
            return
        if self.mode == "tty":
            self._live = LiveView(self.stream)
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Stop, after a last update (``final``) shown and given to the callbacks."""
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            self.refresh(final=True)
        finally:
            if self._live is not None:
                self._live.stop()

    def note(self, message: str) -> None:
        """An event (a pass starts, an entity ends): a plain line now, and in the next update."""
        if not self.active:
            return
        self._notes.append(message)
        if self.mode == "plain":
            self._write([f"{self._stamp()} {message}"])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.refresh()

    def snapshot(self, *, final: bool = False) -> ProgressUpdate:
        """The current state (speeds sampled now); takes the notes collected since the last."""
        now = self.clock()
        statuses = tuple(self._status(live, now) for live in self.entities.values())
        requests, retries = self.totals() if self.totals is not None else (0, 0)
        if self.totals is None:
            retries = sum(status.retries for status in statuses)
        notes, self._notes = tuple(self._notes), []
        return ProgressUpdate(statuses, requests, retries, now - self._started, notes, final)

    def _status(self, live: EntityProgress, now: float) -> EntityStatus:
        tracker = self._trackers.get(live.name)
        if tracker is None or tracker.phase != live.phase:
            tracker = self._trackers[live.name] = _Tracker(live.phase)
        tracker.pages.sample(now, live.pages - live.resumed)
        tracker.items.sample(now, live.items)
        finished = live.finished is not None or live.phase in FINAL_PHASES
        elapsed = (live.finished if live.finished is not None else now) - live.started
        total = None if live.phase == "changes pass" else live.pages_total
        eta: float | None = None
        pages_rate = tracker.pages.rate()
        if finished:
            eta = 0.0
        elif total is not None and pages_rate:
            eta = tracker.eta.smooth(now, max(0, total - live.pages) / pages_rate)
        else:
            tracker.eta.smooth(now, None)
        return EntityStatus(
            name=live.name,
            phase=live.phase,
            pages=live.pages,
            pages_total=total,
            resumed=live.resumed,
            items=live.items,
            new=live.new,
            updated=live.updated,
            deleted=live.deleted,
            errors=live.errors,
            retries=live.retries,
            elapsed=max(0.0, elapsed),
            items_per_second=None if finished else tracker.items.rate(),
            eta=eta,
        )

    def refresh(self, *, final: bool = False) -> ProgressUpdate:
        """Sample the counters, show the update and give it to the callbacks."""
        update = self.snapshot(final=final)
        if self.mode == "tty" and self._live is not None:
            self._live.show(render_bars(update, self._live.width))
        elif self.mode == "plain":
            self._print_changed(update, final)
        for callback in list(self.callbacks):
            try:
                callback(update)
            except Exception:
                logger.exception("progress callback %r failed: not called again", callback)
                self.callbacks.remove(callback)
        return update

    def _print_changed(self, update: ProgressUpdate, final: bool) -> None:
        """One line per entity that changed since its last line, at most every 10 s."""
        now = self.clock()
        if self._printed_at is None:
            self._printed_at = self._started
        if not final and now - self._printed_at < PLAIN_INTERVAL:
            return
        self._printed_at = now
        lines = []
        for status in update.entities:
            key = _plain_key(status)
            if self._printed.get(status.name) != key:
                self._printed[status.name] = key
                lines.append(f"{self._stamp()} {plain_line(status)}")
        self._write(lines)

    def _stamp(self) -> str:
        return f"[{duration(self.clock() - self._started):>6}]"

    def _write(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.stream.write(line + "\n")
        self.stream.flush()


def as_progress(progress: Progress | ProgressCallback | None) -> Progress:
    """What ``run_mirror(progress=...)`` was given, as a :class:`Progress`."""
    if progress is None:
        return Progress(mode="off")
    if isinstance(progress, Progress):
        return progress
    if not callable(progress):
        raise TypeError(f"progress must be a Progress or a callable, not {progress!r}")
    return Progress(mode="callback", callback=progress)


# Plain lines.


def _plain_key(status: EntityStatus) -> tuple[object, ...]:
    """What a plain line shows, less the times and speeds: unchanged, no new line."""
    return (
        status.phase,
        status.pages,
        status.pages_total,
        status.items,
        status.new,
        status.updated,
        status.deleted,
        status.errors,
        status.retries,
    )


def plain_line(status: EntityStatus) -> str:
    """One line of text for an entity: what changed, how fast, how long left."""
    if status.waiting or status.phase == "skipped":
        return f"{status.name}: {status.phase}"
    parts = [_pages(status)]
    if status.fraction is not None:
        parts[0] += f" ({status.fraction:.0%})"
    parts.append(f"{status.items:,} items")
    if status.items_per_second is not None:
        parts.append(f"{status.items_per_second:,.1f} items/s")
    parts.append(f"{status.new:,} new, {status.updated:,} updated, {status.deleted:,} deleted")
    parts.append(f"{status.retries:,} retries, {status.errors:,} quarantined")
    if status.finished:
        parts.append(f"in {duration(status.elapsed)}")
    else:
        eta = "?" if status.eta is None else duration(status.eta)
        parts.append(f"elapsed {duration(status.elapsed)}, ETA {eta}")
    return f"{status.name}: {status.phase}, " + ", ".join(parts)


def _pages(status: EntityStatus) -> str:
    if status.pages_total is None:
        return f"{status.pages:,} pages"
    return f"{status.pages:,}/{status.pages_total:,} pages"


# Bars on a terminal.

#: Optional columns, the most useful first: a narrow terminal drops them from the end.
_OPTIONAL: tuple[str, ...] = ("percent", "pages", "speed", "elapsed", "phase", "items")
_OPTIONAL += ("changes", "retries", "errors")
#: Left-to-right order of the columns.
_ORDER: tuple[str, ...] = ("name", "phase", "bar", "percent", "pages", "items", "speed")
_ORDER += ("changes", "retries", "errors", "elapsed", "eta")
_RIGHT = frozenset({"percent", "pages", "items", "speed", "retries", "errors", "elapsed"})
BAR_MIN, BAR_MAX = 10, 40


#: Phases as the bars name them (the column is narrow).
_SHORT_PHASES = {"changes pass": "changes"}


def _speed(per_second: float) -> str:
    return f"{per_second:,.0f} items/s" if per_second >= 100 else f"{per_second:.1f} items/s"


def _cells(status: EntityStatus) -> dict[str, str]:
    """The text of each column but the bar for one entity (none: nothing to show there)."""
    if status.waiting or status.phase == "skipped":
        return {"name": status.name, "eta": status.phase}
    fraction = status.fraction
    speed = status.items_per_second
    cells = {
        "name": status.name,
        "phase": "" if status.finished else _SHORT_PHASES.get(status.phase, status.phase),
        "percent": "" if fraction is None else f"{fraction:.0%}",
        "pages": _pages(status),
        "items": f"{status.items:,} items",
        "speed": "" if speed is None else _speed(speed),
        "changes": f"{status.new:,} new {status.updated:,} updated {status.deleted:,} deleted",
        # Columns that would say 0 take no room.
        "retries": f"{status.retries:,} retries" if status.retries else "",
        "errors": f"{status.errors:,} quarantined" if status.errors else "",
        "elapsed": clock(status.elapsed),
    }
    if status.finished:
        cells["eta"] = status.phase
    else:
        cells["eta"] = "ETA " + ("-:--" if status.eta is None else clock(status.eta))
    return cells


def _columns(rows: list[dict[str, str]], width: int) -> tuple[dict[str, int], int]:
    """The columns that fit in ``width`` (with their widths) and the bar's width: the name,
    the bar and the ETA always, then the optional columns in order of usefulness."""
    return fit_columns(
        rows, width, always=("name", "eta"), optional=_OPTIONAL, bar=(BAR_MIN, BAR_MAX)
    )


def render_bars(update: ProgressUpdate, width: int) -> RenderableType:
    """The terminal display of ``update`` fitted to ``width`` columns: a bar per entity, then
    the run's totals."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    rows = [_cells(status) for status in update.entities]
    chosen, bar_width = _columns(rows, width)
    table = Table.grid(padding=(0, 1))
    for name in _ORDER:
        if name == "bar":
            table.add_column(width=bar_width, no_wrap=True)
        elif name in chosen:
            justify: Literal["left", "right"] = "right" if name in _RIGHT else "left"
            table.add_column(width=chosen[name], no_wrap=True, justify=justify)
    for status, cells in zip(update.entities, rows, strict=True):
        fraction = status.fraction
        # A pass of unknown length pulses; a waiting or skipped entity has an empty bar.
        running = not (status.waiting or status.finished)
        bar = ProgressBar(
            total=None if fraction is None and running else 1.0,
            completed=fraction or 0.0,
            width=bar_width,
        )
        row: list[RenderableType] = []
        for name in _ORDER:
            if name == "bar":
                row.append(bar)
            elif name in chosen:
                style = "bold" if name == "name" else "dim" if status.waiting else ""
                row.append(Text(cells.get(name, ""), style=style))
        table.add_row(*row)
    totals = f"{update.requests:,} requests, {update.retries:,} retries, {clock(update.elapsed)}"
    footer = Text(f"{'total':<{chosen['name']}} {totals}", no_wrap=True, overflow="ellipsis")
    return Group(table, footer)
