"""``run_checks``: open the database, resume or start a run, check its URLs, record the end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from .config import CheckConfig, CheckProgress, CheckProgressCallback, CheckSummary
from .lock import CheckLock
from .probe import Prober
from .scheduler import Scheduler
from .source import walk_api
from .store import CheckStore

__all__ = ["run_checks"]

logger = logging.getLogger("aioudata.crawl")

#: Seconds of recent progress a speed (and the ETA) is measured over.
_WINDOW = 30.0


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
    now: Callable[[], datetime] = config.now or (lambda: datetime.now(UTC))
    began = time.monotonic()
    with CheckLock(config.db):
        store = await CheckStore(config.db, config, now).open()
        try:
            source: Literal["mirror", "api"] = "mirror" if store.has_mirror() else "api"
            run_id, resumed, ready = await store.open_run(source)
            if resumed:
                logger.info("resuming check run %d", run_id)
            if not ready:
                if source == "api":
                    await walk_api(config, store)
                await store.build_frontier(source)
            hosts = store.frontier_hosts()
            summary = CheckSummary(
                database=str(config.db),
                source=source,
                run_id=run_id,
                resumed=resumed,
                total=sum(hosts.values()),
            )
            async with Prober(config) as prober:
                scheduler = Scheduler(config, store, prober, hosts, store.blocked_hosts())
                reporter = _Reporter(scheduler, progress, began)
                watcher = asyncio.ensure_future(reporter.loop(interval)) if progress else None
                status = "failed"
                try:
                    await scheduler.run()
                    status = "ok"
                except asyncio.CancelledError:
                    status = "interrupted"
                    raise
                finally:
                    if watcher is not None:
                        watcher.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await watcher
                    summary.status = status  # type: ignore[assignment]
                    summary.checked = scheduler.done
                    summary.requests = scheduler.requests
                    summary.changed = scheduler.changed
                    summary.outcomes = dict(scheduler.kinds)
                    summary.hosts = sum(1 for host in scheduler.hosts.values() if host.name)
                    summary.hosts_down = sorted(scheduler.hosts_down)
                    summary.hosts_throttled = sorted(scheduler.hosts_throttled)
                    summary.elapsed = time.monotonic() - began
                    await store.finish_run(status, summary.to_dict())
                    reporter.report(final=True)
        finally:
            await store.close()
    return summary


class _Reporter:
    """Samples the scheduler into :class:`CheckProgress` updates for a callback."""

    def __init__(
        self, scheduler: Scheduler, callback: CheckProgressCallback | None, began: float
    ) -> None:
        self.scheduler = scheduler
        self.callback = callback
        self.began = began
        self.samples: deque[tuple[float, int]] = deque()

    async def loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.report()

    def report(self, final: bool = False) -> None:
        if self.callback is None:
            return
        scheduler = self.scheduler
        now = time.monotonic()
        self.samples.append((now, scheduler.done))
        while len(self.samples) > 2 and self.samples[0][0] < now - _WINDOW:
            self.samples.popleft()
        (first, start), (last, end) = self.samples[0], self.samples[-1]
        speed = (end - start) / (last - first) if last - first >= 1.0 and end > start else None
        left = max(0, scheduler.total - scheduler.done)
        update = CheckProgress(
            total=scheduler.total,
            done=scheduler.done,
            requests=scheduler.requests,
            in_flight=scheduler.in_flight,
            hosts=len(scheduler.hosts),
            hosts_active=scheduler.hosts_active(),
            hosts_waiting=scheduler.hosts_waiting(),
            hosts_down=len(scheduler.hosts_down),
            elapsed=now - self.began,
            urls_per_second=speed,
            eta=left / speed if speed else (0.0 if final else None),
            final=final,
        )
        try:
            self.callback(update)
        except Exception:  # a display must never end the run
            logger.exception("progress callback failed; not called again")
            self.callback = None
