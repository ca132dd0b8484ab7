"""Raw access: ``client.raw(call)`` gives the HTTP answer; ``parse()`` gives what the call would."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import aioudata
from aioudata import Client, NotFoundError, Response, RetryPolicy, StrictDecodeError
from aioudata.models import Dataset, DatasetPage, Site
from tests.faults import Action, FaultServer

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
KEY = "udata_raw_secret_key"
FAST = RetryPolicy(max_attempts=3, backoff=0.001, max_backoff=0.005)


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["body"]


SITE = recorded("site")
DATASET = recorded("dataset")


def client_for(server: FaultServer, **options: Any) -> Client:
    options.setdefault("retry", FAST)
    return Client(server.base_url, api_key=KEY, **options)


async def test_raw_gives_status_headers_bytes_and_parse_gives_the_model(
    faults: FaultServer,
) -> None:
    faults.script("/datasets/x/", Action(200, DATASET, {"X-Total-Time": "12"}))
    async with client_for(faults) as client:
        response = await client.raw(client.datasets.get_dataset("x"))
        model = await client.datasets.get_dataset("x")
    assert isinstance(response, Response)
    assert response.status == 200 and response.method == "GET"
    assert response.url == f"{faults.base_url}/datasets/x/"
    assert response.headers["x-total-time"] == "12"  # case-insensitive
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.content) == DATASET
    assert response.elapsed > 0
    parsed = response.parse()
    assert isinstance(parsed, Dataset) and parsed == model
    # The key went to the server, and appears nowhere in the answer's description.
    assert faults.hits("/datasets/x/")[0].headers["X-API-KEY"] == KEY
    assert KEY not in repr(response) and KEY not in response.url
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.status = 500  # type: ignore[misc]


async def test_parse_honours_strict_mode(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, {**SITE, "brand_new_field": 1}))
    async with client_for(faults, strict=True) as client:
        response = await client.raw(client.site.get_site())
        with pytest.raises(StrictDecodeError, match="brand_new_field"):
            response.parse()
        with pytest.raises(StrictDecodeError):
            await client.site.get_site()  # the same as the normal path
    async with client_for(faults) as tolerant:
        assert (await tolerant.raw(tolerant.site.get_site())).parse().id == SITE["id"]


async def test_bytes_and_empty_answers_parse_as_the_operation_returns(faults: FaultServer) -> None:
    faults.script("/datasets/r/abc", Action(200, b"a;b\n1;2\n"))
    faults.script("/datasets/x/", Action(204, b""))
    async with client_for(faults) as client:
        csv = await client.raw(client.datasets.redirect_resource("abc"))
        deleted = await client.raw(client.datasets.delete_dataset("x"))
    assert csv.content == b"a;b\n1;2\n" and csv.parse() == b"a;b\n1;2\n"
    assert deleted.status == 204 and deleted.method == "DELETE" and deleted.parse() is None


async def test_a_listing_awaited_for_one_page(faults: FaultServer) -> None:
    page = recorded("datasets_page")
    faults.script("/datasets/", Action(200, page))
    async with client_for(faults) as client:
        response = await client.raw(client.datasets.list_datasets(page=2, page_size=5))
    assert "page=2" in response.url and "page_size=5" in response.url
    parsed = response.parse()
    assert isinstance(parsed, DatasetPage) and parsed.total == page["total"]


async def test_errors_still_raise_typed_with_headers_and_retries_still_happen(
    faults: FaultServer,
) -> None:
    faults.script("/datasets/gone/", Action(404, {"message": "Not found"}, {"X-Request-Id": "r-1"}))
    faults.script("/site/", Action(503), Action(200, SITE))
    async with client_for(faults) as client:
        with pytest.raises(NotFoundError) as info:
            await client.raw(client.datasets.get_dataset("gone"))
        response = await client.raw(client.site.get_site())
    assert info.value.headers["x-request-id"] == "r-1"
    assert response.status == 200 and response.parse().id == SITE["id"]
    assert client.stats.retries == 1 and len(faults.hits("/site/")) == 2


async def test_the_final_answer_of_a_redirect_is_returned(faults: FaultServer) -> None:
    faults.script("/datasets/r/abc", Action(302, None, {"Location": "/api/1/files/f.csv"}))
    faults.script("/files/f.csv", Action(200, b"x"))
    async with client_for(faults) as client:
        response = await client.raw(client.datasets.redirect_resource("abc"))
    assert response.status == 200 and response.content == b"x"
    assert response.url == f"{faults.base_url}/files/f.csv"


async def test_only_the_raw_call_is_raw_other_tasks_are_not(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE, delay=0.05))
    async with client_for(faults) as client:
        raw, model, raw_again = await asyncio.gather(
            client.raw(client.site.get_site()),
            client.site.get_site(),
            client.raw(client.site.get_site()),
        )
        after = await client.site.get_site()  # the context variable was reset
    assert isinstance(raw, Response) and isinstance(raw_again, Response)
    assert isinstance(model, Site) and isinstance(after, Site)
    assert raw.parse() == model == after


async def test_a_second_request_inside_a_raw_call_decodes_as_usual(faults: FaultServer) -> None:
    faults.script("/site/", Action(200, SITE))
    async with client_for(faults) as client:

        async def two_calls() -> Site:
            first = await client.site.get_site()  # the raw one
            second = await client.site.get_site()
            assert isinstance(second, Site)
            return first

        response = await client.raw(two_calls())
    assert isinstance(response, Response) and response.parse().id == SITE["id"]


async def test_raw_refuses_what_is_not_an_operation_call(faults: FaultServer) -> None:
    async with client_for(faults) as client:
        with pytest.raises(TypeError, match="one operation call"):
            await client.raw(asyncio.sleep(0, result=1))
    assert faults.seen == []


def test_response_is_exported() -> None:
    assert aioudata.Response is Response and "Response" in aioudata.__all__
