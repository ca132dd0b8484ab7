"""Checked by mypy --strict (make typecheck), never run: the README's Use examples as they are.

Each ```python block of the README's Use section is here verbatim, indented into a function of
its own (``client`` given for the snippets that use one); tests/test_types_readme.py checks that
they stay in sync.
"""

from __future__ import annotations

import aioudata

# ruff: noqa
# fmt: off


def example_1(client: aioudata.Client) -> None:
    import asyncio
    import aioudata

    async def main() -> None:
        async with aioudata.Client() as client:                  # https://www.data.gouv.fr/api/1
            dataset = await client.datasets.get_dataset("5d13a8b6634f41070a43dff3")
            print(dataset.title, dataset.last_modified)
            for resource in dataset.resources:
                again = await client.datasets.get_resource(dataset.id, resource.id)
                print(again.title, again.url)
            page = await client.organizations.list_organizations(page_size=50)
            print(page.total, "organizations,", len(page.data), "on this page")
            async for reuse in client.reuses.list_reuses(q="transport"):   # every page
                print(reuse.title)

    asyncio.run(main())


def example_2(client: aioudata.Client) -> None:
    async def light(client: aioudata.Client) -> None:
        dataset = await client.datasets.get_dataset("5d13a8b6634f41070a43dff3", x_fields="id,title")
        print(dataset.title)                                      # DatasetPartial: str | None
        listing = client.datasets.list_datasets(x_fields="data{id,title,resources{url}},total")
        async for item in listing:                                # DatasetPartial items
            print(item.id, item.title, [resource.url for resource in item.resources or []])


def example_3(client: aioudata.Client) -> None:
    import asyncio
    import aioudata

    async def create() -> None:
        async with aioudata.Client("https://demo.data.gouv.fr/api/1", rate=5.0) as client:
            untitled = aioudata.models.DatasetInput(description="A dataset without a title.")
            try:
                await client.datasets.create_dataset(body=untitled)
            except aioudata.BadRequestError as error:
                print(error.status, error.errors)   # 400 {'title': ['This field is required.']}

    asyncio.run(create())


def example_4(client: aioudata.Client) -> None:
    client = aioudata.Client(
        rate=5.0, burst=10, max_in_flight=8,                  # 5 requests/s on average
        retry=aioudata.RetryPolicy(max_attempts=5, max_time=120),
    )
    print(client.stats)   # requests, statuses, retries by reason, cool-offs (logged on "aioudata")


async def example_5(client: aioudata.Client) -> None:
    response = await client.raw(client.datasets.get_dataset("5d13a8b6634f41070a43dff3"))
    print(response.status, response.headers["Content-Type"], len(response.content), response.elapsed)
    dataset = response.parse()     # the Dataset the call returns, decoded the same way


def example_6(client: aioudata.Client) -> None:
    async def timing(event: aioudata.ResponseEvent) -> None:
        print(event.method, event.url, event.status, f"{event.elapsed:.3f}s", "attempt", event.attempt)

    client = aioudata.Client(event_hooks={"request": [print], "response": [timing]})


def example_7(client: aioudata.Client) -> None:
    async def v2(client: aioudata.Client) -> None:
        page = await client.v2.datasets.search_datasets(q="transport", sort="-created", page_size=20)
        print(page.total, "matches")
        for dataset in page.data:                                   # DatasetV2
            print(dataset.title, dataset.resources.total, "resources")
            async for resource in client.v2.datasets.list_resources(dataset.id, page_size=100):
                print(resource.url)                                 # Resource, the v1 class
        async for topic in client.v2.topics.list_topics():
            print(topic.name, topic.elements.total if topic.elements else 0, "elements")
        found = await client.v2.datasets.get_resource("RESOURCE_ID")  # by its id alone
        print(found.dataset_id, found.resource.title)


def example_8(client: aioudata.Client) -> None:
    async def past_the_window(client: aioudata.Client, q: str) -> dict[str, aioudata.models.DatasetV2]:
        found: dict[str, aioudata.models.DatasetV2] = {}
        for license in await client.datasets.list_licenses():
            search = client.v2.datasets.search_datasets(q=q, license=license.id, page_size=100)
            async for dataset in search:     # SearchCapError: this license alone is over the window,
                found[dataset.id] = dataset  # split it again (organization, format_family, tag...)
        return found
