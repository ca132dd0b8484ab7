"""Walking listings: concurrency, order, backpressure, a moving catalog, the search cap, cancelling.

Every test runs against its own catalog server on 127.0.0.1 (tests/catalog.py), which pages the
way udata does and counts what it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aioudata import (
    ArgumentError,
    Client,
    DecodeError,
    NotFoundError,
    Paginator,
    RetryPolicy,
    SearchCapError,
)
from tests.catalog import (
    BareThingPage,
    Catalog,
    Thing,
    ThingPage,
    catalog_server,
    make_item,
    things_endpoint,
)
from tests.catalog import things_endpoint as endpoint

PATIENT = RetryPolicy(max_attempts=12, backoff=0.002, max_backoff=0.01, max_time=30)


def ids(count: int, start: int = 0) -> list[str]:
    return [make_item(i)["id"] for i in range(start, start + count)]


@contextlib.asynccontextmanager
async def serving(catalog: Catalog) -> AsyncIterator[Client]:
    async for _ in catalog_server(catalog):
        async with Client(catalog.base_url, retry=PATIENT, max_in_flight=None) as client:
            yield client


async def drain(items: AsyncIterator[Thing], into: list[str]) -> None:
    """Collect ids until the walk ends or raises."""
    async for thing in items:
        into.append(thing.id)


def listing(client: Client, **args: Any) -> Paginator[ThingPage, Thing]:
    return client.paginate(endpoint(), args, Thing)


async def test_ten_thousand_items_in_order_through_ten_percent_faults() -> None:
    catalog = Catalog(10_000, fault_rate=0.10, seed=7)
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=8)
        got = [thing.id async for thing in things]
    assert got == ids(10_000)  # every item, once, in page order
    assert sum(catalog.faults.values()) >= 5 and set(catalog.faults) == {"503", "429", "reset"}
    # Every 503 and 429 was retried (aiohttp itself may re-send after some resets).
    assert client.stats.retries >= catalog.faults["503"] + catalog.faults["429"]
    stats = things.stats
    assert (stats.pages, stats.items, stats.duplicates, stats.missed) == (100, 10_000, 0, 0)
    assert sorted(catalog.pages_served) == list(range(1, 101))  # each page answered once


async def test_pages_are_fetched_concurrently_up_to_the_limit() -> None:
    catalog = Catalog(2_000, latency=0.03)
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=6)
        pages = [page.page async for page in things.pages()]
    assert pages == list(range(1, 21))
    assert catalog.max_in_flight == 6


async def test_sequential_mode_sends_one_request_at_a_time() -> None:
    catalog = Catalog(500, latency=0.005)
    async with serving(catalog) as client:
        things = listing(client, page_size=50).options(mode="sequential", concurrency=8)
        got = [thing.id async for thing in things]
    assert got == ids(500) and catalog.max_in_flight == 1 and things.stats.pages == 10


async def test_listing_without_a_total_follows_next_page() -> None:
    catalog = Catalog(230, with_total=False)
    async with serving(catalog) as client:
        bare = client.paginate(endpoint(response=BareThingPage), {"page_size": 50}, Thing)
        got = [thing.id async for thing in bare]
        with pytest.raises(ArgumentError, match="needs a listing with a total"):
            [t async for t in bare.options(mode="concurrent")]
    assert got == ids(230) and catalog.max_in_flight == 1
    assert bare.stats.expected is None and bare.stats.missed == 0


async def test_unordered_mode_hands_out_pages_as_they_arrive() -> None:
    catalog = Catalog(600)
    catalog.slow_pages = {2: 0.3}
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(ordered=False, concurrency=8)
        order = [page.page async for page in things.pages()]
    assert sorted(order) == [1, 2, 3, 4, 5, 6]
    assert order[0] == 1 and order[-1] == 2  # the slow page did not hold the others back


async def test_a_slow_consumer_holds_at_most_about_concurrency_pages() -> None:
    catalog = Catalog(40 * 10)
    async with serving(catalog) as client:
        things = listing(client, page_size=10).options(concurrency=4)
        ahead = []
        async for page in things.pages():
            # Requests sent beyond the page being consumed: the window, never the listing.
            ahead.append(catalog.requests - page.page)
            await asyncio.sleep(0.01)
    assert 4 <= max(ahead) <= 8  # twice the concurrency at most, however long the listing
    assert things.stats.max_held <= 9 and things.stats.pages == 40


async def test_a_slow_page_does_not_stop_the_requests_behind_it() -> None:
    catalog = Catalog(2_000)
    catalog.slow_pages = {2: 0.3}  # as a page sleeping in retry backoff would be
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=4)
        sent_before: dict[int, int] = {}
        async for page in things.pages():
            sent_before[page.page] = catalog.requests
    assert list(sent_before) == list(range(1, 21))  # still in order
    # While page 2 was slow, pages 3 to 9 were requested: 4 in flight, 8 held at most.
    assert sent_before[2] == 9 and catalog.max_in_flight <= 4


async def test_unordered_mode_is_bounded_too() -> None:
    catalog = Catalog(40 * 10)
    async with serving(catalog) as client:
        things = listing(client, page_size=10).options(concurrency=4, ordered=False)
        ahead = []
        seen = 0
        async for _page in things.pages():
            seen += 1
            ahead.append(catalog.requests - seen)
            await asyncio.sleep(0.01)
    assert seen == 40 and max(ahead) <= 8


async def test_page_past_the_end_is_the_end_and_a_missing_listing_is_not() -> None:
    catalog = Catalog(300)
    catalog.total_override = 500  # a stale total: pages 4 and 5 answer 404
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=4)
        got = [thing.id async for thing in things]
        assert got == ids(300)
        assert things.stats.missed == 200  # what the total promised and never came
        catalog.items.clear()
        catalog.total_override = None
        assert [t async for t in listing(client, page_size=100)] == []  # empty page 1: 200
        with pytest.raises(NotFoundError):
            await client.request(endpoint("/unknown/"), {"page": 2})


async def test_items_inserted_mid_crawl_are_deduplicated_and_counted() -> None:
    catalog = Catalog(1_000)

    def insert_at_front(c: Catalog) -> None:
        c.items[:0] = [make_item(5_000 + i) for i in range(30)]

    catalog.on_page[4] = insert_at_front
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=1)
        got = [thing.id async for thing in things]
        assert sorted(got) == ids(1_000)  # 30 old items shifted onto page 4: not yielded twice
        assert things.stats.duplicates == 30
        assert things.stats.missed == 30  # exactly the 30 new ones at the front
        assert (things.stats.total_first, things.stats.total_last) == (1_000, 1_030)

        catalog.items = [make_item(i) for i in range(1_000)]
        catalog.on_page[4] = insert_at_front
        rechecked = listing(client, page_size=100).options(concurrency=1, recheck=True)
        again = [thing.id async for thing in rechecked]
    final = [item["id"] for item in catalog.items]
    assert len(again) == len(set(again)) and set(again) == set(final)
    assert rechecked.stats.recovered == 30 and rechecked.stats.missed == 0


async def test_items_removed_mid_crawl_are_recovered_by_a_recheck() -> None:
    catalog = Catalog(1_000)

    def remove_from_first_pages(c: Catalog) -> None:
        del c.items[10:35]

    catalog.on_page[4] = remove_from_first_pages
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=1)
        got = {thing.id async for thing in things}
        final = {item["id"] for item in catalog.items}
        assert len(final - got) == 25  # 25 items slid back onto page 3, already fetched
        assert things.stats.moved and things.stats.total_last == 975

        catalog.items = [make_item(i) for i in range(1_000)]
        catalog.on_page[4] = remove_from_first_pages
        rechecked = listing(client, page_size=100).options(concurrency=4, recheck=True)
        again = [thing.id async for thing in rechecked]
    assert set(again) >= final and len(again) == len(set(again))
    assert rechecked.stats.rechecks == 1 and rechecked.stats.recovered >= 1
    assert rechecked.stats.missed == 0


async def test_search_listing_stops_at_the_cap_with_a_clear_error() -> None:
    catalog = Catalog(12_000)
    async with serving(catalog) as client:
        search = client.paginate(endpoint("/search/things/"), {"page_size": 1_000}, Thing)
        got: list[str] = []
        with pytest.raises(SearchCapError, match="search cap of 10000") as info:
            await drain(search.options(concurrency=4), got)
        assert info.value.page == 11 and info.value.total == 12_000
        assert got == ids(10_000) and max(catalog.pages_served) == 10  # page 11 never sent

        quiet = search.options(over_cap="stop")
        assert len([t async for t in quiet]) == 10_000
        assert quiet.stats.missed == 0
        # max_results=None lifts the cap (for a portal whose search has no window).
        catalog.SEARCH_CAP = 20_000
        uncapped = search.options(max_results=None)
        assert [t.id async for t in uncapped] == ids(12_000)


async def test_the_servers_own_cap_refusal_becomes_a_search_cap_error() -> None:
    catalog = Catalog(12_000)
    async with serving(catalog) as client:
        # A search path aioudata does not know as one: the server's 400 is recognised.
        search = client.paginate(endpoint("/search/things/"), {"page_size": 1_000}, Thing)
        unknown_cap = search.options(max_results=10**9)
        with pytest.raises(SearchCapError) as info:
            [t async for t in unknown_cap]
        assert info.value.cap == 10**9 and info.value.page == 11


async def test_page_size_above_the_maximum_is_refused_before_any_request() -> None:
    catalog = Catalog(10)
    async with serving(catalog) as client:
        with pytest.raises(ArgumentError, match="page_size 5000 is above the maximum of 1000"):
            await listing(client, page_size=5_000)
        with pytest.raises(ArgumentError, match="above the maximum of 50"):
            [t async for t in listing(client, page_size=60).options(max_page_size=50)]
        page = await listing(client, page_size=5_000).options(max_page_size=None)
    assert catalog.requests == 1 and len(page.data) == 10


async def test_iterating_without_a_page_size_uses_pages_of_a_hundred() -> None:
    catalog = Catalog(250)
    async with serving(catalog) as client:
        things = listing(client)
        assert len([t async for t in things]) == 250
        single = await listing(client)
    assert things.stats.pages == 3 and single.page_size == 20  # one page: the server's default


def _page_requests() -> list[asyncio.Task[Any]]:
    """Tasks of this loop still fetching a page for a paginator."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").startswith("Paginator.")
    ]


async def test_breaking_out_cancels_outstanding_requests() -> None:
    catalog = Catalog(2_000, latency=0.0)
    for page in range(2, 21):
        catalog.slow_pages[page] = 5.0  # would keep the test waiting if not cancelled
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=4)
        async with contextlib.aclosing(things.pages()) as pages:
            async for page in pages:
                assert page.page == 1
                await asyncio.sleep(0.05)  # the next pages are in flight
                assert catalog.in_flight == 4 and len(_page_requests()) == 4
                break
        assert _page_requests() == []  # cancelled and awaited when the loop closed
        for _ in range(100):  # the server sees the connections close (bounded wait)
            if catalog.in_flight == 0:
                break
            await asyncio.sleep(0.01)
    assert catalog.in_flight == 0 and catalog.cancelled == 4


async def test_cancelling_the_consuming_task_cancels_its_page_requests() -> None:
    catalog = Catalog(2_000)
    for page in range(2, 21):
        catalog.slow_pages[page] = 5.0
    async with serving(catalog) as client:
        started = asyncio.Event()

        async def consume() -> None:
            async for _thing in listing(client, page_size=100).options(concurrency=3):
                started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.05)
        assert len(_page_requests()) == 3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _page_requests() == []
        for _ in range(100):
            if catalog.in_flight == 0:
                break
            await asyncio.sleep(0.01)
    assert catalog.in_flight == 0 and catalog.cancelled == 3


async def test_a_failing_page_raises_after_the_pages_before_it() -> None:
    catalog = Catalog(500)
    async with serving(catalog) as client:
        catalog.fault_rate = 0.0
        things = listing(client, page_size=100).options(concurrency=4)
        got: list[str] = []

        def break_page_3(c: Catalog) -> None:
            c.items[200:] = [{"id": None, "title": 3}] * 300  # undecodable from page 3 on

        catalog.on_page[3] = break_page_3
        with pytest.raises(DecodeError, match=r"data\[0\]"):
            await drain(things, got)
    assert got == ids(200)


async def test_awaiting_a_listing_gives_one_page_and_options_do_not_change_it() -> None:
    catalog = Catalog(250)
    async with serving(catalog) as client:
        things = listing(client, page=2, page_size=100)
        page = await things
        tuned = things.options(concurrency=2)
        assert isinstance(page, ThingPage) and page.page == 2
        assert [t.id async for t in tuned] == ids(150, start=100)  # from page 2 on
    assert "list_things" in repr(tuned) and "concurrency=2" in repr(tuned)
    with pytest.raises(ArgumentError):
        things.options(concurrency=0)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_total_lower_than_what_is_served_is_walked_past(concurrency: int) -> None:
    catalog = Catalog(250)
    catalog.total_override = 10  # the listing says 10 while it serves 250 and a next_page
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=concurrency)
        got = [thing.id async for thing in things]
    assert got == ids(250)
    assert things.stats.overran == 2 and things.stats.moved


@pytest.mark.parametrize("ordered", [True, False])
async def test_a_server_serving_fewer_items_than_the_page_size_it_echoes(ordered: bool) -> None:
    catalog = Catalog(250)
    catalog.served_size = 20  # asked 100, serves 20, says page_size 100
    async with serving(catalog) as client:
        things = listing(client, page_size=100).options(concurrency=4, ordered=ordered)
        got = [thing.id async for thing in things]
    assert sorted(got) == ids(250) and len(got) == 250
    assert things.stats.served_page_size == 20 and things.stats.missed == 0


async def test_a_full_last_page_without_next_page_costs_one_probe() -> None:
    catalog = Catalog(200)
    catalog.total_override = 100  # pages are full and the total ends at page 1
    async with serving(catalog) as client:
        bare = client.paginate(things_endpoint(response=BareThingPage), {"page_size": 50}, Thing)
        got = [thing.id async for thing in bare.options(mode="sequential")]
    assert got == ids(200)
    # Four full pages, then one request past the end (404) says the listing is over.
    assert catalog.pages_served == [1, 2, 3, 4] and catalog.requests == 5


async def test_an_expected_total_requests_its_pages_with_the_first() -> None:
    catalog = Catalog(1_000, latency=0.05)
    async with serving(catalog) as client:
        guessed = listing(client, page_size=100).options(concurrency=4, expected_total=1_000)
        got = [thing.id async for thing in guessed]
        ahead = catalog.max_in_flight
        catalog.max_in_flight = 0
        plain = listing(client, page_size=100).options(concurrency=4)
        assert [thing.id async for thing in plain] == got
    assert got == ids(1_000)
    # Pages 1 to 4 were in flight together; without the guess page 1 went alone first, and
    # the window (1 arriving page starts 1 more) never had more than 4 either.
    assert ahead == 4 and catalog.requests == 20


async def test_a_wrong_expected_total_costs_requests_not_items() -> None:
    catalog = Catalog(250)
    async with serving(catalog) as client:
        too_many = listing(client, page_size=100).options(concurrency=8, expected_total=5_000)
        assert [thing.id async for thing in too_many] == ids(250)
        too_few = listing(client, page_size=100).options(concurrency=8, expected_total=10)
        assert [thing.id async for thing in too_few] == ids(250)
        served = listing(client, page_size=100).options(concurrency=8, expected_total=250)
        catalog.served_size = 20  # asked 100, serves 20: the pages asked ahead are dropped
        assert sorted([thing.id async for thing in served]) == ids(250)
