"""Walking a listing from a checkpoint, and fetching objects by id.

A page the server keeps failing (500) is split into smaller and smaller pieces so that only the
items that really fail are recorded; a run of pages failing entirely ends the walk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._client import Client
from .._errors import GoneError, NotFoundError, PermissionDeniedError, ServerError
from .._pagination import Paginator
from .entities import EntitySpec, RawPage
from .records import Batch, ErrorRow, decode_records, stamps_of
from .run import Run

__all__ = ["Handler", "WalkOutcome", "fetch_each", "first_error", "walk"]

logger = logging.getLogger("aioudata.mirror")

#: Pages in a row whose every item fails server-side before the run gives up.
MAX_FAILED_PAGES = 3

#: Handles page ``number`` (with the error rows of items that could not be listed); True: stop.
Handler = Callable[[RawPage, int, list[ErrorRow]], Awaitable[bool]]


@dataclass(slots=True)
class WalkOutcome:
    """What a walk saw of its listing: did it move, or end short of its total?"""

    pages: int = 0
    #: The listing changed (or was not what it said) while walked: see PaginationStats.moved.
    moved: bool = False
    #: Items the listing's last total says exist and the walk did not get (a lower bound).
    missed: int = 0
    #: The handler asked to stop before the end.
    stopped: bool = False


def _divisor(count: int) -> int:
    """The piece size a failing page of ``count`` items is split into (1 for small pages)."""
    if count < 8:
        return 1
    return max(d for d in range(1, count // 4 + 1) if count % d == 0)


async def walk(
    run: Run,
    spec: EntitySpec,
    args: dict[str, Any],
    done: int,
    handle: Handler,
    expected: int | None = None,
    *,
    near_end: Callable[[int], None] | None = None,
) -> WalkOutcome:
    """Every page after the first ``done`` ones, in order; a page failing server-side is split.

    ``expected``: the items the listing likely holds (its pages are asked for with the first).
    ``near_end``: called once, with the listing's total, when the pages left to handle are
    within one window of requests (all of them asked for).
    """
    walker = _Walk(run, spec, args, done, handle)
    walker.near_end = near_end
    return await walker.run(expected)


class _Walk:
    """One walk of a listing (see :func:`walk`): page ``number`` is the next to handle."""

    def __init__(
        self, run: Run, spec: EntitySpec, args: dict[str, Any], done: int, handle: Handler
    ) -> None:
        self.run_state = run
        self.spec = spec
        self.args = args
        self.done = done
        self.handle = handle
        self.client = run.client_for(spec)
        self.size = int(args["page_size"])
        self.outcome = WalkOutcome()
        self.number = done + 1
        self.near_end: Callable[[int], None] | None = None
        #: The listing's last page, as its total says (0: not known yet).
        self.last_page = 0
        self.live = run.live(spec)
        if done and not self.live.pages:
            self.live.pages = self.live.resumed = done  # resumed: its bar starts there
        self.done_before = self.live.pages

    async def run(self, expected: int | None) -> WalkOutcome:
        """Listings from page ``number`` on, until the end; failing pages salvaged."""
        outcome, spec = self.outcome, self.spec
        failed_in_a_row = 0
        while True:  # each round advances at least one page, or returns
            paginator: Paginator[RawPage, Any] = Paginator(
                self.client.request,
                spec.list_endpoint,
                {**self.args, "page": self.number},
                concurrency=self.run_state.config.concurrency,
                ordered=True,
                expected_total=expected if self.number == self.done + 1 else None,
            )
            handled = outcome.pages
            try:
                await self.listing(paginator)
                return outcome
            except ServerError as error:
                if outcome.pages > handled:
                    failed_in_a_row = 0  # pages came through since the last failing one
                outcome.moved = outcome.moved or paginator.stats.moved
                logger.warning(
                    "%s: page %d keeps failing (%s); splitting it", spec.name, self.number, error
                )
                stop, all_failed = await _salvage(
                    spec, self.client, self.args, self.number, self.handle
                )
                failed_in_a_row = failed_in_a_row + 1 if all_failed else 0
                if failed_in_a_row >= MAX_FAILED_PAGES:
                    raise
                outcome.pages += 1
                self.number += 1
                if stop:
                    return outcome

    async def listing(self, paginator: Paginator[RawPage, Any]) -> None:
        """Handle the paginator's pages to its end (or the handler's stop); its account."""
        outcome = self.outcome
        pages = paginator.pages()
        async with contextlib.aclosing(pages):
            async for page in pages:
                self.show(page)
                outcome.pages += 1
                stop = await self.handle(page, self.number, [])
                self.number += 1
                self.nearly_done(page)
                if stop:
                    outcome.stopped = True
                    return
        outcome.moved = outcome.moved or paginator.stats.moved
        outcome.missed = paginator.stats.missed
        if outcome.missed:
            logger.warning(
                "%s: the listing ended %d items short of its total (%s)",
                self.spec.name,
                outcome.missed,
                paginator.stats.total_last,
            )

    def nearly_done(self, page: RawPage) -> None:
        """Call ``near_end`` once the pages left are within one window of requests."""
        if page.total is not None:
            self.last_page = math.ceil(page.total / self.size)
        window = self.run_state.config.concurrency
        if self.near_end is not None and self.last_page and self.number + window > self.last_page:
            near_end, self.near_end = self.near_end, None
            near_end(page.total or 0)

    def show(self, page: RawPage) -> None:
        """The progress's page count, from the first page's total."""
        if page.total is not None and self.live.pages == self.done_before:
            # Pages done before this walk, plus what this one has left.
            left = page.total - self.done * self.size
            self.live.pages_total = self.done_before + max(1, math.ceil(left / self.size))


async def _salvage(
    spec: EntitySpec, client: Client, args: dict[str, Any], number: int, handle: Handler
) -> tuple[bool, bool]:
    """Page ``number`` in smaller and smaller pieces: items that keep failing are recorded.

    Returns (end of listing reached, every item failed).
    """
    size = int(args["page_size"])
    items: list[Any] = []
    errors: list[ErrorRow] = []
    end = await _split(spec, client, args, (number - 1) * size, size, items, errors)
    if not items and not errors:
        return True, False
    page = RawPage(data=items, page=number, page_size=size)
    stop = await handle(page, number, errors)
    return stop or end, bool(errors) and not items


async def _split(
    spec: EntitySpec,
    client: Client,
    args: dict[str, Any],
    offset: int,
    count: int,
    items: list[Any],
    errors: list[ErrorRow],
) -> bool:
    """Items ``offset + 1`` to ``offset + count`` in sub-pages; True at the listing's end."""
    sub = _divisor(count)
    for number in range(offset // sub + 1, (offset + count) // sub + 1):
        try:
            page = await client.request(
                spec.list_endpoint, {**args, "page": number, "page_size": sub}
            )
        except NotFoundError:
            return True
        except ServerError as error:
            if sub > 1:
                if await _split(spec, client, args, (number - 1) * sub, sub, items, errors):
                    return True
                continue
            errors.append(await _unreadable(spec, client, args, number, error))
            continue
        items.extend(page.data)
        if not page.next_page:
            return True
    return False


async def _unreadable(
    spec: EntitySpec, client: Client, args: dict[str, Any], position: int, error: Exception
) -> ErrorRow:
    """The error row of an item the server cannot list: by id when a masked read gives it."""
    reason = f"fails server-side: {error}"
    with contextlib.suppress(Exception):
        page = await client.request(
            spec.list_endpoint,
            {**args, "page": position, "page_size": 1, "x_fields": spec.id_mask()},
        )
        for item_id, _ in stamps_of(page.data):
            return ErrorRow(spec.name, item_id, item_id, None, reason)
    key = f"position:{args.get('sort') or 'default'}:{position}"
    return ErrorRow(spec.name, key, None, None, f"item {position} of the listing {reason}")


async def fetch_each(run: Run, spec: EntitySpec, ids: Sequence[str]) -> tuple[Batch, list[str]]:
    """Objects by id: a batch of the ones fetched, and the ids that are gone."""
    batch = Batch()
    gone: list[str] = []
    if not ids:
        return batch, gone
    client = run.client_for(spec)
    slots = asyncio.Semaphore(run.config.concurrency)

    async def one(item_id: str) -> None:
        async with slots:
            try:
                raw = await client.request(spec.get_endpoint, {spec.get_param: item_id})
            except (NotFoundError, GoneError):
                gone.append(item_id)
                return
            except ServerError as error:
                batch.errors.append(
                    ErrorRow(spec.name, item_id, item_id, None, f"fails server-side: {error}")
                )
                return
            except PermissionDeniedError as error:
                # Listed, yet refused on its own (made private meanwhile): recorded, the
                # run goes on. A 401 (the key itself refused) still ends the run.
                batch.errors.append(
                    ErrorRow(spec.name, item_id, item_id, None, f"refused: {error}")
                )
                return
        batch.extend(decode_records(spec, [raw]))

    try:
        # A task group: one unexpected failure (401, 429...) cancels the other fetches.
        async with asyncio.TaskGroup() as group:
            for item_id in ids:
                group.create_task(one(item_id))
    except BaseExceptionGroup as failure:
        raise first_error(failure) from None
    return batch, gone


def first_error(error: BaseException) -> BaseException:
    """The error to report from a task group's failure."""
    if isinstance(error, BaseExceptionGroup):
        leaves = [first_error(e) for e in error.exceptions]
        for leaf in leaves:
            if not isinstance(leaf, asyncio.CancelledError):
                return leaf
        return leaves[0]
    return error
