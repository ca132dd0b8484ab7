"""The API v2 through the client: client.v2, its URLs next to the v1 root, the generated stubs,
the search window, and the mirror's topics on the generated endpoints (no internet: local
servers on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import aioudata
from aioudata import ArgumentError, Client, RetryPolicy, SearchCapError
from aioudata._endpoint import Endpoint, api_root
from aioudata._generated import models as m
from aioudata._generated.namespaces import OPERATIONS as V1_OPERATIONS
from aioudata._generated.v2.namespaces import OPERATIONS
from aioudata._generated.v2.operations import topics
from aioudata._mirror.entities import ENTITIES
from codegen.operations import method_name
from codegen.spec_loader import fragment_paths
from tests.faults import serve_local

ONCE = RetryPolicy(max_attempts=1)
ROOT = Path(__file__).resolve().parents[1]
V1_MANIFEST = json.loads((ROOT / "openapi" / "manifest.json").read_text("utf-8"))
V2_MANIFEST = json.loads((ROOT / "openapi" / "v2" / "manifest.json").read_text("utf-8"))


def v2_endpoints() -> dict[tuple[str, str], Endpoint[Any]]:
    found: dict[tuple[str, str], Endpoint[Any]] = {}
    for tag in OPERATIONS:
        module = __import__(f"aioudata._generated.v2.operations.{tag}", fromlist=["_"])
        for value in vars(module).values():
            if isinstance(value, Endpoint):
                found[(value.tag, value.operation_id)] = value
    return found


# --- the generated API v2 -------------------------------------------------------------------


def test_operation_count_covers_both_versions() -> None:
    assert sum(len(ops) for ops in OPERATIONS.values()) == V2_MANIFEST["operations"] == 36
    assert {tag: len(ops) for tag, ops in OPERATIONS.items()} == V2_MANIFEST["operations_by_tag"]
    both = sum(len(ops) for ops in V1_OPERATIONS.values()) + len(v2_endpoints())
    assert both == V1_MANIFEST["operations"] + V2_MANIFEST["operations"] == 247 + 36


def test_every_v2_operation_has_a_stub_relative_to_the_v2_root() -> None:
    client = Client("http://127.0.0.1:9/api/1")
    endpoints = v2_endpoints()
    spec: dict[tuple[str, str], tuple[str, str]] = {}
    for path in fragment_paths(ROOT / "openapi" / "v2"):
        ((route, item),) = json.loads(path.read_text("utf-8"))["paths"].items()
        for verb, op in item.items():
            if verb != "parameters":
                spec[(op["tags"][0], method_name(op["operationId"]))] = (verb.upper(), route)
    assert set(endpoints) == set(spec)
    for (tag, name), (verb, route) in spec.items():
        endpoint = endpoints[(tag, name)]
        assert (endpoint.method, endpoint.path, endpoint.api) == (verb, route, 2)
        stub = getattr(getattr(client.v2, tag), name)
        assert inspect.iscoroutinefunction(stub) is not endpoint.paginated, (tag, name)
    # Listings users page through: search, a dataset's resources, topics and their elements.
    for tag, name in [
        ("datasets", "search_datasets"),
        ("datasets", "list_resources"),
        ("topics", "list_topics"),
        ("topics", "topic_elements"),
        ("organizations", "search_organizations"),
        ("reuses", "search_reuses"),
    ]:
        assert endpoints[(tag, name)].paginated, name
    # flask-restx's fallback id "get_topics_api" reads as the listing it is.
    assert endpoints[("topics", "list_topics")].path == "/topics/"


def test_api_root_is_derived_from_the_version_segment() -> None:
    assert api_root("/api/1", 2) == "/api/2"
    assert api_root("/api/1/", 2) == "/api/2"
    assert api_root("/udata/api/1", 2) == "/udata/api/2"
    assert api_root("/api/2", 2) == "/api/2"  # a client made with the v2 root keeps it
    for base in ("", "/", "/custom", "/api/v1"):
        with pytest.raises(ValueError, match="cannot be derived"):
            api_root(base, 2)


class _Recorder:
    """A server on 127.0.0.1 recording each request's path and answering a fixed body."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.port = 0
        self.answers: dict[str, Any] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path_qs)
        return web.json_response(self.answers.get(request.path, {}))


@pytest.fixture
async def recorder() -> AsyncIterator[_Recorder]:
    server = _Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner, server.port = await serve_local(app)
    try:
        yield server
    finally:
        await runner.cleanup()


TOPIC = {
    "id": "t1",
    "name": "Transports",
    "slug": "transports",
    "created_at": "2024-01-01T00:00:00+00:00",
    "tags": ["mobilite"],
    "uri": "http://x/api/2/topics/transports/",
    "organization": {"class": "Organization", "id": "o1", "name": "Org", "slug": "org"},
    "elements": {"rel": "subsection", "href": "http://x/api/2/topics/t1/elements/", "type": "GET",
                 "total": 3},
}  # fmt: skip


async def test_client_v2_requests_go_below_the_v2_root_next_to_the_v1_one(
    recorder: _Recorder,
) -> None:
    recorder.answers = {"/prefix/api/2/topics/t1/": TOPIC}
    base = f"http://127.0.0.1:{recorder.port}/prefix/api/1"
    async with Client(base, retry=ONCE) as client:
        topic = await client.v2.topics.get_topic("t1")
        assert isinstance(topic, m.TopicV2) and topic.elements is not None
        assert (topic.elements.total, topic.organization and topic.organization.id) == (3, "o1")
        await client.raw(client.site.get_site())  # v1 stays where it was
        raw = await client.raw(client.v2.datasets.search_datasets(q="bus", page_size=5))
        assert raw.url.endswith("/prefix/api/2/datasets/search/?q=bus&page=1&page_size=5")
    assert recorder.paths == [
        "/prefix/api/2/topics/t1/",
        "/prefix/api/1/site/",
        "/prefix/api/2/datasets/search/?q=bus&page=1&page_size=5",
    ]
    # A client made with the v2 root (the mirror's for topics) keeps it for v2 operations.
    async with Client(f"http://127.0.0.1:{recorder.port}/prefix/api/2", retry=ONCE) as client:
        await client.v2.topics.get_topic("t1")
    assert recorder.paths[-1] == "/prefix/api/2/topics/t1/"


async def test_no_v2_root_next_to_a_base_without_a_version(recorder: _Recorder) -> None:
    async with Client(f"http://127.0.0.1:{recorder.port}/custom", retry=ONCE) as client:
        with pytest.raises(ArgumentError, match=r"API v2 root cannot be derived.*/custom"):
            await client.v2.topics.get_topic("t1")
        await client.raw(client.site.get_site())  # v1: relative to the base, as always
    assert recorder.paths == ["/custom/site/"]


# --- the search window ------------------------------------------------------------------------


class _Search:
    """A search endpoint the way data.gouv.fr's search service pages: ``total`` stops at the
    window, and a page past it answers udata's 400."""

    def __init__(self, matches: int, window: int) -> None:
        self.matches = matches
        self.window = window
        self.pages: list[tuple[int, int]] = []

    async def handle(self, request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        size = int(request.query.get("page_size", "20"))
        self.pages.append((page, size))
        if page * size > self.window:
            message = f"Result window is too large: page {page} with page_size {size} exceeds"
            return web.json_response({"message": message}, status=400)
        start = (page - 1) * size
        data = [
            {"id": f"d{n}", "title": f"D{n}"} for n in range(start, min(start + size, self.matches))
        ]
        total = min(self.matches, self.window)
        more = page * size < total
        body = {"data": data, "page": page, "page_size": size, "total": total, "facets": {},
                "next_page": "next" if more else None, "previous_page": None}  # fmt: skip
        return web.json_response(body)


async def drain(listing: AsyncIterable[Any], into: list[Any]) -> None:
    """Every item of ``listing`` into ``into``, until the end or an error."""
    async for item in listing:
        into.append(item)


@pytest.fixture
async def search() -> AsyncIterator[tuple[_Search, str]]:
    server = _Search(matches=45, window=30)
    app = web.Application()
    app.router.add_get("/api/2/datasets/search/", server.handle)
    runner, port = await serve_local(app)
    try:
        yield server, f"http://127.0.0.1:{port}/api/1"
    finally:
        await runner.cleanup()


async def test_a_search_walk_stops_at_the_window_with_a_search_cap_error(
    search: tuple[_Search, str],
) -> None:
    server, base = search
    async with Client(base, retry=ONCE) as client:
        listing = client.v2.datasets.search_datasets(page_size=10, x_fields="data{id},total")
        got: list[Any] = []
        with pytest.raises(SearchCapError) as info:
            await drain(listing.options(max_results=30), got)
        # Everything the window serves, then the error, and no request past the window,
        # although total (capped like the real search's) never said there was more.
        assert len(got) == 30 and (info.value.cap, info.value.page) == (30, 4)
        assert max(page for page, _ in server.pages) == 3
        quiet = [d async for d in listing.options(max_results=30, over_cap="stop")]
        assert len(quiet) == 30
        # The default window is udata's 10,000, known for every v2 search listing.
        with pytest.raises(SearchCapError, match="search cap of 10000"):
            await client.v2.datasets.search_datasets(page=101, page_size=100)
        with pytest.raises(SearchCapError, match="search cap of 10000"):
            await client.v2.topics.search_topics(page=11, page_size=1000)
    assert (101, 100) not in server.pages and (11, 1000) not in server.pages


# --- the mirror's topics ----------------------------------------------------------------------


def test_the_mirror_lists_topics_through_the_generated_endpoints() -> None:
    spec = ENTITIES["topics"]
    assert spec.list_endpoint == dataclasses.replace(
        topics.LIST_TOPICS, response=spec.list_endpoint.response
    )
    assert spec.get_endpoint == dataclasses.replace(topics.GET_TOPIC, response=bytes)
    assert spec.model is m.TopicV2 and spec.api_version == 2 and spec.tagged
    # The filters the mirror passes are the listing's own parameters.
    assert all(spec.accepts(name) for name in ("q", "organization", "tag", "sort", "page_size"))
    assert spec.list_endpoint.api == spec.get_endpoint.api == 2
    # Every generated endpoint constant is public: what the mirror imports.
    assert "LIST_TOPICS" in topics.__all__ and "GET_TOPIC" in topics.__all__
    assert aioudata.models.TopicV2 is m.TopicV2
