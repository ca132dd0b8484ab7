"""X-Fields masks against the real udata server (tests/udata_server/): partial models, walks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioudata import Client, RequestEvent, ResponseEvent, RetryPolicy
from aioudata.models import (
    Dataset,
    DatasetPagePartial,
    DatasetPartial,
    HarvestSourcePartial,
    OrganizationPartial,
    OrganizationReferencePartial,
    ResourcePartial,
)
from tests.udata_server.fixture import UdataServer

pytestmark = pytest.mark.udata_server


class InFlight:
    """Event hooks counting the requests sent and not answered yet."""

    def __init__(self) -> None:
        self.now = self.most = self.sent = 0

    def request(self, event: RequestEvent) -> None:
        self.now += 1
        self.sent += 1
        self.most = max(self.most, self.now)

    def response(self, event: ResponseEvent) -> None:
        self.now -= 1


@pytest.fixture
async def watched(udata_server: UdataServer) -> AsyncIterator[tuple[Client, InFlight]]:
    flights = InFlight()
    hooks = {"request": [flights.request], "response": [flights.response]}
    retry = RetryPolicy(max_attempts=1)
    async with Client(udata_server.base_url, strict=True, retry=retry, event_hooks=hooks) as c:
        yield c, flights


async def test_a_masked_dataset_is_partial_and_matches_the_full_one(
    watched: tuple[Client, InFlight], udata_server: UdataServer
) -> None:
    client, _ = watched
    showcase = udata_server.manifest["datasets"]["showcase"]
    full = await client.datasets.get_dataset(showcase)
    mask = "id,title,resources{id,url},organization{name}"
    partial = await client.datasets.get_dataset(showcase, x_fields=mask)
    assert type(full) is Dataset and type(partial) is DatasetPartial
    assert (partial.id, partial.title) == (full.id, full.title)
    assert partial.created_at is None and partial.tags is None  # not asked: not sent
    assert partial.resources is not None
    assert [(r.id, r.url) for r in partial.resources] == [(r.id, r.url) for r in full.resources]
    assert all(type(r) is ResourcePartial and r.title is None for r in partial.resources)
    assert full.resources == [] or partial.resources[0].format is None
    if full.organization is not None:
        assert type(partial.organization) is OrganizationReferencePartial
        assert partial.organization.name == full.organization.name
        assert partial.organization.id is None  # masked out: the full model requires it
    resource = full.resources[0]
    masked = await client.datasets.get_resource(showcase, resource.id, x_fields="id,title")
    assert masked == ResourcePartial(id=resource.id, title=resource.title)


async def test_a_masked_listing_walks_concurrently_over_the_real_pages(
    watched: tuple[Client, InFlight], udata_server: UdataServer
) -> None:
    client, flights = watched
    public = udata_server.manifest["datasets"]["public"]
    listing = client.datasets.list_datasets(page_size=4, x_fields="data{id,title},total")
    first = await listing
    assert type(first) is DatasetPagePartial
    assert first.total == len(public) and first.page is None and first.next_page is None
    tuned = listing.options(concurrency=4)
    flights.sent = flights.most = 0
    items = [item async for item in tuned]
    assert [item.id for item in items] == public
    assert all(type(item) is DatasetPartial and item.title for item in items)
    assert all(item.slug is None and item.resources is None for item in items)
    pages = -(-len(public) // 4)
    assert tuned.stats.pages == pages and tuned.stats.missed == 0 and tuned.stats.duplicates == 0
    assert flights.sent == pages + (len(public) % 4 == 0)  # planned from the masked total
    assert flights.most >= 2  # several pages in flight at once


async def test_a_masked_listing_without_the_total_still_walks_every_page(
    watched: tuple[Client, InFlight], udata_server: UdataServer
) -> None:
    client, _ = watched
    public = udata_server.manifest["datasets"]["public"]
    listing = client.datasets.list_datasets(page_size=7, x_fields="data{id}")
    assert [item.id async for item in listing] == public
    assert listing.stats.total_last is None


async def test_masked_listings_of_other_entities(
    watched: tuple[Client, InFlight], udata_server: UdataServer
) -> None:
    client, _ = watched
    manifest = udata_server.manifest
    organizations = client.organizations.list_organizations(
        page_size=2, x_fields="data{id,name},total"
    )
    orgs = [org async for org in organizations]
    assert [o.id for o in orgs] == manifest["organizations"]["public"]
    assert all(type(o) is OrganizationPartial and o.name and o.slug is None for o in orgs)
    sources = [s async for s in client.harvest.list_harvest_sources(x_fields="data{id,name},total")]
    assert {s.id for s in sources} == set(manifest["harvest"]["sources"])
    assert all(type(s) is HarvestSourcePartial and s.url is None for s in sources)


async def test_the_raw_answer_of_a_masked_call_parses_into_the_partial_model(
    watched: tuple[Client, InFlight], udata_server: UdataServer
) -> None:
    client, _ = watched
    showcase = udata_server.manifest["datasets"]["showcase"]
    response = await client.raw(client.datasets.get_dataset(showcase, x_fields="id"))
    assert response.status == 200
    assert response.parse() == DatasetPartial(id=showcase)
