"""One entity brought up to date: a listing pass, verification rounds, then deletions.

A full (or incremental) pass is always followed by id passes that verify it: each lists every
id with its timestamps, fetches by id what is not stored or has changed, and checks one by one
the stored objects it did not list. A round is *stable* when its listing did not move under it
and every stored object it did not list is really gone; then the objects gone are marked
deleted and the entity is complete. A round that is not stable is followed by another, up to
:data:`MAX_ROUNDS`; after that the entity ends ``partial`` (nothing marked deleted) and the
summary says why. Every step is checkpointed: a run stopped anywhere resumes where it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from .._errors import APIError, AuthenticationError, PermissionDeniedError
from .config import EntitySummary
from .entities import EntitySpec
from .passes import IDS_PAGE_SIZE, PASSES, IdsPass, Listed, Pass, list_ahead, when
from .records import Batch, stamps_of
from .run import Run
from .store import Counts, PassState
from .walk import WalkOutcome, fetch_each

__all__ = ["MAX_ROUNDS", "EntitySync"]

logger = logging.getLogger("aioudata.mirror")

#: Verification rounds before an entity whose listing keeps moving ends partial.
MAX_ROUNDS = 4


class EntitySync:
    """Brings one entity's table up to date (see the module's docstring)."""

    def __init__(self, run: Run, spec: EntitySpec) -> None:
        self.run = run
        self.spec = spec
        self.summary = EntitySummary(spec.name)
        self.tally = Counts()
        #: Objects refreshed by id while verifying, written with the finished checkpoint.
        self.refreshed = Batch()
        #: Stored objects the last round did not list and that are gone: marked deleted.
        self.deleted: list[str] = []
        #: Why the entity was skipped: its listing refused to this key (401, 403).
        self.refusal: APIError | None = None
        #: The newest change time when the pass began (the next high-water mark), asked for
        #: alongside the pass's first pages rather than before them.
        self.top: asyncio.Future[str | None] | None = None
        #: The first verification round's listing, walked while the pass ends (list_ahead).
        self.ahead: asyncio.Future[Listed | None] | None = None

    async def sync(self) -> EntitySummary:
        """Resume or start a pass, verify it, finish it; the entity's summary."""
        started = time.monotonic()
        live = self.run.live(self.spec)
        live.started = started
        store = self.run.store
        state: PassState | None = None
        try:
            state = await self.begin(await store.call(store.sync.load_state, self.spec.name))
            while not state.finished:
                state = await self.step(state)
        except (AuthenticationError, PermissionDeniedError) as error:
            await self._forget_requests()
            if self.summary.pages or (state is not None and state.kind == "ids"):
                raise
            # The listing itself is refused to this key (users without an admin key...).
            self.refusal = error
            self.summary.status = "skipped"
            self.summary.note = f"not listed: {error.status} {error.message or ''}".strip()
            logger.warning("%s: skipped, the listing is refused (%s)", self.spec.name, error)
            self.run.progress.note(f"{self.spec.name}: skipped ({error.status})")
        finally:
            await self._forget_requests()
        return await self.close(started)

    async def _forget_requests(self) -> None:
        """Cancel the requests still out beside the passes (the high-water mark's, the
        listing walked ahead), and retrieve their outcomes."""
        for future in (self.top, self.ahead):
            if future is not None and not future.done():
                future.cancel()
            if future is not None:
                await asyncio.gather(future, return_exceptions=True)

    async def begin(self, state: PassState) -> PassState:
        """The checkpoint to go on from: the interrupted pass, or a new full or changes pass."""
        config, spec = self.run.config, self.spec
        if not state.finished and state.kind and not (config.full and state.kind == "changes"):
            self.summary.mode = f"resumed {state.kind} pass at page {state.page + 1}"
            if state.kind == "ids":
                self.summary.mode += f" (round {state.round})"
            self.run.progress.note(f"{spec.name}: {self.summary.mode}")
            return state
        incremental = bool(
            not config.full and state.full_done and spec.changed_sort and state.hwm is not None
        )
        if spec.changed_sort:
            self.top = asyncio.ensure_future(self.top_stamp())
        state = PassState(
            spec.name,
            pass_no=state.pass_no + 1,
            kind="changes" if incremental else "full",
            page_size=config.page_size,
            sort=spec.changed_sort if incremental else spec.full_sort,
            since=state.hwm if incremental else None,
            finished=False,
            full_done=state.full_done,
            hwm=state.hwm,
        )
        store = self.run.store
        await store.call(store.sync.save_state, state)
        if not incremental:
            await store.call(store.sync.clear_position_errors, spec.name)
        self.summary.mode = "incremental" if incremental else "full"
        self.run.progress.note(f"{spec.name}: {self.summary.mode}")
        return state

    async def step(self, state: PassState) -> PassState:
        """Walk the pass ``state`` is at; the checkpoint after it."""
        assert state.kind is not None
        live = self.run.live(self.spec)
        live.phase = "verifying" if state.kind == "ids" else f"{state.kind} pass"
        if state.kind == "ids" and state.page == 0:
            # The round lists the whole catalog: items count that listing.
            live.items, self.summary.listed = 0, 0
        walked = PASSES[state.kind](self.run, self.spec, state, self.summary, self.tally)
        if isinstance(walked, IdsPass):
            walked.ahead, self.ahead = self.ahead, None  # for its first round only
        else:
            walked.near_end = self.list_ahead
        outcome = await walked.walk()
        if state.kind != "ids":
            return await self.next_round(walked, state)
        self.summary.rounds = state.round
        live.phase = "deletions"
        if await self.stable(state, outcome):
            return await self.finish(state, complete=True)
        if state.round >= MAX_ROUNDS:
            self.summary.status = "partial"
            self.summary.note = (
                f"the listing kept moving through {state.round} verification rounds:"
                " it may hold objects this mirror lacks; nothing was marked deleted"
            )
            logger.warning("%s: %s", self.spec.name, self.summary.note)
            return await self.finish(state, complete=False)
        return await self.next_round(walked, state)

    def list_ahead(self, total: int) -> None:
        """Walk the first verification round's listing now (the pass's last requests are
        out): its round trip overlaps the pass's last writes."""
        if self.ahead is None:
            self.ahead = asyncio.ensure_future(list_ahead(self.run, self.spec, total))

    async def next_round(self, walked: Pass, state: PassState) -> PassState:
        """Start a verification round (a new pass number: its own seen marks)."""
        if state.t0 is None and self.top is not None and self.top.done():
            state.t0 = self.top.result()  # kept with the checkpoint from now on
        state = dataclasses.replace(
            state,
            pass_no=state.pass_no + 1,
            kind="ids",
            page=0,
            page_size=IDS_PAGE_SIZE,
            sort=self.spec.full_sort,
            round=state.round + 1,
            full_done=state.full_done or walked.kind == "full",
        )
        store = self.run.store
        await store.call(store.sync.save_state, state)
        self.run.progress.note(f"{self.spec.name}: verification round {state.round}")
        return state

    async def stable(self, state: PassState, outcome: WalkOutcome) -> bool:
        """True when the round's listing can be trusted: it did not move, and the stored
        objects it did not list are really gone (those still there are refreshed)."""
        store, spec, config = self.run.store, self.spec, self.run.config
        unseen = await store.call(store.sync.unseen, spec, state.pass_no)
        stable = not outcome.moved and not outcome.missed
        if not unseen or self.run.filters(spec) or len(unseen) > config.verify_deletions:
            # Nothing to check, or no way to tell "left the filter" from "missed": the walk's
            # own account decides (and nothing is marked deleted unless it is stable).
            self.deleted = unseen if stable else []
            return stable
        # Check them one by one: a moving catalog can hide an id from a page-number walk.
        refreshed, _ = await fetch_each(self.run, spec, unseen)
        hidden = {row.id for row in refreshed.rows if spec.hidden_in(row.values)}
        listed = [row for row in refreshed.rows if row.id not in hidden]
        failed = {error.item_id for error in refreshed.errors}
        refreshed.errors = []  # a flaky fetch does not quarantine a listed object
        there = failed | {row.id for row in listed}
        self.deleted = [item for item in unseen if item not in there]
        if listed:
            # The round missed objects that are still there: it cannot be trusted.
            logger.info("%s: %d unlisted objects are still there", spec.name, len(listed))
            self.summary.repaired += len(listed)
            keep = Batch(rows=listed, resources=refreshed.resources, listed=[r.id for r in listed])
            written = await store.call(store.sync.write_batch, spec, keep, state.pass_no, None)
            self.tally.add(written)
            self.run.show(spec, written)
            return False
        self.refreshed = refreshed
        return stable

    async def finish(self, state: PassState, *, complete: bool) -> PassState:
        """End the entity's pass: deletions (only when complete), the mark, the checkpoint."""
        deleted = self.deleted if complete else []
        if state.t0 is None and self.spec.changed_sort:
            # The newest change when the pass began; after a resume, now (the verification
            # rounds found what changed meanwhile: a later mark loses nothing).
            state.t0 = await (self.top or self.top_stamp())
        final = dataclasses.replace(
            state,
            finished=True,
            hwm=state.t0 if self.spec.changed_sort else None,
        )
        store = self.run.store
        written = await store.call(
            store.sync.finish_pass, self.spec, self.refreshed, deleted, state.pass_no, final
        )
        self.tally.add(written)
        self.run.show(self.spec, written)
        return final

    async def close(self, started: float) -> EntitySummary:
        """The entity's summary, from its tally and its table."""
        summary, tally, live = self.summary, self.tally, self.run.live(self.spec)
        summary.new, summary.updated, summary.unchanged = tally.new, tally.updated, tally.unchanged
        summary.deleted, summary.errors = tally.deleted, tally.errors
        summary.warned = tally.warned
        store = self.run.store
        summary.stored = await store.call(store.sync.count, self.spec.name)
        summary.elapsed = time.monotonic() - started
        summary.retries = live.retries
        live.phase = "done" if summary.status == "ok" else summary.status
        live.finished = time.monotonic()
        self.run.progress.note(f"{self.spec.name}: {live.phase}, {summary.stored} stored")
        return summary

    async def top_stamp(self) -> str | None:
        """The newest change time the listing shows now: the next run's high-water mark."""
        spec = self.spec
        field = spec.hwm_field
        assert field is not None
        args = {
            **self.run.filters(spec),
            "page": 1,
            "page_size": 1,
            "sort": spec.changed_sort,
            "x_fields": spec.id_mask(field),
        }
        page = await self.run.client_for(spec).request(spec.list_endpoint, args)
        for _, stamps in stamps_of(page.data):
            value = when(stamps.get(field))
            return value.isoformat() if value else None
        return None
