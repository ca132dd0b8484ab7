"""The mirror's first check: quick to fail on a wrong URL, patient with a flaky portal.

Issue 12, item 8: the check gave up after 2 attempts, so on a portal failing 30% of requests
about one start in ten failed with "cannot reach". Now one attempt tells a wrong URL (refused,
DNS, 404) at once, and a failure that may be transient is waited out for up to
``PREFLIGHT_PATIENCE`` seconds. Attempts are counted, not seconds.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from aioudata import (
    AuthenticationError,
    Client,
    ConnectError,
    MirrorConfig,
    MirrorError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    run_mirror,
)
from aioudata._mirror import job
from tests.catalog import Catalog, catalog_server
from tests.faults import Action, FaultServer

TRIES = 20


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[Client]:
    """Every client the mirror job makes (their stats count the attempts)."""
    made: list[Client] = []
    original = job.make_client

    def recording(*args: Any, **kwargs: Any) -> Client:
        client = original(*args, **kwargs)
        made.append(client)
        return client

    monkeypatch.setattr(job, "make_client", recording)
    return made


def _attempts(clients: list[Client]) -> int:
    return sum(client.stats.requests for client in clients)


@pytest.fixture
async def flaky() -> AsyncIterator[Catalog]:
    """A portal failing 30% of requests (503, 429 with Retry-After: 0, resets), seeded."""
    catalog = Catalog(10, fault_rate=0.3, seed=8)
    async for server in catalog_server(catalog):
        yield server


async def test_a_portal_failing_30_percent_of_requests_starts_every_time(
    flaky: Catalog, clients: list[Client]
) -> None:
    config = MirrorConfig(base_url=flaky.base_url, rate=None)
    answered = []  # per try: the error statuses it got before it passed
    for _ in range(TRIES):
        before = flaky.faults["503"] + flaky.faults["429"]
        await job._preflight(config)  # raises if the check gives up
        answered.append(flaky.faults["503"] + flaky.faults["429"] - before)
    # The check had to be patient: some tries got an error status first, some two in a row
    # (or more), which two attempts did not survive.
    assert sum(1 for count in answered if count) >= 3 and max(answered) >= 2, answered
    assert _attempts(clients) >= TRIES + sum(answered)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_a_refused_connection_fails_after_one_attempt(
    refused_port: int, clients: list[Client], tmp_path: Path
) -> None:
    config = MirrorConfig(base_url=f"http://127.0.0.1:{refused_port}/api/1", db=tmp_path / "m.db")
    with pytest.raises(ConnectError):
        await run_mirror(config)
    assert _attempts(clients) == 1
    assert not config.db.exists()


async def test_a_url_that_is_not_a_udata_api_fails_after_one_attempt(
    faults: FaultServer, tmp_path: Path
) -> None:
    faults.script("/site/", Action(404, {"message": "Not Found"}))
    config = MirrorConfig(base_url=faults.base_url, db=tmp_path / "m.db", rate=None)
    with pytest.raises(MirrorError, match="not a udata API v1 root") as info:
        await run_mirror(config)
    assert info.value.code == 2 and len(faults.hits("/site/")) == 1


async def test_a_refused_key_fails_after_one_attempt(faults: FaultServer, tmp_path: Path) -> None:
    faults.script("/site/", Action(401, {"message": "Invalid API token"}))
    config = MirrorConfig(base_url=faults.base_url, db=tmp_path / "m.db", api_key="k", rate=None)
    with pytest.raises(AuthenticationError):
        await run_mirror(config)
    assert len(faults.hits("/site/")) == 1


async def test_a_wait_past_the_patience_gives_up_at_once(faults: FaultServer) -> None:
    faults.script("/site/", Action(429, {"message": "slow down"}, {"Retry-After": "3600"}))
    with pytest.raises(RateLimitedError):
        await job._preflight(MirrorConfig(base_url=faults.base_url, rate=None))
    assert len(faults.hits("/site/")) == 1


async def test_a_portal_failing_every_time_is_given_up_on_when_the_retries_run_out(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = RetryPolicy(max_attempts=4, backoff=0.001, max_backoff=0.002, refused_burst=10**6)
    monkeypatch.setattr(job, "_PREFLIGHT_RETRY", quick)
    faults.script("/site/", Action(503, {"message": "down"}))
    with pytest.raises(ServerError):
        await job._preflight(MirrorConfig(base_url=faults.base_url, rate=None))
    assert len(faults.hits("/site/")) == 1 + 4  # the first attempt, then the patient ones
