"""One measurement in a fresh interpreter, for its peak RSS: ``_child.py '<json args>'``.

Prints one JSON line: what was walked, how long it took, the peak RSS (VmHWM) of this process,
and the RSS right after the imports (what the interpreter and libraries cost before any page).
Scenarios:

- ``slow_consumer``: ``async for page in list_datasets(page_size=...).pages()`` at
  ``concurrency``, the consumer sleeping ``delay`` seconds per page;
- ``mirror``: the mirror of ``datasets`` into a fresh directory (see bench_mirror.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import peak_rss_mb


async def slow_consumer(args: dict[str, Any]) -> dict[str, Any]:
    from benchmarks._walks import client_for

    concurrency = int(args["concurrency"])
    async with client_for(args["base_url"], concurrency) as client:
        paginator = client.datasets.list_datasets(page_size=int(args["page_size"])).options(
            concurrency=concurrency
        )
        pages = items = 0
        async for page in paginator.pages():
            pages += 1
            items += len(page.data)
            await asyncio.sleep(float(args["delay"]))
        held = getattr(paginator.stats, "max_held", None)
    return {"pages": pages, "items": items, "max_held": held}


async def mirror(args: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.bench_mirror import mirror_in_child

    return await mirror_in_child(args)


SCENARIOS = {"slow_consumer": slow_consumer, "mirror": mirror}


def main() -> None:
    args = json.loads(sys.argv[1])
    import aioudata  # noqa: F401  (counted in the baseline RSS below)

    at_start = peak_rss_mb()
    started = time.perf_counter()
    result = asyncio.run(SCENARIOS[args["scenario"]](args))
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_after_imports_mb"] = at_start
    print(json.dumps(result))


if __name__ == "__main__":
    main()
