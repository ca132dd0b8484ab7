"""End to end: the generated client against the real udata server (tests/udata_server/)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aioudata import (
    AuthenticationError,
    BadRequestError,
    Client,
    GoneError,
    NotFoundError,
    RetryPolicy,
)
from aioudata.models import Dataset, DatasetInput, HarvestSource
from tests.udata_server.fixture import UdataServer

pytestmark = pytest.mark.udata_server
ROOT = Path(__file__).resolve().parent.parent
NO_RETRY = RetryPolicy(max_attempts=1)


def strict_client(server: UdataServer, key: str = "") -> Client:
    """A strict, non-retrying client of the local server ("" key: anonymous)."""
    return Client(server.base_url, api_key=key, strict=True, retry=NO_RETRY)


@pytest.fixture
async def anonymous(udata_server: UdataServer) -> AsyncIterator[Client]:
    async with strict_client(udata_server) as c:
        yield c


@pytest.fixture
async def keyed(udata_server: UdataServer) -> AsyncIterator[Client]:
    async with strict_client(udata_server, udata_server.api_keys["user"]) as c:
        yield c


async def test_iterating_datasets_gives_exactly_the_public_ones(
    anonymous: Client, udata_server: UdataServer
) -> None:
    listing = anonymous.datasets.list_datasets(page_size=7)
    ids = [dataset.id async for dataset in listing]
    assert ids == udata_server.manifest["datasets"]["public"]
    hidden = {
        *udata_server.manifest["datasets"]["private"],
        *udata_server.manifest["datasets"]["archived"],
        *udata_server.manifest["datasets"]["deleted"],
    }
    assert hidden and not hidden & set(ids)
    assert listing.stats.duplicates == 0 and listing.stats.missed == 0
    assert listing.stats.pages == -(-len(ids) // 7) and listing.stats.expected == len(ids)


async def test_concurrent_unordered_walk_and_the_real_404_past_the_end(
    anonymous: Client, udata_server: UdataServer
) -> None:
    public = udata_server.manifest["datasets"]["public"]
    listing = anonymous.datasets.list_datasets(page_size=3).options(concurrency=4, ordered=False)
    pages = [page async for page in listing.pages()]
    ids = [dataset.id for page in pages for dataset in page.data or ()]
    assert sorted(ids) == sorted(public) and len(ids) == len(public)
    assert len(pages) == -(-len(public) // 3) and listing.stats.max_held <= 9
    past = len(public) // 3 + 2
    with pytest.raises(NotFoundError):  # the real server: 404 for a page past the end
        await anonymous.datasets.list_datasets(page=past, page_size=3)
    assert [d async for d in anonymous.datasets.list_datasets(page=past, page_size=3)] == []


async def test_every_kind_of_object_decodes_strictly(
    anonymous: Client, udata_server: UdataServer
) -> None:
    manifest = udata_server.manifest
    showcase = await anonymous.datasets.get_dataset(manifest["datasets"]["showcase"])
    assert isinstance(showcase, Dataset) and showcase.resources
    resource = await anonymous.datasets.get_resource(showcase.id, showcase.resources[0].id)
    assert resource.id == showcase.resources[0].id
    org = await anonymous.organizations.get_organization(manifest["organizations"]["public"][0])
    assert org.id == manifest["organizations"]["public"][0]
    reuse = await anonymous.reuses.get_reuse(manifest["reuses"]["public"][0])
    assert reuse.id == manifest["reuses"]["public"][0]
    source = await anonymous.harvest.get_harvest_source(manifest["harvest"]["sources"][0])
    assert isinstance(source, HarvestSource)
    job_id = manifest["harvest"]["jobs"][source.id][0]
    job = await anonymous.harvest.get_harvest_job(job_id)
    assert job.id == job_id
    assert job.source is not None and job.source.id == source.id
    site = await anonymous.site.get_site()
    assert site.id
    async for discussion in anonymous.discussions.list_discussions():
        assert discussion.id in manifest["discussions"]
    async for org_item in anonymous.organizations.list_organizations(page_size=2):
        assert org_item.id in manifest["organizations"]["public"]
    async for source_item in anonymous.harvest.list_harvest_sources():
        assert source_item.id in manifest["harvest"]["sources"]


async def test_keyed_client_reads_its_own_private_dataset(
    keyed: Client, anonymous: Client, udata_server: UdataServer
) -> None:
    mine = udata_server.manifest["datasets"]["owned_by_user"]
    private = next(d for d in udata_server.manifest["datasets"]["private"] if d in mine)
    assert (await keyed.datasets.get_dataset(private)).private is True
    with pytest.raises(NotFoundError):
        await anonymous.datasets.get_dataset(private)


async def test_typed_errors_from_the_real_server(
    anonymous: Client, udata_server: UdataServer
) -> None:
    with pytest.raises(NotFoundError) as not_found:
        await anonymous.datasets.get_dataset("000000000000000000000000")
    assert not_found.value.status == 404 and not_found.value.message
    with pytest.raises(GoneError) as gone:
        await anonymous.datasets.get_dataset(udata_server.manifest["datasets"]["deleted"][0])
    assert gone.value.message == "Dataset has been deleted"
    with pytest.raises(BadRequestError) as bad:
        await anonymous.datasets.list_datasets(sort="nope")  # type: ignore[arg-type]
    assert "sort" in bad.value.errors
    with pytest.raises(NotFoundError):  # a page past the end
        await anonymous.datasets.list_datasets(page=1000)
    async with Client(udata_server.base_url, api_key="udata_wrong", retry=NO_RETRY) as wrong:
        with pytest.raises(AuthenticationError) as unauthorized:
            await wrong.me.get_me()
    assert unauthorized.value.message == "Invalid API token"
    assert "udata_wrong" not in str(unauthorized.value)


async def test_validation_error_names_the_missing_field(keyed: Client) -> None:
    with pytest.raises(BadRequestError) as info:
        await keyed.datasets.create_dataset(body=DatasetInput(description="no title"))
    assert info.value.errors["title"] == ["This field is required."]


async def test_create_update_delete_round_trip(
    udata_server: UdataServer, anonymous: Client
) -> None:
    # The `other` user owns nothing seeded: its writes change no listing other tests check.
    async with strict_client(udata_server, udata_server.api_keys["other"]) as keyed:
        await _round_trip(keyed, anonymous)


async def _round_trip(keyed: Client, anonymous: Client) -> None:
    created = await keyed.datasets.create_dataset(
        body=DatasetInput(title="aioudata e2e", description="made by a test", private=True)
    )
    assert created.title == "aioudata e2e" and created.private is True
    updated = await keyed.datasets.update_dataset(
        created.id, body={"title": "aioudata e2e renamed", "description": "made by a test"}
    )
    assert updated.title == "aioudata e2e renamed"
    assert await keyed.datasets.delete_dataset(created.id) is None
    with pytest.raises((GoneError, NotFoundError)):
        await anonymous.datasets.get_dataset(created.id)


async def test_operation_ids_equal_the_live_servers_swagger(
    anonymous: Client, udata_server: UdataServer
) -> None:
    # The local server runs the pinned udata: its own swagger is the real spec.
    async with Client(udata_server.base_url, retry=NO_RETRY) as raw:
        session = raw._ensure_session()
        async with session.get(udata_server.url("/swagger.json")) as response:
            swagger: dict[str, Any] = json.loads(await response.read())
    live = {
        op["operationId"]
        for item in swagger["paths"].values()
        for verb, op in item.items()
        if verb != "parameters"
    }
    manifest = json.loads((ROOT / "openapi" / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(live) == manifest["operation_ids"]
    assert len(live) == manifest["operations"]
