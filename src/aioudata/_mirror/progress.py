"""Progress on stderr: one live line per entity on a terminal, plain periodic lines elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, TextIO

__all__ = ["EntityProgress", "Progress", "RetryAttribution", "progress_mode"]

Mode = Literal["tty", "plain", "off"]


def progress_mode(stream: TextIO, quiet: bool = False) -> Mode:
    """``off`` when quiet, ``plain`` when not a terminal or under CI, else ``tty``."""
    if quiet:
        return "off"
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return "plain"
    isatty = getattr(stream, "isatty", None)
    return "tty" if isatty is not None and isatty() else "plain"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclass(slots=True)
class EntityProgress:
    """Live counters of one entity, updated by the job and read by the renderer."""

    name: str
    phase: str = "waiting"
    pages: int = 0
    pages_total: int | None = None
    items: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    errors: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def elapsed(self) -> float:
        """Seconds since the entity started (until it finished)."""
        return (self.finished or time.monotonic()) - self.started

    def line(self) -> str:
        """One status line."""
        elapsed = max(self.elapsed(), 1e-6)
        total = f"/{self.pages_total}" if self.pages_total else ""
        text = (
            f"{self.name:<15} {self.phase:<13} page {self.pages}{total}"
            f"  {self.items} items ({self.items / elapsed:.1f}/s)"
            f"  +{self.new} ~{self.updated} -{self.deleted}"
            f"  retries {self.retries}  quarantined {self.errors}"
        )
        if self.finished is not None:
            return text + f"  done in {_duration(elapsed)}"
        if self.pages_total and self.pages and self.pages < self.pages_total:
            eta = elapsed / self.pages * (self.pages_total - self.pages)
            text += f"  ETA {_duration(eta)}"
        return text


class Progress:
    """Renders :class:`EntityProgress` lines on ``stream`` while a run goes on."""

    def __init__(
        self,
        stream: TextIO | None = None,
        mode: Mode | None = None,
        *,
        interval: float | None = None,
        totals: Callable[[], str] | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.mode: Mode = mode or progress_mode(self.stream)
        self.interval = interval or (0.5 if self.mode == "tty" else 10.0)
        self.totals = totals
        self.entities: dict[str, EntityProgress] = {}
        self._drawn = 0
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    def entity(self, name: str) -> EntityProgress:
        """The counters of ``name`` (created on first use)."""
        if name not in self.entities:
            self.entities[name] = EntityProgress(name)
        return self.entities[name]

    def start(self) -> None:
        """Start rendering in the background (nothing when off)."""
        if self.mode != "off" and self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Stop rendering, after a last refresh."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.render()

    def note(self, message: str) -> None:
        """A one-off line (phase changes in plain mode)."""
        if self.mode == "plain":
            self._write([f"[{_duration(time.monotonic() - self._started):>6}] {message}"])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.render()

    def render(self) -> None:
        """Draw the current lines."""
        if self.mode == "off" or not self.entities:
            return
        lines = [item.line() for item in self.entities.values()]
        if self.totals is not None:
            lines.append(self.totals())
        if self.mode == "tty":
            # Cut to the terminal's width: a wrapped line would break the redrawing.
            width = max(20, shutil.get_terminal_size().columns - 1)
            lines = [line[:width] for line in lines]
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self.stream.flush()
            self._drawn = len(lines)
        else:
            stamp = f"[{_duration(time.monotonic() - self._started):>6}]"
            self._write(f"{stamp} {line}" for line in lines)

    def _write(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.stream.write(line + "\n")
        self.stream.flush()


class RetryAttribution(logging.Handler):
    """Counts the client's "retrying" log records per entity, by the path of their URL."""

    def __init__(self, paths: dict[str, str], progress: Progress) -> None:
        super().__init__(level=logging.INFO)
        self.paths = paths
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        """Attribute one retry."""
        if not str(record.msg).startswith("retrying") or not isinstance(record.args, tuple):
            return
        url = str(record.args[1]) if len(record.args) > 1 else ""
        for name, path in self.paths.items():
            if path in url:
                self.progress.entity(name).retries += 1
                return
