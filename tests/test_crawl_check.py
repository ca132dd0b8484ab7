"""``run_checks``: what is recorded per resource, HEAD and its GET fallback, redirects, error
classes, conditional requests, the re-check schedule, filters, the API walk and its key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aioudata._crawl import CheckError, HostLimits, run_checks
from aioudata._crawl.config import CONTACT_URL
from tests.faults import serve_local
from tests.test_crawl_web import (
    Web,
    closed_port,
    config,
    make_mirror,
    query,
    resource_id,
    results,
)
from tests.test_crawl_web import webhosts as webhosts  # the fixture


async def test_each_resource_gets_its_result(webhosts: Web, tmp_path: Path) -> None:
    files = await webhosts.host("files")
    slow = await webhosts.host("slow", gate=asyncio.Event())
    ok, missing = files.add("/data.csv", b"a;b\n1;2\n"), files.url("/missing.csv")
    refused = f"http://127.0.0.1:{closed_port()}/file.csv"
    urls = [
        ok,
        missing,
        refused,
        f"https://127.0.0.1:{files.port}/data.csv",  # TLS to a plain HTTP port
        f"http://known.test:{files.port}/data.csv",
        "http://nowhere.invalid/file.csv",
        slow.add("/late.csv"),
        "ftp://ftp.example.org/file.csv",
        "not a URL",
    ]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    summary = await run_checks(config(db, timeout=0.5))

    found = results(db)
    assert set(found) == set(urls)
    row = found[ok]
    assert (row["status"], row["final_url"], row["redirects"]) == (200, ok, 0)
    assert row["method"] == "HEAD"
    assert (row["content_type"], row["length"]) == ("text/csv", 8)
    assert row["etag"] == files.etag("/data.csv") and row["last_modified"].endswith("GMT")
    assert row["error"] is None and row["elapsed"] >= 0 and row["dataset_id"]
    assert row["checked_at"] == row["changed_at"] and (row["checks"], row["changes"]) == (1, 1)
    assert found[missing]["status"] == 404 and found[missing]["error"] is None
    assert found[f"http://known.test:{files.port}/data.csv"]["status"] == 200
    errors = {url: row["error"] for url, row in found.items() if row["error"]}
    assert errors == {
        refused: "refused",
        f"https://127.0.0.1:{files.port}/data.csv": "tls",
        "http://nowhere.invalid/file.csv": "dns",
        slow.url("/late.csv"): "timeout",
        "ftp://ftp.example.org/file.csv": "unsupported_scheme",
        "not a URL": "invalid_url",
    }
    assert all(found[url]["status"] is None for url in errors)
    assert summary.status == "ok" and (summary.total, summary.checked) == (9, 9)
    assert summary.outcomes == {
        "2xx": 2,
        "4xx": 1,
        "refused": 1,
        "tls": 1,
        "dns": 1,
        "timeout": 1,
        "unsupported_scheme": 1,
        "invalid_url": 1,
    }
    assert summary.broken == 7 and summary.changed == 9
    # A first check is the first row of each resource's history; the run is recorded.
    assert query(db, "SELECT COUNT(*) FROM check_history") == [(9,)]
    assert query(db, "SELECT status, source, frontier_ready FROM check_runs") == [
        ("ok", "mirror", 1)
    ]
    assert query(db, "SELECT COUNT(*) FROM check_frontier") == [(0,)]


async def test_head_refused_or_lying_is_asked_again_with_a_get(
    webhosts: Web, tmp_path: Path
) -> None:
    refusing = await webhosts.host("refusing", head="refuse")
    lying = await webhosts.host("lying", head="lie")
    urls = [refusing.add(f"/r{n}.csv") for n in range(6)] + [lying.add("/l.csv", b"x" * 50)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    await run_checks(config(db, per_host=HostLimits(1, None)))

    found = results(db)
    assert {found[u]["status"] for u in urls} == {200}
    assert {found[u]["method"] for u in urls} == {"GET"}
    assert found[lying.url("/l.csv")]["length"] == 50  # what the GET says, not the HEAD
    # The first 3 refused HEADs teach the host: the other URLs get a GET at once.
    methods = [s.method for s in refusing.seen]
    assert methods == ["HEAD", "GET"] * 3 + ["GET"] * 3
    # GETs are closed after their headers, and still tell the file's validators.
    assert found[urls[0]]["etag"] == refusing.etag("/r0.csv")


async def test_redirects_are_followed_hop_by_hop_within_limits(
    webhosts: Web, tmp_path: Path
) -> None:
    a, b, c = [await webhosts.host(name) for name in "abc"]
    final = c.add("/final.csv", b"12345")
    a.redirects["/start"] = b.url("/hop")
    b.redirects["/hop"] = "/hop2"  # relative
    b.redirects["/hop2"] = final
    a.redirects["/loop"] = b.url("/loop")
    b.redirects["/loop"] = a.url("/loop")
    for n in range(5):
        a.redirects[f"/long{n}"] = a.url(f"/long{n + 1}")
    a.redirects["/ftp"] = "ftp://files.example.org/x.csv"
    urls = [a.url(p) for p in ("/start", "/loop", "/long0", "/ftp")]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    await run_checks(config(db, max_redirects=3))

    found = results(db)
    start = found[a.url("/start")]
    assert (start["status"], start["final_url"], start["redirects"]) == (200, final, 3)
    assert start["length"] == 5 and start["error"] is None
    loop = found[a.url("/loop")]
    assert loop["error"] == "redirect_loop" and loop["redirects"] == 1
    long = found[a.url("/long0")]
    assert long["error"] == "too_many_redirects" and long["redirects"] == 3
    assert len([s for s in a.seen if s.path.startswith("/long")]) == 4  # then it stopped
    assert found[a.url("/ftp")]["error"] == "unsupported_scheme"
    assert "ftp://files.example.org/x.csv" in found[a.url("/ftp")]["detail"]


async def test_later_runs_send_conditional_requests_and_get_304s(
    webhosts: Web, tmp_path: Path
) -> None:
    host = await webhosts.host("files")
    urls = [host.add(f"/f{n}.csv") for n in range(8)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    await run_checks(config(db))
    first = results(db)
    host.seen.clear()
    host.files["/f0.csv"] = b"a new version of f0"

    summary = await run_checks(config(db, all=True))

    assert len(host.seen) == 8  # one request each: no more
    sent = {s.path: s.headers for s in host.seen}
    assert all(sent[f"/f{n}.csv"]["If-None-Match"] == first[urls[n]]["etag"] for n in range(8))
    assert all(sent[f"/f{n}.csv"]["If-Modified-Since"].endswith("GMT") for n in range(8))
    assert summary.outcomes == {"not_modified": 7, "2xx": 1} and summary.changed == 1
    found = results(db)
    unchanged = found[urls[1]]
    assert (unchanged["status"], unchanged["not_modified"], unchanged["checks"]) == (200, 1, 2)
    assert unchanged["changed_at"] == first[urls[1]]["changed_at"]
    assert unchanged["length"] == first[urls[1]]["length"]  # as last seen
    assert found[urls[0]]["etag"] == host.etag("/f0.csv") and found[urls[0]]["changes"] == 2
    history = query(db, "SELECT resource_id, etag FROM check_history ORDER BY checked_at")
    assert len(history) == 9 and history[-1][1] == host.etag("/f0.csv")


class Clock:
    """A settable now for the schedule."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_only_what_is_due_is_checked_and_steady_files_less_often(
    webhosts: Web, tmp_path: Path
) -> None:
    host = await webhosts.host("files")
    urls = [host.add(f"/f{n}.csv") for n in range(4)]
    db = tmp_path / "m.sqlite"
    ids = make_mirror(db, urls)
    clock = Clock()
    day = 86_400.0

    def due_in(url: str) -> float:
        row = results(db)[url]
        delta = datetime.fromisoformat(row["next_check_at"]) - clock.now
        return delta.total_seconds() / day

    await run_checks(config(db, now=clock))
    assert due_in(urls[0]) == 1  # just changed (first seen): min_interval
    before = len(host.seen)
    summary = await run_checks(config(db, now=clock))
    assert summary.total == 0 and len(host.seen) == before  # nothing due: no request

    intervals = []
    for _ in range(5):
        clock.now += timedelta(days=intervals[-1] if intervals else 1)
        summary = await run_checks(config(db, now=clock))
        assert summary.outcomes == {"not_modified": 4}
        intervals.append(due_in(urls[0]))
    # Unchanged files wait half the time they have stayed so: 1, 1, 1.5, 2.25...
    assert intervals == sorted(intervals) and intervals[-1] > intervals[0] >= 1

    # A resource whose URL changed in the mirror is due at once.
    moved = host.add("/moved.csv")
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE resource_rows SET url = ? WHERE id = ?", (moved, ids[2]))
    conn.close()
    host.seen.clear()
    summary = await run_checks(config(db, now=clock))
    assert summary.total == 1 and [s.path for s in host.seen] == ["/moved.csv"]
    assert "If-None-Match" not in host.seen[0].headers  # validators of another URL: not sent
    assert results(db)[moved]["checks"] == 1


async def test_filters_select_resources(webhosts: Web, tmp_path: Path) -> None:
    one, two = await webhosts.host("one"), await webhosts.host("two")
    entries: list[Any] = [
        (one.add("/a.csv"), "csv", "org-a"),
        (one.add("/b.json"), "JSON ", "org-a"),
        (two.add("/c.csv"), "csv", "org-b"),
        (two.add("/d.csv"), "csv", "org-b"),
    ]
    db = tmp_path / "m.sqlite"
    make_mirror(db, entries, per_dataset=2)
    await run_checks(config(db, format=("json",)))
    assert set(results(db)) == {one.url("/b.json")}
    await run_checks(config(db, organization=("org-b",)))
    assert set(results(db)) == {one.url("/b.json"), two.url("/c.csv"), two.url("/d.csv")}
    await run_checks(config(db, host=(one.key,), all=True))
    assert len(one.seen) == 3 and len(two.seen) == 2


class FakeApi:
    """A udata API with one listing (datasets with their resources) that wants a key."""

    def __init__(self, datasets: list[dict[str, Any]]) -> None:
        self.datasets = datasets
        self.seen: list[dict[str, str]] = []
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/1/datasets/", self.listing)
        app.router.add_route("*", "/{tail:.*}", self.other)
        self.runner, self.port = await serve_local(app)

    async def listing(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        page, size = int(request.query.get("page", 1)), int(request.query.get("page_size", 20))
        chunk = self.datasets[(page - 1) * size : page * size]
        if not chunk and page > 1:
            return web.json_response({"message": "Not found"}, status=404)
        more = page * size < len(self.datasets)
        return web.json_response(
            {
                "data": chunk,
                "page": page,
                "page_size": size,
                "total": len(self.datasets),
                "next_page": f"{request.url.with_query(page=page + 1)}" if more else None,
            }
        )

    async def other(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        return web.Response(body=b"a file on the API's own host", content_type="text/csv")


async def test_without_a_mirror_the_api_is_walked_and_its_key_stays_there(
    webhosts: Web, tmp_path: Path
) -> None:
    files = await webhosts.host("files")
    api = FakeApi([])
    await api.start()
    try:
        api_file = f"http://127.0.0.1:{api.port}/datasets/r/abc"  # a file on the API's host
        files.redirects["/redirected"] = api_file
        urls = [files.add("/a.csv"), files.url("/redirected"), api_file]
        api.datasets = [
            {
                "id": f"{n:024x}",
                "organization": {"id": "org"},
                "resources": [{"id": resource_id(n), "url": url, "format": "csv"}],
            }
            for n, url in enumerate(urls)
        ]
        db = tmp_path / "fresh.sqlite"
        summary = await run_checks(
            config(
                db,
                base_url=f"http://127.0.0.1:{api.port}/api/1",
                api_key="s3cret-key",
                contact="mailto:ops@example.org",
                page_size=2,
            )
        )
    finally:
        assert api.runner is not None
        await api.runner.cleanup()

    assert summary.source == "api" and summary.outcomes == {"2xx": 3}
    assert set(results(db)) == set(urls)
    listings = [h for h in api.seen if "X-Fields" in h]
    assert len(listings) == 2 and all(h["X-API-KEY"] == "s3cret-key" for h in listings)
    to_files = [*(s.headers for s in files.seen), *(h for h in api.seen if "X-Fields" not in h)]
    assert len(to_files) == 4
    for headers in to_files:
        assert "X-API-KEY" not in headers and "Authorization" not in headers
        assert not any("s3cret-key" in value for value in headers.values())
        assert (
            CONTACT_URL in headers["User-Agent"]
            and "mailto:ops@example.org" in (headers["User-Agent"])
        )
    # The database it made is one the mirror may use later.
    assert query(db, "SELECT value FROM meta WHERE key = 'application'") == [("aioudata",)]


async def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(CheckError, match="not an aioudata mirror") as info:
        await run_checks(config(db))
    assert info.value.code == 2 and db.read_bytes() == before
