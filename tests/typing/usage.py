"""Checked by mypy --strict (make typecheck), never run: the public API's types as users see them.

A wrong return or parameter type in the generated stubs makes ``assert_type`` fail under mypy.
"""

from __future__ import annotations

from typing import assert_type

import aioudata
from aioudata import Client, PaginationStats, Paginator
from aioudata.models import Dataset, DatasetInput, DatasetPage, HarvestSource, HarvestSourcePage


async def usage(client: Client) -> None:
    dataset = await client.datasets.get_dataset("slug-or-id", x_fields="id,title")
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
    await client.datasets.get_dataset(42)  # type: ignore[arg-type]
    await client.datasets.list_datasets(page="2")  # type: ignore[arg-type]
    client.datasets.list_datasets(sort="bogus")  # type: ignore[arg-type]
    await client.datasets.get_dataset()  # type: ignore[call-arg]
    client.datasets.list_datasets().options(mode="parallel")  # type: ignore[arg-type]
