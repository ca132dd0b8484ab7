"""What a download run is asked to do, what it did, and how it is going."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from .._display import clock
from .config import CheckConfig, CheckError, host_lines

__all__ = [
    "EXIT_NO_SPACE",
    "DiskSpaceError",
    "DownloadConfig",
    "DownloadProgress",
    "DownloadProgressCallback",
    "DownloadSummary",
]

#: The command line's exit status when a run stopped because the disk is nearly full; not 6,
#: which says the PostgreSQL database cannot be used (as for ``aioudata mirror``).
EXIT_NO_SPACE = 7
_MIB = 1024 * 1024


class DiskSpaceError(CheckError):
    """Free space on the download directory's disk fell under ``min_free``: the run stops
    (what was written is kept for the next run to resume)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=EXIT_NO_SPACE)


@dataclass(frozen=True, slots=True, repr=False)
class DownloadConfig(CheckConfig):
    """Options of one download run: every option of :class:`CheckConfig` (the database, the
    selection, the politeness, the back-off and breaker) and these.

    Files go under ``dir`` (see docs/schema.md, "Downloaded files"). ``max_size`` (bytes):
    larger files are not downloaded (recorded ``too_large``), also when the server does not
    say the size and the stream passes it. ``min_free`` (bytes): the run stops (exit status
    7) when the disk holding ``dir`` has less free space, measured before the first file,
    then after every 8 ``chunk_size`` written (0: never measured). ``attempts``: tries of a
    file whose transfer is cut, each resuming where the last stopped. ``timeout`` is the
    longest wait for a byte (not for a whole file). ``all``: download again even what is
    known unchanged. ``free_space`` measures the free bytes of a directory (``os.statvfs``
    when None; tests pass their own).
    """

    dir: Path = Path("udata-files")
    max_size: int | None = None
    min_free: int = 1024 * _MIB
    chunk_size: int = 256 * 1024
    attempts: int = 3
    free_space: Callable[[Path], int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        CheckConfig.__post_init__(self)
        if self.max_size is not None and self.max_size < 0:
            raise CheckError("--max-size must be 0 or more", code=2)
        if self.min_free < 0:
            raise CheckError("--min-free must be 0 or more", code=2)
        if self.chunk_size < 1 or self.attempts < 1:
            raise CheckError("chunk_size and attempts must be at least 1", code=2)
        object.__setattr__(self, "dir", Path(self.dir))

    def __repr__(self) -> str:
        return "DownloadConfig" + CheckConfig.__repr__(self).removeprefix("CheckConfig")

    def options(self) -> dict[str, Any]:
        """What selects the run's files: a run resumes only with the same ones."""
        return {**CheckConfig.options(self), "dir": str(self.dir.absolute())}


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Where a download run is, given to progress callbacks about once a second.

    ``total`` files to fetch (a resumed run: what was left), ``done`` recorded so far, of
    which ``files`` downloaded whole and verified; ``bytes`` received; ``mismatches`` files
    whose checksum was not the published one. ``bytes_per_second``, ``files_per_second``
    (files recorded, whatever their result) and ``eta`` (smoothed) over the last 30 s (None
    until known). ``outcomes`` counts the files so far by result, as
    :attr:`DownloadSummary.outcomes` does.
    """

    total: int
    done: int
    files: int
    bytes: int
    mismatches: int
    in_flight: int
    hosts: int
    hosts_active: int
    hosts_waiting: int
    hosts_down: int
    elapsed: float
    bytes_per_second: float | None
    eta: float | None
    final: bool = False
    files_per_second: float | None = None
    outcomes: Mapping[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One line for a log or a terminal."""
        speed = f"{self.bytes_per_second / _MIB:.1f} MiB/s" if self.bytes_per_second else "-"
        eta = f" ETA {clock(self.eta)}" if self.eta is not None else ""
        return (
            f"downloaded {self.done:,}/{self.total:,}  {self.bytes / _MIB:,.1f} MiB  {speed}"
            f"  {self.mismatches:,} mismatched  hosts: {self.hosts_active} active,"
            f" {self.hosts_waiting} backing off, {self.hosts_down} down"
            f"  {clock(self.elapsed)}{eta}"
        )


class DownloadProgressCallback(Protocol):
    """What ``run_downloads(progress=...)`` accepts: called in the event loop, must be quick."""

    def __call__(self, update: DownloadProgress, /) -> object: ...


def _size(count: int) -> str:
    """A byte count in MiB, GiB or TiB."""
    for unit, scale in (("TiB", _MIB << 20), ("GiB", _MIB << 10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count / _MIB:,.1f} MiB"


@dataclass(slots=True)
class DownloadSummary:
    """What a download run did.

    ``outcomes`` counts this run's files by result: ``downloaded`` (complete and verified),
    ``not_modified`` (a 304: the file on disk is current), ``mismatch``, ``too_large``,
    ``incomplete`` (cut ``attempts`` times: the part is kept), or why nothing was written
    (``4xx``, ``5xx``, an error class: ``timeout``, ``host_down``...); ``skipped`` files were not
    requested at all (their published checksum is the one of the file already there).
    ``resumed`` files continued a partial file with ``Range``, ``refetched`` started again
    from zero (the server ignored the range, or the file changed). ``status`` is
    ``no_space`` when the run stopped for the disk (``stopped`` says why; run it again once
    there is room: it resumes).
    """

    database: str
    dir: str
    source: Literal["mirror", "api"]
    run_id: int
    resumed_run: bool = False
    status: Literal["ok", "interrupted", "failed", "no_space"] = "ok"
    stopped: str | None = None
    total: int = 0
    skipped: int = 0
    done: int = 0
    requests: int = 0
    bytes: int = 0
    resumed: int = 0
    refetched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    hosts: int = 0
    hosts_down: list[str] = field(default_factory=list)
    hosts_throttled: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def mismatches(self) -> int:
        """Files whose checksum was not the published one."""
        return self.outcomes.get("mismatch", 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)

    def lines(self) -> list[str]:
        """A human summary."""
        head = "resumed download" if self.resumed_run else "download"
        out = [
            f"{head} of {self.total:,} files from {self.database} ({self.source}) into"
            f" {self.dir}: {self.status}",
            f"  {self.done:,} done with {self.requests:,} requests on {self.hosts:,} hosts in"
            f" {clock(self.elapsed)}",
            f"  {_size(self.bytes)} written, {self.resumed:,} resumed, {self.refetched:,} fetched"
            " again",
            f"  {self.skipped:,} skipped (checksum unchanged)",
        ]
        if self.outcomes:
            kinds = sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))
            out.append("  " + ", ".join(f"{kind} {count:,}" for kind, count in kinds))
        if self.mismatches:
            out.append(f"  {self.mismatches:,} checksum mismatches (download_results.result)")
        out += host_lines(self.hosts_down, self.hosts_throttled)
        if self.stopped:
            out.append(f"  stopped: {self.stopped}")
        return out
