"""The mirror (issues 6, 11): against a sequential walker storing the same rows, against the
minimal pipeline a mirror cannot do without, and its peak RSS.

- Speed: ``run_mirror`` (the Python entry point of ``aioudata mirror``) of 10,000 datasets
  and their resources into a fresh SQLite file, each page answered after 100 ms, at
  concurrency 16 and no rate limit, against a sequential next_page walker in datagouv-client's
  style (see _baselines.py) that stores the same rows: it decodes each page's records and
  writes them with the mirror's own code (``decode_records``, ``Store.write_batch``), one page
  after another in the event loop. Only the fetching differs.
- Cost: ``run_mirror`` against ``minimal_mirror`` (see _baselines.py: concurrent fetch, the
  queried columns only decoded, records stored as received, resources as columns, one WAL
  transaction a page; no retry, checkpoint, verification or change detection) on 150 pages of
  20 full-size records (~20 KB, 8 resources each) at 100 ms, concurrency 16.
- Memory: peak RSS of the mirror of 100,000 datasets against 10,000 (no latency), each in its
  own process.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from ._baselines import minimal_mirror, raw_session
from ._common import Settings, child, row
from ._server import CatalogConfig, ServerProcess

GROUP = "mirror (issue 6)"
PAGE_SIZE = 100


async def mirror_once(
    base_url: str,
    db: Path,
    concurrency: int,
    page_size: int = PAGE_SIZE,
    db_url: str | None = None,
) -> dict[str, Any]:
    """One mirror run of the datasets into ``db`` (or the PostgreSQL ``db_url``): seconds,
    datasets and resources stored."""
    from aioudata._mirror import MirrorConfig, run_mirror

    config = MirrorConfig(
        base_url=base_url,
        api_key="",
        db=db,
        db_url=db_url,
        entities=("datasets",),
        concurrency=concurrency,
        rate=None,
        page_size=page_size,
    )
    started = time.perf_counter()
    summary = await run_mirror(config)
    seconds = time.perf_counter() - started
    if summary.status != "ok":
        raise RuntimeError(f"mirror ended {summary.status}")
    resources = summary.entities.get("resources")
    return {
        "seconds": seconds,
        "datasets": summary.entities["datasets"].stored,
        "resources": resources.stored if resources else None,
        "requests": summary.requests,
    }


async def walker_once(origin: str, db: Path) -> dict[str, Any]:
    """datagouv-client's loop over the listing, each page stored with the mirror's code."""
    from aioudata._mirror.entities import RawPage, entity
    from aioudata._mirror.records import decode_records
    from aioudata._mirror.store import Store

    spec = entity("datasets")
    decode_page = msgspec.json.Decoder(RawPage).decode
    started = time.perf_counter()
    store = Store(db)
    try:
        async with raw_session() as session:
            next_url: str | None = f"{origin}/api/1/datasets/?page_size={PAGE_SIZE}"
            while next_url:
                async with session.get(next_url) as r:
                    body = await r.read()
                    r.raise_for_status()
                page = decode_page(body)
                store.write_batch(spec, decode_records(spec, page.data), 1, None)
                next_url = page.next_page
        datasets, resources = store.count("datasets"), store.count("resources")
    finally:
        store.close()
    return {
        "seconds": time.perf_counter() - started,
        "datasets": datasets,
        "resources": resources,
    }


async def mirror_in_child(args: dict[str, Any]) -> dict[str, Any]:
    """``_child.py`` scenario "mirror": one run into a fresh temporary directory."""
    folder = Path(tempfile.mkdtemp(prefix="aioudata-bench-"))
    try:
        return await mirror_once(
            args["base_url"],
            folder / "mirror.db",
            int(args["concurrency"]),
            db_url=args.get("db_url"),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_speed(settings: Settings) -> list[dict[str, Any]]:
    datasets, latency, concurrency, repeat = settings.pick(
        (10_000, 0.1, 16, 3), (1_000, 0.01, 16, 1)
    )
    mine: list[float] = []
    theirs: list[float] = []
    seen: list[dict[str, Any]] = []
    with ServerProcess(CatalogConfig(datasets=datasets, latency=latency)) as server:
        for r in range(repeat):
            for side in ("mirror", "walker") if r % 2 == 0 else ("walker", "mirror"):
                folder = Path(tempfile.mkdtemp(prefix="aioudata-bench-"))
                try:
                    db = folder / "mirror.db"
                    if side == "mirror":
                        result = asyncio.run(mirror_once(server.base_url, db, concurrency))
                        mine.append(result["seconds"])
                    else:
                        result = asyncio.run(walker_once(server.origin, db))
                        theirs.append(result["seconds"])
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                assert result["datasets"] == datasets, (side, result)
                seen.append(result)
    resources = {r["resources"] for r in seen}
    assert len(resources) == 1, f"the two sides stored different resources: {resources}"
    pages = -(-datasets // PAGE_SIZE)
    return [
        row(
            f"mirror {datasets:,} datasets ({pages} pages, {latency * 1000:.0f} ms):"
            f" aioudata at {concurrency} vs a sequential walker",
            ours=mine,
            theirs=theirs,
            baseline="sequential next_page walker storing the same rows with the mirror's code",
            unit="s",
            direction="speedup",
            target=8.0,
            group=GROUP,
            note=f"both stored {datasets:,} datasets and {resources.pop():,} resources in SQLite",
        )
    ]


async def minimal_once(base_url: str, db: Path, concurrency: int, page_size: int) -> dict[str, Any]:
    started = time.perf_counter()
    stored = await minimal_mirror(base_url, db, page_size, concurrency)
    return {"seconds": time.perf_counter() - started, **stored}


def run_cost(settings: Settings) -> list[dict[str, Any]]:
    pages, latency, repeat = settings.pick((150, 0.1, 5), (20, 0.01, 1))
    page_size, concurrency = 20, 16
    catalog = CatalogConfig(
        datasets=pages * page_size, latency=latency, resources=8, description=8000
    )
    mine: list[float] = []
    theirs: list[float] = []
    ratios: list[float] = []
    seen: list[dict[str, Any]] = []
    with ServerProcess(catalog) as server:
        for r in range(repeat):
            pair: dict[str, float] = {}
            for side in ("mirror", "minimal") if r % 2 == 0 else ("minimal", "mirror"):
                folder = Path(tempfile.mkdtemp(prefix="aioudata-bench-"))
                try:
                    db = folder / "mirror.db"
                    once = mirror_once if side == "mirror" else minimal_once
                    result = asyncio.run(once(server.base_url, db, concurrency, page_size))
                    result["bytes"] = sum(f.stat().st_size for f in folder.iterdir())
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                assert result["datasets"] == catalog.datasets, (side, result)
                pair[side] = result["seconds"]
                seen.append({"side": side, **result})
            mine.append(pair["mirror"])
            theirs.append(pair["minimal"])
            ratios.append(pair["mirror"] / pair["minimal"])
    resources = {r["resources"] for r in seen}
    assert len(resources) == 1, f"the two sides stored different resources: {resources}"
    sizes = {r["side"]: r["bytes"] for r in seen}
    return [
        row(
            f"mirror {catalog.datasets:,} datasets of ~20 KB, 8 resources ({pages} pages of"
            f" {page_size}, {latency * 1000:.0f} ms) at {concurrency} vs the minimal pipeline",
            ours=mine,
            theirs=theirs,
            baseline="minimal pipeline: concurrent fetch, columns only decoded, bytes as received",
            unit="s",
            direction="cost",
            target=1.2,
            group=GROUP,
            ratios=ratios,
            note=(
                f"database files: mirror {sizes['mirror'] / 1e6:.1f} MB,"
                f" minimal {sizes['minimal'] / 1e6:.1f} MB; the mirror also verifies its pass"
                " (an id round), checkpoints every page and detects changes"
            ),
        )
    ]


def run_memory(settings: Settings) -> list[dict[str, Any]]:
    small, large, repeat = settings.pick((10_000, 100_000, 2), (1_000, 5_000, 1))
    concurrency = 16
    peaks: dict[int, list[float]] = {small: [], large: []}
    details: list[dict[str, Any]] = []
    with ServerProcess(CatalogConfig(datasets=small)) as server:
        from .bench_pagination import configure

        for r in range(repeat):
            for datasets in (small, large) if r % 2 == 0 else (large, small):
                configure(server, datasets=datasets)
                args = {"scenario": "mirror", "base_url": server.base_url}
                result = child("_child", {**args, "concurrency": concurrency})
                assert result["datasets"] == datasets, result
                peaks[datasets].append(result["peak_rss_mb"])
                details.append(result)
    slowest = max(d["seconds"] for d in details)
    return [
        row(
            f"peak RSS of the mirror: {large:,} vs {small:,} datasets",
            ours=peaks[large],
            theirs=peaks[small],
            baseline=f"the same mirror of {small:,} datasets",
            unit="MB",
            direction="cost",
            target=1.2,
            group=GROUP,
            note=(
                f"concurrency {concurrency}, no latency, SQLite, each run in its own process;"
                f" RSS after the imports {details[0]['rss_after_imports_mb']:.0f} MB;"
                f" slowest run {slowest:.0f} s"
            ),
        )
    ]


def run(settings: Settings) -> list[dict[str, Any]]:
    return run_speed(settings) + run_cost(settings) + run_memory(settings)
