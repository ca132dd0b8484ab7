"""The mirror into PostgreSQL against the same mirror into SQLite (issue 16), and its memory.

- Speed: ``run_mirror`` of 10,000 full-size datasets (~20 KB, 8 resources each; 100 pages of
  100, no latency: the database is what is measured) into a fresh PostgreSQL schema and into
  a fresh SQLite file, alternating, in one run; target: PostgreSQL within 1.5x SQLite's time.
- Memory: peak RSS of the same mirror into PostgreSQL against into SQLite, at 2,500 and
  10,000 datasets, each run in its own process: the PostgreSQL sink adds its driver, and
  grows no more than SQLite's.

The PostgreSQL server is started the way the tests start theirs (tests/postgres_server.py: a
throwaway one in a temporary directory, stopped by pid); without one, the rows say why.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ._common import Settings, check_row, child, row
from ._server import CatalogConfig, ServerProcess
from .bench_mirror import mirror_once

GROUP = "PostgreSQL sink (issue 16)"
_SCHEMAS = itertools.count(1)


def _skipped(reason: str) -> list[dict[str, Any]]:
    skipped = check_row(
        "mirror into PostgreSQL vs SQLite", ok=False, detail=f"skipped: {reason}", group=GROUP
    )
    skipped["met"] = None
    return [skipped]


def _fresh(server: Any) -> str:
    return f"{server.url()}?schema=bench_{next(_SCHEMAS)}"


def run_speed(settings: Settings, server: Any) -> list[dict[str, Any]]:
    datasets, repeat = settings.pick((10_000, 3), (500, 1))
    concurrency, page_size = 16, 100
    catalog = CatalogConfig(datasets=datasets, resources=8, description=8000)
    postgres: list[float] = []
    sqlite: list[float] = []
    ratios: list[float] = []
    stored: set[tuple[int, int]] = set()
    with ServerProcess(catalog) as portal:
        for r in range(repeat):
            pair: dict[str, float] = {}
            for side in ("postgres", "sqlite") if r % 2 == 0 else ("sqlite", "postgres"):
                folder = Path(tempfile.mkdtemp(prefix="aioudata-bench-"))
                try:
                    url = _fresh(server) if side == "postgres" else None
                    result = asyncio.run(
                        mirror_once(
                            portal.base_url, folder / "m.db", concurrency, page_size, db_url=url
                        )
                    )
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                assert result["datasets"] == datasets, (side, result)
                stored.add((result["datasets"], result["resources"]))
                pair[side] = result["seconds"]
            postgres.append(pair["postgres"])
            sqlite.append(pair["sqlite"])
            ratios.append(pair["postgres"] / pair["sqlite"])
    assert len(stored) == 1, f"the two sinks stored different counts: {stored}"
    resources = stored.pop()[1]
    return [
        row(
            f"mirror {datasets:,} datasets of ~20 KB, 8 resources ({datasets // page_size} pages,"
            f" no latency) at {concurrency} into PostgreSQL vs into SQLite",
            ours=postgres,
            theirs=sqlite,
            baseline="the same mirror into a SQLite file",
            unit="s",
            direction="cost",
            target=1.5,
            group=GROUP,
            ratios=ratios,
            note=f"both stored {datasets:,} datasets and {resources:,} resources; PostgreSQL"
            f" {server.version} on 127.0.0.1 (psycopg 3, synchronous_commit off; a page's"
            " resources through COPY, its inserts sent together at its end, the next page"
            " decoded meanwhile)",
        )
    ]


def run_memory(settings: Settings, server: Any) -> list[dict[str, Any]]:
    small, large, repeat = settings.pick((2_500, 10_000, 1), (300, 1_000, 1))
    peaks: dict[tuple[str, int], list[float]] = {}
    with ServerProcess(CatalogConfig(datasets=small, resources=8, description=8000)) as portal:
        from .bench_pagination import configure

        for r in range(repeat):
            for side in ("postgres", "sqlite") if r % 2 == 0 else ("sqlite", "postgres"):
                for datasets in (small, large):
                    configure(portal, datasets=datasets)
                    args = {"scenario": "mirror", "base_url": portal.base_url, "concurrency": 16}
                    if side == "postgres":
                        args["db_url"] = _fresh(server)
                    result = child("_child", args)
                    assert result["datasets"] == datasets, result
                    peaks.setdefault((side, datasets), []).append(result["peak_rss_mb"])

    def mb(side: str, datasets: int) -> str:
        return f"{min(peaks[side, datasets]):.0f}"

    return [
        row(
            f"peak RSS of the mirror of {large:,} datasets of ~20 KB: into PostgreSQL vs into"
            " SQLite",
            ours=peaks["postgres", large],
            theirs=peaks["sqlite", large],
            baseline="the same mirror into SQLite",
            unit="MB",
            direction="cost",
            target=1.2,
            group=GROUP,
            note=f"concurrency 16, no latency, each run in its own process; {small:,} then"
            f" {large:,} datasets: PostgreSQL {mb('postgres', small)} then"
            f" {mb('postgres', large)} MB, SQLite {mb('sqlite', small)} then"
            f" {mb('sqlite', large)} MB (the growth is the mirror's, alike for both sinks)",
        )
    ]


def run(settings: Settings) -> list[dict[str, Any]]:
    try:
        import psycopg  # noqa: F401

        from tests.postgres_server import PostgresServer, PostgresUnavailable
    except ImportError as error:
        return _skipped(f"psycopg is not installed ({error})")
    try:
        server = PostgresServer(fsync=True).start()
    except (PostgresUnavailable, OSError) as error:
        return _skipped(f"no PostgreSQL server could start ({error})")
    try:
        return run_speed(settings, server) + run_memory(settings, server)
    finally:
        server.stop()
