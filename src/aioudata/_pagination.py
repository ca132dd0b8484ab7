"""Listings: one call gives a page; iterating walks every page, several at a time.

``await client.datasets.list_datasets(page=2)`` returns that page;
``async for dataset in client.datasets.list_datasets()`` walks the whole listing: page 1 first,
which tells the total, then the remaining pages ``concurrency`` at a time through the client's
rate limiter and retry, handed out in page order (or as they arrive, ``ordered=False``).

What the real API does and how it is handled here:

- a page past the end answers 404: the end of the listing, not an error;
- the catalog moves while it is crawled (page numbers are offsets): items are de-duplicated by id,
  ``stats.missed`` tells how many may have been missed, and ``recheck=True`` walks again to
  recover them;
- search-backed listings refuse page × page_size beyond 10,000 results: :class:`SearchCapError`
  names the cap instead of a 400 at page 101;
- listings without a total are walked one page after another until ``next_page`` is null;
- a walk trusts what it receives over what it is told: a ``total`` lower than what the listing
  really serves (the last planned page still has a ``next_page``, or is full) is walked past, and
  a server serving fewer items per page than the ``page_size`` it echoes is walked at the size it
  really serves.

The page requests a walk runs ahead are tasks of the client's :class:`WalkTasks`: closing the
client cancels and awaits them, and a walk resumed after that raises
:class:`~aioudata.ClientClosedError` instead of requesting more.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Hashable,
)
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ._endpoint import Endpoint
from ._errors import (
    ArgumentError,
    BadRequestError,
    ClientClosedError,
    NotFoundError,
    SearchCapError,
)

__all__ = ["SEARCH_CAP", "PaginationStats", "Paginator", "WalkTasks"]

PageT = TypeVar("PageT")
ItemT = TypeVar("ItemT")
T = TypeVar("T")

Fetch = Callable[[Endpoint[PageT], dict[str, Any]], Awaitable[PageT]]
Mode = Literal["auto", "concurrent", "sequential"]
OverCap = Literal["raise", "stop"]

#: Results a search-backed udata listing serves at most (Elasticsearch's max_result_window).
SEARCH_CAP = 10_000
#: page_size above this is refused before any request (data.gouv.fr answers 502 at 10,000).
DEFAULT_MAX_PAGE_SIZE = 1000
#: page_size used when iterating a listing without an explicit ``page`` or ``page_size``.
ITERATION_PAGE_SIZE = 100
_CAP_MESSAGE = "result window is too large"


class _Keep(enum.Enum):
    KEEP = enum.auto()


_KEEP = _Keep.KEEP


@dataclass(slots=True)
class PaginationStats:
    """What one walk of a listing saw; ``missed`` is a lower bound unless ``recheck`` ran."""

    pages: int = 0
    items: int = 0
    duplicates: int = 0
    #: ``total`` as the first and the last page fetched reported it.
    total_first: int | None = None
    total_last: int | None = None
    #: Items of the listing (as it stood at the end) that the walk did not yield, at least.
    missed: int = 0
    #: Items a recheck pass found that the first pass had missed.
    recovered: int = 0
    rechecks: int = 0
    #: Items the listing's last known total says the walk should yield (None: no total).
    expected: int | None = None
    #: Peak number of pages requested and not yet handed out (in flight or buffered).
    max_held: int = 0
    #: Pages whose ``total`` differed from the first page's (the listing changed meanwhile).
    total_changes: int = 0
    #: Pages walked past the last one the first page's total announced.
    overran: int = 0
    #: Items per page the server really served, when less than the ``page_size`` it echoed.
    served_page_size: int | None = None

    @property
    def moved(self) -> bool:
        """True when the listing visibly changed (or was not what it said) while walked."""
        return (
            self.total_first != self.total_last
            or self.total_changes > 0
            or self.duplicates > 0
            or self.missed > 0
            or self.overran > 0
            or self.served_page_size is not None
        )


class WalkTasks:
    """The page requests in flight of every walk one client started, so closing it ends them.

    A walk breaks out early, or its consumer stops iterating: its page requests must not outlive
    the client (they would reopen its connection pool after ``close()``, and leak it). The
    client calls :meth:`close`: every such request is cancelled and awaited; from then on
    :attr:`closed` is true, no page request starts, and a walk resumed raises the client's
    :class:`~aioudata.ClientClosedError` (``closed_error()``).
    """

    __slots__ = ("_tasks", "closed", "closed_error")

    def __init__(self, closed_error: Callable[[], ClientClosedError]) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        #: True from :meth:`close` until the client is opened again.
        self.closed = False
        self.closed_error = closed_error

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` (one page request) as a task ended by :meth:`close`."""
        if self.closed:
            coro.close()
            raise self.closed_error()
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def check(self) -> None:
        """Raise the client's :class:`~aioudata.ClientClosedError` once it is closed."""
        if self.closed:
            raise self.closed_error()

    async def close(self) -> None:
        """Refuse new page requests, cancel those in flight and wait until they are gone."""
        self.closed = True
        me = asyncio.current_task()
        pending = [task for task in self._tasks if not task.done() and task is not me]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _item_id(item: Any) -> Hashable | None:
    value = getattr(item, "id", None)
    return value if isinstance(value, Hashable) else None


class Paginator(Generic[PageT, ItemT]):
    """A listing operation bound to its arguments.

    Awaiting it fetches one page (the ``page`` argument, or the first). Iterating it yields every
    item from that page to the end; :meth:`pages` yields whole pages. :meth:`options` returns a
    copy with other walking options. Break out of a loop or cancel its task and the page requests
    still outstanding are cancelled; ``contextlib.aclosing(paginator.pages())`` makes that
    immediate rather than at the generator's finalisation.

    Args:
        concurrency: pages requested at once. At most twice as many are held (in flight or
            waiting for the consumer), however long the listing and however slow the consumer:
            the slack keeps requests going while an earlier page is slow or retried.
        ordered: hand out pages in page order (default) or as they arrive.
        mode: ``"concurrent"`` needs the listing's ``total``; ``"sequential"`` follows
            ``next_page`` one request at a time; ``"auto"`` is concurrent when a total is known.
        max_page_size: a larger ``page_size`` is refused before any request.
        max_results: the search cap: no page past ``max_results`` items is requested
            (default 10,000 for ``/search/`` paths, none otherwise; ``None``: no cap; the
            server's own refusal is recognised either way).
        over_cap: at the cap, raise :class:`SearchCapError` (default) or stop quietly.
        recheck: when the listing moved during the walk, walk it once more and yield the items
            the first pass missed.
        key: the identity used to de-duplicate items (default: their ``id``).
        expected_total: how many items the caller expects (a previous walk's count): the
            pages it implies are requested together with the first one, instead of after it
            told the total (one round trip less; a wrong guess costs a few requests, no item).
        tasks: where the page requests run (the client's :class:`WalkTasks`, so that closing
            the client ends them); by default the one of the client whose ``request`` is
            ``fetch``, if any.
    """

    __slots__ = (
        "_args",
        "_concurrency",
        "_endpoint",
        "_expected_total",
        "_fetch",
        "_key",
        "_max_page_size",
        "_max_results",
        "_mode",
        "_ordered",
        "_over_cap",
        "_recheck",
        "_tasks",
        "stats",
    )

    def __init__(
        self,
        fetch: Fetch[PageT],
        endpoint: Endpoint[PageT],
        args: dict[str, Any],
        *,
        concurrency: int = 8,
        ordered: bool = True,
        mode: Mode = "auto",
        max_page_size: int | None = DEFAULT_MAX_PAGE_SIZE,
        max_results: int | _Keep | None = _KEEP,
        over_cap: OverCap = "raise",
        recheck: bool = False,
        key: Callable[[Any], Hashable | None] = _item_id,
        tasks: WalkTasks | None = None,
        expected_total: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ArgumentError(f"concurrency must be at least 1, not {concurrency}")
        if mode not in ("auto", "concurrent", "sequential"):
            raise ArgumentError(f"mode must be auto, concurrent or sequential, not {mode!r}")
        if over_cap not in ("raise", "stop"):
            raise ArgumentError(f"over_cap must be raise or stop, not {over_cap!r}")
        self._fetch = fetch
        self._endpoint = endpoint
        self._args = args
        self._concurrency = concurrency
        self._ordered = ordered
        self._mode: Mode = mode
        self._max_page_size = max_page_size
        if max_results is _KEEP:  # the default: the cap on search paths only
            max_results = SEARCH_CAP if "/search" in endpoint.path else None
        self._max_results: int | None = max_results
        self._over_cap: OverCap = over_cap
        self._recheck = recheck
        self._key = key
        self._expected_total = expected_total
        if tasks is None:  # Paginator(client.request, ...): the walk belongs to that client
            found = getattr(getattr(fetch, "__self__", None), "_walk_tasks", None)
            tasks = found if isinstance(found, WalkTasks) else None
        self._tasks = tasks
        #: Counters of the latest walk (a new one starts with each iteration).
        self.stats = PaginationStats()

    def options(
        self,
        *,
        concurrency: int | None = None,
        ordered: bool | None = None,
        mode: Mode | None = None,
        max_page_size: int | _Keep | None = _KEEP,
        max_results: int | _Keep | None = _KEEP,
        over_cap: OverCap | None = None,
        recheck: bool | None = None,
        key: Callable[[Any], Hashable | None] | None = None,
        expected_total: int | None = None,
    ) -> Paginator[PageT, ItemT]:
        """A copy of this listing walked with other options; those not given are kept.

        ``max_page_size=None`` lifts the page size limit, ``max_results=None`` the search cap.
        """

        def pick(new: Any, old: Any) -> Any:
            return old if new is None or new is _KEEP else new

        return Paginator(
            self._fetch,
            self._endpoint,
            dict(self._args),
            concurrency=pick(concurrency, self._concurrency),
            ordered=pick(ordered, self._ordered),
            mode=pick(mode, self._mode),
            max_page_size=self._max_page_size if max_page_size is _KEEP else max_page_size,
            max_results=self._max_results if max_results is _KEEP else max_results,
            over_cap=pick(over_cap, self._over_cap),
            recheck=pick(recheck, self._recheck),
            key=pick(key, self._key),
            tasks=self._tasks,
            expected_total=pick(expected_total, self._expected_total),
        )

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._args.items() if v is not None}
        return (
            f"<Paginator {self._endpoint.operation_id} {shown} concurrency={self._concurrency}"
            f" ordered={self._ordered} mode={self._mode}>"
        )

    # One page.

    def __await__(self) -> Generator[Any, None, PageT]:
        return self._one().__await__()

    async def _one(self) -> PageT:
        size = self._args.get("page_size")
        self._check_size(size)
        number = int(self._args.get("page") or 1)
        if size is not None:
            self._check_cap(number, size, None)
        page = await self._get(number, size, past_end_ok=False)
        assert page is not None  # past_end_ok=False raises instead
        return page

    # Every page.

    def pages(self) -> AsyncGenerator[PageT, None]:
        """Every page from the requested one to the last (see the class for the options)."""
        self.stats = PaginationStats()
        return self._walk(self.stats)

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return self._items()

    async def _items(self) -> AsyncGenerator[ItemT, None]:
        self.stats = stats = PaginationStats()
        seen: set[Hashable] = set()
        key = self._key
        async with contextlib.aclosing(self._walk(stats)) as walk:
            async for page in walk:
                for item in _data(page):
                    ident = key(item)
                    if ident is not None:
                        if ident in seen:
                            stats.duplicates += 1
                            continue
                        seen.add(ident)
                    yield item
                    self._alive()
        if not (self._recheck and stats.moved):
            return
        # The listing moved under the walk: walk it again and hand out what was missed.
        stats.rechecks += 1
        again = PaginationStats()
        listed: set[Hashable] = set()
        async with contextlib.aclosing(self._walk(again)) as walk:
            async for page in walk:
                for item in _data(page):
                    ident = key(item)
                    if ident is None or ident in listed:
                        continue
                    listed.add(ident)
                    if ident not in seen:
                        seen.add(ident)
                        stats.recovered += 1
                        yield item
                        self._alive()
        stats.pages += again.pages
        stats.total_last = again.total_last
        stats.expected = again.expected
        stats.missed = max(0, again.expected - len(listed)) if again.expected is not None else 0

    async def _walk(self, stats: PaginationStats) -> AsyncGenerator[PageT, None]:
        size = self._iteration_size()
        self._check_size(size)
        start = int(self._args.get("page") or 1)
        if size is not None:
            self._check_cap(start, size, None)
        ahead = self._ahead(start, size)
        try:
            first = await self._get(start, size, past_end_ok=start > 1)
        except BaseException:
            await _cancel(ahead.values())
            raise
        if first is None:
            await _cancel(ahead.values())
            return
        self._note(stats, first)
        asked, size = size, self._served_size(stats, first, start, size)
        total = _total(first)
        if size != asked or not _has_more(first, start, size):
            await _cancel(ahead.values())  # requested at a page size the server does not serve
            ahead = {}
        if not _has_more(first, start, size):
            yield first
            self._alive()
            self._finish(stats, start, size)
            return
        if self._mode == "sequential" or size is None or (self._mode == "auto" and total is None):
            await _cancel(ahead.values())
            walk = self._sequential(stats, first, start, size)
        elif total is None:
            await _cancel(ahead.values())
            raise ArgumentError(
                f"{self._endpoint.operation_id}: concurrent mode needs a listing with a total"
            )
        else:
            walk = self._concurrent_pages(stats, first, start, size, ahead)
        async with contextlib.aclosing(walk):
            async for page in walk:
                yield page
        self._finish(stats, start, size)

    def _ahead(self, start: int, size: int | None) -> dict[int, asyncio.Future[PageT | None]]:
        """With an ``expected_total``, the pages after the first it implies (``concurrency``
        at most), requested now, alongside the first."""
        if not self._expected_total or not size or self._mode == "sequential":
            return {}
        last = min(math.ceil(self._expected_total / size), start + self._concurrency - 1)
        cap = self._max_results
        return {
            number: self._spawn(self._get(number, size, past_end_ok=True))
            for number in range(start + 1, last + 1)
            if cap is None or number * size <= cap
        }

    def _served_size(
        self, stats: PaginationStats, first: PageT, start: int, asked: int | None
    ) -> int | None:
        """The page size to walk at: what the first page really holds when the server serves
        fewer items than the ``page_size`` it echoes (then its pages are that many apart)."""
        echoed = getattr(first, "page_size", None)
        size = echoed if isinstance(echoed, int) and echoed > 0 else asked
        served = len(_data(first))
        if size is None:
            return served or None
        total = _total(first)
        says_more = _next_page(first) or (total is not None and total > served)
        if start == 1 and 0 < served < size and says_more:
            stats.served_page_size = served
            return served
        return size

    async def _sequential(
        self, stats: PaginationStats, first: PageT, start: int, size: int | None
    ) -> AsyncGenerator[PageT, None]:
        """One page after another, while ``next_page`` says there is more."""
        page, number = first, start
        stats.max_held = max(stats.max_held, 1)
        yield page
        self._alive()
        while _has_more(page, number, size):
            number += 1
            if size is not None and self._capped(number, size, stats):
                return
            fetched = await self._get(number, size, past_end_ok=True)
            if fetched is None:
                return
            page = fetched
            self._note(stats, page)
            yield page
            self._alive()

    async def _concurrent_pages(
        self,
        stats: PaginationStats,
        first: PageT,
        start: int,
        size: int,
        ahead: dict[int, asyncio.Future[PageT | None]],
    ) -> AsyncGenerator[PageT, None]:
        """Pages in order (or as they arrive): ``concurrency`` in flight, twice that held;
        ``ahead``: pages already requested."""
        window = dict(ahead)
        plan = _Plan(start, size, stats.total_last)
        plan.next = max(plan.next, *(n + 1 for n in window), start + 1)
        head = start + 1
        try:
            self._extend(plan, first, start)
            self._launch(window, plan, stats)
            yield first
            self._alive()
            while window:
                if self._ordered:
                    if head not in window:
                        break
                    if not window[head].done():
                        # Any page arriving frees a request slot: keep requesting ahead
                        # (within the held bound) while the head is slow or being retried.
                        waiting = [f for f in window.values() if not f.done()]
                        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                        self._launch(window, plan, stats)
                        continue
                    numbers = [head]
                else:
                    await asyncio.wait(
                        [f for f in window.values() if not f.done()] or window.values(),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    numbers = sorted(n for n, f in window.items() if f.done())
                for number in numbers:
                    page = self._result(window.pop(number))
                    if page is None or not _data(page):
                        # Past the end (the listing shrank): nothing beyond exists either.
                        plan.last = min(plan.last, number - 1)
                        await _cancel([window.pop(n) for n in list(window) if n > number])
                        continue
                    self._note(stats, page)
                    plan.grow(stats.total_last)
                    if number > plan.announced:
                        stats.overran = max(stats.overran, number - plan.announced)
                    self._extend(plan, page, number)
                    self._launch(window, plan, stats)
                    yield page
                    self._alive()
                    head = number + 1
                self._launch(window, plan, stats)
            if plan.capped_at is not None and plan.capped_at <= plan.last:
                self._capped(plan.capped_at, size, stats)
        finally:
            await _cancel(window.values())

    def _extend(self, plan: _Plan, page: PageT, number: int) -> None:
        """Plan further pages when the last planned one says there is more than the total."""
        if number == plan.last and _has_more(page, number, plan.size):
            plan.last += self._concurrency if _next_page(page) else 1

    def _launch(
        self,
        window: dict[int, asyncio.Future[PageT | None]],
        plan: _Plan,
        stats: PaginationStats,
    ) -> None:
        """Request the next pages: ``concurrency`` in flight, twice that held at most."""
        cap = self._max_results
        in_flight = sum(1 for future in window.values() if not future.done())
        while (
            in_flight < self._concurrency
            and len(window) < 2 * self._concurrency
            and plan.next <= plan.last
        ):
            number = plan.next
            if cap is not None and number * plan.size > cap:
                plan.capped_at = number
                break
            window[number] = self._spawn(self._get(number, plan.size, past_end_ok=True))
            plan.next += 1
            in_flight += 1
        stats.max_held = max(stats.max_held, len(window) + 1)

    # Helpers.

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """A page request run ahead, as a task the client ends when it closes."""
        if self._tasks is None:
            return asyncio.ensure_future(coro)
        return self._tasks.spawn(coro)

    def _alive(self) -> None:
        """Resuming a walk whose client was closed meanwhile raises ClientClosedError."""
        if self._tasks is not None:
            self._tasks.check()

    def _result(self, future: asyncio.Future[T]) -> T:
        """A page request's outcome; one cancelled by the client closing says so."""
        if future.cancelled() and self._tasks is not None:
            self._tasks.check()
        return future.result()

    async def _get(self, number: int, size: int | None, *, past_end_ok: bool) -> PageT | None:
        """Page ``number``, or None when it is past the end of the listing."""
        args = {**self._args, "page": number}
        if size is not None:
            args["page_size"] = size
        try:
            return await self._fetch(self._endpoint, args)
        except NotFoundError:
            # udata answers 404 for a page past the end (the listing shrank meanwhile); on the
            # first page it means the listing itself (its organization, user...) is unknown.
            if past_end_ok and number > 1:
                return None
            raise
        except BadRequestError as error:
            if _CAP_MESSAGE not in (error.message or "").lower():
                raise
            if self._over_cap == "stop":
                return None
            raise SearchCapError(
                cap=self._max_results or SEARCH_CAP, page=number, page_size=size or 0, total=None
            ) from error

    def _iteration_size(self) -> int | None:
        size = self._args.get("page_size")
        if size is not None or self._args.get("page") is not None:
            return size
        if not any(param.name == "page_size" for param in self._endpoint.params):
            return None
        ceiling = self._max_page_size or ITERATION_PAGE_SIZE
        return min(ITERATION_PAGE_SIZE, ceiling)

    def _check_size(self, size: Any) -> None:
        limit = self._max_page_size
        if isinstance(size, int) and limit is not None and size > limit:
            raise ArgumentError(
                f"{self._endpoint.operation_id}: page_size {size} is above the maximum of {limit}"
                " (raise it with .options(max_page_size=...) if the portal allows it)"
            )

    def _check_cap(self, number: int, size: int, total: int | None) -> None:
        cap = self._max_results
        if cap is not None and number * size > cap:
            raise SearchCapError(cap=cap, page=number, page_size=size, total=total)

    def _capped(self, number: int, size: int, stats: PaginationStats) -> bool:
        """True when page ``number`` is past the search cap and the walk should stop quietly."""
        cap = self._max_results
        if cap is None or number * size <= cap:
            return False
        if self._over_cap == "stop":
            return True
        raise SearchCapError(cap=cap, page=number, page_size=size, total=stats.total_last)

    @staticmethod
    def _note(stats: PaginationStats, page: Any) -> None:
        first = stats.pages == 0
        stats.pages += 1
        stats.items += len(_data(page))
        total = _total(page)
        if first:
            stats.total_first = total
        elif total != stats.total_first:
            stats.total_changes += 1
        if total is not None:
            stats.total_last = total

    def _finish(self, stats: PaginationStats, start: int, size: int | None) -> None:
        """Compare what the walk yielded with what the listing's total says it holds."""
        total = stats.total_last
        if total is None:
            return
        skipped = (start - 1) * (size or 0)
        expected = total - skipped
        if self._max_results is not None:
            expected = min(expected, self._max_results - skipped)
        stats.expected = max(0, expected)
        stats.missed = max(0, stats.expected - (stats.items - stats.duplicates))
        if self._max_results is not None and size and total >= self._max_results:
            # A search engine's total stops at its window (data.gouv.fr's search reports 10,000
            # for far more): results past it may exist, and no page can serve them.
            self._capped(self._max_results // size + 1, size, stats)


class _Plan:
    """Which page to request next, and the last one the listing's total implies."""

    __slots__ = ("announced", "capped_at", "last", "next", "size")

    def __init__(self, start: int, size: int, total: int | None) -> None:
        self.next = start + 1
        self.size = size
        #: At least the page just fetched: a total below it was under-reported.
        self.last = max(start, math.ceil((total or 0) / size))
        self.announced = self.last
        self.capped_at: int | None = None

    def grow(self, total: int | None) -> None:
        """The listing grew while walked: plan its new pages too."""
        if total is not None:
            self.last = max(self.last, math.ceil(total / self.size))


async def _cancel(futures: Any) -> None:
    """Cancel page requests still outstanding and wait until they are gone."""
    pending = [f for f in futures if not f.done()]
    for future in pending:
        future.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for future in futures:
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: no "exception was never retrieved" warning


def _data(page: Any) -> list[Any]:
    return getattr(page, "data", None) or []


def _total(page: Any) -> int | None:
    total = getattr(page, "total", None)
    return total if isinstance(total, int) else None


def _next_page(page: Any) -> bool:
    return bool(getattr(page, "next_page", None))


def _has_more(page: Any, number: int, size: int | None) -> bool:
    """True when something may follow ``page`` (page ``number`` of ``size`` items).

    What the page holds wins over what it says: a ``next_page`` means more, and so does a
    total beyond this page; a full page means more too (one more request tells) unless its
    total says it ends the listing. An empty page ends it.
    """
    data = _data(page)
    if not data:
        return False
    if _next_page(page):
        return True
    total = _total(page)
    if total is not None and size is not None and number * size < total:
        return True
    return size is not None and len(data) >= size and total is None
