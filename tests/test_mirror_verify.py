"""Verification rounds, partial runs and skipped entities of the mirror.

Against the fake udata catalog of tests/test_mirror_job.py on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from aioudata import AuthenticationError, Client, RequestEvent, ResponseEvent, ServerError
from aioudata._cli import EXIT_PARTIAL, main
from aioudata._mirror import run_mirror
from aioudata._mirror.passes import IDS_PAGE_SIZE
from aioudata._mirror.sync import MAX_ROUNDS
from tests.test_mirror_job import FakeCatalog, catalog, config, query
from tests.test_mirror_store import dataset

__all__ = ["catalog"]  # the fixture, imported for its use here


async def test_objects_a_moving_listing_missed_are_repaired(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    catalog.items["datasets"] = [dataset(n, resources=0) for n in range(1, 31)]
    removed = catalog.items["datasets"][0]["id"]

    def remove_first(fake: FakeCatalog, page: int) -> None:
        # While page 2 of the full pass is served, the first dataset goes: everything slides
        # back one place and the first of page 2 lands on page 1, already walked.
        if page == 2 and fake.items["datasets"][0]["id"] == removed:
            fake.items["datasets"].pop(0)

    catalog.on_list = remove_first
    db = tmp_path / "m.sqlite"
    summary = await run_mirror(config(catalog, db, entities=("datasets",), page_size=5))
    expected = {d["id"] for d in catalog.items["datasets"]}
    live = {row[0] for row in query(db, "SELECT id FROM datasets WHERE gone_at IS NULL")}
    assert live == expected and len(expected) == 29
    item = summary.entities["datasets"]
    assert summary.status == "ok" and item.status == "ok"
    assert item.repaired == 1 and item.rounds >= 1
    # The dataset removed during the crawl was stored, then found gone: marked, not kept live.
    assert query(db, f"SELECT gone_at IS NOT NULL FROM datasets WHERE id = '{removed}'") == [(1,)]
    assert any("verification found 1" in line for line in summary.lines())


async def test_a_listing_that_keeps_moving_ends_partial_and_deletes_nothing(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    catalog.items["datasets"] = [dataset(n, resources=0) for n in range(1, 21)]
    first = await run_mirror(config(catalog, db, entities=("datasets",), page_size=5))
    assert first.status == "ok"
    gone = catalog.items["datasets"].pop()["id"]
    catalog.total_extra = 3  # every listing now says 3 more than it serves
    again = await run_mirror(config(catalog, db, entities=("datasets",), page_size=5, full=True))
    item = again.entities["datasets"]
    assert again.status == "partial" and item.status == "partial"
    assert item.rounds == MAX_ROUNDS and "kept moving" in item.note
    assert item.deleted == 0  # an untrustworthy listing marks nothing deleted
    assert query(db, f"SELECT gone_at FROM datasets WHERE id = '{gone}'") == [(None,)]
    assert query(db, "SELECT status FROM runs ORDER BY id DESC LIMIT 1") == [("partial",)]


async def test_the_command_exits_5_on_a_partial_mirror(
    catalog: FakeCatalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog.refused["organizations"] = 403
    code = await asyncio.to_thread(
        main,
        [
            "mirror",
            "--base-url",
            catalog.base_url,
            "--db",
            str(tmp_path / "m.sqlite"),
            "--entities",
            "datasets,organizations",
            "--rate",
            "0",
        ],
    )
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL == 5
    assert "partial mirror (organizations skipped)" in err
    assert "organizations  skipped: not listed: 403" in err


async def test_an_entity_the_key_may_not_list_is_skipped(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    catalog.refused["users"] = 401
    db = tmp_path / "m.sqlite"
    summary = await run_mirror(config(catalog, db, entities=("users", "datasets")))
    assert summary.status == "partial"
    assert summary.entities["users"].status == "skipped"
    assert "401" in summary.entities["users"].note
    assert summary.entities["datasets"].status == "ok"
    assert summary.entities["datasets"].stored == 11


async def test_a_run_whose_every_listing_is_refused_fails(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    catalog.refused["users"] = 401
    with pytest.raises(AuthenticationError):
        await run_mirror(config(catalog, tmp_path / "m.sqlite", entities=("users",)))


async def test_retries_are_counted_per_entity_without_any_logging(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    catalog.unavailable = {2, 3}  # two datasets pages answer 503 once each
    summary = await run_mirror(config(catalog, tmp_path / "m.sqlite"))  # progress off
    assert summary.status == "ok" and summary.entities["datasets"].stored == 11
    assert summary.entities["datasets"].retries == 2
    assert summary.entities["organizations"].retries == 0
    assert summary.retries == 2


async def test_a_hook_added_to_a_client_sees_its_requests_until_removed(
    catalog: FakeCatalog,
) -> None:
    from aioudata import Client

    seen: list[str] = []

    def hook(event: RequestEvent) -> None:
        seen.append(event.url)

    async with Client(catalog.base_url) as client:
        remove = client.add_event_hook("request", hook)
        await client.datasets.list_datasets(page_size=2)
        remove()
        await client.datasets.list_datasets(page_size=3)
    assert len(seen) == 1 and "page_size=2" in seen[0]
    with pytest.raises(ValueError, match="request"):
        Client(catalog.base_url).add_event_hook("sent", hook)  # type: ignore[arg-type]


def _listing_log(log: list[str]) -> dict[str, list[Callable[..., Any]]]:
    """Event hooks logging, in order, each request of a verification listing (``ids``) and
    each answer of the full pass (``page N``); the answer to page 10 comes 0.3 s late."""

    async def answered(event: ResponseEvent) -> None:
        url = URL(event.url)
        if url.path.endswith("/datasets/") and url.query.get("page_size") == "3":
            if url.query["page"] == "10":
                await asyncio.sleep(0.3)
            log.append(f"page {url.query['page']}")

    def asked(event: RequestEvent) -> None:
        url = URL(event.url)
        if url.path.endswith("/datasets/") and url.query.get("page_size") == str(IDS_PAGE_SIZE):
            assert event.headers["X-Fields"].startswith("data{id")
            log.append("ids")

    return {"request": [asked], "response": [answered]}


async def test_the_first_round_lists_while_the_pass_ends(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    catalog.items["datasets"] = [dataset(n, resources=0) for n in range(1, 31)]
    log: list[str] = []
    options = {"entities": ("datasets",), "page_size": 3, "concurrency": 2}
    summary = await run_mirror(
        config(catalog, tmp_path / "m.sqlite", event_hooks=_listing_log(log), **options)
    )
    assert summary.status == "ok" and summary.entities["datasets"].stored == 30
    assert summary.entities["datasets"].rounds == 1
    # The round's listing went out before the pass's last page was in, and only once.
    assert log.count("ids") == 1
    assert log.index("ids") < log.index("page 10"), log


async def test_a_round_whose_listing_ahead_failed_lists_itself(
    catalog: FakeCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.items["datasets"] = [dataset(n, resources=0) for n in range(1, 31)]
    request = Client.request
    failed: list[dict[str, Any]] = []

    async def fail_once(self: Client, endpoint: Any, args: Any = None, **kwargs: Any) -> Any:
        if args and args.get("page_size") == IDS_PAGE_SIZE and not failed:
            failed.append(args)  # the first verification page asked for: ahead
            raise ServerError(status=502, method="GET", url="http://127.0.0.1/x")
        return await request(self, endpoint, args, **kwargs)

    monkeypatch.setattr(Client, "request", fail_once)
    log: list[str] = []
    options = {"entities": ("datasets",), "page_size": 3, "concurrency": 2}
    db = tmp_path / "m.sqlite"
    summary = await run_mirror(config(catalog, db, event_hooks=_listing_log(log), **options))
    assert failed and summary.status == "ok" and summary.entities["datasets"].stored == 30
    assert log.count("ids") == 1 and log.index("ids") > log.index("page 10"), log
    listed = query(db, "SELECT COUNT(*) FROM listed WHERE pass_no = 2")
    assert listed == [(30,)]  # the round's own listing marked every dataset


async def test_a_round_goes_on_past_the_pages_asked_ahead(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    # 2,500 datasets in 5 pages, concurrency 2: the round's pages 1 and 2 (of 1,000 ids) are
    # asked for while the pass ends (its page 5 answers late); page 3 after, by the round.
    catalog.items["datasets"] = [{"id": f"{n:024x}", "title": f"d{n}"} for n in range(1, 2501)]
    log: list[str] = []

    def asked(event: RequestEvent) -> None:
        url = URL(event.url)
        if url.query.get("page_size") == str(IDS_PAGE_SIZE):
            log.append(f"ids {url.query['page']}")

    async def answered(event: ResponseEvent) -> None:
        url = URL(event.url)
        if url.query.get("page_size") == "500":
            if url.query["page"] == "5":
                await asyncio.sleep(0.3)
            log.append(f"page {url.query['page']}")

    hooks = {"request": [asked], "response": [answered]}
    options = {"entities": ("datasets",), "page_size": 500, "concurrency": 2}
    db = tmp_path / "m.sqlite"
    summary = await run_mirror(config(catalog, db, event_hooks=hooks, **options))
    assert summary.status == "ok" and summary.entities["datasets"].stored == 2500
    asked_ids = [entry for entry in log if entry.startswith("ids")]
    assert sorted(asked_ids) == ["ids 1", "ids 2", "ids 3"], log  # each page asked once
    assert log.index("ids 1") < log.index("page 5") < log.index("ids 3"), log
    assert log.index("ids 2") < log.index("page 5"), log
    assert query(db, "SELECT COUNT(*) FROM listed WHERE pass_no = 2") == [(2500,)]
