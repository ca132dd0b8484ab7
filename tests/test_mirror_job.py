"""The mirror job against a small fake udata catalog on 127.0.0.1: bad records, failing items."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aioudata import AuthenticationError, RetryPolicy
from aioudata._mirror import MirrorConfig, MirrorError, run_mirror
from tests.faults import serve_local
from tests.test_mirror_store import dataset

ROOT = Path(__file__).resolve().parent
FAST = RetryPolicy(max_attempts=2, backoff=0.01, max_backoff=0.02)


def _body(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "fixtures" / "responses" / name).read_text())["body"]  # type: ignore[no-any-return]


class FakeCatalog:
    """udata-like listings (page, page_size, total, next_page; 404 past the end) and objects.

    ``broken``: ids whose listing page answers 500 unless it is fetched alone, and whose own
    URL always answers 500 — like the real datasets whose documents break serialization.
    """

    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {"datasets": [], "organizations": []}
        self.broken: set[str] = set()
        #: Listing pages answering one spurious 404 each (then normally).
        self.spurious_404: set[int] = set()
        #: Listing pages answering one 503 each (then normally): retried.
        self.unavailable: set[int] = set()
        #: Ids whose own URL answers 403, or 401; the others answer after ``get_delay`` s.
        self.forbidden: set[str] = set()
        self.unauthorized: set[str] = set()
        self.get_delay = 0.0
        #: Entities whose listing answers this status (401: needs a key, 403: an admin one).
        self.refused: dict[str, int] = {}
        #: Run before each unmasked listing page is served: ``hook(catalog, page)``.
        self.on_list: Callable[[FakeCatalog, int], None] | None = None
        #: Added to every reported total (a total that over-reports).
        self.total_extra = 0
        self.served: list[str] = []
        self.port = 0
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/1"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/1/site/", self._site)
        app.router.add_get("/api/1/{entity}/", self._list)
        app.router.add_get("/api/1/{entity}/{id}/", self._get)
        self._runner, self.port = await serve_local(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _site(self, request: web.Request) -> web.Response:
        return web.json_response({"id": "fake", "title": "fake udata"})

    async def _list(self, request: web.Request) -> web.Response:
        self.requests += 1
        refused = self.refused.get(request.match_info["entity"])
        if refused:
            return web.json_response({"message": "Unauthorized"}, status=refused)
        if self.on_list is not None and "X-Fields" not in request.headers:
            self.on_list(self, int(request.query.get("page", 1)))
        items = list(self.items.get(request.match_info["entity"], []))
        if request.query.get("sort", "").startswith("-"):
            field = request.query["sort"][1:].replace("last_update", "last_update")
            items.sort(key=lambda item: str(item.get(field) or ""), reverse=True)
        page = int(request.query.get("page", 1))
        size = int(request.query.get("page_size", 20))
        if page in self.spurious_404:
            self.spurious_404.discard(page)
            return web.json_response({"message": "not found"}, status=404)
        if page in self.unavailable and "X-Fields" not in request.headers:
            self.unavailable.discard(page)
            return web.json_response({"message": "unavailable"}, status=503)
        chunk = items[(page - 1) * size : page * size]
        if not chunk and page > 1:
            return web.json_response({"message": "not found"}, status=404)
        masked = request.headers.get("X-Fields", "").startswith("data{id")
        if size > 1 and not masked and any(item.get("id") in self.broken for item in chunk):
            return web.json_response({"message": "Internal Server Error"}, status=500)
        if masked:  # an X-Fields mask, as udata applies it: only those fields; nothing breaks
            mask = request.headers["X-Fields"]
            fields = mask[len("data{") : mask.index("}")].split(",")
            chunk = [{name: item.get(name) for name in fields} for item in chunk]
        elif size == 1 and chunk and chunk[0].get("id") in self.broken:
            return web.json_response({"message": "Internal Server Error"}, status=500)
        more = page * size < len(items)
        return web.json_response(
            {
                "data": chunk,
                "page": page,
                "page_size": size,
                "total": len(items) + self.total_extra,
                "next_page": f"{self.base_url}/x/?page={page + 1}" if more else None,
                "previous_page": None,
            }
        )

    async def _get(self, request: web.Request) -> web.Response:
        self.requests += 1
        wanted = request.match_info["id"]
        if wanted in self.forbidden:
            return web.json_response({"message": "forbidden"}, status=403)
        if wanted in self.unauthorized:
            return web.json_response({"message": "Invalid API token"}, status=401)
        self.served.append(wanted)  # as it arrives
        if self.get_delay:
            await asyncio.sleep(self.get_delay)
        if wanted in self.broken:
            return web.json_response({"message": "Internal Server Error"}, status=500)
        for item in self.items.get(request.match_info["entity"], []):
            if item.get("id") == wanted:
                return web.json_response(item)
        return web.json_response({"message": "not found"}, status=404)


@pytest.fixture
async def catalog() -> AsyncIterator[FakeCatalog]:
    fake = FakeCatalog()
    org = _body("organization.json")
    for number in range(1, 4):
        item = copy.deepcopy(org)
        item["id"] = f"{number:024x}"
        fake.items["organizations"].append(item)
    fake.items["datasets"] = [dataset(n) for n in range(1, 12)]
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def config(catalog: FakeCatalog, db: Path, **options: Any) -> MirrorConfig:
    settings: dict[str, Any] = {
        "base_url": catalog.base_url,
        "api_key": "",
        "db": db,
        "entities": ("datasets", "organizations"),
        "rate": None,
        "page_size": 3,
        "retry": FAST,
    }
    return MirrorConfig(**{**settings, **options})


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_a_record_off_the_model_is_stored_with_a_warning_and_the_run_succeeds(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    bad = catalog.items["datasets"][4]
    bad["last_update"] = {"not": "a date"}
    summary = await run_mirror(config(catalog, tmp_path / "m.sqlite"))
    assert summary.status == "ok"
    assert summary.entities["datasets"].errors == 0 and summary.quarantined == 0
    assert summary.entities["datasets"].stored == 11
    assert query(tmp_path / "m.sqlite", "SELECT COUNT(*) FROM errors") == [(0,)]
    assert query(
        tmp_path / "m.sqlite", "SELECT entity, item_id, path, reason FROM schema_warnings"
    ) == [("datasets", bad["id"], "$.last_update", "Expected `datetime`, got `object`")]
    ((raw, last_update, title),) = query(
        tmp_path / "m.sqlite",
        f"SELECT json, last_update, title FROM datasets WHERE id = '{bad['id']}'",
    )
    assert json.loads(raw) == bad and last_update is None and title == bad["title"]
    stored = {row[0] for row in query(tmp_path / "m.sqlite", "SELECT id FROM datasets")}
    assert stored == {d["id"] for d in catalog.items["datasets"]}


async def test_an_item_failing_server_side_is_recorded_not_fatal(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    broken = catalog.items["datasets"][7]["id"]  # page 3 of 4 (page_size 3), position 8
    catalog.broken.add(broken)
    summary = await run_mirror(config(catalog, tmp_path / "m.sqlite"))
    assert summary.status == "ok"
    stored = {row[0] for row in query(tmp_path / "m.sqlite", "SELECT id FROM datasets")}
    assert stored == {d["id"] for d in catalog.items["datasets"]} - {broken}
    ((key, item_id, reason),) = query(
        tmp_path / "m.sqlite", "SELECT key, item_id, reason FROM errors"
    )
    assert key == item_id == broken and "500" in reason
    # The next run is a full one too (no high-water mark from an incomplete listing) or an
    # incremental one: either way it must succeed and the broken item stays recorded.
    again = await run_mirror(config(catalog, tmp_path / "m.sqlite"))
    assert again.status == "ok" and again.entities["datasets"].stored == 10
    assert query(tmp_path / "m.sqlite", "SELECT COUNT(*) FROM errors") == [(1,)]


async def test_jsonl_format_writes_one_file_per_entity(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    summary = await run_mirror(config(catalog, tmp_path / "unused.sqlite", format="jsonl", out=out))
    assert summary.files["datasets"] == 11 and summary.files["organizations"] == 3
    lines = (out / "datasets.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(
        d["id"] for d in catalog.items["datasets"]
    )
    assert len((out / "resources.jsonl").read_text().splitlines()) == 22
    assert not (tmp_path / "unused.sqlite").exists()


async def test_a_database_mirrors_one_portal_only(catalog: FakeCatalog, tmp_path: Path) -> None:
    await run_mirror(config(catalog, tmp_path / "m.sqlite"))
    other = MirrorConfig(
        base_url=catalog.base_url.replace("127.0.0.1", "localhost"),
        db=tmp_path / "m.sqlite",
        rate=None,
    )
    with pytest.raises(MirrorError) as info:
        await run_mirror(other)
    assert info.value.code == 2 and "use another --db" in str(info.value)


async def test_a_cancelled_run_resumes_to_the_same_database(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.sqlite"
    await run_mirror(config(catalog, reference, page_size=2))
    resumed = tmp_path / "resumed.sqlite"
    task = asyncio.ensure_future(
        run_mirror(config(catalog, resumed, page_size=2, concurrency=1, rate=20.0))
    )
    for _ in range(200):  # at most 10 s
        await asyncio.sleep(0.05)
        with contextlib.suppress(sqlite3.OperationalError):  # its tables not made yet
            if resumed.exists() and query(
                resumed, "SELECT COUNT(*) FROM sync_state WHERE entity = 'datasets' AND page >= 2"
            ) == [(1,)]:
                break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = query(resumed, "SELECT COUNT(*) FROM datasets")[0][0]
    assert 0 < partial < 11
    summary = await run_mirror(config(catalog, resumed, page_size=2))
    assert summary.entities["datasets"].mode.startswith("resumed full pass")
    for table in ("datasets", "organizations", "resources", "errors"):
        columns = ", ".join(  # when each row was written, and in which run, differ
            row[1]
            for row in query(reference, f"PRAGMA table_info({table})")
            if row[1] not in ("written_at", "changed_run", "recorded_at")
        )
        sql = f"SELECT {columns} FROM {table} ORDER BY 1"
        assert query(resumed, sql) == query(reference, sql), table


async def test_a_listing_ending_early_marks_nothing_deleted(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "short.sqlite"
    catalog.items["datasets"] = [dataset(n, resources=0) for n in range(1, 31)]
    first = await run_mirror(config(catalog, db, entities=("datasets",), page_size=5))
    assert first.entities["datasets"].stored == 30

    catalog.spurious_404 = {3}  # one spurious 404 in the middle of the listing
    again = await run_mirror(
        config(catalog, db, entities=("datasets",), page_size=5, full=True, verify_deletions=0)
    )
    assert not catalog.spurious_404  # it was met
    assert again.status == "ok" and again.entities["datasets"].deleted == 0
    assert query(db, "SELECT COUNT(*) FROM datasets WHERE gone_at IS NULL") == [(30,)]


async def test_an_unexpected_error_fetching_by_id_stops_every_other_fetch(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "denied.sqlite"
    catalog.items["datasets"] = [dataset(n, resources=0) for n in range(1, 21)]
    await run_mirror(config(catalog, db, entities=("datasets",), page_size=100))
    for item in catalog.items["datasets"]:  # edited without moving last_update: the id pass
        item["last_modified"] = "2030-01-01T00:00:00+00:00"  # fetches each by id
        item["last_update"] = "2020-01-01T00:00:00+00:00"
    catalog.unauthorized = {catalog.items["datasets"][10]["id"]}
    catalog.get_delay = 0.3
    with pytest.raises(AuthenticationError):
        await run_mirror(config(catalog, db, entities=("datasets",), page_size=2, concurrency=8))
    arrived = len(catalog.served)
    await asyncio.sleep(0.8)
    assert len(catalog.served) == arrived  # no request was sent after the run failed

    # A 403 on one object (made private meanwhile) is recorded; the run goes on.
    catalog.unauthorized, catalog.get_delay = set(), 0.0
    private = catalog.items["datasets"][5]["id"]
    catalog.forbidden = {private}
    done = await run_mirror(config(catalog, db, entities=("datasets",), page_size=2))
    assert done.status == "ok" and done.entities["datasets"].errors == 1
    reasons = query(db, "SELECT item_id, reason FROM errors")
    assert len(reasons) == 1 and reasons[0][0] == private and "refused" in reasons[0][1]
