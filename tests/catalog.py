"""A paginating catalog server on 127.0.0.1 for pagination tests: udata's paging, with faults.

It pages a list of ``{"id", "title"}`` items the way udata's v1 lists do (``page``, ``page_size``,
``total``, ``next_page``; 404 past the end; the search cap's 400 on ``/search/`` paths) and can
inject latency, faults (503, 429, connection resets) at a seeded rate, and changes to the catalog
when a given page is requested. It counts requests, requests in flight and faults. Every test
gets its own server and stops it; nothing loops unbounded.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from aiohttp import web

from aioudata import Endpoint, Kind, Param
from tests.faults import serve_local

__all__ = ["Catalog", "Thing", "ThingPage", "things_endpoint"]


class Thing(msgspec.Struct, kw_only=True):
    id: str
    title: str | None = None


class ThingPage(msgspec.Struct, kw_only=True):
    data: list[Thing]
    page: int
    page_size: int
    total: int | None = None
    next_page: str | None = None
    previous_page: str | None = None


class BareThingPage(msgspec.Struct, kw_only=True):
    """A page without a total (only next_page says whether more follows)."""

    data: list[Thing]
    page: int
    page_size: int
    next_page: str | None = None


def things_endpoint(path: str = "/things/", response: Any = ThingPage) -> Endpoint[Any]:
    """An Endpoint for the catalog's listing, as a generated module would declare it."""
    return Endpoint(
        operation_id="list_things",
        method="GET",
        path=path,
        response=response,
        params=(
            Param("page", "page", "query", Kind.INTEGER, minimum=1),
            Param("page_size", "page_size", "query", Kind.INTEGER, minimum=1),
        ),
        item=Thing,
        tag="things",
    )


class Catalog:
    """The server. ``items`` is the live catalog: tests may change it at any time."""

    SEARCH_CAP = 10_000

    def __init__(
        self,
        size: int = 0,
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        seed: int = 1,
        with_total: bool = True,
    ) -> None:
        self.items: list[dict[str, Any]] = [make_item(i) for i in range(size)]
        self.latency = latency
        #: Per-page extra latency (page number → seconds).
        self.slow_pages: dict[int, float] = {}
        self.fault_rate = fault_rate
        self.with_total = with_total
        #: When page N is requested, ``on_page[N](catalog)`` runs first (once).
        self.on_page: dict[int, Callable[[Catalog], None]] = {}
        #: Reported total override (a stale total, as a moving catalog gives).
        self.total_override: int | None = None
        #: Items per page actually served whatever ``page_size`` asks (which is echoed).
        self.served_size: int | None = None
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.faults: Counter[str] = Counter()
        self.pages_served: list[int] = []
        self.cancelled = 0
        self._random = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/1"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/1/{tail:.*}", self._handle)
        self._runner, self.port = await serve_local(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    @staticmethod
    async def _client_left(request: web.Request, delay: float) -> bool:
        """Wait ``delay`` seconds; True as soon as the client closes the connection."""
        if delay < 0.05:
            await asyncio.sleep(delay)
            return False
        loop = asyncio.get_running_loop()
        until = loop.time() + delay
        while loop.time() < until:
            transport = request.transport
            if transport is None or transport.is_closing():
                return True
            await asyncio.sleep(0.01)
        return False

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        page = int(request.query.get("page", "1"))
        size = int(request.query.get("page_size", "20"))
        delay = self.latency + self.slow_pages.get(page, 0.0)
        if delay and await self._client_left(request, delay):
            self.cancelled += 1
            return web.Response(status=499)
        if self.fault_rate and self._random.random() < self.fault_rate:
            kind = self._random.choice(("503", "429", "reset"))
            self.faults[kind] += 1
            if kind == "reset":
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            headers = {"Retry-After": "0"} if kind == "429" else {}
            return web.json_response({"message": kind}, status=int(kind), headers=headers)
        if "/search/" in request.path and page * size > self.SEARCH_CAP:
            return web.json_response(
                {
                    "message": f"Result window is too large: page {page} with page_size {size}"
                    f" exceeds the maximum of {self.SEARCH_CAP} results."
                },
                status=400,
            )
        hook = self.on_page.pop(page, None)
        if hook is not None:
            hook(self)
        echoed, size = size, self.served_size or size
        start = (page - 1) * size
        chunk = self.items[start : start + size]
        if not chunk and page != 1:
            return web.json_response({"message": "The requested URL was not found"}, status=404)
        self.pages_served.append(page)
        total = len(self.items) if self.total_override is None else self.total_override
        more = start + size < len(self.items)
        url = f"{self.base_url}{request.path.removeprefix('/api/1')}"
        body: dict[str, Any] = {
            "data": chunk,
            "page": page,
            "page_size": echoed,
            "next_page": f"{url}?page={page + 1}&page_size={echoed}" if more else None,
            "previous_page": f"{url}?page={page - 1}&page_size={size}" if page > 1 else None,
        }
        if self.with_total:
            body["total"] = total
        return web.json_response(body)


def make_item(number: int) -> dict[str, Any]:
    return {"id": f"{number:06d}", "title": f"thing {number}"}


async def catalog_server(catalog: Catalog) -> AsyncIterator[Catalog]:
    await catalog.start()
    try:
        yield catalog
    finally:
        await catalog.stop()
