"""The client's request path: request shapes (aioresponses), typed errors, secrets."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import CallbackResult, aioresponses
from yarl import URL

import aioudata
from aioudata import (
    ArgumentError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConnectError,
    GoneError,
    NotFoundError,
    RetryPolicy,
    ServerError,
)
from aioudata.models import Dataset, DatasetInput

BASE = "http://udata.test/api/1"
KEY = "udata_secret_key_0123456789"
FIXTURES = Path(__file__).parent / "fixtures" / "responses"


def recorded(name: str) -> Any:
    """The body of a response recorded from the real udata server."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["body"]


DATASET = recorded("dataset")
FAST_RETRY = RetryPolicy(max_attempts=2, backoff=0.001)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(BASE, api_key=KEY, retry=FAST_RETRY) as c:
        yield c


def sent(mocked: aioresponses, method: str, url: str) -> Any:
    """The keyword arguments of the one request sent to ``url``."""
    calls = mocked.requests[(method, URL(url, encoded=True))]
    assert len(calls) == 1
    return calls[0].kwargs


async def test_get_escapes_path_parameters_and_sends_key_and_user_agent(client: Client) -> None:
    url = f"{BASE}/datasets/a%2Fb%20c/"
    with aioresponses() as mocked:
        mocked.get(url, payload=DATASET)
        dataset = await client.datasets.get_dataset("a/b c")
    assert isinstance(dataset, Dataset) and dataset.id == DATASET["id"]
    assert dataset.title == DATASET["title"] and dataset.acronym == DATASET["acronym"]
    headers = sent(mocked, "GET", url)["headers"]
    assert headers["X-API-KEY"] == KEY


async def test_list_parameters_repeat_and_headers_go_by_wire_name(client: Client) -> None:
    page = {"data": [DATASET], "page": 2, "page_size": 1, "total": 3, "next_page": None}
    with aioresponses() as mocked:
        mocked.get(re.compile(rf"^{re.escape(BASE)}/datasets/\?.*$"), payload=page)
        result = await client.datasets.list_datasets(
            page=2, page_size=1, tag=["a", "b"], featured=True, x_fields="data{id},total"
        )
    assert result.total == 3 and result.data and result.data[0].title == DATASET["title"]
    (((method, url), calls),) = mocked.requests.items()
    assert method == "GET"
    assert sorted(url.query.items()) == [
        ("featured", "true"),
        ("page", "2"),
        ("page_size", "1"),
        ("tag", "a"),
        ("tag", "b"),
    ]
    assert calls[0].kwargs["headers"]["X-Fields"] == "data{id},total"


async def test_json_body_from_a_model(client: Client) -> None:
    with aioresponses() as mocked:
        mocked.post(f"{BASE}/datasets/", payload=DATASET, status=201)
        created = await client.datasets.create_dataset(
            body=DatasetInput(title="Catalogue", description="d", frequency="daily")
        )
    assert created.id == DATASET["id"]
    kwargs = sent(mocked, "POST", f"{BASE}/datasets/")
    # Only what was set is sent: unset optional fields are omitted, not sent as null.
    assert json.loads(kwargs["data"]) == {
        "title": "Catalogue",
        "description": "d",
        "frequency": "daily",
    }
    assert kwargs["headers"]["Content-Type"] == "application/json"


async def test_bad_arguments_fail_before_any_request(client: Client) -> None:
    with aioresponses() as mocked:
        with pytest.raises(TypeError, match="page_size must be an int"):
            await client.datasets.list_datasets(page_size="10")  # type: ignore[arg-type]
        with pytest.raises(ArgumentError, match="dataset must not be empty"):
            await client.datasets.get_dataset("")
        with pytest.raises(TypeError):
            await client.datasets.get_dataset()  # type: ignore[call-arg]
        assert mocked.requests == {}


async def test_validation_error_carries_the_servers_errors_dict(client: Client) -> None:
    with aioresponses() as mocked:
        mocked.post(
            f"{BASE}/datasets/",
            status=400,
            payload={"errors": {"title": ["This field is required."]}},
        )
        with pytest.raises(BadRequestError) as info:
            await client.datasets.create_dataset(body={})
    error = info.value
    assert error.status == 400 and error.method == "POST"
    assert error.errors == {"title": ["This field is required."]}
    assert error.url == f"{BASE}/datasets/"
    assert "title: This field is required." in str(error)


@pytest.mark.parametrize(
    ("status", "payload", "error_type"),
    [
        (401, {"message": "Invalid API token"}, AuthenticationError),
        (404, {"message": "The requested URL was not found on the server."}, NotFoundError),
        (404, {"error": "Not Found", "status": 404}, NotFoundError),
        (410, {"message": "Dataset has been deleted"}, GoneError),
        (502, None, ServerError),
    ],
)
async def test_status_maps_to_typed_error(
    client: Client, status: int, payload: Any, error_type: type[aioudata.APIError]
) -> None:
    with aioresponses() as mocked:
        if payload is None:
            mocked.get(
                f"{BASE}/datasets/x/", status=status, body="<html>Bad Gateway</html>", repeat=True
            )
        else:
            mocked.get(f"{BASE}/datasets/x/", status=status, payload=payload, repeat=True)
        with pytest.raises(error_type) as info:
            await client.datasets.get_dataset("x")
    assert info.value.status == status
    # Only 5xx (and 408/429) are worth a second try.
    assert client.stats.retries == (1 if status >= 500 else 0)
    assert client.stats.statuses[status] == (2 if status >= 500 else 1)
    if payload:
        assert info.value.message == (payload.get("message") or payload.get("error"))


async def test_key_is_not_sent_when_a_redirect_leaves_the_host(client: Client) -> None:
    with aioresponses() as mocked:
        mocked.get(
            f"{BASE}/datasets/r/abc",
            status=302,
            headers={"Location": "https://files.example.org/f.csv"},
        )
        mocked.get("https://files.example.org/f.csv", body=b"a;b\n1;2\n")
        body = await client.datasets.redirect_resource("abc")
    assert body == b"a;b\n1;2\n"
    assert sent(mocked, "GET", f"{BASE}/datasets/r/abc")["headers"]["X-API-KEY"] == KEY
    assert "X-API-KEY" not in sent(mocked, "GET", "https://files.example.org/f.csv")["headers"]


async def test_key_never_appears_in_repr_errors_or_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert KEY not in repr(client) and "with API key" in repr(client)
    with aioresponses() as mocked:
        mocked.get(f"{BASE}/me/", status=401, payload={"message": "Invalid API token"})
        with pytest.raises(AuthenticationError) as info:
            await client.me.get_me()
    assert KEY not in str(info.value) and KEY not in repr(info.value.__dict__)
    assert KEY not in caplog.text


async def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDATA_API_KEY", "from-env")
    async with Client(BASE, retry=FAST_RETRY) as c:
        with aioresponses() as mocked:
            mocked.get(f"{BASE}/me/", payload=recorded("me"))
            await c.me.get_me()
        assert sent(mocked, "GET", f"{BASE}/me/")["headers"]["X-API-KEY"] == "from-env"


async def test_anonymous_client_sends_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UDATA_API_KEY", raising=False)
    async with Client(BASE, retry=FAST_RETRY) as c:
        assert "anonymous" in repr(c)
        with aioresponses() as mocked:
            mocked.get(f"{BASE}/datasets/x/", payload=DATASET)
            await c.datasets.get_dataset("x")
        assert "X-API-KEY" not in sent(mocked, "GET", f"{BASE}/datasets/x/")["headers"]


async def test_transport_failure_is_a_typed_error_naming_the_url(client: Client) -> None:
    refused = aiohttp.ClientConnectorError(
        ConnectionKey("udata.test", 80, False, True, None, None, None), ConnectionRefusedError()
    )
    with aioresponses() as mocked:
        mocked.get(f"{BASE}/datasets/x/", exception=refused, repeat=True)
        with pytest.raises(ConnectError) as info:
            await client.datasets.get_dataset("x")
    assert info.value.url == f"{BASE}/datasets/x/" and info.value.method == "GET"
    assert client.stats.retries == 1  # FAST_RETRY allows two attempts
    assert client.stats.errors["ConnectError"] == 2


async def test_iterating_a_listing_follows_pages_and_stops_at_404(client: Client) -> None:
    def page(n: int, ids: list[str], last: bool = False) -> dict[str, Any]:
        return {
            "data": [{**DATASET, "id": i} for i in ids],
            "page": n,
            "page_size": 2,
            "total": 5,
            "next_page": None if last else f"{BASE}/datasets/?page={n + 1}",
        }

    responses = {1: page(1, ["a", "b"]), 2: page(2, ["b", "c"]), 3: None}

    def reply(url: URL, **kwargs: Any) -> CallbackResult:
        body = responses[int(url.query["page"])]
        if body is None:
            return CallbackResult(status=404, payload={"message": "not found"})
        return CallbackResult(payload=body)

    with aioresponses() as mocked:
        mocked.get(re.compile(rf"^{re.escape(BASE)}/datasets/\?.*$"), callback=reply, repeat=True)
        listing = client.datasets.list_datasets(page_size=2)
        ids = [d.id async for d in listing]
    # "b" moved from page 1 to page 2 while crawling: yielded once; page 3 is past the end.
    assert ids == ["a", "b", "c"]
    assert listing.stats.duplicates == 1
    # total says 5, 3 distinct were listed: at least 2 were missed when "b" shifted.
    assert listing.stats.missed == 2 and listing.stats.moved


async def test_page_concurrency_is_the_default_of_every_listing() -> None:
    async with Client(BASE, page_concurrency=3) as c:
        assert c.page_concurrency == 3
        assert "concurrency=3" in repr(c.datasets.list_datasets())
        assert "concurrency=5" in repr(c.datasets.list_datasets().options(concurrency=5))
    assert Client(BASE).page_concurrency == 8
    with pytest.raises(ValueError, match="page_concurrency"):
        Client(BASE, page_concurrency=0)
