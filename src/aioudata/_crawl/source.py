"""Resources from the API, when the database holds no mirror: one walk of the datasets listing
(ids, organization and resources only, an ``X-Fields`` mask), staged for the frontier."""

from __future__ import annotations

from .._client import Client
from .config import CheckConfig
from .store import CheckStore, Resource

__all__ = ["MASK", "walk_api"]

#: What the walk asks of each dataset.
MASK = (
    "data{id,organization{id},resources{id,url,format,checksum{type,value}}},"
    "page,page_size,total,next_page"
)
#: Resources staged per write.
_STAGE = 5000


async def walk_api(config: CheckConfig, store: CheckStore) -> int:
    """Stage every resource of the datasets listing (of each ``config.organization``, if
    any); how many were listed. The API key goes to the API only."""
    listed = 0
    staged: list[Resource] = []
    async with Client(
        config.base_url, api_key=config.api_key, rate=5.0, max_in_flight=4, page_concurrency=4
    ) as client:
        for organization in config.organization or (None,):
            listing = client.datasets.list_datasets(
                x_fields=MASK, page_size=config.page_size, organization=organization
            ).options(max_page_size=1000)
            async for dataset in listing:
                if not dataset.id:
                    continue
                owner = dataset.organization.id if dataset.organization is not None else None
                for resource in dataset.resources or ():
                    if not resource.id:
                        continue
                    checksum = resource.checksum
                    staged.append(
                        Resource(
                            resource.id,
                            dataset.id,
                            resource.url,
                            resource.format,
                            owner,
                            checksum.type if checksum is not None else None,
                            checksum.value if checksum is not None else None,
                        )
                    )
                    listed += 1
                if len(staged) >= _STAGE:
                    await store.stage(staged)
                    staged = []
    if staged:
        await store.stage(staged)
    return listed
