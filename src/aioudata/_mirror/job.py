"""The mirror job: open the store and the clients, sync every entity, close, summarise.

Each entity is brought up to date by :class:`~.sync.EntitySync` (its passes are in
:mod:`.passes`, the walking of listings in :mod:`.walk`); this module only opens, runs, closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time

from yarl import URL

from .._client import Client, mask_credentials
from .._errors import (
    APIError,
    ConnectError,
    NameResolutionError,
    NotFoundError,
    TransportError,
    UdataError,
)
from .._generated.operations.site import GET_SITE as _GET_SITE
from .._retry import RetryPolicy
from .config import EntitySummary, MirrorConfig, MirrorError, MirrorSummary
from .entities import EntitySpec, entity
from .export import export_jsonl
from .progress import Progress, ProgressCallback, as_progress
from .run import Run, make_client, v2_url
from .sink import acquire, sink_for
from .store import AsyncStore, Counts
from .sync import EntitySync
from .walk import first_error
from .watch import watched

__all__ = ["make_client", "run_mirror", "v2_url"]

logger = logging.getLogger("aioudata.mirror")

#: How long the first check waits out a portal failing transiently, in seconds.
PREFLIGHT_PATIENCE = 60.0
#: The first check's first attempt, alone: a wrong URL (DNS, refused, TLS, 404) fails at once.
_PREFLIGHT_FIRST = RetryPolicy(max_attempts=1, refused_burst=1_000_000)
#: Then, after a transient failure (5xx, 429, reset, timeout, EAI_AGAIN): patient, within the
#: patience.
_PREFLIGHT_RETRY = RetryPolicy(
    max_attempts=10,
    max_time=PREFLIGHT_PATIENCE,
    backoff=0.5,
    max_backoff=10.0,
    refused_burst=1_000_000,
)


async def _check_site(client: Client) -> None:
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


def _transient(error: UdataError) -> bool:
    """True for a failure worth waiting out: the portal (or its DNS server) failed for now."""
    if isinstance(error, APIError):
        return error.status in _PREFLIGHT_RETRY.statuses
    if isinstance(error, NameResolutionError):
        return True  # the resolver could not answer yet; a name that does not exist is not this
    return isinstance(error, TransportError) and not isinstance(error, ConnectError)


async def _preflight(config: MirrorConfig, client: Client | None = None) -> None:
    """Check the URL and the key before anything else: quick on a wrong URL, patient otherwise.

    With ``client`` (the caller's), one check through it, under its own retry policy.
    Otherwise a first attempt alone: a wrong URL fails at once (no connection: a name that does
    not exist, refused, TLS; or a 404: not a udata API), and so does a refused key. A failure
    that may be transient (5xx, 429, a reset connection, a timeout, a DNS server that did not
    answer: ``EAI_AGAIN``) is then waited out, retried with
    backoff (or Retry-After) for up to :data:`PREFLIGHT_PATIENCE` seconds in all (no retry
    starts later; the last one may take its own timeout), at most 11 attempts. A Retry-After
    past that gives up at once.
    """
    if client is not None:
        await _check_site(client)
        return
    deadline = time.monotonic() + PREFLIGHT_PATIENCE
    async with make_client(config, retry=_PREFLIGHT_FIRST) as quick:
        try:
            await _check_site(quick)
            return
        except UdataError as error:
            if not _transient(error):
                raise
            first = error
    retry_after = getattr(first, "retry_after", None)
    wait = _PREFLIGHT_RETRY.backoff_for(1) if retry_after is None else float(retry_after)
    if time.monotonic() + wait >= deadline:
        raise first  # asked to come back after the patience: give up now, not then
    logger.info("first check of %s failed (%s): trying again", quick.base_url, first)
    await asyncio.sleep(wait)
    left = max(1.0, deadline - time.monotonic())
    patient = dataclasses.replace(_PREFLIGHT_RETRY, max_time=left)
    async with make_client(config, retry=patient) as probe:
        await _check_site(probe)


async def run_mirror(
    config: MirrorConfig,
    *,
    progress: Progress | ProgressCallback | None = None,
    client: Client | None = None,
) -> MirrorSummary:
    """Mirror a udata catalog as ``config`` says; the summary of what changed.

    Resumes an interrupted run from its checkpoints, runs incrementally after a complete one.
    ``client`` (optional) is used as is and left open; otherwise one is made from ``config``.
    ``progress`` (optional) is called with a :class:`~aioudata.ProgressUpdate` about once a
    second and once at the end (see :class:`~aioudata.ProgressCallback`).
    The summary's ``status`` is ``ok``, or ``partial`` when an entity was skipped (its listing
    refused to the key) or may lack objects its listing serves (see each entity's ``note``).
    Raises :class:`MirrorError` (bad options, another mirror's database), or the client's
    errors (:class:`~aioudata.AuthenticationError`, :class:`~aioudata.TransportError`...).
    """
    try:
        specs = tuple(entity(name) for name in dict.fromkeys(config.entities))
    except KeyError as error:
        raise MirrorError(f"unknown entity {error.args[0]!r}", code=2) from None
    job = _Job(config, specs, as_progress(progress), client)
    try:
        # A PostgreSQL run lock lost mid-run (its connection dropped) ends the run.
        async with watched(job.sink.guard):
            await job.open()
            await job.run()
    except (asyncio.CancelledError, KeyboardInterrupt):
        job.status = "interrupted"
        raise
    finally:
        await job.close()
    return job.summary


class _Job:
    """One run of the mirror: what :func:`run_mirror` opens, runs and closes."""

    def __init__(
        self,
        config: MirrorConfig,
        specs: tuple[EntitySpec, ...],
        progress: Progress,
        client: Client | None,
    ) -> None:
        self.started = time.monotonic()
        self.config = config
        self.specs = specs
        self.progress = progress
        self.own_client = client is None
        self.client = client or make_client(config)
        self.sink = sink_for(config, [spec.name for spec in specs])
        self.store = self.sink.store(config.database)
        self.run_state: Run | None = None
        self.run_id = 0
        #: ``ok``, ``partial``, ``interrupted``; ``failed`` until the run says otherwise.
        self.status = "failed"
        self.summary = MirrorSummary(base_url=self.client.base_url, database=self.sink.shown)

    async def open(self) -> None:
        """Lock the database, check the portal and the database's scope, start the run."""
        config, store = self.config, self.store
        # One run per database, refused at once (before any request) when another holds it;
        # another application's database is refused before anything is written to it.
        await acquire(self.sink)
        await asyncio.to_thread(self.sink.check)
        if config.preflight:
            # Its own clients unless given one: quick to fail on a wrong URL, patient with a
            # portal failing for now (see _preflight).
            await _preflight(config, None if self.own_client else self.client)
        await store.open()
        await _check_scope(store, self.client.base_url, config)
        self.run_id = await store.call(
            store.sync.start_run,
            {
                "base_url": self.client.base_url,
                "entities": [spec.name for spec in self.specs],
                "full": config.full,
                "page_size": config.page_size,
                "filters": config.filters(),
            },
        )
        run = self.run_state = Run(config, store, self.client, self.progress, self.specs)
        for spec in self.specs:
            self.progress.entity(spec.name)
        self.progress.totals = lambda: (run.requests(), run.retries())

    async def run(self) -> None:
        """Every entity brought up to date side by side; the summary filled."""
        assert self.run_state is not None
        self.progress.start()
        syncs = [EntitySync(self.run_state, spec) for spec in self.specs]
        try:
            async with asyncio.TaskGroup() as group:
                for sync in syncs:
                    group.create_task(sync.sync())
        except BaseExceptionGroup as failure:
            raise first_error(failure) from None
        await _summarise(self.summary, syncs, self.store, self.config)
        self.status = "ok" if self.summary.complete else "partial"

    async def close(self) -> None:
        """Stop the progress, record the run's end, close everything opened."""
        await self.progress.stop()
        summary = self.summary
        summary.status = self.status
        summary.elapsed = time.monotonic() - self.started
        if self.run_state is not None:
            run = self.run_state
            summary.requests, summary.retries = run.requests(), run.retries()
            await run.close()
        else:
            summary.requests = self.client.stats.requests
            summary.retries = self.client.stats.retries
        if self.run_id:
            with contextlib.suppress(Exception):
                await self.store.call(
                    self.store.sync.finish_run, self.run_id, self.status, summary.to_dict()
                )
        await self.store.close()
        self.sink.guard.release()
        if self.own_client:
            await self.client.close()


async def _summarise(
    summary: MirrorSummary, syncs: list[EntitySync], store: AsyncStore, config: MirrorConfig
) -> None:
    """Fill the run's summary from its entities; write the JSON Lines files if asked."""
    refusals = [sync.refusal for sync in syncs if sync.refusal is not None]
    if refusals and len(refusals) == len(syncs):
        raise refusals[0]  # nothing could be listed: the key is the problem, not the portal
    resources = Counts()
    for sync in syncs:
        summary.entities[sync.spec.name] = sync.summary
        resources.add(sync.tally)
    if "datasets" in summary.entities:
        counted = EntitySummary(
            "resources",
            new=resources.resources_new,
            updated=resources.resources_updated,
            deleted=resources.resources_deleted,
        )
        counted.stored = await store.call(store.sync.count, "resources")
        summary.entities["resources"] = counted
    summary.errors_stored = await store.call(store.sync.count, "errors")
    if config.format == "jsonl" and config.out is not None:
        summary.files = await store.call(
            export_jsonl,
            store.sync,
            config.out,
            [spec for spec in summary.entities if spec != "resources"],
        )


def _without_credentials(url: str) -> str:
    """``url`` without user info (what a mirror stores and compares; never a secret)."""
    try:
        return str(URL(url).with_user(None))
    except (TypeError, ValueError):
        return mask_credentials(url)


async def _check_scope(store: AsyncStore, base_url: str, config: MirrorConfig) -> None:
    """A database mirrors one portal with one set of filters.

    URLs are compared (and stored) without credentials: they are a secret, not part of the
    portal's identity; a database written before that gets its URL rewritten without them.
    """
    stored = await store.call(store.sync.get_meta, "base_url")
    stored_url = None if stored is None else _without_credentials(stored)
    base_url = _without_credentials(base_url)
    stored_filters = await store.call(store.sync.get_meta, "filters")
    filters = json.dumps(config.filters(), sort_keys=True)
    if stored_url is not None and stored_url != base_url:
        raise MirrorError(
            f"{config.target} is a mirror of {stored_url}, not {base_url}: use another --db",
            code=2,
        )
    if stored_filters is not None and stored_filters != filters:
        raise MirrorError(
            f"{config.target} was mirrored with other filters ({stored_filters}): use another --db",
            code=2,
        )
    await store.call(store.sync.set_meta, {"base_url": base_url, "filters": filters})
