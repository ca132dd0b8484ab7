"""Concurrent pagination (issues 5 and 7): scaling with concurrency, memory with a slow consumer.

- Scaling: a listing of ``pages`` pages of 100 datasets, each answered after ``latency``; the
  wall time of ``list_datasets(page_size=100).options(concurrency=c).pages()`` at each ``c``
  against the ideal, pages × latency / c (the ratio is ideal / measured: 1.0 is perfect). The
  sequential next_page walker in the official client's style and raw aiohttp + msgspec at the
  same concurrency run in the same repeats, the order of all variants reversing every repeat.
- Memory: peak RSS of a walk with a consumer slower than the server (it sleeps per page), over
  2,000 pages and over 200 pages, each in its own process: a bounded window keeps them equal.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from aioudata.models import DatasetPage

from ._baselines import msgspec_decoder, raw_pages, raw_session, walk_like_datagouv_client
from ._common import Settings, child, row
from ._server import CatalogConfig, ServerProcess
from ._walks import client_for, walk_pages

GROUP = "concurrent pagination (issues 5, 7)"
PAGE_SIZE = 100
WALKER = "sequential next_page walker (datagouv-client's loop, re-implemented)"


def configure(server: ServerProcess, **changes: Any) -> None:
    """Change the knobs of a running benchmark server (its stats are reset)."""
    request = urllib.request.Request(
        f"{server.origin}/_bench/config",
        data=json.dumps(changes).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def server_stats(server: ServerProcess) -> dict[str, int]:
    with urllib.request.urlopen(f"{server.origin}/_bench/stats", timeout=10) as response:
        return json.loads(response.read())["stats"]  # type: ignore[no-any-return]


async def scaling(
    base: str, origin: str, pages: int, levels: list[int], repeat: int
) -> dict[str, list[float]]:
    expected = pages * PAGE_SIZE
    decode = msgspec_decoder(DatasetPage)

    def ours(concurrency: int) -> Callable[[], Awaitable[float]]:
        async def go() -> float:
            async with client_for(base, concurrency) as client:
                walk = await walk_pages(client, PAGE_SIZE, concurrency)
            assert walk.items == expected, (walk.items, expected)
            return walk.seconds

        return go

    def raw(concurrency: int) -> Callable[[], Awaitable[float]]:
        async def go() -> float:
            async with client_for(base, concurrency) as client, raw_session(client) as session:
                started, items = time.perf_counter(), 0
                async for page in raw_pages(
                    session, f"{base}/datasets/", PAGE_SIZE, concurrency, decode
                ):
                    items += len(page.data)
                seconds = time.perf_counter() - started
            assert items == expected, (items, expected)
            return seconds

        return go

    async def walker() -> float:
        async with raw_session() as session:
            started, items = time.perf_counter(), 0
            query = f"api/1/datasets/?page_size={PAGE_SIZE}"
            async for _ in walk_like_datagouv_client(session, origin, query):
                items += 1
            seconds = time.perf_counter() - started
        assert items == expected, (items, expected)
        return seconds

    variants: dict[str, Callable[[], Awaitable[float]]] = {}
    for c in levels:
        variants[f"aioudata {c}"] = ours(c)
    for c in levels:
        if c >= 16:  # where the CPU, not the latency, starts to count
            variants[f"raw {c}"] = raw(c)
    variants["walker"] = walker
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(repeat):
        names = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in names:
            if name == "aioudata 1" and r >= 2:
                continue  # 20 s a run, no target: two samples are enough (time budget)
            times[name].append(await variants[name]())
    return times


def run_scaling(settings: Settings) -> list[dict[str, Any]]:
    pages, latency, repeat = settings.pick((200, 0.1, 3), (20, 0.02, 1))
    levels = [1, 4, 16, 64]
    config = CatalogConfig(datasets=pages * PAGE_SIZE, latency=latency)
    with ServerProcess(config) as server:
        times = asyncio.run(scaling(server.base_url, server.origin, pages, levels, repeat))
    label = f"{pages} pages of {PAGE_SIZE} × {latency * 1000:.0f} ms"
    rows = []
    for c in levels:
        ideal = pages * latency / c
        rows.append(
            row(
                f"walk {label} at concurrency {c}",
                ours=times[f"aioudata {c}"],
                theirs=[ideal],
                baseline="ideal: pages × latency / concurrency",
                unit="s",
                direction="fraction",
                target=0.8 if c == 16 else None,
                group=GROUP,
            )
        )
    rows.append(
        row(
            f"walk {label}: aioudata at 16 vs the sequential walker",
            ours=times["aioudata 16"],
            theirs=times["walker"],
            baseline=WALKER,
            unit="s",
            direction="speedup",
            target=10.0,
            group=GROUP,
        )
    )
    for c in levels:
        if f"raw {c}" in times:
            rows.append(
                row(
                    f"walk {label} at concurrency {c}: aioudata vs raw aiohttp",
                    ours=times[f"aioudata {c}"],
                    theirs=times[f"raw {c}"],
                    baseline=f"raw aiohttp + msgspec, {c} workers, no retry/order/dedup",
                    unit="s",
                    direction="cost",
                    target=None,
                    group=GROUP,
                )
            )
    return rows


def run_memory(settings: Settings) -> list[dict[str, Any]]:
    small, large, repeat = settings.pick((200, 2000, 2), (20, 200, 1))
    page_size, concurrency, delay = 20, 16, 0.002
    peaks: dict[int, list[float]] = {small: [], large: []}
    details: dict[int, list[dict[str, Any]]] = {small: [], large: []}
    with ServerProcess(CatalogConfig(datasets=small * page_size)) as server:
        for r in range(repeat):
            for pages in (small, large) if r % 2 == 0 else (large, small):
                configure(server, datasets=pages * page_size)
                result = child(
                    "_child",
                    {
                        "scenario": "slow_consumer",
                        "base_url": server.base_url,
                        "page_size": page_size,
                        "concurrency": concurrency,
                        "delay": delay,
                    },
                )
                assert result["pages"] == pages, result
                peaks[pages].append(result["peak_rss_mb"])
                details[pages].append(result)
    growth = [d["peak_rss_mb"] - d["rss_after_imports_mb"] for d in details[large] + details[small]]
    return [
        row(
            f"peak RSS, slow consumer: {large} pages vs {small} pages",
            ours=peaks[large],
            theirs=peaks[small],
            baseline=f"the same walk over {small} pages",
            unit="MB",
            direction="cost",
            target=1.2,
            group=GROUP,
            note=(
                f"page_size {page_size}, concurrency {concurrency}, consumer sleeps "
                f"{delay * 1000:g} ms a page; each run in its own process; RSS above the "
                f"imports: {min(growth):.1f}-{max(growth):.1f} MB; pages held at most: "
                f"{max(d['max_held'] or 0 for d in details[large])}"
            ),
        )
    ]


def run(settings: Settings) -> list[dict[str, Any]]:
    return run_scaling(settings) + run_memory(settings)
