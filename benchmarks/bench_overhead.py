"""Per-request overhead (issue 4): N GETs of one 100-dataset page through aioudata vs raw aiohttp.

aioudata: ``client.datasets.list_datasets(page=1, page_size=100)`` with retry and the limiter on
(no rate). Baselines: raw aiohttp + msgspec decoding into the same model, and raw aiohttp +
json.loads, both with the connector, timeout and headers of the client. The server runs in a
child process. Within each repeat the sides alternate in blocks, A B B A, and the side that
starts alternates between repeats, so both see the same machine state.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aioudata
from aioudata.models import DatasetPage

from ._baselines import get_decoded, msgspec_decoder, raw_session
from ._common import Settings, abba, row
from ._server import CatalogConfig, ServerProcess

GROUP = "per-request overhead (issues 4, 7)"
BLOCK = 25


async def measure(base: str, requests: int, repeat: int) -> dict[str, list[float]]:
    params = {"page": "1", "page_size": "100"}
    url = f"{base}/datasets/"
    decode = msgspec_decoder(DatasetPage)
    async with aioudata.Client(base, api_key="") as client, raw_session(client) as raw:

        async def ours() -> None:
            await client.datasets.list_datasets(page=1, page_size=100)

        async def with_msgspec() -> None:
            await get_decoded(raw, url, params, decode)

        async def with_json() -> None:
            await get_decoded(raw, url, params, json.loads)

        sides: dict[str, Callable[[], Awaitable[None]]] = {
            "aioudata": ours,
            "raw aiohttp + msgspec": with_msgspec,
            "raw aiohttp + json.loads": with_json,
        }
        for fn in sides.values():  # warm up: connections, decoders, the server's page cache
            for _ in range(10):
                await fn()
        times: dict[str, list[float]] = {name: [] for name in sides}
        for ours_first in abba(repeat):
            # Pair aioudata with each baseline in turn, blocks in A B B A order.
            spent = dict.fromkeys(sides, 0.0)
            counts = dict.fromkeys(sides, 0)
            for baseline in ("raw aiohttp + msgspec", "raw aiohttp + json.loads"):
                pair = ["aioudata", baseline] if ours_first else [baseline, "aioudata"]
                order = [pair[0], pair[1], pair[1], pair[0]] * max(1, requests // (4 * BLOCK))
                for name in order:
                    fn = sides[name]
                    started = time.perf_counter()
                    for _ in range(BLOCK):
                        await fn()
                    spent[name] += time.perf_counter() - started
                    counts[name] += BLOCK
            for name in sides:
                times[name].append(spent[name] / counts[name])
    return times


def run(settings: Settings) -> list[dict[str, Any]]:
    requests, repeat = settings.pick((200, 8), (50, 2))
    with ServerProcess(CatalogConfig(datasets=100)) as server:
        times = asyncio.run(measure(server.base_url, requests, repeat))
    ours = times["aioudata"]
    rows = []
    for baseline, target in (("raw aiohttp + msgspec", 1.10), ("raw aiohttp + json.loads", None)):
        theirs = times[baseline]
        rows.append(
            row(
                f"GET + decode a 100-dataset page, aioudata vs {baseline}",
                ours=ours,
                theirs=theirs,
                baseline=baseline,
                unit="s",
                direction="cost",
                target=target,
                group=GROUP,
                ratios=[a / b for a, b in zip(ours, theirs, strict=True)],
                note="per request; server in a child process, no latency",
            )
        )
    return rows
