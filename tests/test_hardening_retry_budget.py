"""``RetryPolicy(max_time=...)`` is a budget: no wait outlasts what is left of it (issue 12)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from aioudata import Client, ConnectError, RateLimitedError, RetryPolicy, ServerError
from tests.faults import Action, FaultServer

SITE = json.loads((Path(__file__).parent / "fixtures/responses/site.json").read_text())["body"]
#: Only there to stop a hang: the calls below end in milliseconds when the budget holds.
HANG = 10.0


async def test_a_retry_after_past_the_budget_gives_up_at_once(faults: FaultServer) -> None:
    faults.script("/site/", Action(429, {"message": "slow down"}, {"Retry-After": "86400"}))
    async with Client(faults.base_url, retry=RetryPolicy(max_time=1)) as client:
        with pytest.raises(RateLimitedError) as info:
            await asyncio.wait_for(client.site.get_site(), HANG)
        assert info.value.retry_after == 86400
        assert len(faults.hits("/site/")) == 1
        # The wait was not taken, so no task of the client is held back for it either.
        assert client.limiter.cooling_off == 0
        assert client.stats.retries == 0


async def test_a_server_error_whose_wait_is_past_the_budget_gives_up_at_once(
    faults: FaultServer,
) -> None:
    faults.script("/site/", Action(503, None, {"Retry-After": "30"}), Action(200, SITE))
    async with Client(faults.base_url, retry=RetryPolicy(max_time=1)) as client:
        with pytest.raises(ServerError):
            await asyncio.wait_for(client.site.get_site(), HANG)
    assert len(faults.hits("/site/")) == 1


async def test_a_backoff_past_the_budget_gives_up_at_once(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults.script("/site/", Action(503), Action(200, SITE))
    # Full jitter draws the backoff at random: make it draw its ceiling, 100 s.
    monkeypatch.setattr("aioudata._retry.random.uniform", lambda low, high: high)
    policy = RetryPolicy(max_time=5, backoff=100.0, max_backoff=100.0)
    async with Client(faults.base_url, retry=policy) as client:
        with pytest.raises(ServerError):
            await asyncio.wait_for(client.site.get_site(), HANG)
    assert len(faults.hits("/site/")) == 1


async def test_a_client_cool_off_past_the_budget_gives_up_at_once() -> None:
    # One refused connection starts a 60 s client-wide cool-off: the next attempt could not be
    # sent before it ends, which is past the budget.
    policy = RetryPolicy(max_time=1, backoff=0.001, refused_burst=1, refused_cool_off=60)
    async with Client("http://127.0.0.1:9/api/1", retry=policy) as client:
        with pytest.raises(ConnectError):
            await asyncio.wait_for(client.site.get_site(), HANG)
        assert client.stats.retries == 0


async def test_a_wait_within_the_budget_is_still_taken(faults: FaultServer) -> None:
    faults.script(
        "/site/", Action(429, {"message": "slow down"}, {"Retry-After": "0.2"}), Action(200, SITE)
    )
    async with Client(faults.base_url, retry=RetryPolicy(max_time=5)) as client:
        await asyncio.wait_for(client.site.get_site(), HANG)
        assert client.stats.cool_offs == 1 and client.stats.retries == 1
    first, second = faults.hits("/site/")
    assert second.at - first.at >= 0.15
