"""When and how long to wait before sending a failed request again (tenacity underneath)."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState

from ._connect import PERMANENT
from ._errors import APIError, ConnectError, NameResolutionError, TransportError
from ._limits import RateLimiter

__all__ = ["ClientStats", "RetryPolicy", "parse_retry_after"]

T = TypeVar("T")
logger = logging.getLogger("aioudata")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries.

    GET, HEAD, PUT and DELETE are retried on ``statuses`` and transport errors; POST and PATCH
    only with ``retry_unsafe`` (they may have taken effect), except on a refused connection,
    where nothing was sent. Waits grow exponentially with full jitter, or follow Retry-After
    (at most ``max_retry_after``).

    Connection failures that would repeat fail at once, whatever the method and the attempts
    left: a TLS certificate that fails verification (:class:`TLSCertificateError`, naming the
    host and why) and a host name that does not exist (:class:`HostNotFoundError`: NXDOMAIN,
    ``EAI_NONAME``). A temporary DNS failure (``EAI_AGAIN``: :class:`NameResolutionError`,
    naming the host), a refused, reset or timed-out connection is retried like any transport
    error.

    ``max_time`` is a budget in seconds, counted from the first attempt: no retry starts after
    it, and no wait outlasts what is left of it. When the next wait (backoff, Retry-After, or a
    client-wide cool-off still running) would end past the budget, the call gives up at once
    with the last error (:class:`RateLimitedError`, :class:`ServerError`...) instead of
    sleeping; such a 429 does not pause the client's other tasks either.
    """

    max_attempts: int = 5
    max_time: float = 120.0
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = RETRY_STATUSES
    retry_unsafe: bool = False
    #: Consecutive refused connections after which the whole client backs off: data.gouv.fr
    #: blocks abusive IPs at network level, so refusals are a signal to slow down.
    refused_burst: int = 3
    refused_cool_off: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff_for(self, attempt: int) -> float:
        """Full-jitter exponential backoff before attempt ``attempt + 1``."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


@dataclass
class ClientStats:
    """Counters of one client, for logs, progress and summaries."""

    requests: int = 0
    retries: int = 0
    cool_offs: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    retry_reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def reason(error: BaseException) -> str:
    """A short label for counters and logs: "503", "ConnectError"."""
    if isinstance(error, APIError):
        return str(error.status)
    return type(error).__name__


class Retrier:
    """Runs one request's attempts under a policy, sharing pauses through the limiter."""

    def __init__(self, policy: RetryPolicy, limiter: RateLimiter, stats: ClientStats) -> None:
        self.policy = policy
        self.limiter = limiter
        self.stats = stats
        self._refused_in_a_row = 0

    def retryable(self, error: BaseException, method: str, unsafe_ok: bool | None) -> bool:
        policy = self.policy
        if isinstance(error, PERMANENT):
            return False  # a bad certificate, a name that does not exist: the same every time
        if isinstance(error, ConnectError):
            return True  # nothing was sent: safe for any method
        idempotent = method in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        allowed = idempotent or (policy.retry_unsafe if unsafe_ok is None else unsafe_ok)
        if not allowed:
            return False
        if isinstance(error, APIError):
            return error.status in policy.statuses
        return isinstance(error, TransportError)

    def note_outcome(self, error: BaseException | None) -> None:
        """Track refused connections; a burst of them cools the whole client off.

        A bad certificate, a host that does not exist or a DNS server that did not answer says
        nothing about being blocked.
        """
        unrefused = (*PERMANENT, NameResolutionError)
        if not isinstance(error, ConnectError) or isinstance(error, unrefused):
            self._refused_in_a_row = 0
            return
        self._refused_in_a_row += 1
        if self._refused_in_a_row >= self.policy.refused_burst:
            pause = self.policy.refused_cool_off
            logger.warning(
                "%d connections refused in a row: the portal may be blocking this client;"
                " pausing every request for %.0fs",
                self._refused_in_a_row,
                pause,
            )
            self.limiter.cool_off(pause)
            self.stats.cool_offs += 1
            self._refused_in_a_row = 0

    def _wait(self, state: RetryCallState) -> float:
        """The wait before the next attempt (no side effect: the budget may still refuse it)."""
        error = state.outcome.exception() if state.outcome else None
        delay = self.policy.backoff_for(state.attempt_number)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            delay = min(float(retry_after), self.policy.max_retry_after)
        return delay

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        method: str,
        url: Callable[[], str],
        unsafe_ok: bool | None = None,
    ) -> T:
        """``attempt()`` until it succeeds or the policy gives up; ``url()`` names it in logs.

        The first attempt runs directly: tenacity (and its per-call machinery) only comes in
        once an attempt has failed with an error worth retrying.
        """
        started = time.monotonic()
        try:
            result = await attempt()
        except Exception as error:
            self.note_outcome(error)
            if self.policy.max_attempts < 2 or not self.retryable(error, method, unsafe_ok):
                raise
            first: Exception | None = error
        else:
            self._refused_in_a_row = 0  # note_outcome(None)
            return result
        policy = self.policy
        deadline = started + policy.max_time

        async def again() -> T:
            # Tenacity's attempt 1 is the one already made: hand back its error, send nothing.
            nonlocal first
            if first is not None:
                error, first = first, None
                raise error
            return await attempt()

        planned: dict[int, float] = {}  # attempt number -> the wait after it, drawn once

        def planned_wait(state: RetryCallState) -> float:
            # Asked by stop and by tenacity (in either order, by version): the same draw.
            if state.attempt_number not in planned:
                planned[state.attempt_number] = self._wait(state)
            return planned[state.attempt_number]

        def stop(state: RetryCallState) -> bool:
            # The next attempt cannot start before its wait, nor before a client-wide cool-off
            # ends (it would block in the limiter): past the budget, give up now rather than
            # sleep and fail later.
            delay = planned_wait(state)
            fits = time.monotonic() + max(delay, self.limiter.cooling_off) < deadline
            error = state.outcome.exception() if state.outcome else None
            rate_limited = isinstance(error, APIError) and error.status == 429
            if fits and rate_limited and getattr(error, "retry_after", None) is not None:
                # A 429 concerns the whole client: every task pauses, not only this one; but
                # not for a wait past the budget, that none of them would take.
                self.limiter.cool_off(delay)
                self.stats.cool_offs += 1
            return not fits or state.attempt_number >= policy.max_attempts

        def should_retry(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if state.attempt_number > 1:  # the first outcome was noted above
                self.note_outcome(error)
            return error is not None and self.retryable(error, method, unsafe_ok)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            label = reason(error) if error else "?"
            wait = state.next_action.sleep if state.next_action else 0.0
            self.stats.retries += 1
            self.stats.retry_reasons[label] += 1
            logger.info(
                "retrying %s %s after %s (attempt %d of %d) in %.2fs",
                method,
                url(),
                label,
                state.attempt_number + 1,
                policy.max_attempts,
                wait,
            )

        retrying = AsyncRetrying(
            stop=stop,
            wait=planned_wait,
            retry=should_retry,
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(again)
