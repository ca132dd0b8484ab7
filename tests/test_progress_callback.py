"""``run_mirror(progress=callback)``: an application gets the run's updates, resumes included."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import aioudata
from aioudata._mirror.progress import Progress
from tests.test_mirror_job import FakeCatalog, _body
from tests.test_mirror_store import dataset

FAST = aioudata.RetryPolicy(max_attempts=2, backoff=0.01, max_backoff=0.02)


@pytest.fixture
async def catalog() -> AsyncIterator[FakeCatalog]:
    fake = FakeCatalog()
    for number in range(1, 4):
        item = copy.deepcopy(_body("organization.json"))
        item["id"] = f"{number:024x}"
        fake.items["organizations"].append(item)
    fake.items["datasets"] = [dataset(n) for n in range(1, 12)]
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def config(catalog: FakeCatalog, db: Path, **options: Any) -> aioudata.MirrorConfig:
    settings: dict[str, Any] = {
        "base_url": catalog.base_url,
        "api_key": "",
        "db": db,
        "entities": ("datasets", "organizations"),
        "rate": None,
        "page_size": 2,
        "retry": FAST,
    }
    return aioudata.MirrorConfig(**{**settings, **options})


def checkpoint(db: Path) -> int:
    """The datasets' checkpoint page (0 before the mirror has made its tables)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        try:
            row = conn.execute("SELECT page FROM sync_state WHERE entity = 'datasets'").fetchone()
        except sqlite3.OperationalError:  # no such table yet
            return 0
    return int(row[0]) if row else 0


async def test_a_callback_gets_typed_updates_and_a_final_one(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    updates: list[aioudata.ProgressUpdate] = []

    def collect(update: aioudata.ProgressUpdate) -> None:
        updates.append(update)

    callback: aioudata.ProgressCallback = collect
    summary = await aioudata.run_mirror(config(catalog, tmp_path / "m.sqlite"), progress=callback)
    assert summary.status == "ok"
    assert updates and updates[-1].final and not any(u.final for u in updates[:-1])
    final = updates[-1]
    datasets = final.entity("datasets")
    assert datasets.phase == "done" and datasets.finished and datasets.fraction == 1.0
    # 6 pages of 2 datasets, then a verification round of 1 page of ids.
    assert (datasets.pages, datasets.pages_total, datasets.items) == (7, 7, 11)
    assert datasets.new == 11 and final.entity("organizations").new == 3
    assert final.requests == summary.requests > 0
    notes = [note for update in updates for note in update.notes]
    assert "datasets: full" in notes and "datasets: done, 11 stored" in notes


async def test_after_a_resume_the_progress_starts_at_the_checkpoint(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    task = asyncio.ensure_future(aioudata.run_mirror(config(catalog, db, concurrency=1, rate=20.0)))
    for _ in range(200):  # at most 10 s
        await asyncio.sleep(0.05)
        if db.exists() and checkpoint(db) >= 2:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    done = checkpoint(db)
    assert 2 <= done < 6
    seen: list[aioudata.EntityStatus] = []
    progress = Progress(
        mode="callback", interval=0.01, callback=lambda u: seen.append(u.entity("datasets"))
    )
    await aioudata.run_mirror(config(catalog, db, concurrency=1, rate=20.0), progress=progress)
    resumed = [status for status in seen if status.phase == "full pass" and status.pages]
    assert resumed, seen
    # Not "page 1/…" of what is left: the checkpoint's pages are counted, and the total is whole.
    assert all(status.resumed == done and status.pages >= done for status in resumed)
    assert all(status.pages_total == 6 for status in resumed if status.pages_total)
    final = seen[-1]
    assert (final.pages, final.pages_total, final.resumed) == (7, 7, done)
