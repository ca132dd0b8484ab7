"""aioudata's side of the pagination benchmarks: a client sized for the concurrency, a walk."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aioudata


def client_for(base_url: str, concurrency: int, **kwargs: Any) -> aioudata.Client:
    """A client whose connection pool and in-flight cap do not hold ``concurrency`` back."""
    return aioudata.Client(
        base_url,
        api_key="",
        max_in_flight=max(16, concurrency),
        max_connections=max(32, concurrency),
        max_connections_per_host=max(16, concurrency),
        **kwargs,
    )


@dataclass
class Walk:
    """What one walk of a listing gave, and how long it took."""

    seconds: float = 0.0
    pages: int = 0
    items: int = 0
    ids: set[str] = field(default_factory=set)
    stats: Any = None

    @property
    def duplicates(self) -> int:
        return self.items - len(self.ids)


async def walk_items(
    client: aioudata.Client, page_size: int, concurrency: int, *, keep_ids: bool = False
) -> Walk:
    """``async for dataset in list_datasets(page_size=...)`` at ``concurrency``."""
    paginator = client.datasets.list_datasets(page_size=page_size).options(concurrency=concurrency)
    walk = Walk()
    started = time.perf_counter()
    async for dataset in paginator:
        walk.items += 1
        if keep_ids:
            walk.ids.add(dataset.id)
    walk.seconds = time.perf_counter() - started
    walk.stats = paginator.stats
    walk.pages = paginator.stats.pages
    return walk


async def walk_pages(client: aioudata.Client, page_size: int, concurrency: int) -> Walk:
    """``async for page in list_datasets(page_size=...).pages()`` at ``concurrency``."""
    paginator = client.datasets.list_datasets(page_size=page_size).options(concurrency=concurrency)
    walk = Walk()
    started = time.perf_counter()
    async for page in paginator.pages():
        walk.pages += 1
        walk.items += len(page.data)
    walk.seconds = time.perf_counter() - started
    walk.stats = paginator.stats
    return walk
