"""The crawl: full, incremental and id passes per entity, checkpointed page by page."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .._client import Client
from .._errors import GoneError, NotFoundError, PermissionDeniedError, ServerError
from .._generated.operations.site import _GET_SITE
from .._pagination import Paginator
from .._retry import RetryPolicy
from .config import EntitySummary, MirrorConfig, MirrorError, MirrorSummary
from .entities import EntitySpec, RawPage, entity
from .progress import EntityProgress, Progress, RetryAttribution
from .records import Batch, ErrorRow, decode_records, stamps_of
from .store import AsyncStore, Counts, PassState, export_jsonl

__all__ = ["run_mirror"]

logger = logging.getLogger("aioudata.mirror")

#: Page size of the id pass (ids and timestamps only: cheap to serve).
IDS_PAGE_SIZE = 1000
#: The first request only checks the URL and the key: two attempts, no cool-off.
_PREFLIGHT_RETRY = RetryPolicy(max_attempts=2, max_time=20.0, refused_burst=1_000_000)
_ID_MASK = "data{id},page,page_size,total,next_page"
#: Pages in a row whose every item fails server-side before the run gives up.
MAX_FAILED_PAGES = 3

Handler = Callable[[RawPage, int, list[ErrorRow]], Awaitable[bool]]


def _when(text: str | None) -> datetime | None:
    """An ISO timestamp as an aware datetime (naive ones are taken as UTC)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _divisor(count: int) -> int:
    """The piece size a failing page of ``count`` items is split into (1 for small pages)."""
    if count < 8:
        return 1
    return max(d for d in range(1, count // 4 + 1) if count % d == 0)


def v2_url(base_url: str) -> str:
    """The API v2 root next to a v1 root (topics live there)."""
    head, _, version = base_url.rstrip("/").rpartition("/")
    if version != "1" or not head:
        raise MirrorError(f"topics need the API v2: cannot derive it from {base_url}", code=2)
    return f"{head}/2"


def make_client(
    config: MirrorConfig, base_url: str | None = None, *, retry: RetryPolicy | None = None
) -> Client:
    """A client with the run's pacing: ``rate`` requests/s, ``concurrency`` in flight."""
    return Client(
        base_url or config.base_url,
        api_key=config.api_key,
        rate=config.rate,
        burst=max(1, config.concurrency),
        max_in_flight=config.concurrency,
        retry=retry or config.retry or RetryPolicy(),
        user_agent=config.user_agent,
        timeout=config.timeout,
    )


class _Job:
    """One run over several entities, sharing one client, one store and one progress."""

    def __init__(
        self,
        config: MirrorConfig,
        store: AsyncStore,
        client: Client,
        progress: Progress,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.progress = progress
        self._v2: Client | None = None
        #: Resources written by the datasets passes.
        self.resource_counts = Counts()
        #: Entities whose listing ended before its total this run: no deletions marked.
        self.short: set[str] = set()

    def client_for(self, spec: EntitySpec) -> Client:
        """The v1 client, or a v2 one (same options) for topics."""
        if spec.api_version == 1:
            return self.client
        if self._v2 is None:
            self._v2 = make_client(self.config, v2_url(self.client.base_url))
        return self._v2

    async def close(self) -> None:
        """Close the v2 client if one was made."""
        if self._v2 is not None:
            await self._v2.close()

    def retries(self) -> int:
        """Retries of every client of the run."""
        return self.client.stats.retries + (self._v2.stats.retries if self._v2 else 0)

    def requests(self) -> int:
        """Requests of every client of the run."""
        return self.client.stats.requests + (self._v2.stats.requests if self._v2 else 0)

    # --- arguments -----------------------------------------------------------------------

    def filters(self, spec: EntitySpec) -> dict[str, Any]:
        """The run's filters that this entity's listing accepts."""
        config = self.config
        args: dict[str, Any] = {}
        if config.organization:
            if spec.accepts("organization"):
                args["organization"] = config.organization
            elif spec.accepts("org"):
                args["org"] = config.organization
        if config.q and spec.accepts("q"):
            args["q"] = config.q
        if config.tag and spec.accepts("tag"):
            args["tag"] = list(config.tag)
        return args

    # --- one entity ----------------------------------------------------------------------

    async def sync(self, spec: EntitySpec) -> EntitySummary:
        """Bring one entity's table up to date: resume, or a full or incremental pass."""
        started = time.monotonic()
        live = self.progress.entity(spec.name)
        live.started = started
        summary = EntitySummary(spec.name)
        state = await self.store.call(self.store.sync.load_state, spec.name)
        resume = (
            not state.finished
            and state.kind is not None
            and not (self.config.full and state.kind != "full")
        )
        if resume:
            summary.mode = f"resumed {state.kind} pass at page {state.page + 1}"
        else:
            incremental = bool(
                not self.config.full
                and state.full_done
                and spec.changed_sort
                and state.hwm is not None
            )
            t0 = await self.top_stamp(spec) if spec.changed_sort else None
            state = PassState(
                spec.name,
                pass_no=state.pass_no + 1,
                kind="changes" if incremental else "full",
                page=0,
                page_size=self.config.page_size,
                sort=spec.changed_sort if incremental else spec.full_sort,
                t0=t0,
                since=state.hwm if incremental else None,
                finished=False,
                full_done=state.full_done,
                hwm=state.hwm,
            )
            await self.store.call(self.store.sync.save_state, state)
            if not incremental:
                await self.store.call(self.store.sync.clear_position_errors, spec.name)
            summary.mode = "incremental" if incremental else "full"
        self.progress.note(f"{spec.name}: {summary.mode}")
        counts = Counts()
        if state.kind == "changes":
            live.phase = "changes"
            await self.walk(spec, state, None, self.changes_handler(spec, state, counts, summary))
            state = dataclasses.replace(
                state, kind="ids", page=0, page_size=IDS_PAGE_SIZE, sort=spec.full_sort
            )
            await self.store.call(self.store.sync.save_state, state)
            self.progress.note(f"{spec.name}: id pass")
        if state.kind == "ids":
            live.phase = "id pass"
            # Items count what the id pass lists: the whole catalog, the changes counted apart.
            live.items, summary.listed = 0, 0
            mask = "data{" + ",".join(("id", *spec.stamps)) + "},page,page_size,total,next_page"
            await self.walk(spec, state, mask, self.ids_handler(spec, state, counts, summary))
        elif state.kind == "full":
            live.phase = "full pass"
            await self.walk(spec, state, None, self.full_handler(spec, state, counts, summary))
        live.phase = "deletions"
        await self.finish(spec, state, counts)
        summary.new, summary.updated, summary.unchanged = (
            counts.new,
            counts.updated,
            counts.unchanged,
        )
        summary.deleted, summary.errors = counts.deleted, counts.errors
        self.resource_counts.add(
            Counts(
                new=counts.resources_new,
                updated=counts.resources_updated,
                deleted=counts.resources_deleted,
            )
        )
        summary.stored = await self.store.call(self.store.sync.count, spec.name)
        summary.elapsed = time.monotonic() - started
        summary.retries = live.retries
        live.phase, live.finished = "done", time.monotonic()
        self.progress.note(f"{spec.name}: done, {summary.stored} stored")
        return summary

    @staticmethod
    def count(live: EntityProgress, counts: Counts) -> None:
        """Show what one write changed."""
        live.new += counts.new
        live.updated += counts.updated
        live.deleted += counts.deleted
        live.errors += counts.errors

    async def top_stamp(self, spec: EntitySpec) -> str | None:
        """The newest change time the listing shows now: the next run's high-water mark."""
        field = spec.hwm_field
        assert field is not None
        args = {
            **self.filters(spec),
            "page": 1,
            "page_size": 1,
            "sort": spec.changed_sort,
            "x_fields": "data{id," + field + "},page,page_size,total,next_page",
        }
        page = await self.client_for(spec).request(spec.list_endpoint, args)
        for _, stamps in stamps_of(page.data):
            value = _aware(stamps.get(field))
            return value.isoformat() if value else None
        return None

    # --- walking a listing ---------------------------------------------------------------

    async def walk(
        self, spec: EntitySpec, state: PassState, mask: str | None, handle: Handler
    ) -> None:
        """Every page from the checkpoint on, in order; a page failing server-side is split."""
        client = self.client_for(spec)
        args: dict[str, Any] = {**self.filters(spec), "page_size": state.page_size}
        if state.sort and spec.accepts("sort"):
            args["sort"] = state.sort
        if mask:
            args["x_fields"] = mask
        live = self.progress.entity(spec.name)
        number = state.page + 1
        done_before = live.pages
        failed_in_a_row = 0
        while True:  # each round advances at least one page, or returns
            paginator: Paginator[RawPage, Any] = Paginator(
                client.request,
                spec.list_endpoint,
                {**args, "page": number},
                concurrency=self.config.concurrency,
                ordered=True,
            )
            try:
                pages = paginator.pages()
                async with contextlib.aclosing(pages):
                    async for page in pages:
                        if page.total is not None and live.pages == done_before:
                            # Pages done before this walk, plus what this one has left.
                            left = page.total - state.page * state.page_size
                            live.pages_total = done_before + max(
                                1, math.ceil(left / state.page_size)
                            )
                        stop = await handle(page, number, [])
                        failed_in_a_row = 0
                        number += 1
                        if stop:
                            return
                missed = paginator.stats.missed
                if missed:
                    # The listing ended early (a 404 or an empty page before its total): what
                    # it did not list may still exist, so nothing is marked deleted this run.
                    self.short.add(spec.name)
                    logger.warning(
                        "%s: the listing ended %d items short of its total (%s);"
                        " no deletions are marked this run",
                        spec.name,
                        missed,
                        paginator.stats.total_last,
                    )
                    self.progress.note(f"{spec.name}: listing ended {missed} items short")
                return
            except ServerError as error:
                logger.warning(
                    "%s: page %d keeps failing (%s); splitting it", spec.name, number, error
                )
                stop, all_failed = await self.salvage(spec, client, args, number, handle)
                failed_in_a_row = failed_in_a_row + 1 if all_failed else 0
                if failed_in_a_row >= MAX_FAILED_PAGES:
                    raise
                number += 1
                if stop:
                    return

    async def salvage(
        self,
        spec: EntitySpec,
        client: Client,
        args: dict[str, Any],
        number: int,
        handle: Handler,
    ) -> tuple[bool, bool]:
        """Page ``number`` in smaller and smaller pieces: items that keep failing are recorded.

        Returns (end of listing reached, every item failed).
        """
        size = int(args["page_size"])
        items: list[Any] = []
        errors: list[ErrorRow] = []
        end = await self._split(spec, client, args, (number - 1) * size, size, items, errors)
        if not items and not errors:
            return True, False
        page = RawPage(data=items, page=number, page_size=size)
        stop = await handle(page, number, errors)
        return stop or end, bool(errors) and not items

    async def _split(
        self,
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
                    if await self._split(
                        spec, client, args, (number - 1) * sub, sub, items, errors
                    ):
                        return True
                    continue
                errors.append(await self._unreadable(spec, client, args, number, error))
                continue
            items.extend(page.data)
            if not page.next_page:
                return True
        return False

    async def _unreadable(
        self,
        spec: EntitySpec,
        client: Client,
        args: dict[str, Any],
        position: int,
        error: Exception,
    ) -> ErrorRow:
        """The error row of an item the server cannot list: by id when a masked read gives it."""
        reason = f"fails server-side: {error}"
        with contextlib.suppress(Exception):
            page = await client.request(
                spec.list_endpoint,
                {**args, "page": position, "page_size": 1, "x_fields": _ID_MASK},
            )
            for item_id, _ in stamps_of(page.data):
                return ErrorRow(spec.name, item_id, item_id, None, reason)
        key = f"position:{args.get('sort') or 'default'}:{position}"
        return ErrorRow(spec.name, key, None, None, f"item {position} of the listing {reason}")

    # --- the three kinds of pass -----------------------------------------------------------

    def full_handler(
        self, spec: EntitySpec, state: PassState, counts: Counts, summary: EntitySummary
    ) -> Handler:
        """Full pass: every page's records upserted, with the checkpoint."""
        live = self.progress.entity(spec.name)

        async def handle(page: RawPage, number: int, extra: list[ErrorRow]) -> bool:
            batch = decode_records(spec, page.data)
            batch.errors.extend(extra)
            await self.write(spec, state, number, batch, counts, summary)
            live.items += len(page.data)
            return False

        return handle

    def changes_handler(
        self, spec: EntitySpec, state: PassState, counts: Counts, summary: EntitySummary
    ) -> Handler:
        """Newest changes first, until a page holds only objects older than the mark."""
        live = self.progress.entity(spec.name)
        since = _when(state.since)
        field = spec.hwm_field
        column = spec.column_names().index(field) if field in spec.column_names() else None

        async def handle(page: RawPage, number: int, extra: list[ErrorRow]) -> bool:
            batch = decode_records(spec, page.data)
            batch.errors.extend(extra)
            await self.write(spec, state, number, batch, counts, summary)
            live.items += len(page.data)
            if since is None or column is None:
                return False
            stamps = [_when(row.values[column]) for row in batch.rows]
            return bool(stamps) and all(s is not None and s < since for s in stamps)

        return handle

    def ids_handler(
        self, spec: EntitySpec, state: PassState, counts: Counts, summary: EntitySummary
    ) -> Handler:
        """Id pass: ids and timestamps only; new or changed objects are fetched one by one."""
        live = self.progress.entity(spec.name)

        async def handle(page: RawPage, number: int, extra: list[ErrorRow]) -> bool:
            found = stamps_of(page.data)
            ids = [item_id for item_id, _ in found]
            stored = await self.store.call(self.store.sync.stamps, spec, ids)
            stale: list[str] = []
            for item_id, stamps in found:
                known = stored.get(item_id)
                if known is None or known[1] is not None:
                    stale.append(item_id)
                    continue
                for name, value in known[0].items():
                    if _when(value) != _aware(stamps.get(name)):
                        stale.append(item_id)
                        break
            batch, _ = await self.fetch_each(spec, stale)
            batch.listed = list(ids)  # every id of the page (the fetched ones among them)
            batch.errors.extend(extra)
            await self.write(spec, state, number, batch, counts, summary)
            live.items += len(page.data)
            return False

        return handle

    async def write(
        self,
        spec: EntitySpec,
        state: PassState,
        number: int,
        batch: Batch,
        counts: Counts,
        summary: EntitySummary,
    ) -> None:
        """Commit one page with its checkpoint."""
        state.page = number
        written = await self.store.call(
            self.store.sync.write_batch, spec, batch, state.pass_no, dataclasses.replace(state)
        )
        counts.add(written)
        summary.pages += 1
        summary.listed += len(batch.listed)
        live = self.progress.entity(spec.name)
        live.pages += 1
        self.count(live, written)

    async def fetch_each(self, spec: EntitySpec, ids: Sequence[str]) -> tuple[Batch, list[str]]:
        """Objects by id: a batch of the ones fetched, and the ids that are gone."""
        batch = Batch()
        gone: list[str] = []
        if not ids:
            return batch, gone
        client = self.client_for(spec)
        slots = asyncio.Semaphore(self.config.concurrency)

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
            raise _first_error(failure) from None
        return batch, gone

    async def finish(self, spec: EntitySpec, state: PassState, counts: Counts) -> None:
        """End a complete pass: mark what it no longer lists as deleted, save the mark."""
        unseen = await self.store.call(self.store.sync.unseen, spec, state.pass_no)
        if spec.name in self.short:
            unseen = []  # an incomplete listing says nothing of what was deleted
        deleted: list[str] = list(unseen)
        refreshed = Batch()
        if unseen and not self.filters(spec) and len(unseen) <= self.config.verify_deletions:
            # Check them one by one: a moving catalog can hide an id from a page-number walk.
            refreshed, _ = await self.fetch_each(spec, unseen)
            still = {row.id for row in refreshed.rows if not spec.hidden_in(row.values)}
            failed = {error.item_id for error in refreshed.errors}
            refreshed.errors = []  # a flaky fetch does not quarantine a listed object
            deleted = [item for item in unseen if item not in still and item not in failed]
        final = dataclasses.replace(
            state,
            finished=True,
            full_done=state.full_done or state.kind == "full",
            hwm=state.t0 if spec.changed_sort else None,
        )
        written = await self.store.call(
            self.store.sync.finish_pass, spec, refreshed, deleted, state.pass_no, final
        )
        counts.add(written)
        self.count(self.progress.entity(spec.name), written)


def _first_error(error: BaseException) -> BaseException:
    """The error to report from a task group's failure."""
    if isinstance(error, BaseExceptionGroup):
        leaves = [_first_error(e) for e in error.exceptions]
        for leaf in leaves:
            if not isinstance(leaf, asyncio.CancelledError):
                return leaf
        return leaves[0]
    return error


async def _preflight(client: Client) -> None:
    """One cheap request: the URL is a udata API and the key (if any) is accepted.

    udata checks a key on every request it comes with, reads included.
    """

    site = dataclasses.replace(_GET_SITE, response=bytes)
    try:
        await client.request(site, {"x_fields": "id,title"})
    except NotFoundError as error:
        raise MirrorError(
            f"{client.base_url} is not a udata API v1 root (404 on /site/)", code=2
        ) from error


async def run_mirror(
    config: MirrorConfig,
    *,
    progress: Progress | None = None,
    client: Client | None = None,
) -> MirrorSummary:
    """Mirror a udata catalog as ``config`` says; the summary of what changed.

    Resumes an interrupted run from its checkpoints, runs incrementally after a complete one.
    ``client`` (optional) is used as is and left open; otherwise one is made from ``config``.
    Raises :class:`MirrorError` (bad options, another mirror's database), or the client's
    errors (:class:`~aioudata.AuthenticationError`, :class:`~aioudata.TransportError`...).
    """
    try:
        specs = [entity(name) for name in dict.fromkeys(config.entities)]
    except KeyError as error:
        raise MirrorError(f"unknown entity {error.args[0]!r}", code=2) from None
    started = time.monotonic()
    progress = progress or Progress(mode="off")
    own_client = client is None
    client = client or make_client(config)
    store = AsyncStore(config.database)
    job: _Job | None = None
    handler: RetryAttribution | None = None
    run_id = 0
    status = "failed"
    summary = MirrorSummary(base_url=client.base_url, database=str(config.database))
    try:
        if config.preflight and own_client:
            # Its own client, quick to give up: a wrong URL fails in seconds, not minutes.
            async with make_client(config, retry=_PREFLIGHT_RETRY) as probe:
                await _preflight(probe)
        elif config.preflight:
            await _preflight(client)
        await store.open()
        await _check_scope(store, client.base_url, config)
        run_id = await store.call(
            store.sync.start_run,
            {
                "base_url": client.base_url,
                "entities": [spec.name for spec in specs],
                "full": config.full,
                "page_size": config.page_size,
                "filters": config.filters(),
            },
        )
        job = _Job(config, store, client, progress)
        job.resource_counts = Counts()
        if progress.mode != "off":
            handler = RetryAttribution(
                {spec.name: spec.list_endpoint.path.split("{")[0] for spec in specs}, progress
            )
            _attach(handler)
        for spec in specs:
            progress.entity(spec.name)
        running = job
        progress.totals = lambda: (
            f"{'total':<15} {running.requests()} requests, {running.retries()} retries"
        )
        progress.start()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(job.sync(spec)) for spec in specs]
        except BaseExceptionGroup as failure:
            raise _first_error(failure) from None
        for task in tasks:
            result = task.result()
            summary.entities[result.name] = result
        if "datasets" in summary.entities:
            resources = EntitySummary(
                "resources",
                new=job.resource_counts.new,
                updated=job.resource_counts.updated,
                deleted=job.resource_counts.deleted,
            )
            resources.stored = await store.call(store.sync.count, "resources")
            summary.entities["resources"] = resources
        summary.errors_stored = await store.call(store.sync.count, "errors")
        if config.format == "jsonl" and config.out is not None:
            summary.files = await store.call(
                export_jsonl, store.sync, config.out, [spec.name for spec in specs]
            )
        status = "ok"
    except (asyncio.CancelledError, KeyboardInterrupt):
        status = "interrupted"
        raise
    finally:
        await progress.stop()
        if handler is not None:
            _detach(handler)
        summary.status = status
        summary.elapsed = time.monotonic() - started
        if job is not None:
            summary.requests, summary.retries = job.requests(), job.retries()
            await job.close()
        else:
            summary.requests, summary.retries = client.stats.requests, client.stats.retries
        if run_id:
            with contextlib.suppress(Exception):
                await store.call(store.sync.finish_run, run_id, status, summary.to_dict())
        await store.close()
        if own_client:
            await client.close()
    return summary


def _attach(handler: logging.Handler) -> None:
    log = logging.getLogger("aioudata")
    log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        handler.previous_level = log.level  # type: ignore[attr-defined]
        log.setLevel(logging.INFO)


def _detach(handler: logging.Handler) -> None:
    log = logging.getLogger("aioudata")
    log.removeHandler(handler)
    previous = getattr(handler, "previous_level", None)
    if previous is not None:
        log.setLevel(previous)


async def _check_scope(store: AsyncStore, base_url: str, config: MirrorConfig) -> None:
    """A database mirrors one portal with one set of filters."""
    import json

    stored_url = await store.call(store.sync.get_meta, "base_url")
    stored_filters = await store.call(store.sync.get_meta, "filters")
    filters = json.dumps(config.filters(), sort_keys=True)
    if stored_url is not None and stored_url != base_url:
        raise MirrorError(
            f"{config.database} is a mirror of {stored_url}, not {base_url}: use another --db",
            code=2,
        )
    if stored_filters is not None and stored_filters != filters:
        raise MirrorError(
            f"{config.database} was mirrored with other filters ({stored_filters}):"
            " use another --db",
            code=2,
        )
    await store.call(store.sync.set_meta, {"base_url": base_url, "filters": filters})
