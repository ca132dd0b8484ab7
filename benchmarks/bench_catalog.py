"""Whole-catalog walks (issue 7): data.gouv.fr's size at its latency, and under injected faults.

- Simulation: ``async for dataset in list_datasets(page_size=100)`` over 74,000 datasets,
  each page answered after 150 ms, at concurrency 8; the ideal is pages × latency /
  concurrency (740 × 0.15 s / 8 ≈ 13.9 s) and the ratio is measured / ideal.
- Faults: the same walk over a smaller catalog with 10% of the requests failing (500, 502,
  503, 504, or the connection dropped mid-body) against the same walk with none; the benchmark
  itself checks that every dataset came exactly once (0 lost, 0 duplicated).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._common import Settings, check_row, row
from ._server import CatalogConfig, ServerProcess, object_id
from ._walks import client_for, walk_items
from .bench_pagination import configure, server_stats

GROUP = "whole catalog (issue 7)"
PAGE_SIZE = 100


async def simulate(base: str, datasets: int, concurrency: int) -> float:
    async with client_for(base, concurrency) as client:
        walk = await walk_items(client, PAGE_SIZE, concurrency, keep_ids=True)
    assert walk.items == datasets == len(walk.ids), (walk.items, len(walk.ids), datasets)
    return walk.seconds


def run_simulation(settings: Settings) -> list[dict[str, Any]]:
    datasets, latency, concurrency, repeat = settings.pick(
        (74_000, 0.15, 8, 3), (2_000, 0.02, 8, 1)
    )
    pages = -(-datasets // PAGE_SIZE)
    ideal = pages * latency / concurrency
    times = []
    with ServerProcess(CatalogConfig(datasets=datasets, latency=latency)) as server:
        for _ in range(repeat):
            times.append(asyncio.run(simulate(server.base_url, datasets, concurrency)))
    return [
        row(
            f"walk {datasets:,} datasets, page_size {PAGE_SIZE}, {latency * 1000:.0f} ms,"
            f" concurrency {concurrency}",
            ours=times,
            theirs=[ideal],
            baseline="ideal: pages × latency / concurrency",
            unit="s",
            direction="cost",
            target=1.25,
            group=GROUP,
            note=f"{pages} pages; every dataset checked present once",
        )
    ]


async def faulty_walk(base: str, expected: set[str], concurrency: int) -> dict[str, Any]:
    async with client_for(base, concurrency) as client:
        walk = await walk_items(client, PAGE_SIZE, concurrency, keep_ids=True)
        retries = client.stats.retries
    return {
        "seconds": walk.seconds,
        "lost": len(expected - walk.ids),
        "duplicated": walk.duplicates,
        "unexpected": len(walk.ids - expected),
        "retries": retries,
    }


def run_faults(settings: Settings) -> list[dict[str, Any]]:
    datasets, latency, concurrency, rate, repeat = settings.pick(
        (20_000, 0.05, 16, 0.1, 3), (5_000, 0.01, 16, 0.1, 1)
    )
    expected = {object_id("datasets", n) for n in range(datasets)}
    clean: list[float] = []
    faulty: list[dict[str, Any]] = []
    with ServerProcess(CatalogConfig(datasets=datasets, latency=latency)) as server:
        for r in range(repeat):
            for fault_rate in (0.0, rate) if r % 2 == 0 else (rate, 0.0):
                configure(server, fault_rate=fault_rate, seed=r + 1)
                result = asyncio.run(faulty_walk(server.base_url, expected, concurrency))
                if fault_rate:
                    result["faults"] = server_stats(server).get("faults", 0)
                    faulty.append(result)
                else:
                    clean.append(result["seconds"])
                    assert not (result["lost"] or result["duplicated"]), result
    pages = -(-datasets // PAGE_SIZE)
    lost = sum(f["lost"] + f["unexpected"] for f in faulty)
    duplicated = sum(f["duplicated"] for f in faulty)
    faults = sum(f["faults"] for f in faulty)
    retries = sum(f["retries"] for f in faulty)
    label = f"walk {datasets:,} datasets ({pages} pages, {latency * 1000:.0f} ms, concurrency 16)"
    return [
        row(
            f"{label} with {rate:.0%} faults vs none",
            ours=[f["seconds"] for f in faulty],
            theirs=clean,
            baseline="the same walk without faults",
            unit="s",
            direction="cost",
            target=None,
            group=GROUP,
            note=(
                f"throughput {datasets / min(f['seconds'] for f in faulty):,.0f} datasets/s at "
                f"best with faults; {faults} faults injected, {retries} retries over "
                f"{len(faulty)} runs; default RetryPolicy"
            ),
        ),
        check_row(
            f"{label} with {rate:.0%} faults: every dataset exactly once",
            ok=lost == 0 and duplicated == 0 and faults > 0,
            detail=f"{lost} lost, {duplicated} duplicated ({faults} faults in {len(faulty)} runs)",
            group=GROUP,
        ),
    ]


def run(settings: Settings) -> list[dict[str, Any]]:
    return run_simulation(settings) + run_faults(settings)
