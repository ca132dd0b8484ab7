"""A local web of resource hosts for the checker's tests, and a mirror database pointing at it.

Every host is its own aiohttp server on 127.0.0.1 (its own port: the checker's hosts are
``name:port``); each records what it received (method, path, headers) and counts its requests
in flight, on the server side, so politeness is measured where a real host would see it.
Nothing here touches the internet, and every server lives for one test.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from aioudata._crawl import CheckConfig, HostLimits
from aioudata._mirror.entities import ENTITIES
from aioudata._mirror.records import decode_records
from aioudata._mirror.store import Store
from tests.faults import serve_local
from tests.test_mirror_store import dataset, raw

LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    #: The server's loop time at arrival.
    at: float = 0.0


@dataclass
class Load:
    """Requests in flight on every host of a web, now and at most."""

    now: int = 0
    peak: int = 0


@dataclass
class Host:
    """One web host: its files, how it behaves, and what it received."""

    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    #: ``ok``, ``refuse`` (HEAD answers 405), ``lie`` (HEAD says 200 with an empty body).
    head: str = "ok"
    #: Answers served first, one per request: (status, Retry-After or None).
    script: list[tuple[int, str | None]] = field(default_factory=list)
    #: path → Location (a redirect), path → status.
    redirects: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    #: Every request answered with this status, when set (a host that is down).
    always: int | None = None
    #: Requests wait for this event before being answered (a slow host), when set.
    gate: asyncio.Event | None = None
    #: Seconds each answer takes (after the gate).
    delay: float = 0.0
    robots: str | None = None
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    #: Requests waiting at the gate now.
    waiting: int = 0
    port: int = 0
    runner: web.AppRunner | None = None
    load: Load = field(default_factory=Load)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        """The checker's name for this host."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def add(self, path: str, body: bytes | None = None) -> str:
        """A file at ``path``; its URL."""
        self.files[path] = body if body is not None else f"data of {self.name}{path}".encode()
        return self.url(path)

    def hits(self, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if path is None or s.path == path]

    def etag(self, path: str) -> str:
        return '"' + hashlib.sha1(self.files[path]).hexdigest()[:16] + '"'

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = asyncio.get_running_loop().time()
        self.seen.append(Seen(request.method, request.path, dict(request.headers), now))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.load.now += 1
        self.load.peak = max(self.load.peak, self.load.now)
        try:
            if self.gate is not None:
                self.waiting += 1
                try:
                    await self.gate.wait()
                finally:
                    self.waiting -= 1
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.answer(request)
        finally:
            self.in_flight -= 1
            self.load.now -= 1

    def answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/robots.txt":
            if self.robots is None:
                return web.Response(status=404)
            return web.Response(text=self.robots)
        if self.always is not None:
            return web.Response(status=self.always)
        if self.script:
            status, retry_after = self.script.pop(0)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.Response(status=status, headers=headers)
        if path in self.redirects:
            return web.Response(status=302, headers={"Location": self.redirects[path]})
        if path in self.statuses:
            return web.Response(status=self.statuses[path])
        if request.method == "HEAD" and self.head == "refuse":
            return web.Response(status=405)
        body = self.files.get(path)
        if body is None:
            return web.Response(status=404)
        etag = self.etag(path)
        validators = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if request.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in request.headers
            and request.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            return web.Response(status=304, headers=validators)
        if request.method == "HEAD" and self.head == "lie":
            lie = {"Content-Type": "text/html", "Content-Length": "0"}
            return web.Response(status=200, headers=lie)
        return web.Response(body=body, headers={**validators, "Content-Type": "text/csv"})


class Web:
    """The hosts of one test."""

    def __init__(self) -> None:
        self.hosts: list[Host] = []
        self.load = Load()

    async def host(self, name: str, **behaviour: Any) -> Host:
        host = Host(name, load=self.load, **behaviour)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", host.handle)
        host.runner, host.port = await serve_local(app)
        self.hosts.append(host)
        return host

    async def close(self) -> None:
        for host in self.hosts:
            if host.gate is not None:
                host.gate.set()
            if host.runner is not None:
                await host.runner.cleanup()

    def requests(self) -> int:
        return sum(len(host.seen) for host in self.hosts)


@pytest.fixture
async def webhosts() -> AsyncIterator[Web]:
    hosts = Web()
    try:
        yield hosts
    finally:
        await hosts.close()


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Resolver(AbstractResolver):
    """Names ending in ``.test`` are 127.0.0.1; no other name resolves (and no DNS is asked)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.endswith(".test"):
            found: ResolveResult = {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            return [found]
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


def config(db: Path | None, **options: Any) -> CheckConfig:
    """A check of ``db`` (None: of ``db_url`` in ``options``) without waits: no rate limit,
    short back-offs and breaker pauses, and no DNS (see :class:`Resolver`)."""
    values: dict[str, Any] = {
        "per_host": HostLimits(2, None),
        "backoff": 0.01,
        "breaker_cooldown": 0.01,
        "timeout": 10.0,
        "resolver": Resolver(),
    }
    values.update(options)
    if db is not None:
        values["db"] = db
    return CheckConfig(**values)


def rows_by_url(db: Path, table: str) -> dict[str, dict[str, Any]]:
    """The rows of ``table`` (a results table) by URL."""
    import sqlite3

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return {row["url"]: dict(row) for row in conn.execute(f"SELECT * FROM {table}")}
    finally:
        conn.close()


def results(db: Path) -> dict[str, dict[str, Any]]:
    """``check_results`` rows by URL."""
    return rows_by_url(db, "check_results")


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def resource_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


def make_mirror(
    path: Path, urls: Iterable[str | tuple[str, str | None, str | None]], per_dataset: int = 5
) -> list[str]:
    """A mirror database whose resources have these URLs (or (URL, format, organization id)),
    ``per_dataset`` resources a dataset; the resource ids, in order."""
    entries = [u if isinstance(u, tuple) else (u, "csv", None) for u in urls]
    spec = ENTITIES["datasets"]
    store = Store(path)
    ids: list[str] = []
    try:
        items = []
        for start in range(0, len(entries), per_dataset):
            chunk = entries[start : start + per_dataset]
            number = start // per_dataset + 1
            item = dataset(number, resources=len(chunk))
            organization = chunk[0][2]
            if organization is not None:
                item["organization"] = {**(item.get("organization") or {}), "id": organization}
            for offset, (resource, (url, fmt, _)) in enumerate(
                zip(item["resources"], chunk, strict=True)
            ):
                resource["id"] = resource_id(start + offset)
                resource["url"] = url
                resource["format"] = fmt
                ids.append(resource["id"])
            items.append(item)
        store.write_batch(spec, decode_records(spec, raw(*items)), 1, None)
    finally:
        store.close()
    return ids


async def test_the_web_serves_files_with_validators(webhosts: Web) -> None:
    import aiohttp

    host = await webhosts.host("files")
    url = host.add("/a.csv", b"a,b\n1,2\n")
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 200 and await response.read() == b"a,b\n1,2\n"
            etag = response.headers["ETag"]
        async with session.head(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
    assert [s.method for s in host.seen] == ["GET", "HEAD"] and host.max_in_flight == 1


def test_a_mirror_holds_the_urls(tmp_path: Path) -> None:
    import sqlite3

    urls = [f"http://127.0.0.1:1/{n}.csv" for n in range(7)]
    ids = make_mirror(tmp_path / "m.sqlite", urls, per_dataset=3)
    conn = sqlite3.connect(tmp_path / "m.sqlite")
    found = dict(conn.execute("SELECT id, url FROM resources WHERE gone_at IS NULL"))
    conn.close()
    assert found == dict(zip(ids, urls, strict=True))
