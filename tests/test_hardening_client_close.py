"""Closing a client ends its listing walks; a closed client opens nothing behind your back.

Issue 12, item 10: breaking out of a listing inside ``async with Client(...)`` left page
requests pending; they reopened a session after ``close()`` ("Unclosed client session").
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aioudata import Client, Paginator
from aioudata._errors import ClientClosedError
from tests.catalog import Catalog, Thing, catalog_server, things_endpoint

ROOT = Path(__file__).resolve().parent.parent
HANG = 60.0  # only to stop a hang


@pytest.fixture
async def slow() -> AsyncIterator[Catalog]:
    """500 things; pages after the first take a while, so some are in flight at any break."""
    catalog = Catalog(500)
    catalog.slow_pages = {page: 1.0 for page in range(2, 60)}
    async for server in catalog_server(catalog):
        yield server


def _page_tasks() -> set[asyncio.Task[Any]]:
    """Tasks running a page request of a walk (the coroutine Paginator._get)."""
    return {
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "Paginator._get" and not task.done()
    }


async def test_the_issue_snippet_leaks_no_session_under_dev_mode(slow: Catalog) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        import aioudata
        from tests.catalog import things_endpoint

        async def main():
            async with aioudata.Client({slow.base_url!r}, page_concurrency=4) as c:
                n = 0
                async for d in c.paginate(things_endpoint(), {{"page_size": 10}}, object):
                    n += 1
                    if n == 25:
                        break
            await asyncio.sleep(1.5)  # pages still pending would have answered by now
            print("broke at", n)

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-X",
        "dev",
        "-W",
        "error::ResourceWarning",
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), HANG)
    assert process.returncode == 0, err.decode()
    assert out.decode().split() == ["broke", "at", "25"]
    assert b"Unclosed" not in err and b"ResourceWarning" not in err, err.decode()


@pytest.mark.parametrize("how", ["client.paginate", "Paginator(client.request)"])
async def test_closing_the_client_cancels_and_awaits_the_page_requests_of_a_walk(
    slow: Catalog, how: str
) -> None:
    async with Client(slow.base_url, page_concurrency=4) as client:
        if how == "client.paginate":
            listing = client.paginate(things_endpoint(), {"page_size": 10}, Thing)
        else:  # as the mirror and the command line build theirs
            listing = Paginator(client.request, things_endpoint(), {"page_size": 10})
        walk = aiter(listing)
        first = await anext(walk)
        assert first.id == "000000"
        assert _page_tasks()  # pages 2... requested ahead, still in flight
    assert not _page_tasks()  # cancelled and awaited by close(): none left to reopen a pool
    assert client.closed and client._session is None
    # The walk resumed: a clear error, not more requests and not a silent end.
    requests = slow.requests
    with pytest.raises(ClientClosedError, match="closed"):
        await asyncio.wait_for(anext(walk), HANG)
    assert slow.requests == requests and client._session is None


async def test_a_walk_iterated_by_another_task_fails_clearly_when_the_client_closes(
    slow: Catalog,
) -> None:
    client = Client(slow.base_url, page_concurrency=4)
    got: list[str] = []
    first_item = asyncio.Event()

    async def consume() -> None:
        async for thing in client.paginate(things_endpoint(), {"page_size": 10}, Thing):
            got.append(thing.id)
            first_item.set()

    consumer = asyncio.ensure_future(consume())
    await asyncio.wait_for(first_item.wait(), HANG)
    await client.close()  # the consumer waits for page 2, in flight
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(consumer, HANG)
    assert len(got) == 10 and not _page_tasks() and client._session is None


async def test_a_request_after_close_raises_and_opens_no_session(slow: Catalog) -> None:
    client = Client(slow.base_url)
    async with client:
        assert (await client.request(things_endpoint(), {"page": 1})).total == 500
    requests = slow.requests
    with pytest.raises(ClientClosedError, match="async with"):
        await client.request(things_endpoint(), {"page": 1})
    with pytest.raises(ClientClosedError):
        await client.paginate(things_endpoint(), {}, Thing)
    assert client._session is None and slow.requests == requests
    async with client:  # entered again: open again, explicitly
        assert not client.closed
        assert (await client.request(things_endpoint(), {"page": 1})).total == 500
    assert client.closed and client._session is None


async def test_a_request_under_way_when_the_client_closes_says_so(slow: Catalog) -> None:
    client = Client(slow.base_url)
    request = asyncio.ensure_future(client.request(things_endpoint(), {"page": 2}))  # slow
    for _ in range(6000):  # until the server has it (at most a minute)
        if slow.in_flight:
            break
        await asyncio.sleep(0.01)
    assert slow.in_flight
    await client.close()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(request, HANG)
    assert client._session is None
