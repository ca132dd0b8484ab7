"""One host of the crawl: its queue, its limits, its back-off and its circuit breaker.

A host is ``name[:port]``. Its URLs wait in its own queue (a small buffer read from the
database's frontier, plus a front queue for redirects that lead there and URLs to try again),
so a host that is slow, throttling or down only ever holds up its own URLs. The scheduler asks
each host when it may start its next request (:meth:`HostState.ready_at`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.robotparser import RobotFileParser

from .config import CheckConfig, HostLimits

__all__ = ["HostState", "Job"]


@dataclass(slots=True)
class Job:
    """One resource's check, from its first request to its recorded result."""

    #: The method of a first request (and of each redirect's).
    FIRST: ClassVar[Literal["HEAD", "GET"]] = "HEAD"

    seq: int
    resource_id: str
    dataset_id: str | None
    url: str
    host: str
    #: Validators of the last answer for this same URL, sent as a conditional request.
    etag: str | None = None
    last_modified: str | None = None
    #: The URL the next request goes to (a redirect's target), and the chain so far.
    current: str = ""
    chain: list[str] = field(default_factory=list)
    method: Literal["HEAD", "GET"] = "HEAD"
    #: What the HEAD answered before the GET that replaced it, if one did.
    head_status: int | None = None
    throttled: int = 0
    elapsed: float = 0.0
    #: Loop time the current request started (for the circuit breaker).
    started: float = 0.0

    def __post_init__(self) -> None:
        if not self.current:
            self.current = self.url
        self.method = self.FIRST

    @property
    def redirects(self) -> int:
        """Redirects followed so far."""
        return len(self.chain)


class HostState:
    """The state of one host during a run (used from the event loop only)."""

    def __init__(self, name: str, limits: HostLimits, remaining: int = 0) -> None:
        self.name = name
        self.limits = limits
        #: Frontier rows of this host not read yet, and the last one read.
        self.remaining = remaining
        self.after_seq = 0
        self.buffer: deque[Job] = deque()
        self.front: deque[Job] = deque()
        self.in_flight = 0
        self.interval = 1.0 / limits.rate if limits.rate else 0.0
        self.next_start = 0.0
        #: 429/503 back-off: no request starts before this loop time.
        self.backoff_until = 0.0
        self.throttles = 0
        #: Circuit breaker: failures in a row, when it last opened, until when, how often.
        self.failures = 0
        self.opened_at = -1.0
        self.open_until = 0.0
        self.trips = 0
        self.probing = False
        #: Why the host was given up for this run (``host_down``, ``throttled``), if it was.
        self.down: str | None = None
        #: Seconds the host asked to be left alone (a Retry-After beyond the run's patience).
        self.blocked_for = 0.0
        #: Why it was given up, in words.
        self.why = ""
        #: Its remaining URLs were recorded as given up.
        self.given_up = False
        #: In the scheduler's heap (at most once).
        self.queued = False
        #: HEAD answers that a GET contradicted: after a few, this host gets GET at once.
        self.head_contradicted = 0
        self.use_get = False
        #: robots.txt: None until fetched (when asked), then the parsed file.
        self.robots: RobotFileParser | None = None
        self.robots_pending = False
        #: Proxy settings for this origin (resolved once).
        self.route: dict[str, Any] | None = None
        self.requests = 0
        self.max_in_flight = 0
        #: Seconds a request to this host takes (a moving average), None until one ended.
        self.latency: float | None = None

    # --- the queue --------------------------------------------------------------------------

    def has_work(self) -> bool:
        """URLs wait for this host (in memory or still in the frontier)."""
        return bool(self.front or self.buffer or self.remaining > 0)

    def backlog(self) -> int:
        """URLs waiting for this host."""
        return len(self.front) + len(self.buffer) + self.remaining

    def observe(self, seconds: float) -> None:
        """A request to this host took ``seconds``."""
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += 0.2 * (seconds - self.latency)

    def pop(self) -> Job | None:
        """The next job held in memory (None: the buffer needs reading from the frontier)."""
        if self.front:
            return self.front.popleft()
        if self.buffer:
            return self.buffer.popleft()
        return None

    # --- when may the next request start ----------------------------------------------------

    @property
    def capacity(self) -> int:
        """Requests allowed in flight now: one while the breaker tries the host again."""
        return 1 if self.probing or self.robots_pending else self.limits.in_flight

    def ready_at(self) -> float | None:
        """Loop time at which a request may start; None while it may not start at all
        (given up, nothing to do, or as many in flight as allowed: a completion says when)."""
        if self.down is not None or not self.has_work() or self.in_flight >= self.capacity:
            return None
        return max(self.next_start, self.backoff_until, self.open_until)

    def waiting(self, now: float) -> bool:
        """Backing off or paused by the breaker."""
        return self.down is None and max(self.backoff_until, self.open_until) > now

    def started(self, now: float) -> None:
        """A request to this host starts now."""
        self.in_flight += 1
        self.requests += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.next_start = max(now, self.next_start) + self.interval

    def slow_down(self, delay: float) -> None:
        """robots.txt's Crawl-delay: at least ``delay`` seconds between two requests."""
        self.interval = max(self.interval, delay)

    # --- what the answers say about the host ------------------------------------------------

    def answered(self, started: float) -> None:
        """An answer that is not a failure: the breaker closes, the back-off resets."""
        self.failures = 0
        self.throttles = 0
        if self.probing and started >= self.opened_at:
            self.probing = False

    def failed(
        self, now: float, started: float, config: CheckConfig, *, fatal: bool = False
    ) -> None:
        """A timeout, a refused or reset connection, a 502/503/504: may open the breaker
        (and give the host up after ``breaker_trips`` openings; at once for a ``fatal``
        failure, a name that does not resolve). Failures of requests that started before
        the breaker last opened are not counted again."""
        if started < self.opened_at or self.down is not None:
            return
        self.failures += 1
        if not self.probing and self.failures < config.breaker_failures:
            return
        self.trips += 1
        self.failures = 0
        if fatal or self.trips > config.breaker_trips:
            self.down = "host_down"
            self.why = (
                f"its name did not resolve {config.breaker_failures} times in a row"
                if fatal
                else f"still failing after its circuit breaker opened {self.trips - 1} times"
            )
            return
        self.opened_at = now
        self.open_until = now + config.breaker_cooldown * 2 ** (self.trips - 1)
        self.probing = True

    def throttle(self, now: float, retry_after: float | None, config: CheckConfig) -> None:
        """A 429 or 503: no request before ``Retry-After`` (else a doubling back-off); a
        Retry-After beyond ``max_backoff`` gives the host up for the run."""
        self.throttles += 1
        if retry_after is not None and retry_after > config.max_backoff:
            self.down = "throttled"
            self.blocked_for = retry_after
            self.why = f"asked to wait {retry_after:.0f} s (Retry-After)"
            return
        if retry_after is None:
            retry_after = min(config.backoff * 2 ** (self.throttles - 1), config.max_backoff)
        self.backoff_until = max(self.backoff_until, now + retry_after)

    def contradicted(self) -> None:
        """A GET worked where this host's HEAD failed: after 3, skip HEAD on this host."""
        self.head_contradicted += 1
        if self.head_contradicted >= 3:
            self.use_get = True
