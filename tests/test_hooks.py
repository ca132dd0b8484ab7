"""Event hooks: one request event per HTTP request sent, one response event per answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import aioudata
from aioudata import (
    Client,
    NotFoundError,
    RequestEvent,
    ResponseEvent,
    RetryPolicy,
    ServerError,
)
from tests.faults import Action, FaultServer

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
SITE = json.loads((FIXTURES / "site.json").read_text())["body"]
DATASET = json.loads((FIXTURES / "dataset.json").read_text())["body"]
KEY = "udata_hook_secret_key"
FAST = RetryPolicy(max_attempts=3, backoff=0.001, max_backoff=0.005)


class Recorder:
    """A sync request hook and an async response hook that keep what they are given."""

    def __init__(self) -> None:
        self.requests: list[RequestEvent] = []
        self.responses: list[ResponseEvent] = []

    def on_request(self, event: RequestEvent) -> None:
        self.requests.append(event)

    async def on_response(self, event: ResponseEvent) -> None:
        self.responses.append(event)

    def client(self, server: FaultServer, base_url: str | None = None, **options: Any) -> Client:
        return Client(
            base_url or server.base_url,
            api_key=KEY,
            retry=FAST,
            event_hooks={"request": [self.on_request], "response": [self.on_response]},
            **options,
        )


async def test_every_attempt_gives_a_request_and_a_response_event(faults: FaultServer) -> None:
    faults.script("/site/", Action(503, None, {"X-Served-By": "a"}), Action(200, SITE))
    seen = Recorder()
    async with seen.client(faults) as client:
        site = await client.site.get_site()
    assert site.id == SITE["id"]
    url = f"{faults.base_url}/site/"
    assert [(e.method, e.url, e.attempt) for e in seen.requests] == [
        ("GET", url, 1),
        ("GET", url, 2),
    ]
    assert [(e.status, e.attempt) for e in seen.responses] == [(503, 1), (200, 2)]
    assert seen.responses[0].headers["x-served-by"] == "a"
    assert all(e.elapsed > 0 and e.url == url for e in seen.responses)
    first = seen.requests[0].headers
    assert first["user-agent"].startswith("aioudata/") and first["Accept"] == "application/json"


async def test_the_api_key_is_sent_but_never_in_an_event(faults: FaultServer) -> None:
    faults.script("/datasets/", Action(201, DATASET))
    seen = Recorder()
    async with seen.client(faults) as client:
        await client.datasets.create_dataset(body={"title": "t"}, x_fields="id,title")
    assert faults.hits("/datasets/")[0].headers["X-API-KEY"] == KEY  # it was sent
    (request,) = seen.requests
    assert "x-api-key" not in request.headers
    assert request.headers["X-Fields"] == "id,title"
    assert request.headers["Content-Type"] == "application/json"
    assert KEY not in repr(seen.requests) + repr(seen.responses)


@pytest.mark.parametrize("credentials", ["someone:hunter2@", ":hunter2@"])
async def test_urls_in_events_carry_no_credentials(faults: FaultServer, credentials: str) -> None:
    faults.script("/site/", Action(200, SITE))
    seen = Recorder()
    with_user = faults.base_url.replace("http://", f"http://{credentials}")
    async with seen.client(faults, base_url=with_user) as client:
        await client.site.get_site()
    assert seen.requests[0].url == seen.responses[0].url == f"{faults.base_url}/site/"
    assert "hunter2" not in repr(seen.requests) + repr(seen.responses)


async def test_a_redirect_is_two_requests_of_one_attempt(faults: FaultServer) -> None:
    faults.script("/datasets/r/abc", Action(302, None, {"Location": "/api/1/files/f.csv"}))
    faults.script("/files/f.csv", Action(200, b"a;b\n"))
    seen = Recorder()
    async with seen.client(faults) as client:
        assert await client.datasets.redirect_resource("abc") == b"a;b\n"
    assert [(e.url.removeprefix(faults.base_url), e.attempt) for e in seen.requests] == [
        ("/datasets/r/abc", 1),
        ("/files/f.csv", 1),
    ]
    assert [e.status for e in seen.responses] == [302, 200]
    assert seen.responses[0].headers["Location"] == "/api/1/files/f.csv"


async def test_an_error_answer_is_an_event_before_the_error_is_raised(
    faults: FaultServer,
) -> None:
    faults.script("/datasets/gone/", Action(404, {"message": "Not found"}))
    seen = Recorder()
    async with seen.client(faults) as client:
        with pytest.raises(NotFoundError):
            await client.datasets.get_dataset("gone")
    assert [(e.status, e.attempt) for e in seen.responses] == [(404, 1)]


async def test_a_request_hook_that_raises_stops_the_request(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE))

    def refuse(event: RequestEvent) -> None:
        raise RuntimeError(f"not allowed: {event.url}")

    async with Client(faults.base_url, retry=FAST, event_hooks={"request": [refuse]}) as client:
        with pytest.raises(RuntimeError, match=r"not allowed: .*/site/"):
            await client.site.get_site()
    assert faults.seen == []  # nothing was sent, and nothing was retried
    assert client.stats.retries == 0 and client.limiter.in_flight == 0


async def test_a_response_hook_that_raises_propagates_and_is_not_retried(
    faults: FaultServer,
) -> None:
    faults.script("/site/", Action(200, SITE))

    async def reject(event: ResponseEvent) -> None:
        raise ValueError(f"unexpected {event.status}")

    async with Client(faults.base_url, retry=FAST, event_hooks={"response": [reject]}) as client:
        with pytest.raises(ValueError, match="unexpected 200"):
            await client.site.get_site()
    assert len(faults.hits("/site/")) == 1


async def test_a_hook_raising_a_retryable_error_is_retried(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE))
    calls: list[int] = []

    def flaky(event: ResponseEvent) -> None:
        calls.append(event.attempt)
        if event.attempt == 1:
            raise ServerError(status=503, method=event.method, url=event.url)

    async with Client(faults.base_url, retry=FAST, event_hooks={"response": [flaky]}) as client:
        assert (await client.site.get_site()).id == SITE["id"]
    assert calls == [1, 2]


async def test_without_hooks_no_event_is_built(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("an event was built without hooks")

    monkeypatch.setattr("aioudata._client.RequestEvent", never)
    monkeypatch.setattr("aioudata._client.ResponseEvent", never)
    faults.script("/site/", Action(200, SITE))
    async with Client(faults.base_url, retry=FAST) as client:
        assert (await client.site.get_site()).id == SITE["id"]


@pytest.mark.parametrize(
    ("hooks", "error"),
    [
        ({"requests": []}, ValueError),
        ({"request": [42]}, TypeError),
        ({"response": print}, TypeError),
    ],
)
def test_bad_hooks_are_refused(hooks: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        Client("http://udata.test/api/1", event_hooks=hooks)


def test_events_are_exported() -> None:
    assert {"RequestEvent", "ResponseEvent", "EventHooks"} <= set(aioudata.__all__)
