"""Client-wide request pacing: a token bucket, a cap on requests in flight, and a cool-off.

Our own rather than aiolimiter: the cool-off (every task of the client pauses after a 429 or
a burst of refused connections) has to share state with the bucket, and the whole thing is
small enough that owning it is cheaper than adapting a dependency.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

__all__ = ["RateLimiter"]


class RateLimiter:
    """Shared by every task of one client.

    ``rate`` requests per second on average with bursts of ``burst`` (``None``: unlimited),
    at most ``max_in_flight`` requests at once, and none at all during a cool-off.
    """

    def __init__(
        self, rate: float | None = None, burst: int = 1, max_in_flight: int | None = None
    ) -> None:
        if rate is not None and rate < 0:
            raise ValueError(f"rate must be positive, 0 or None (unlimited), not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1 or None, not {max_in_flight!r}")
        self.rate = rate or None  # 0: unlimited, as --rate 0
        self.burst = burst
        self.max_in_flight = max_in_flight
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        self._resume_at = 0.0
        self.in_flight = 0
        self._slot = _Slot(self)

    def __repr__(self) -> str:
        return (
            f"<RateLimiter rate={self.rate} burst={self.burst} max_in_flight={self.max_in_flight}>"
        )

    def slot(self) -> _Slot:
        """Wait for the right to send one request; hold it until the answer is read.

        ``async with limiter.slot(): ...``
        """
        return self._slot

    def cool_off(self, seconds: float) -> None:
        """Hold every request of the client back for ``seconds`` from now (extends, never cuts)."""
        self._resume_at = max(self._resume_at, time.monotonic() + max(0.0, seconds))

    @property
    def cooling_off(self) -> float:
        """Seconds left in the current cool-off (0 when none)."""
        return max(0.0, self._resume_at - time.monotonic())

    async def _enter(self) -> None:
        if self._slots is None and self.max_in_flight is not None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        if self._slots is not None:
            await self._slots.acquire()
        try:
            await self._take()
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise
        self.in_flight += 1

    def _exit(self) -> None:
        self.in_flight -= 1
        if self._slots is not None:
            self._slots.release()

    async def _take(self) -> None:
        lock = self._lock
        if lock is None:
            lock = self._lock = asyncio.Lock()
        if self.rate is None and not lock.locked() and self._resume_at <= time.monotonic():
            return  # unpaced, no cool-off, nobody waiting: nothing to wait for
        # One waiter at a time (asyncio.Lock is FIFO): tokens go out in arrival order.
        async with lock:
            while True:
                pause = self.cooling_off
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue
                if self.rate is None:
                    return
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class _Slot:
    """The async context manager :meth:`RateLimiter.slot` returns (one per limiter, reusable)."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def __aenter__(self) -> None:
        await self._limiter._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter._exit()
