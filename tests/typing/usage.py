"""Checked by mypy --strict (make typecheck), never run: the public API's types as users see them.

A wrong return or parameter type in the generated stubs makes ``assert_type`` fail under mypy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, assert_type

import aioudata
from aioudata import Client, PaginationStats, Paginator
from aioudata._mirror.pgurl import DatabaseURL
from aioudata.models import (
    Badge,
    Dataset,
    DatasetInput,
    DatasetPage,
    DatasetPagePartial,
    DatasetPartial,
    HarvestSource,
    HarvestSourcePage,
    HarvestSourcePagePartial,
    HarvestSourcePartial,
    Member,
    OrganizationReferencePartial,
    Resource,
    ResourcePartial,
    UserReferenceWithEmail,
)


async def usage(client: Client) -> None:
    dataset = await client.datasets.get_dataset("slug-or-id")
    assert_type(dataset, Dataset)
    assert_type(dataset.title, str)
    assert_type(dataset.acronym, str | None)
    listing = client.datasets.list_datasets(tag=["a", "b"], sort="-created")
    assert_type(listing, Paginator[DatasetPage, Dataset])
    assert_type(await listing, DatasetPage)
    async for item in client.datasets.list_datasets(q="transport"):
        assert_type(item, Dataset)
    tuned = listing.options(concurrency=16, ordered=False, recheck=True, max_page_size=None)
    assert_type(tuned, Paginator[DatasetPage, Dataset])
    async for page in tuned.pages():
        assert_type(page, DatasetPage)
    assert_type(tuned.stats, PaginationStats)
    created = await client.datasets.create_dataset(body=DatasetInput(title="t"))
    assert_type(created, Dataset)
    async for source in client.harvest.list_harvest_sources():
        assert_type(source, HarvestSource)
    assert_type(await client.harvest.list_harvest_sources(page=2), HarvestSourcePage)
    assert_type(await client.organizations.get_datasets_csv("org"), bytes)
    await client.datasets.delete_dataset("id")


async def required_where_always_sent(client: Client) -> None:
    """Ids, page data and the lists udata always sends need no narrowing (openapi/required.json)."""
    dataset = await client.datasets.get_dataset("slug-or-id")
    assert_type(dataset.id, str)
    assert_type(dataset.resources, list[Resource])
    assert_type(dataset.tags, list[str])
    assert_type(dataset.badges, list[Badge])
    assert_type(dataset.private, bool)
    assert_type(dataset.license, str)
    for resource in dataset.resources:
        again = await client.datasets.get_resource(dataset.id, resource.id)
        assert_type(again, Resource)
        assert_type(again.url, str)
    page = await client.datasets.list_datasets(page_size=10)
    assert_type(page.data, list[Dataset])
    assert_type(page.total, int)
    assert_type([d.id for d in page.data], list[str])
    if dataset.organization is not None:  # null when a user owns it: stays optional
        assert_type(dataset.organization.id, str)
        organization = await client.organizations.get_organization(dataset.organization.id)
        assert_type(organization.members, list[Member])
        assert_type(organization.members[0].user, UserReferenceWithEmail)
    assert_type(dataset.quality, dict[str, Any] | None)  # added after udata 2.0: optional
    sources = await client.harvest.list_harvest_sources()
    assert_type(sources.data, list[HarvestSource])


async def masks(client: Client, mask: str | None) -> None:
    """A call with an X-Fields mask returns the partial twin: same names, every field optional."""
    partial = await client.datasets.get_dataset("slug-or-id", x_fields="id,title,resources{id}")
    assert_type(partial, DatasetPartial)
    assert_type(partial.id, str | None)
    assert_type(partial.title, str | None)
    assert_type(partial.resources, list[ResourcePartial] | None)
    assert_type(partial.organization, OrganizationReferencePartial | None)
    resource = await client.datasets.get_resource("d", "r", x_fields="id,url")
    assert_type(resource, ResourcePartial)
    listing = client.datasets.list_datasets(x_fields="data{id,title},total", page_size=100)
    assert_type(listing, Paginator[DatasetPagePartial, DatasetPartial])
    assert_type(await listing, DatasetPagePartial)
    assert_type((await listing).data, list[DatasetPartial] | None)
    async for item in listing.options(concurrency=4):
        assert_type(item, DatasetPartial)
    async for page in listing.pages():
        assert_type(page, DatasetPagePartial)
    sources = client.harvest.list_harvest_sources(x_fields="data{id,name},total")
    assert_type(sources, Paginator[HarvestSourcePagePartial, HarvestSourcePartial])
    # A mask that may or may not be there: either answer.
    assert_type(await client.datasets.get_dataset("x", x_fields=mask), Dataset | DatasetPartial)
    raw = await client.raw(client.datasets.get_dataset("x", x_fields="id"))
    assert_type(raw, aioudata.Response[DatasetPartial])
    assert_type(raw.parse(), DatasetPartial)
    # A partial's id may be masked out: narrow it before use.
    await client.datasets.get_resource(partial.id, "r")  # type: ignore[arg-type]
    if partial.id is not None:
        await client.datasets.get_resource(partial.id, "r")


async def raw_and_hooks(client: Client) -> None:
    assert_type(await client.raw(client.datasets.get_dataset("x")), aioudata.Response[Dataset])
    response = await client.raw(client.datasets.list_datasets(page=2))
    assert_type(response, aioudata.Response[DatasetPage])
    assert_type(response.parse(), DatasetPage)
    assert_type(response.status, int)
    assert_type(response.content, bytes)
    assert_type(response.headers["Content-Type"], str)
    assert_type((await client.raw(client.organizations.get_datasets_csv("o"))).parse(), bytes)

    def on_request(event: aioudata.RequestEvent) -> None:
        assert_type(event.attempt, int)

    async def on_response(event: aioudata.ResponseEvent) -> None:
        assert_type(event.elapsed, float)

    hooks: aioudata.EventHooks = {"request": [on_request], "response": [on_response]}
    aioudata.Client(event_hooks=hooks, page_concurrency=4)
    aioudata.Client(event_hooks={"response": [on_request]})  # type: ignore[arg-type]


async def misuse(client: Client) -> None:
    # Operations taking an X-Fields mask are overloaded: a bad call matches no overload.
    await client.datasets.get_dataset(42)  # type: ignore[call-overload]
    await client.datasets.list_datasets(page="2")  # type: ignore[call-overload]
    client.datasets.list_datasets(sort="bogus")  # type: ignore[call-overload]
    await client.datasets.get_dataset()  # type: ignore[call-overload]
    await client.datasets.delete_dataset(42)  # type: ignore[arg-type]
    client.datasets.list_datasets().options(mode="parallel")  # type: ignore[arg-type]


async def api_v2(client: Client) -> None:
    from aioudata.models import (
        DatasetSearchPageV2,
        DatasetSearchPageV2Partial,
        DatasetV2,
        DatasetV2Partial,
        Organization,
        ResourcePageV2,
        SpecificResourceV2,
        SubsectionLinkV2,
        TopicElementV2,
        TopicPageV2,
        TopicV2,
    )

    search = client.v2.datasets.search_datasets(q="bus", producer_type="public-service")
    assert_type(search, Paginator[DatasetSearchPageV2, DatasetV2])
    page = await search
    assert_type(page.total, int)
    assert_type(page.data, list[DatasetV2])
    assert_type(page.facets, dict[str, Any] | None)
    dataset = page.data[0]
    assert_type(dataset.id, str)
    assert_type(dataset.resources, SubsectionLinkV2)
    assert_type(dataset.resources.total, int)
    assert_type(dataset.license, str | dict[str, Any])
    masked = client.v2.datasets.search_datasets(x_fields="data{id},total")
    assert_type(masked, Paginator[DatasetSearchPageV2Partial, DatasetV2Partial])
    assert_type(await client.v2.datasets.get_dataset("d"), DatasetV2)
    resources = client.v2.datasets.list_resources("d", page_size=1000)
    assert_type(resources, Paginator[ResourcePageV2, Resource])  # the v1 Resource
    async for resource in resources:
        assert_type(resource.id, str)
    assert_type(await client.v2.datasets.get_resource("r"), SpecificResourceV2)
    assert_type(client.v2.topics.list_topics(), Paginator[TopicPageV2, TopicV2])
    elements = client.v2.topics.topic_elements("t")
    async for element in elements:
        assert_type(element, TopicElementV2)
    async for organization in client.v2.organizations.search_organizations(q="x"):
        assert_type(organization, Organization)  # the v1 class: v2 registers the same fields
    client.v2.datasets.search_datasets(producer_type="nobody")  # type: ignore[call-overload]
    client.v2.datasets.search_datasets(page=0).options(max_results=20_000, over_cap="stop")


def databases(password: str) -> None:
    # A PostgreSQL database by URL, typed for every config (no ignore needed).
    url = f"postgresql://aioudata:{password}@127.0.0.1:5432/udata?schema=portal"
    aioudata.MirrorConfig(db_url=url)
    check = aioudata.CheckConfig(db_url=url)
    download = aioudata.DownloadConfig(db_url=url, format=("csv",))
    assert_type(check.db, Path | DatabaseURL)  # the database the run uses, once made
    assert_type(download.db_url, DatabaseURL | str | None)
