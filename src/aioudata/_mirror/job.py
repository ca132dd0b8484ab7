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

from .._client import Client
from .._errors import NotFoundError
from .._generated.operations.site import _GET_SITE
from .._retry import RetryPolicy
from .config import EntitySummary, MirrorConfig, MirrorError, MirrorSummary
from .entities import entity
from .progress import Progress, RetryAttribution
from .run import Run, make_client, v2_url
from .store import AsyncStore, Counts, export_jsonl
from .sync import EntitySync
from .walk import first_error

__all__ = ["make_client", "run_mirror", "v2_url"]

logger = logging.getLogger("aioudata.mirror")

#: The first request only checks the URL and the key: two attempts, no cool-off.
_PREFLIGHT_RETRY = RetryPolicy(max_attempts=2, max_time=20.0, refused_burst=1_000_000)


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
    The summary's ``status`` is ``ok``, or ``partial`` when an entity was skipped (its listing
    refused to the key) or may lack objects its listing serves (see each entity's ``note``).
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
    run: Run | None = None
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
        run = Run(config, store, client, progress)
        if progress.mode != "off":
            handler = RetryAttribution(
                {spec.name: spec.list_endpoint.path.split("{")[0] for spec in specs}, progress
            )
            _attach(handler)
        for spec in specs:
            progress.entity(spec.name)
        running = run
        progress.totals = lambda: (
            f"{'total':<15} {running.requests()} requests, {running.retries()} retries"
        )
        progress.start()
        syncs = [EntitySync(run, spec) for spec in specs]
        try:
            async with asyncio.TaskGroup() as group:
                for sync in syncs:
                    group.create_task(sync.sync())
        except BaseExceptionGroup as failure:
            raise first_error(failure) from None
        await _summarise(summary, syncs, store, config)
        status = "ok" if summary.complete else "partial"
    except (asyncio.CancelledError, KeyboardInterrupt):
        status = "interrupted"
        raise
    finally:
        await progress.stop()
        if handler is not None:
            _detach(handler)
        summary.status = status
        summary.elapsed = time.monotonic() - started
        if run is not None:
            summary.requests, summary.retries = run.requests(), run.retries()
            await run.close()
        else:
            summary.requests, summary.retries = client.stats.requests, client.stats.retries
        if run_id:
            with contextlib.suppress(Exception):
                await store.call(store.sync.finish_run, run_id, status, summary.to_dict())
        await store.close()
        if own_client:
            await client.close()
    return summary


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
