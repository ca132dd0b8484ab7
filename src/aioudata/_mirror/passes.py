"""The three kinds of pass over an entity's listing, each owning its arguments and page handling.

- :class:`FullPass` stores every record of every page.
- :class:`ChangesPass` lists by last change, newest first, and stops below the high-water mark.
- :class:`IdsPass` lists ids and timestamps only (an ``X-Fields`` mask, large pages) and fetches
  by id what is not stored or has changed: it verifies (and repairs) what a pass before it
  stored, since a listing walked by page number can miss items while the catalog moves.

Every page is committed with the pass's checkpoint in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from .config import EntitySummary
from .entities import EntitySpec, RawPage
from .records import Batch, ErrorRow, Undecoded, decode_records, stamps_of
from .run import Run
from .store import Counts, PassState, Store
from .walk import WalkOutcome, fetch_each, walk

__all__ = [
    "IDS_PAGE_SIZE",
    "ChangesPass",
    "FullPass",
    "IdsPass",
    "Listed",
    "Pass",
    "list_ahead",
    "listing_args",
    "when",
]

logger = logging.getLogger("aioudata.mirror")

#: Page size of the id pass (ids and timestamps only: cheap to serve).
IDS_PAGE_SIZE = 1000
#: Page writes under way while the next pages are decoded (SQLite works without the GIL).
PIPELINED = 2


def when(value: str | datetime | None) -> datetime | None:
    """A timestamp (ISO text or datetime) as an aware datetime; naive ones are taken as UTC."""
    if not value:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Pass:
    """One walk over an entity's listing from its checkpoint; subclasses handle the pages."""

    kind: ClassVar[str]

    def __init__(
        self, run: Run, spec: EntitySpec, state: PassState, summary: EntitySummary, tally: Counts
    ) -> None:
        self.run = run
        self.spec = spec
        self.state = state
        self.summary = summary
        self.tally = tally
        #: Page writes handed to the store's thread and not yet awaited, oldest first.
        self._pending: deque[asyncio.Future[Counts]] = deque()
        #: Called with the listing's total once its last requests are out (see walk).
        self.near_end: Callable[[int], None] | None = None

    def mask(self) -> str | None:
        """The ``X-Fields`` mask of the listing (None: whole records)."""
        return None

    def args(self) -> dict[str, Any]:
        """The listing's arguments: the run's filters, page size, sort and mask."""
        return listing_args(self.run, self.spec, self.state.page_size, self.state.sort, self.mask())

    async def walk(self) -> WalkOutcome:
        """Walk the listing from the checkpoint on; every page written when it returns."""
        expected = await self.expected() if self.state.page == 0 else None
        try:
            return await walk(
                self.run,
                self.spec,
                self.args(),
                self.state.page,
                self.handle,
                expected,
                near_end=self.near_end,
            )
        finally:
            await self.flush()

    async def expected(self) -> int | None:
        """How many items the listing likely holds: what is stored (None: nothing yet)."""
        store = self.run.store
        return await store.call(store.sync.count, self.spec.name) or None

    async def flush(self) -> None:
        """Wait for the page writes still under way (their errors raise here)."""
        while self._pending:
            await self._pending.popleft()

    async def handle(self, page: RawPage, number: int, extra: list[ErrorRow]) -> bool:
        """Store page ``number``; True to stop the walk there."""
        raise NotImplementedError

    async def write(self, number: int, batch: Batch | Undecoded, listed: int) -> None:
        """Commit one page with its checkpoint, in the store's thread, while the next pages
        are decoded: at most :data:`PIPELINED` writes under way (they commit in order)."""
        self.state.page = number
        store = self.run.store
        future = asyncio.ensure_future(
            store.call(
                store.sync.write_batch,
                self.spec,
                batch,
                self.state.pass_no,
                dataclasses.replace(self.state),
            )
        )
        future.add_done_callback(functools.partial(self._written, listed))
        self._pending.append(future)
        while len(self._pending) > PIPELINED:
            await self._pending.popleft()

    def _written(self, listed: int, future: asyncio.Future[Counts]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        self.count(listed, future.result())

    def count(self, listed: int, written: Counts) -> None:
        """Tally a page written (``listed`` items on it) and show it."""
        self.tally.add(written)
        self.summary.pages += 1
        self.summary.listed += listed
        live = self.run.live(self.spec)
        live.pages += 1
        live.items += listed
        self.run.show(self.spec, written)


class FullPass(Pass):
    """Every record of every page, upserted (decoded in the store's thread)."""

    kind = "full"

    async def handle(self, page: RawPage, number: int, extra: list[ErrorRow]) -> bool:
        await self.write(number, Undecoded(self.spec, page.data, extra), len(page.data))
        return False


class ChangesPass(Pass):
    """Newest changes first, until a page holds only objects older than the mark."""

    kind = "changes"

    async def expected(self) -> int | None:
        return None  # it stops at the mark, usually on its first pages

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.since = when(self.state.since)
        field = self.spec.hwm_field
        names = self.spec.column_names()
        self.column = names.index(field) if field in names else None

    async def handle(self, page: RawPage, number: int, extra: list[ErrorRow]) -> bool:
        batch = decode_records(self.spec, page.data)
        batch.errors.extend(extra)
        await self.write(number, batch, len(page.data))
        if self.since is None or self.column is None:
            return False
        stamps = [when(row.values[self.column]) for row in batch.rows]
        return bool(stamps) and all(s is not None and s < self.since for s in stamps)


class IdsPass(Pass):
    """Ids and timestamps only; objects not stored, or changed, are fetched one by one."""

    kind = "ids"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        #: The round's listing, walked ahead while the pass before it ended (see list_ahead).
        self.ahead: asyncio.Future[Listed | None] | None = None

    def mask(self) -> str:
        return self.spec.id_mask(*self.spec.stamps)

    async def walk(self) -> WalkOutcome:
        """The pages asked for ahead, if any (and the round is at its start), then a walk
        of the rest."""
        ahead = await self.ahead if self.ahead is not None and self.state.page == 0 else None
        if ahead is None:
            return await super().walk()
        first = ahead.pages[0]
        live = self.run.live(self.spec)
        live.pages_total = live.pages + max(1, math.ceil((first.total or 0) / IDS_PAGE_SIZE))
        try:
            for number, page in enumerate(ahead.pages, 1):
                await self.handle(page, number, [])
        finally:
            await self.flush()
        if not ahead.outcome.stopped:
            return ahead.outcome
        rest = await super().walk()  # from the checkpoint: the last page asked ahead
        rest.moved = rest.moved or ahead.outcome.moved
        rest.pages += ahead.outcome.pages
        return rest

    async def handle(self, page: RawPage, number: int, extra: list[ErrorRow]) -> bool:
        found = stamps_of(page.data)
        self.state.page = number
        store = self.run.store
        # One call to the store's thread compares the page with what is stored and, when
        # nothing needs fetching (the usual case), writes its seen marks and checkpoint.
        stale, unknown, written = await store.apply(
            self.spec.name, self._verify, found, extra, dataclasses.replace(self.state)
        )
        if written is not None:
            self.count(len(page.data), written)
        else:
            batch, _ = await fetch_each(self.run, self.spec, stale)
            batch.listed = [item_id for item_id, _ in found]  # the fetched ones among them
            batch.errors.extend(extra)
            await self.write(number, batch, len(page.data))
        # Listed here, not stored before: what the pass before this one missed (or new).
        self.summary.repaired += unknown
        return False

    def _verify(
        self,
        store: Store,
        found: list[tuple[str, dict[str, datetime | None]]],
        extra: list[ErrorRow],
        state: PassState,
    ) -> tuple[list[str], int, Counts | None]:
        """In the entity's store thread: the page's ids to fetch (not stored, gone or
        changed), how many were not stored, and the page's counts when nothing was to fetch
        (then written)."""
        stored = store.stamps(self.spec, [item_id for item_id, _ in found])
        stale: list[str] = []
        unknown = 0
        for item_id, stamps in found:
            known = stored.get(item_id)
            if known is None or known[1] is not None:
                unknown += known is None
                stale.append(item_id)
            elif any(when(value) != when(stamps.get(name)) for name, value in known[0].items()):
                stale.append(item_id)
        if stale:
            return stale, unknown, None
        listed = Batch(listed=[item_id for item_id, _ in found], errors=list(extra))
        return stale, unknown, store.write_batch(self.spec, listed, state.pass_no, state)


@dataclass(slots=True)
class Listed:
    """The first pages of a listing, asked for ahead of its pass (pages 1, 2...), and what
    was seen of them."""

    pages: list[RawPage]
    outcome: WalkOutcome


def listing_args(
    run: Run, spec: EntitySpec, page_size: int, sort: str | None, mask: str | None
) -> dict[str, Any]:
    """A listing's arguments: the run's filters, page size, sort and mask."""
    args: dict[str, Any] = {**run.filters(spec), "page_size": page_size}
    if sort and spec.accepts("sort"):
        args["sort"] = sort
    if mask:
        args["x_fields"] = mask
    return args


async def list_ahead(run: Run, spec: EntitySpec, total: int) -> Listed | None:
    """The first pages of the first verification round's listing, asked for while the pass
    before it ends: up to ``concurrency`` pages, all at once (memory stays bounded; the round
    walks the rest itself).

    The round's first pages then wait for nothing but the store: their round trip overlaps
    the pass's last writes. A listing taken a little early verifies as well as one taken
    after: an object there for the whole run is in both. None when a page failed or came
    short of the page size before the last (the round walks its listing itself then, and
    meets what happened there).
    """
    size = IDS_PAGE_SIZE
    args = listing_args(run, spec, size, spec.full_sort, spec.id_mask(*spec.stamps))
    count = min(max(1, math.ceil(total / size)), max(1, run.config.concurrency))
    client = run.client_for(spec)
    try:
        async with asyncio.TaskGroup() as group:
            asked = [
                group.create_task(client.request(spec.list_endpoint, {**args, "page": number}))
                for number in range(1, count + 1)
            ]
    except ExceptionGroup as failure:
        logger.debug("%s: the verification listing asked ahead failed: %r", spec.name, failure)
        return None
    pages: list[RawPage] = [task.result() for task in asked]
    if any(len(page.data) != size for page in pages[:-1]):
        return None  # not paged as asked: the round's own walk knows what to do
    last = pages[-1]
    outcome = WalkOutcome(pages=len(pages))
    outcome.moved = len({page.total for page in pages}) > 1
    if count < math.ceil((last.total or 0) / size) or last.next_page:
        outcome.stopped = True  # more to walk: the round goes on from there
    else:
        outcome.missed = max(0, (last.total or 0) - sum(len(page.data) for page in pages))
    return Listed(pages, outcome)


PASSES: dict[str, type[Pass]] = {kind.kind: kind for kind in (FullPass, ChangesPass, IdsPass)}
