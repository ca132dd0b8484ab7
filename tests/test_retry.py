"""Retry, Retry-After, cool-off and rate limiting against a fault-injecting local server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from aioudata import (
    BadRequestError,
    Client,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    RateLimitedError,
    RateLimiter,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TruncatedBodyError,
)
from aioudata._retry import parse_retry_after
from tests.faults import Action, FaultServer

SITE = json.loads((Path(__file__).parent / "fixtures/responses/site.json").read_text())["body"]
KEY = "udata_fault_secret"
FAST = RetryPolicy(max_attempts=4, backoff=0.01, max_backoff=0.05)


def client_for(server: FaultServer, **options: object) -> Client:
    options.setdefault("retry", FAST)
    return Client(server.base_url, api_key=KEY, **options)  # type: ignore[arg-type]


async def test_server_errors_are_retried_until_success(
    faults: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aioudata")
    faults.script("/site/", Action(503), Action(502), Action(200, SITE))
    async with client_for(faults) as client:
        site = await client.site.get_site()
    assert site.id == SITE["id"]
    assert len(faults.hits("/site/")) == 3
    assert client.stats.retries == 2
    assert client.stats.retry_reasons == {"503": 1, "502": 1}
    assert "retrying GET" in caplog.text and "after 503 (attempt 2 of 4)" in caplog.text
    assert KEY not in caplog.text


async def test_retries_stop_after_max_attempts(faults: FaultServer) -> None:
    faults.script("/site/", Action(500, {"message": "Internal Server Error"}))
    async with client_for(faults) as client:
        with pytest.raises(ServerError) as info:
            await client.site.get_site()
    assert info.value.message == "Internal Server Error"
    assert len(faults.hits("/site/")) == FAST.max_attempts


async def test_client_errors_are_not_retried(faults: FaultServer) -> None:
    faults.script("/site/", Action(400, {"errors": {"x": ["bad"]}}))
    async with client_for(faults) as client:
        with pytest.raises(BadRequestError):
            await client.site.get_site()
    assert len(faults.hits("/site/")) == 1


async def test_retry_after_seconds_is_honoured(faults: FaultServer) -> None:
    faults.script(
        "/site/", Action(429, {"message": "slow down"}, {"Retry-After": "0.4"}), Action(200, SITE)
    )
    async with client_for(faults) as client:
        await client.site.get_site()
    first, second = faults.hits("/site/")
    assert second.at - first.at >= 0.35  # loose bound: never earlier than asked
    assert client.stats.cool_offs == 1


async def test_retry_after_is_capped(faults: FaultServer) -> None:
    faults.script("/site/", Action(503, None, {"Retry-After": "3600"}), Action(200, SITE))
    policy = RetryPolicy(max_attempts=2, max_retry_after=0.2)
    async with client_for(faults, retry=policy) as client:
        started = time.monotonic()
        await client.site.get_site()
    assert time.monotonic() - started < 5


async def test_a_429_pauses_every_task_of_the_client(faults: FaultServer) -> None:
    faults.script("/site/", Action(429, None, {"Retry-After": "0.5"}), Action(200, SITE))
    faults.script("/datasets/badges/", Action(200, {"a": "b"}))
    async with client_for(faults) as client:
        first = asyncio.create_task(client.site.get_site())
        await asyncio.sleep(0.1)  # the 429 has been seen: the client is cooling off
        assert client.limiter.cooling_off > 0
        await client.datasets.available_dataset_badges()
        await first
    throttled = faults.hits("/site/")[0].at
    other = faults.hits("/datasets/badges/")[0].at
    assert other - throttled >= 0.45  # the other task waited for the cool-off too


async def test_post_is_not_retried_unless_opted_in(faults: FaultServer) -> None:
    faults.script("/datasets/", Action(503), Action(201, {"id": "x"}))
    async with client_for(faults) as client:
        with pytest.raises(ServerError):
            await client.datasets.create_dataset(body={"title": "t"})
    assert len(faults.hits("/datasets/")) == 1
    faults.script("/datasets/", Action(503), Action(503))
    unsafe = RetryPolicy(max_attempts=2, backoff=0.01, retry_unsafe=True)
    async with client_for(faults, retry=unsafe) as client:
        with pytest.raises(ServerError):
            await client.datasets.create_dataset(body={"title": "t"})
    assert len(faults.hits("/datasets/")) == 3


async def test_connection_reset_is_retried(faults: FaultServer) -> None:
    faults.script("/site/", Action(reset=True), Action(200, SITE))
    async with client_for(faults) as client:
        assert (await client.site.get_site()).id == SITE["id"]
    assert len(faults.hits("/site/")) == 2
    # aiohttp itself re-sends an idempotent request once when a connection drops before any
    # answer; when it does not, our retry does. Either way: one loss, one success, no error.
    outcome = (client.stats.requests, client.stats.errors["ConnectionLostError"])
    assert outcome in {(1, 0), (2, 1)}


async def test_connection_reset_every_time_is_a_typed_error(faults: FaultServer) -> None:
    faults.script("/site/", Action(reset=True))
    async with client_for(faults) as client:
        with pytest.raises(ConnectionLostError) as info:
            await client.site.get_site()
    assert info.value.url.endswith("/api/1/site/")


async def test_truncated_body_is_a_typed_error(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE, truncate=True))
    async with client_for(faults, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(TruncatedBodyError):
            await client.site.get_site()


async def test_slow_answer_times_out(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE, delay=2.0))
    async with client_for(faults, retry=RetryPolicy(max_attempts=1), read_timeout=0.2) as client:
        with pytest.raises(RequestTimeoutError):
            await client.site.get_site()


async def test_invalid_json_is_a_decode_error_with_a_snippet(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, b"<html>oops</html>"))
    async with client_for(faults) as client:
        with pytest.raises(DecodeError) as info:
            await client.site.get_site()
    assert "<html>oops" in info.value.snippet


async def test_redirect_to_another_origin_drops_the_key(faults: FaultServer) -> None:
    other = FaultServer()
    await other.start()
    try:
        other.script("/site/", Action(200, SITE))
        faults.script("/site/", Action(302, None, {"Location": f"{other.base_url}/site/"}))
        async with client_for(faults) as client:
            await client.site.get_site()
    finally:
        await other.stop()
    assert faults.hits("/site/")[0].headers["X-API-KEY"] == KEY
    assert "X-API-KEY" not in other.hits("/site/")[0].headers


async def test_rate_limit_holds_across_concurrent_tasks(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE))
    async with client_for(faults, rate=20.0, burst=2) as client:
        await asyncio.gather(*(client.site.get_site() for _ in range(12)))
    times = sorted(s.at for s in faults.hits("/site/"))
    assert len(times) == 12
    # 2 in the first burst, then 20/s: 10 more take about 0.5 s; no 1 s window holds > 22.
    assert times[-1] - times[0] >= 0.4
    for start in times:
        assert sum(1 for t in times if start <= t < start + 0.25) <= 2 + 5 + 1


async def test_in_flight_cap(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE, delay=0.1))
    peak = 0
    async with client_for(faults, max_in_flight=3) as client:

        async def watch() -> None:
            nonlocal peak
            for _ in range(30):
                peak = max(peak, client.limiter.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(watch(), *(client.site.get_site() for _ in range(9)))
    assert peak == 3


async def test_refused_connections_cool_the_client_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aioudata")
    policy = RetryPolicy(
        max_attempts=4, backoff=0.01, max_backoff=0.02, refused_burst=3, refused_cool_off=0.3
    )
    # Port 9 on loopback: nothing listens there, so every connection is refused at once.
    async with Client("http://127.0.0.1:9/api/1", retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(ConnectError):
            await client.site.get_site()
    assert client.stats.cool_offs == 1
    assert time.monotonic() - started >= 0.25
    assert "connections refused in a row" in caplog.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), ("", None), ("soon", None)],
)
def test_parse_retry_after_seconds(header: str, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == pytest.approx(20.0)


def test_rate_limited_error_is_typed() -> None:
    error = RateLimitedError(status=429, method="GET", url="u", retry_after=2.0)
    assert error.retry_after == 2.0 and "429 on GET u" in str(error)


async def test_a_first_attempt_that_succeeds_never_enters_tenacity(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_tenacity(*args: object, **kwargs: object) -> None:
        raise AssertionError("tenacity was entered for a request that needed no retry")

    faults.script("/site/", Action(200, SITE))
    faults.script("/datasets/badges/", Action(400, {"message": "bad"}))
    async with client_for(faults) as client:
        monkeypatch.setattr("aioudata._retry.AsyncRetrying", no_tenacity)
        await client.site.get_site()
        with pytest.raises(BadRequestError):  # not retryable: no tenacity either
            await client.datasets.available_dataset_badges()
        monkeypatch.undo()
        faults.script("/site/", Action(503), Action(200, SITE))
        await client.site.get_site()
    assert client.stats.retries == 1 and client.stats.retry_reasons == {"503": 1}


async def test_max_time_counts_from_the_first_attempt(faults: FaultServer) -> None:
    faults.script("/site/", Action(503, delay=0.3))
    policy = RetryPolicy(max_attempts=5, backoff=0.001, max_time=0.2)
    async with client_for(faults, retry=policy) as client:
        with pytest.raises(ServerError):
            await client.site.get_site()
    assert len(faults.hits("/site/")) == 1  # the first answer came after max_time: no retry


async def test_refused_connections_count_once_each_through_the_fast_path() -> None:
    policy = RetryPolicy(max_attempts=3, backoff=0.001, refused_burst=2, refused_cool_off=0.05)
    async with Client("http://127.0.0.1:9/api/1", retry=policy) as client:
        with pytest.raises(ConnectError):
            await client.site.get_site()
    # Three refusals, each noted once: one burst of two, then one more (noting the first twice
    # would make two bursts).
    assert client.stats.errors["ConnectError"] == 3 and client.stats.cool_offs == 1


async def test_a_request_cancelled_while_waiting_gives_its_slot_back() -> None:
    limiter = RateLimiter(max_in_flight=1)
    limiter.cool_off(10)
    waiting = asyncio.create_task(limiter.slot().__aenter__())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    limiter._resume_at = 0.0  # end the cool-off
    async with asyncio.timeout(1):
        async with limiter.slot():
            assert limiter.in_flight == 1
    assert limiter.in_flight == 0
