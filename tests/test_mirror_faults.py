"""The mirror through a flaky portal: 10% of requests fail (5xx, resets), nothing is lost.

Runs against the synthetic catalog server of the benchmarks (benchmarks/_server.py: real
response shapes, udata's paging, seeded faults) on 127.0.0.1.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from aioudata import MirrorConfig, RetryPolicy, run_mirror
from benchmarks._server import CatalogServer

PATIENT = RetryPolicy(max_attempts=12, backoff=0.002, max_backoff=0.01, max_time=60)


async def test_a_mirror_through_ten_percent_faults_holds_every_object_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "flaky.sqlite"
    async with CatalogServer(datasets=1_500, organizations=120, reuses=80, seed=3) as server:
        server.reconfigure(fault_rate=0.10)
        config = MirrorConfig(
            base_url=server.base_url,
            db=db,
            concurrency=8,
            rate=None,
            page_size=20,
            retry=PATIENT,
        )
        summary = await run_mirror(config)
        faults = server.stats["faults"]
        resets = server.stats["fault reset"]
        expected = {kind: set(server.ids(kind)) for kind in ("datasets", "organizations", "reuses")}
        resources = {
            resource["id"]
            for number in range(1_500)
            for resource in json.loads(server.item("datasets", number))["resources"]
        }
    # Every fault was retried (aiohttp may re-send after a reset itself, uncounted).
    assert summary.status == "ok" and faults >= 5 and summary.retries >= faults - resets
    with sqlite3.connect(db) as conn:
        for table, ids in expected.items():
            stored = [row[0] for row in conn.execute(f"SELECT id FROM {table}")]
            assert len(stored) == len(set(stored)) and set(stored) == ids, table
        stored_resources = {row[0] for row in conn.execute("SELECT id FROM resources")}
        assert stored_resources == resources
        assert conn.execute("SELECT COUNT(*) FROM errors").fetchone() == (0,)
        assert conn.execute(
            "SELECT COUNT(*) FROM datasets WHERE gone_at IS NOT NULL"
        ).fetchone() == (0,)
    assert summary.entities["datasets"].new == 1_500
