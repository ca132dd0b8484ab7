"""The API v2 against the real udata server (tests/udata_server/): search, its window and how to
cover more, a dataset's resources page by page, masks, topics, and the mirror's topics."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import aioudata
from aioudata import Client, RetryPolicy, SearchCapError
from aioudata.models import (
    DatasetSearchPageV2,
    DatasetV2,
    DatasetV2Partial,
    Resource,
    SubsectionLinkV2,
    TopicV2,
)
from tests.udata_server.fixture import UdataServer

pytestmark = pytest.mark.udata_server
ROOT = Path(__file__).resolve().parents[1]


async def drain(listing: AsyncIterable[DatasetV2], into: list[DatasetV2]) -> None:
    """Every item of ``listing`` into ``into``, until the end or an error."""
    async for item in listing:
        into.append(item)


@pytest.fixture
async def client(udata_server: UdataServer) -> AsyncIterator[Client]:
    # strict: a field the v2 models do not declare fails the test (drift shows up here).
    async with Client(udata_server.base_url, strict=True, retry=RetryPolicy(max_attempts=1)) as c:
        yield c


async def test_search_walks_every_public_dataset_as_typed_v2_datasets(
    client: Client, udata_server: UdataServer
) -> None:
    public = udata_server.manifest["datasets"]["public"]
    found: dict[str, DatasetV2] = {}
    async for dataset in client.v2.datasets.search_datasets(page_size=7):
        assert type(dataset) is DatasetV2
        found[dataset.id] = dataset
    assert sorted(found) == sorted(public)
    for dataset_id, dataset in found.items():
        # v2 links a dataset's resources instead of embedding them, with their count.
        assert type(dataset.resources) is SubsectionLinkV2
        assert dataset.resources.total == len(udata_server.manifest["resources"][dataset_id])
        assert f"/api/2/datasets/{dataset_id}/resources/" in dataset.resources.href
    page = await client.v2.datasets.search_datasets(q="transport", page_size=50)
    assert type(page) is DatasetSearchPageV2 and 0 < page.total < len(public)
    assert len(page.data) == page.total and all(type(d) is DatasetV2 for d in page.data)


async def test_a_datasets_resources_page_by_page_are_the_v1_list(
    client: Client, udata_server: UdataServer
) -> None:
    for dataset_id in udata_server.manifest["datasets"]["public"][:6]:
        v1 = await client.datasets.get_dataset(dataset_id)
        listing = client.v2.datasets.list_resources(dataset_id, page_size=1)
        paged = [resource async for resource in listing]
        assert all(type(resource) is Resource for resource in paged)  # v1's class, shared
        assert [r.id for r in paged] == [r.id for r in v1.resources]
        assert listing.stats.pages == len(v1.resources) and listing.stats.missed == 0
        first = await client.v2.datasets.list_resources(dataset_id, page_size=1)
        assert first.total == len(v1.resources) and first.page_size == 1
    showcase = udata_server.manifest["datasets"]["showcase"]
    rid = udata_server.manifest["resources"][showcase][0]
    found = await client.v2.datasets.get_resource(rid)  # by its id alone
    assert (found.dataset_id, found.resource.id) == (showcase, rid)


async def test_search_stops_at_the_window_and_a_split_by_license_covers_more(
    client: Client, udata_server: UdataServer
) -> None:
    window = 20  # the local server's catalog is small: a window of 20 stands for 10,000
    public = set(udata_server.manifest["datasets"]["public"])
    assert len(public) > window
    search = client.v2.datasets.search_datasets(page_size=5).options(max_results=window)
    seen: list[DatasetV2] = []
    with pytest.raises(SearchCapError) as info:
        await drain(search, seen)
    assert len(seen) == window and info.value.cap == window
    # The README's way: one search per license, each under the window, merged by id.
    found: dict[str, DatasetV2] = {}
    for license in await client.datasets.list_licenses():
        bucket = client.v2.datasets.search_datasets(license=license.id, page_size=5)
        async for dataset in bucket.options(max_results=window):
            found[dataset.id] = dataset
    assert window < len(found) <= len(public) and set(found) <= public
    # udata itself refuses a page past its 10,000 results: that is a SearchCapError too.
    with pytest.raises(SearchCapError, match="search cap of 10000"):
        await client.v2.datasets.search_datasets(page=501)  # page_size: the server's 20


async def test_masked_v2_listings_walk_concurrently_into_partial_models(
    client: Client, udata_server: UdataServer
) -> None:
    mask = "data{id,title,resources},page,page_size,total,next_page"
    listing = client.v2.datasets.search_datasets(page_size=4, x_fields=mask)
    items = [item async for item in listing.options(concurrency=4)]
    assert all(type(item) is DatasetV2Partial for item in items)
    assert sorted(i.id or "" for i in items) == sorted(udata_server.manifest["datasets"]["public"])
    assert all(i.description is None and i.resources and i.resources.total for i in items)
    one = await client.v2.datasets.get_dataset(items[0].id or "", x_fields="id,resources")
    assert type(one) is DatasetV2Partial and one.resources == items[0].resources


async def test_topics_and_their_elements(client: Client, udata_server: UdataServer) -> None:
    topics = [topic async for topic in client.v2.topics.list_topics()]
    assert sorted(t.id for t in topics) == sorted(udata_server.manifest["topics"]["public"])
    for topic in topics:
        assert type(topic) is TopicV2 and topic.tags is not None
        again = await client.v2.topics.get_topic(topic.slug)
        assert again.id == topic.id
        elements = [e async for e in client.v2.topics.topic_elements(topic.id, page_size=2)]
        assert topic.elements is not None and len(elements) == topic.elements.total
        assert all(e.element is None or e.element.id for e in elements)
    owned = [t for t in topics if t.organization is not None]
    assert owned and all(t.organization and t.organization.id for t in owned)


async def test_the_mirror_stores_topics_from_the_generated_v2_endpoints(
    udata_server: UdataServer, tmp_path: Path
) -> None:
    db = tmp_path / "topics.sqlite"
    config = aioudata.MirrorConfig(
        base_url=udata_server.base_url, db=db, entities=("topics",), rate=None, page_size=1
    )
    summary = await aioudata.run_mirror(config)
    assert summary.entities["topics"].new == len(udata_server.manifest["topics"]["public"])
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, organization_id, owner_id FROM topics").fetchall()
        warnings = conn.execute("SELECT COUNT(*) FROM schema_warnings").fetchone()
    assert sorted(r[0] for r in rows) == sorted(udata_server.manifest["topics"]["public"])
    # Each topic is owned by an organization or a user, whose id the shared reference carries.
    assert all((organization is None) != (owner is None) for _, organization, owner in rows)
    assert warnings == (0,)  # every topic fits the generated TopicV2


async def test_v2_operation_ids_equal_the_live_servers_v2_swagger(
    client: Client, udata_server: UdataServer
) -> None:
    # The local server runs the pinned udata: its /api/2/swagger.json is the real v2 spec.
    response = await client.raw(client.site.get_site())  # opens the session
    assert response.status == 200
    session = client._ensure_session()
    async with session.get(udata_server.url("/api/2/swagger.json")) as answer:
        swagger: dict[str, Any] = json.loads(await answer.read())
    live = sorted(
        op["operationId"]
        for item in swagger["paths"].values()
        for verb, op in item.items()
        if verb != "parameters"
    )
    manifest = json.loads((ROOT / "openapi" / "v2" / "manifest.json").read_text(encoding="utf-8"))
    assert live == manifest["operation_ids"] and len(live) == 36
