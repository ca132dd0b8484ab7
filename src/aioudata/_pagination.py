"""Listings: one call gives a page, iterating gives every item of every page.

``await client.datasets.list_datasets(page=2)`` returns that page;
``async for dataset in client.datasets.list_datasets()`` walks the whole listing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from ._endpoint import Endpoint
from ._errors import NotFoundError

__all__ = ["Paginator"]

PageT = TypeVar("PageT")
ItemT = TypeVar("ItemT")

Fetch = Callable[[Endpoint[PageT], dict[str, Any]], Awaitable[PageT]]


class Paginator(Generic[PageT, ItemT]):
    """A listing operation bound to its arguments.

    Awaiting it fetches one page (the ``page`` argument, or the first); iterating it yields
    every item from that page to the end. Items are de-duplicated by ``id``: when the
    catalog moves during a crawl, an item shifted onto the next page is not yielded twice.
    """

    __slots__ = ("_args", "_endpoint", "_fetch", "duplicates")

    def __init__(
        self, fetch: Fetch[PageT], endpoint: Endpoint[PageT], args: dict[str, Any]
    ) -> None:
        self._fetch = fetch
        self._endpoint = endpoint
        self._args = args
        #: Items skipped during iteration because their id had already been yielded.
        self.duplicates = 0

    def __await__(self) -> Generator[Any, None, PageT]:
        return self._fetch(self._endpoint, dict(self._args)).__await__()

    async def pages(self) -> AsyncIterator[PageT]:
        """Every page from the requested one to the last, in order, one request at a time."""
        number = int(self._args.get("page") or 1)
        while True:
            try:
                page = await self._fetch(self._endpoint, {**self._args, "page": number})
            except NotFoundError:
                # udata answers 404 for a page past the end (the listing shrank meanwhile).
                if number == 1:
                    raise
                return
            yield page
            if not getattr(page, "next_page", None) or not getattr(page, "data", None):
                return
            number += 1

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return self._items()

    async def _items(self) -> AsyncIterator[ItemT]:
        seen: set[Any] = set()
        async for page in self.pages():
            for item in getattr(page, "data", None) or ():
                key = getattr(item, "id", None)
                if key is not None:
                    if key in seen:
                        self.duplicates += 1
                        continue
                    seen.add(key)
                yield item
