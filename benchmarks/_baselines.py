"""What aioudata is measured against: raw aiohttp, and a walker in the official client's style.

- :func:`raw_session`: an aiohttp session with the connector, timeout and headers an
  ``aioudata.Client`` uses, so a comparison measures aioudata's own work, not its settings.
- :func:`raw_pages`: pages fetched with raw aiohttp, ``concurrency`` at a time (page 1 first
  for the total, then the rest through a fixed pool of workers), decoded with msgspec into the
  same models or with json.loads.
- :func:`walk_like_datagouv_client`: a re-implementation of datagouv-client 0.5.1's
  ``Client.get_all_from_api_query`` (the official data.gouv.fr Python client): one GET at a
  time, ``raise_for_status``, ``r.json()["data"]`` yielded item by item, then
  ``r.json()["next_page"]`` (the body is parsed twice per page, as there) until it is null.
  The same loop on aiohttp instead of niquests' blocking session, so it runs in the benchmark's
  event loop; datagouv-client itself can be pointed at a local server (its ``base_url``
  attribute), but it brings niquests and urllib3-future, which replaces urllib3 in the
  environment it is installed in, so it is not a dependency of the dev environment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import msgspec

import aioudata


def raw_session(client: aioudata.Client | None = None) -> aiohttp.ClientSession:
    """A plain aiohttp session with ``client``'s connector settings, timeout and headers."""
    client = client or aioudata.Client("http://127.0.0.1/api/1")
    connector = aiohttp.TCPConnector(
        limit=getattr(client, "_max_connections", 32),
        limit_per_host=getattr(client, "_max_connections_per_host", 16),
        ttl_dns_cache=300,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=getattr(client, "_timeout", aiohttp.ClientTimeout(total=60)),
        headers={
            "User-Agent": getattr(client, "_user_agent", "bench"),
            "Accept": "application/json",
        },
    )


def msgspec_decoder(model: Any) -> Callable[[bytes], Any]:
    return msgspec.json.Decoder(model).decode


async def get_decoded(
    session: aiohttp.ClientSession, url: str, params: dict[str, str], decode: Callable[[bytes], Any]
) -> Any:
    """One GET: raise on an error status, decode the body."""
    async with session.get(url, params=params) as response:
        body = await response.read()
        response.raise_for_status()
    return decode(body)


async def raw_pages(
    session: aiohttp.ClientSession,
    url: str,
    page_size: int,
    concurrency: int,
    decode: Callable[[bytes], Any],
) -> AsyncIterator[Any]:
    """Every page of a listing, ``concurrency`` requests at a time, in arrival order.

    The simplest correct concurrent walker: no retry, no de-duplication, no ordering.
    """
    first = await get_decoded(session, url, {"page": "1", "page_size": str(page_size)}, decode)
    yield first
    total = first["total"] if isinstance(first, dict) else first.total
    numbers = iter(range(2, -(-total // page_size) + 1))
    done: asyncio.Queue[Any] = asyncio.Queue()

    async def worker() -> None:
        for number in numbers:
            params = {"page": str(number), "page_size": str(page_size)}
            await done.put(await get_decoded(session, url, params, decode))
        await done.put(None)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        running = len(workers)
        while running:
            page = await done.get()
            if page is None:
                running -= 1
                continue
            yield page
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def walk_like_datagouv_client(
    session: aiohttp.ClientSession, base_url: str, base_query: str, next_page: str = "next_page"
) -> AsyncIterator[dict[str, Any]]:
    """datagouv-client's ``get_all_from_api_query``, line by line, on aiohttp (see above)."""

    def get_link_next_page(elem: dict[str, Any], separated_keys: str) -> str | None:
        result: Any = elem
        for k in separated_keys.split("."):
            if k not in result or result[k] is None:
                return None
            result = result[k]
        return result if isinstance(result, str) else None

    async def get(url: str) -> bytes:
        async with session.get(url) as r:
            body = await r.read()
            try:
                r.raise_for_status()
            except Exception as e:
                raise Exception(body.decode(errors="replace")) from e
            return body

    body = await get(f"{base_url}/{base_query}")
    for elem in json.loads(body)["data"]:
        yield elem
    next_url = get_link_next_page(json.loads(body), next_page)
    while next_url:
        body = await get(next_url)
        for data in json.loads(body)["data"]:
            yield data
        next_url = get_link_next_page(json.loads(body), next_page)


# The least a mirror must do (issue 11 §3): the yardstick of the mirror's own cost.


class _Ref(msgspec.Struct, gc=False):
    id: str | None = None


class _ResourceColumns(msgspec.Struct, gc=False):
    id: str
    title: str | None = None
    type: str | None = None
    format: str | None = None
    filetype: str | None = None
    url: str | None = None
    mime: str | None = None
    filesize: int | None = None
    created_at: str | None = None
    last_modified: str | None = None


class _DatasetColumns(msgspec.Struct, gc=False):
    id: str
    title: str | None = None
    slug: str | None = None
    organization: _Ref | None = None
    owner: _Ref | None = None
    license: str | None = None
    frequency: str | None = None
    created_at: str | None = None
    last_modified: str | None = None
    last_update: str | None = None
    private: bool | None = None
    archived: str | None = None
    deleted: str | None = None
    resources: list[_ResourceColumns] = []


class _RawPage(msgspec.Struct, gc=False):
    data: list[msgspec.Raw]
    total: int


_MINIMAL_DDL = (
    "CREATE TABLE datasets (id TEXT PRIMARY KEY, title, slug, organization_id, owner_id, license,"
    " frequency, created_at, last_modified, last_update, private, archived, deleted,"
    " json TEXT NOT NULL)",
    "CREATE TABLE resources (id TEXT PRIMARY KEY, dataset_id, title, type, format, filetype, url,"
    " mime, filesize, created_at, last_modified)",
)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


async def minimal_mirror(
    base_url: str, db: Any, page_size: int, concurrency: int
) -> dict[str, int]:
    """A minimal mirror of the datasets: concurrent fetch, the queried columns only decoded,
    each record's bytes stored as received, resources as columns, one WAL transaction a page
    written by one thread off the loop. No retry, no checkpoint, no verification, no change
    detection: what a mirror cannot do without. Returns the rows stored."""
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in _MINIMAL_DDL:
        conn.execute(statement)
    decode_page = msgspec.json.Decoder(_RawPage).decode
    decode_item = msgspec.json.Decoder(_DatasetColumns).decode

    def write(rows: list[tuple[Any, ...]], resources: list[tuple[Any, ...]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT OR REPLACE INTO datasets VALUES ({_marks(14)})", rows)
        conn.executemany(f"INSERT OR REPLACE INTO resources VALUES ({_marks(11)})", resources)
        conn.execute("COMMIT")

    writer = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()

    async def store(page: _RawPage) -> None:
        rows: list[tuple[Any, ...]] = []
        resources: list[tuple[Any, ...]] = []
        for raw in page.data:
            d = decode_item(raw)
            rows.append(
                (
                    d.id, d.title, d.slug, d.organization and d.organization.id,
                    d.owner and d.owner.id, d.license, d.frequency, d.created_at,
                    d.last_modified, d.last_update, d.private, d.archived, d.deleted,
                    bytes(raw).decode(),
                )
            )  # fmt: skip
            resources.extend(
                (
                    r.id, d.id, r.title, r.type, r.format, r.filetype, r.url, r.mime,
                    r.filesize, r.created_at, r.last_modified,
                )
                for r in d.resources
            )  # fmt: skip
        await loop.run_in_executor(writer, write, rows, resources)

    try:
        async with raw_session() as session:
            url = f"{base_url}/datasets/"
            async for page in raw_pages(session, url, page_size, concurrency, decode_page):
                await store(page)
        await loop.run_in_executor(writer, lambda: None)
        stored = conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]
        resources = conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0]
    finally:
        writer.shutdown(wait=True)
        conn.close()
    return {"datasets": int(stored), "resources": int(resources)}
