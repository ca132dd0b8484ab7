"""``run_checks``: open the database, resume or start a run, check its URLs, record the end.

The parts a download run shares (:func:`opened`, :func:`drive`, :class:`Reporter`) are here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from .._display import Eta, Speed
from .._mirror.pgurl import DatabaseURL
from .._mirror.watch import watched
from .config import CheckConfig, CheckProgress, CheckProgressCallback, CheckSummary
from .download_config import DiskSpaceError
from .lock import run_lock
from .probe import Prober
from .scheduler import Scheduler
from .source import walk_api
from .store import CheckStore

__all__ = ["Opened", "Reporter", "drive", "opened", "run_checks", "tally"]

logger = logging.getLogger("aioudata.crawl")

S = TypeVar("S", bound=CheckStore)
P = TypeVar("P")


@dataclass(slots=True)
class Opened(Generic[S]):
    """A run's store, where its resources come from, and whether it resumes another."""

    store: S
    source: Literal["mirror", "api"]
    run_id: int
    resumed: bool
    hosts: dict[str, int]
    began: float


@contextlib.asynccontextmanager
async def opened(config: CheckConfig, store_type: type[S]) -> AsyncIterator[Opened[S]]:
    """The run lock, the store open, the run resumed or started with its frontier built.

    A PostgreSQL run lock lost mid-run (its connection dropped) ends the run: the work inside
    is cancelled and :class:`~aioudata.MirrorDatabaseError` raised (see :func:`watched`)."""
    now: Callable[[], datetime] = config.now or (lambda: datetime.now(UTC))
    began = time.monotonic()
    lock = run_lock(config.db)
    lock.acquire()
    try:
        async with watched(lock):
            store = await _store(config, store_type, now).open()
            try:
                source: Literal["mirror", "api"] = "mirror" if store.has_mirror() else "api"
                run_id, resumed, ready = await store.open_run(source)
                if resumed:
                    logger.info("resuming run %d", run_id)
                if not ready:
                    if source == "api":
                        await walk_api(config, store)
                    await store.build_frontier(source)
                yield Opened(store, source, run_id, resumed, store.frontier_hosts(), began)
            finally:
                await store.close()
    finally:
        lock.release()


def _store(config: CheckConfig, store_type: type[S], now: Callable[[], datetime]) -> S:
    """The store of ``store_type`` on the SQLite file or the PostgreSQL schema of ``config.db``."""
    if isinstance(config.db, DatabaseURL):
        from .pgstore import postgres_store  # psycopg is needed for PostgreSQL only

        return postgres_store(store_type)(config.db, config, now)  # type: ignore[arg-type]
    return store_type(config.db, config, now)


async def drive(
    scheduler: Scheduler,
    reporter: Reporter[Any] | None,
    interval: float,
    finish: Callable[[str, str | None], Awaitable[None]],
) -> None:
    """Run ``scheduler`` with progress reports; ``finish(status, why stopped)`` at its end,
    however it ends. A full disk ends it as ``no_space`` (not an error)."""
    watcher = asyncio.ensure_future(reporter.loop(interval)) if reporter else None
    status, stopped = "failed", None
    try:
        await scheduler.run()
        status = "ok"
    except DiskSpaceError as error:
        status, stopped = "no_space", str(error)
        logger.warning("%s", error)
    except asyncio.CancelledError:
        status = "interrupted"
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await finish(status, stopped)
        if reporter is not None:
            reporter.report(final=True)


def tally(summary: object, scheduler: Scheduler, began: float) -> None:
    """Set what every run's summary says of its scheduler: requests, outcomes by kind,
    hosts (down, throttled), time."""
    values = {
        "requests": scheduler.requests,
        "outcomes": dict(scheduler.kinds),
        "hosts": sum(1 for host in scheduler.hosts.values() if host.name),
        "hosts_down": sorted(scheduler.hosts_down),
        "hosts_throttled": sorted(scheduler.hosts_throttled),
        "elapsed": time.monotonic() - began,
    }
    for name, value in values.items():
        setattr(summary, name, value)


async def run_checks(
    config: CheckConfig | None = None,
    *,
    progress: CheckProgressCallback | None = None,
    interval: float = 1.0,
) -> CheckSummary:
    """Check the URLs of the resources due (every one with ``config.all``) and record the
    results in ``config.db``; what the run did.

    Resources come from the mirror in ``config.db``, or from the API when it holds none. A run
    stopped in any way (Ctrl-C, ``kill -9``) is resumed by the next one with the same
    selection: only what was not recorded is checked. ``progress`` is called about every
    ``interval`` seconds, and once more at the end (``final``).

    Raises:
        CheckError: the database is another application's, or another check run holds it.
    """
    config = config or CheckConfig()
    async with opened(config, CheckStore) as run, Prober(config) as prober:
        summary = CheckSummary(
            database=str(config.db),
            source=run.source,
            run_id=run.run_id,
            resumed=run.resumed,
            total=sum(run.hosts.values()),
        )
        scheduler = Scheduler(config, run.store, prober, run.hosts, run.store.blocked_hosts())

        async def finish(status: str, stopped: str | None) -> None:
            summary.status = status  # type: ignore[assignment]
            summary.checked = scheduler.done
            summary.changed = scheduler.changed
            tally(summary, scheduler, run.began)
            await run.store.finish_run(status, summary.to_dict())

        reporter = _CheckReporter(scheduler, progress, run.began) if progress else None
        await drive(scheduler, reporter, interval, finish)
    return summary


class Reporter(Generic[P]):
    """Samples a scheduler into progress updates for a callback (about once a second):
    speeds over the last 30 s, an ETA from the results' speed, smoothed."""

    def __init__(self, scheduler: Scheduler, callback: Callable[[P], object], began: float):
        self.scheduler = scheduler
        self.callback: Callable[[P], object] | None = callback
        self.began = began
        #: Results recorded per second; the ETA that follows from it.
        self.results = Speed()
        self.eta = Eta()

    async def loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.report()

    def build(self, now: float, rate: float | None, eta: float | None, final: bool) -> P:
        """The update (``rate``: results per second)."""
        raise NotImplementedError

    def report(self, final: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        scheduler = self.scheduler
        self.results.sample(now, scheduler.done)
        rate = self.results.rate()
        left = max(0, scheduler.total - scheduler.done)
        # The URLs left at the recent speed, but no sooner than the slowest host allows
        # (a long queue on one rate-limited host is the end of many runs).
        estimate = max(left / rate, scheduler.slowest_queue()) if rate else None
        eta = self.eta.smooth(now, estimate)
        update = self.build(now, rate, 0.0 if final else eta, final)
        try:
            self.callback(update)
        except Exception:  # a display must never end the run
            logger.exception("progress callback failed; not called again")
            self.callback = None

    def hosts(self) -> dict[str, Any]:
        """The host counts and the outcomes every progress update has."""
        scheduler = self.scheduler
        return {
            "hosts": len(scheduler.hosts),
            "hosts_active": scheduler.hosts_active(),
            "hosts_waiting": scheduler.hosts_waiting(),
            "hosts_down": len(scheduler.hosts_down),
            "outcomes": dict(scheduler.kinds),
        }


class _CheckReporter(Reporter[CheckProgress]):
    def build(
        self, now: float, rate: float | None, eta: float | None, final: bool
    ) -> CheckProgress:
        scheduler = self.scheduler
        return CheckProgress(
            total=scheduler.total,
            done=scheduler.done,
            requests=scheduler.requests,
            in_flight=scheduler.in_flight,
            elapsed=now - self.began,
            urls_per_second=rate,
            eta=eta,
            final=final,
            **self.hosts(),
        )
