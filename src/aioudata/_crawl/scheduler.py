"""The crawl scheduler: a queue per host, picked among the hosts that may start a request now.

Every host has its own queue and its own limits (requests in flight, requests per second), and
the run has a global limit of requests in flight. The scheduler keeps the hosts in a heap by
the time each may start its next request; it starts requests from the hosts whose time has
come while global slots are free, and sleeps until the earliest next time or a completion. A
slow, throttling or dead host only delays its own queue: there is no head-of-line blocking.

Each redirect hop is queued at the host it leads to, under that host's limits. A 429/503 backs
the host off (``Retry-After``), failures in a row open its circuit breaker; a host given up has
its remaining URLs recorded without a request. A result is committed before its global slot
is given to another URL (see :mod:`.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
from collections import Counter
from collections.abc import Coroutine
from typing import Any
from urllib.robotparser import RobotFileParser

from yarl import URL

from .._retry import parse_retry_after
from .config import CheckConfig, CheckError
from .hosts import HostState, Job
from .probe import ROBOTS_AGENT, Answer, Prober, route
from .results import Outcome, kind
from .store import CheckStore, Recorded
from .urls import classify, host_key

__all__ = ["Scheduler", "detail"]

logger = logging.getLogger("aioudata.crawl")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Failures that say something about the host rather than one file.
_HOST_FAILURES = frozenset({"timeout", "refused", "connection", "dns", "tls", "protocol"})
_GATEWAY_FAILURES = frozenset({502, 503, 504})
#: Seconds of a breaker's pause worth waiting for at the end of a run (see _only_paused).
_PATIENCE = 1.0


class Scheduler:
    """Checks every URL of the frontier (see the module's docstring)."""

    def __init__(
        self,
        config: CheckConfig,
        store: CheckStore,
        prober: Prober,
        hosts: dict[str, int],
        blocked: dict[str, float] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.prober = prober
        self.hosts: dict[str, HostState] = {}
        for name, count in hosts.items():
            self._host(name).remaining = count
        self.total = sum(hosts.values())
        #: Requests in flight plus results waiting for their commit (≤ concurrency).
        self.in_flight = 0
        self.requests = 0
        self.done = 0
        self.changed = 0
        self.kinds: Counter[str] = Counter()
        self.hosts_down: list[str] = []
        self.hosts_throttled: list[str] = []
        #: Results waiting for their commit without a slot, and how many may: 0 for checks
        #: (a kill -9 then redoes no more than the requests in flight).
        self.committing = 0
        self.commit_slack = 0
        #: Jobs taken from a queue and not recorded yet, by frontier row.
        self.under_way: dict[int, Job] = {}
        #: Hosts that may start a request at a later time, by that time; hosts that may start
        #: one now, longest remaining work first (so that the slowest queues never idle).
        self._later: list[tuple[float, int, HostState]] = []
        self._ready: list[tuple[float, int, HostState]] = []
        self._order = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        for name, seconds in (blocked or {}).items():
            state = self.hosts.get(name)
            if state is not None and state.remaining:
                state.down, state.blocked_for = "throttled", seconds
                state.why = f"asked (Retry-After) to be left alone {seconds:.0f} s more"
                self._give_up(state)
        for state in self.hosts.values():
            self._push(state)

    # --- hosts and their heap ---------------------------------------------------------------

    def _host(self, name: str) -> HostState:
        state = self.hosts.get(name)
        if state is None:
            state = self.hosts[name] = HostState(name, self.config.limits(name))
        return state

    def _push(self, host: HostState) -> None:
        """Queue ``host`` for the time it may start a request (if it may at all)."""
        if host.queued:
            return
        at = host.ready_at()
        if at is None:
            return
        host.queued = True
        if at > self._loop.time():
            heapq.heappush(self._later, (at, next(self._order), host))
        else:
            heapq.heappush(self._ready, (-self._work_left(host), next(self._order), host))

    def _work_left(self, host: HostState) -> float:
        """Seconds the host's queue needs at its limit (its critical path); a host not
        measured yet comes first (it may be the slowest), and so does a failing one."""
        if host.latency is None or host.failures or host.probing:
            return math.inf  # and a failing host's pauses start the sooner
        return host.backlog() * host.latency / host.limits.in_flight

    def hosts_active(self) -> int:
        """Hosts being worked on: a request in flight, or URLs left and neither backing off,
        paused by their breaker nor given up (a host between two requests of its rate is
        active: a sample of the requests in flight alone mostly sees none)."""
        now = self._loop.time()
        return sum(
            1
            for host in self.hosts.values()
            if host.in_flight or (host.down is None and host.has_work() and not host.waiting(now))
        )

    def slowest_queue(self) -> float:
        """Seconds the longest host queue needs at its host's limits (requests in flight
        and per second): no run ends sooner, however fast the others go."""
        longest = 0.0
        for host in self.hosts.values():
            if host.down is not None or not host.has_work():
                continue
            limits = host.limits
            each = (host.latency or 0.0) / limits.in_flight
            if limits.rate:
                each = max(each, 1 / limits.rate)
            longest = max(longest, host.backlog() * each)
        return longest

    def hosts_waiting(self) -> int:
        """Hosts backing off or paused by their breaker."""
        now = self._loop.time()
        return sum(1 for host in self.hosts.values() if host.waiting(now) and host.has_work())

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Check everything; cancelled, stops its requests (their URLs stay in the frontier)."""
        try:
            while True:
                self._wake.clear()
                self._dispatch()
                if self._failure is not None:
                    raise self._failure
                if not self._later and not self._ready and not self._tasks:
                    return
                if not self._ready and not self._tasks and self._only_paused():
                    continue  # given up: their URLs are being recorded
                if self._later and self.in_flight < self.config.concurrency:
                    # asyncio.timeout, not wait_for: no task made for each wait
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(self._later[0][0]):
                            await self._wake.wait()
                else:
                    await self._wake.wait()
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def _only_paused(self) -> bool:
        """When nothing is under way and every host left has its breaker open for more than
        ``_PATIENCE`` seconds, give those hosts up now rather than wait for their pauses (a
        dead host would hold the end of the run for minutes); True when it did."""
        now = self._loop.time()
        hosts = [host for _, _, host in self._later]
        if not all(host.probing and host.open_until - now > _PATIENCE for host in hosts):
            return False
        self._later.clear()
        for host in hosts:
            host.queued = False
            host.down = "host_down"
            host.why = (
                f"its circuit breaker was open ({host.trips} times) when nothing else was"
                " left to do"
            )
            self._give_up(host)
        return True

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
        self._wake.set()

    def _dispatch(self) -> None:
        """Start what may start now, while global slots are free."""
        now = self._loop.time()
        while self._later and self._later[0][0] <= now:
            _, _, host = heapq.heappop(self._later)
            host.queued = False
            self._push(host)
        while self._ready and self.in_flight < self.config.concurrency:
            _, _, host = heapq.heappop(self._ready)
            host.queued = False
            ready = host.ready_at()
            if ready is None:
                continue
            if ready > now:
                self._push(host)
                continue
            job = self._next_job(host)
            if job is None:
                self._push(host)
                continue
            if self.config.robots and host.robots is None and host.name:
                host.front.appendleft(job)  # after robots.txt
                self.under_way.pop(job.seq, None)
                host.robots_pending = True
                host.started(now)
                self.in_flight += 1
                self._spawn(self._fetch_robots(host, job.current))
                continue
            self.in_flight += 1
            if not host.name:  # not an http(s) URL: nothing to request
                self._spawn(self._finish(job, _unrequestable(job.current)))
            elif host.robots is not None and not host.robots.can_fetch(ROBOTS_AGENT, job.current):
                self._spawn(self._finish(job, _skipped(job, "robots", "robots.txt disallows it")))
            else:
                if host.use_get:
                    job.method = "GET"
                host.started(now)
                self._spawn(self._request(host, job))
            self._push(host)

    def _next_job(self, host: HostState) -> Job | None:
        job = host.pop()
        if job is None and host.remaining > 0:
            size = max(16, 4 * host.limits.in_flight)
            batch = self.store.load(host.name, host.after_seq, size)
            if not batch:
                host.remaining = 0
                return None
            host.after_seq = batch[-1].seq
            host.remaining = max(0, host.remaining - len(batch))
            host.buffer.extend(batch)
            job = host.pop()
        if job is not None:
            self.under_way[job.seq] = job
        return job

    # --- one request and what it says --------------------------------------------------------

    async def _request(self, host: HostState, job: Job) -> None:
        if host.route is None:
            host.route = route(job.current)
        job.started = self._loop.time()
        answer: Answer | None = None
        error: Exception | None = None
        self.requests += 1
        try:
            answer = await self.prober.exchange(job, host.route)
        except (asyncio.CancelledError, CheckError):  # a CheckError ends the run
            host.in_flight -= 1
            self.in_flight -= 1
            raise
        except Exception as failure:  # every failure is a result to record
            error = failure
        end = self._loop.time()
        job.elapsed += end - job.started
        host.observe(end - job.started)
        outcome = self._judge(host, job, answer, error, end)
        host.in_flight -= 1
        if host.down is not None:
            self._give_up(host)
        self._push(host)
        self._wake.set()
        if outcome is None:  # queued again: another hop, a GET after the HEAD, a retry
            self.in_flight -= 1
            return
        await self._record(job, outcome)

    def _judge(
        self,
        host: HostState,
        job: Job,
        answer: Answer | None,
        error: Exception | None,
        end: float,
    ) -> Outcome | None:
        """The outcome of an exchange, or None when the job was queued again."""
        config = self.config
        if answer is None:
            assert error is not None
            label = classify(error)
            if label in _HOST_FAILURES:
                host.failed(end, job.started, config, fatal=label == "dns")
            why = detail(error)
            if label == "timeout":
                why = f"no answer within {config.timeout:g} s ({type(error).__name__})"
            return self._outcome(job, error=label, detail=why)
        status, headers = answer.status, answer.headers
        if status in (429, 503):
            host.throttle(end, parse_retry_after(headers.get("Retry-After")), config)
            if status == 503:
                host.failed(end, job.started, config)
            job.throttled += 1
            if job.throttled < config.throttle_attempts:
                self._again(host, job)
                return None
            return self._outcome(job, status=status, error="throttled", detail=f"{status}")
        if status in _GATEWAY_FAILURES:
            host.failed(end, job.started, config)
        else:
            host.answered(job.started)
        if status in _REDIRECTS and headers.get("Location"):
            return self._redirect(job, headers["Location"])
        if job.method == "HEAD" and (
            (status >= 400 and status not in _GATEWAY_FAILURES)
            or (200 <= status < 300 and headers.get("Content-Length") == "0")
        ):
            # Refused or lying HEAD (405, 403, 404, an empty file...): ask with a GET.
            job.head_status = status
            job.method = "GET"
            self._again(host, job)
            return None
        length = headers.get("Content-Length", "")
        size = int(length) if length.isdigit() else None
        if job.head_status is not None and (
            (job.head_status >= 400 and status < 400) or (status < 300 and size)
        ):
            host.contradicted()
        return self._answered(job, answer, size)

    def _answered(self, job: Job, answer: Answer, size: int | None) -> Outcome:
        """The outcome of a final answer (no redirect, no retry)."""
        headers = answer.headers
        if answer.status == 304:
            return self._outcome(
                job,
                etag=headers.get("ETag"),
                last_modified=headers.get("Last-Modified"),
                not_modified=True,
            )
        return self._outcome(
            job,
            status=answer.status,
            content_type=headers.get("Content-Type"),
            length=size,
            etag=headers.get("ETag"),
            last_modified=headers.get("Last-Modified"),
        )

    def _outcome(self, job: Job, **values: Any) -> Outcome:
        requested = values.get("error") not in ("invalid_url", "unsupported_scheme")
        return Outcome(
            final_url=job.current if requested or job.redirects else None,
            redirects=job.redirects,
            method=job.method,
            elapsed=job.elapsed,
            **values,
        )

    def _redirect(self, job: Job, location: str) -> Outcome | None:
        try:
            target = str(URL(job.current).join(URL(location)))
        except (ValueError, TypeError) as error:
            return self._outcome(job, error="invalid_url", detail=f"Location {location!r}: {error}")
        where = f"to {target}"
        if URL(target).scheme not in ("http", "https"):
            return self._outcome(job, error="unsupported_scheme", detail=where)
        if target == job.current or target in job.chain:
            return self._outcome(job, error="redirect_loop", detail=where)
        if job.redirects >= self.config.max_redirects:
            return self._outcome(job, error="too_many_redirects", detail=where)
        job.chain.append(job.current)
        job.current = target
        job.method = job.FIRST
        job.head_status = None
        self._again(self._host(host_key(target)), job)
        return None

    def _again(self, host: HostState, job: Job) -> None:
        """Queue ``job`` first at ``host`` (a host given up records it as such instead)."""
        if host.down is not None:
            self.in_flight += 1  # _finish gives it back
            self._spawn(self._finish(job, _skipped(job, host.down, _why(host))))
            return None
        host.front.append(job)
        self._push(host)
        return None

    async def _record(self, job: Job, outcome: Outcome) -> None:
        """Commit a result, then give its global slot back (up to ``commit_slack`` results
        may wait for their commit without one)."""
        early = self.committing < self.commit_slack
        if early:
            self.committing += 1
            self.in_flight -= 1
            self._wake.set()
        try:
            changed = await self.store.record(job, outcome)
        finally:
            if early:
                self.committing -= 1
            else:
                self.in_flight -= 1
            self.under_way.pop(job.seq, None)
            self._wake.set()
        self.done += 1
        self.changed += int(changed)
        self.kinds[kind(outcome)] += 1

    async def _finish(self, job: Job, outcome: Outcome) -> None:
        """Record a result that needed no request (the slot was taken by the caller)."""
        await self._record(job, outcome)

    async def _fetch_robots(self, host: HostState, url: str) -> None:
        try:
            origin = str(URL(url).origin())
            if host.route is None:
                host.route = route(origin)
            self.requests += 1
            host.robots = await self.prober.robots(origin, host.route)
            delay = host.robots.crawl_delay(ROBOTS_AGENT)
            if delay:
                host.slow_down(float(delay))
        except ValueError:  # not a URL with an origin: its own check will say so
            host.robots = _allow_all()
        finally:
            host.robots_pending = False
            host.in_flight -= 1
            self.in_flight -= 1
            self._push(host)
            self._wake.set()

    # --- giving a host up ---------------------------------------------------------------------

    def _give_up(self, host: HostState) -> None:
        """Record the host's remaining URLs as ``host_down`` or ``throttled``, no request."""
        if host.given_up:
            return
        host.given_up = True
        reason = host.down or "host_down"
        (self.hosts_throttled if reason == "throttled" else self.hosts_down).append(host.name)
        logger.warning("%s given up for this run: %s", host.name, _why(host))
        front = list(host.front)
        host.front.clear()
        host.buffer.clear()
        host.remaining = 0
        keep = list(self.under_way)
        wait = host.blocked_for

        async def work() -> None:
            if reason == "throttled":
                await self.store.block_host(host.name, wait, "Retry-After")
            done: Recorded = await self.store.give_up(
                host.name, Outcome(error=reason, detail=_why(host)), wait, keep
            )
            self.done += done.count
            self.changed += done.changed
            self.kinds.update(done.kinds or {})
            for job in front:
                self.in_flight += 1
                await self._finish(job, _skipped(job, reason, _why(host)))

        self._spawn(work())


def _allow_all() -> RobotFileParser:
    parser = RobotFileParser()
    parser.parse([])  # no rules
    parser.modified()
    return parser


def _why(host: HostState) -> str:
    return host.why or f"given up ({host.down})"


def _skipped(job: Job, error: str, detail: str) -> Outcome:
    return Outcome(final_url=None, redirects=job.redirects, error=error, detail=detail, method=None)


def _unrequestable(url: str) -> Outcome:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme and scheme not in ("http", "https") and scheme.isalpha():
        return Outcome(error="unsupported_scheme", detail=f"{scheme}: URL")
    return Outcome(error="invalid_url", detail="not an http(s) URL with a host" if url else "empty")


def detail(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]
