"""X-Fields masks: a masked call decodes into the partial twin of its model, listings walk as usual.

A local server (127.0.0.1) applies masks the way flask-restx does (only the named keys, nested
masks for nested objects and lists); the real udata server is in tests/test_masks_e2e.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

import aioudata
from aioudata import DecodeError, Endpoint, decode
from aioudata._generated import models as m
from tests.faults import serve_local
from tests.generated import all_endpoints

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
DATASET = json.loads((FIXTURES / "dataset.json").read_text(encoding="utf-8"))["body"]

Mask = dict[str, "Mask | None"]


def parse_mask(text: str) -> Mask:
    """``data{id,title},total`` -> {"data": {"id": None, "title": None}, "total": None}."""
    tokens = re.findall(r"[^{},\s]+|[{},]", text)
    position = 0

    def fields() -> Mask:
        nonlocal position
        found: Mask = {}
        while position < len(tokens) and tokens[position] != "}":
            name = tokens[position]
            position += 1
            if name == ",":
                continue
            found[name] = None
            if position < len(tokens) and tokens[position] == "{":
                position += 1
                found[name] = fields()
                position += 1  # the closing brace
        return found

    return fields()


def apply_mask(value: Any, mask: Mask) -> Any:
    """What flask-restx sends for ``value`` under ``mask``: only the keys it names."""
    if isinstance(value, list):
        return [apply_mask(item, mask) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: value[key] if sub is None else apply_mask(value[key], sub)
        for key, sub in mask.items()
        if key in value
    }


def dataset(number: int) -> dict[str, Any]:
    item = copy.deepcopy(DATASET)
    item["id"] = f"{number:024x}"
    item["title"] = f"Dataset {number}"
    return item


class Portal:
    """``/api/1/datasets/`` (paginated) and ``/api/1/datasets/{id}/``, masks applied."""

    def __init__(self, count: int) -> None:
        self.items = [dataset(n) for n in range(1, count + 1)]
        self.masks: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Portal:
        app = web.Application()
        app.router.add_get("/api/1/datasets/", self.listing)
        app.router.add_get("/api/1/datasets/{id}/", self.one)
        self._runner, port = await serve_local(app)
        self.base_url = f"http://127.0.0.1:{port}/api/1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def answer(self, request: web.Request, body: Any) -> web.Response:
        mask = request.headers.get("X-Fields")
        self.masks.append(mask)
        return web.json_response(apply_mask(body, parse_mask(mask)) if mask else body)

    async def listing(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.02)  # long enough for the walk to have several pages out
        finally:
            self.in_flight -= 1
        page = int(request.query.get("page", 1))
        size = int(request.query.get("page_size", 20))
        data = self.items[(page - 1) * size : page * size]
        if not data and page > 1:
            raise web.HTTPNotFound(text='{"message": "Not Found"}')
        more = page * size < len(self.items)
        body = {
            "data": data,
            "page": page,
            "page_size": size,
            "total": len(self.items),
            "next_page": f"{self.base_url}/datasets/?page={page + 1}" if more else None,
            "previous_page": None,
        }
        return self.answer(request, body)

    async def one(self, request: web.Request) -> web.Response:
        found = next(d for d in self.items if d["id"] == request.match_info["id"])
        return self.answer(request, found)


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    async with Portal(23) as served:
        yield served


async def test_a_masked_get_decodes_into_the_partial_model(portal: Portal) -> None:
    async with aioudata.Client(portal.base_url, strict=True) as client:
        partial = await client.datasets.get_dataset(f"{1:024x}", x_fields="id,title,resources{id}")
        full = await client.datasets.get_dataset(f"{1:024x}")
    assert portal.masks == ["id,title,resources{id}", None]
    assert type(partial) is m.DatasetPartial and type(full) is m.Dataset
    assert (partial.id, partial.title) == (full.id, full.title)
    assert partial.resources is not None
    assert [r.id for r in partial.resources] == [r.id for r in full.resources]
    assert all(type(r) is m.ResourcePartial and r.url is None for r in partial.resources)
    assert partial.created_at is None and partial.slug is None  # not asked, not sent


async def test_the_full_model_refuses_a_masked_answer(portal: Portal) -> None:
    # What every masked call did before partial models: the required fields are missing.
    async with aioudata.Client(portal.base_url) as client:
        raw = await client.raw(client.datasets.get_dataset(f"{2:024x}", x_fields="id,title"))
    with pytest.raises(DecodeError, match="missing required field"):
        decode(raw.content, m.Dataset)
    assert raw.parse() == m.DatasetPartial(id=f"{2:024x}", title="Dataset 2")


async def test_a_masked_listing_walks_concurrently_in_order(portal: Portal) -> None:
    async with aioudata.Client(portal.base_url, strict=True) as client:
        masked = client.datasets.list_datasets(page_size=5, x_fields="data{id,title},total")
        listing = masked.options(concurrency=4)
        items = [item async for item in listing]
    assert [i.id for i in items] == [d["id"] for d in portal.items]
    assert all(type(i) is m.DatasetPartial and i.title and i.license is None for i in items)
    assert listing.stats.pages == 5 and listing.stats.expected == 23 and listing.stats.missed == 0
    assert len(portal.masks) == 5  # page 1, then pages 2-5 planned from the total
    assert portal.max_in_flight >= 2  # pages 2-5 requested together
    assert set(portal.masks) == {"data{id,title},total"}


async def test_a_masked_listing_without_total_follows_full_pages(portal: Portal) -> None:
    async with aioudata.Client(portal.base_url, strict=True) as client:
        listing = client.datasets.list_datasets(page_size=5, x_fields="data{id}")
        page = await listing
        ids = [item.id async for item in listing]
    assert type(page) is m.DatasetPagePartial and page.total is None and page.page is None
    assert page.data is not None and len(page.data) == 5
    assert ids == [d["id"] for d in portal.items]


async def test_pages_of_a_masked_listing_are_partial_pages(portal: Portal) -> None:
    async with aioudata.Client(portal.base_url) as client:
        listing = client.datasets.list_datasets(page_size=10, x_fields="data{id},total,next_page")
        pages = [page async for page in listing.pages()]
    assert [type(p) for p in pages] == [m.DatasetPagePartial] * 3
    assert [len(p.data or ()) for p in pages] == [10, 10, 3]
    assert [p.next_page is not None for p in pages] == [True, True, False]


def masked_endpoints() -> list[Endpoint[Any]]:
    return [e for e in all_endpoints() if any(p.wire == "X-Fields" for p in e.params)]


def test_every_operation_taking_a_mask_has_partial_models() -> None:
    endpoints = masked_endpoints()
    assert len(endpoints) > 100
    for endpoint in endpoints:
        if not _is_model(endpoint.response):
            assert endpoint.partial is None, endpoint.operation_id  # Any, bytes, None
            continue
        masked = endpoint.masked()
        assert (masked.operation_id, masked.path, masked.params) == (
            endpoint.operation_id,
            endpoint.path,
            endpoint.params,
        )
        assert masked.paginated == endpoint.paginated
        # Whatever the mask left out, an answer decodes: {} for an object, [{}] for a list.
        body = b"[{}]" if _origin_is_list(masked.response) else b"{}"
        assert decode(body, masked.response, strict=True) is not None
        if endpoint.paginated:
            assert decode(b'{"data": [{}]}', masked.response).data == [masked.item()]


def test_a_partial_model_has_its_models_fields_all_optional() -> None:
    partials = [name for name in m.__all__ if name.endswith("Partial")]
    assert len(partials) > 100
    for name in partials:
        partial, full = getattr(m, name), getattr(m, name.removesuffix("Partial"))
        full_fields = {f.encode_name: f for f in msgspec.structs.fields(full)}
        fields = {f.encode_name: f for f in msgspec.structs.fields(partial)}
        assert set(fields) == set(full_fields), name
        assert all(f.default is None for f in fields.values()), name


def test_an_endpoint_without_partial_models_refuses_to_be_masked() -> None:
    endpoint = next(e for e in all_endpoints() if e.operation_id == "delete_dataset")
    with pytest.raises(ValueError, match="no partial model"):
        endpoint.masked()


def _is_model(response: Any) -> bool:
    inner = getattr(response, "__args__", (response,))[0]
    return isinstance(inner, type) and issubclass(inner, msgspec.Struct)


def _origin_is_list(response: Any) -> bool:
    return getattr(response, "__origin__", None) is list
