"""Politeness, measured on the servers' side: requests in flight per host and in all, a host's
rate, no head-of-line blocking, back-off on 429 honouring Retry-After, the circuit breaker,
robots.txt."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import datetime
from pathlib import Path

from aioudata._crawl import HostLimits, run_checks
from tests.test_crawl_web import Web, closed_port, config, make_mirror, query, results
from tests.test_crawl_web import webhosts as webhosts  # the fixture


async def test_requests_in_flight_stay_within_each_host_and_the_global_limit(
    webhosts: Web, tmp_path: Path
) -> None:
    hosts = [await webhosts.host(f"h{n}", delay=0.02) for n in range(4)]
    narrow = hosts[0]
    urls = [host.add(f"/f{n}.csv") for n in range(24) for host in hosts]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    summary = await run_checks(
        config(
            db,
            concurrency=9,
            per_host=HostLimits(3, None),
            host_limits={narrow.key: HostLimits(1, None)},
        )
    )
    assert summary.outcomes == {"2xx": 96} and summary.requests == 96
    assert narrow.max_in_flight == 1
    assert all(1 <= host.max_in_flight <= 3 for host in hosts[1:])
    assert max(host.max_in_flight for host in hosts[1:]) == 3  # the limit was reached...
    assert 3 < webhosts.load.peak <= 9  # ...and the global one was never passed


async def test_a_host_rate_spaces_its_requests(webhosts: Web, tmp_path: Path) -> None:
    paced, free = await webhosts.host("paced"), await webhosts.host("free")
    urls = [paced.add(f"/p{n}") for n in range(6)] + [free.add(f"/f{n}") for n in range(6)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    await run_checks(
        config(db, per_host=HostLimits(4, None), host_limits={paced.key: HostLimits(4, 20.0)})
    )
    arrivals = [seen.at for seen in paced.seen]
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] >= 5 / 20 * 0.9  # never faster than 20 requests/s


async def test_a_slow_host_does_not_hold_up_the_others(webhosts: Web, tmp_path: Path) -> None:
    slow = await webhosts.host("slow", gate=asyncio.Event())
    fast = [await webhosts.host(f"fast{n}") for n in range(3)]
    urls = [slow.add(f"/s{n}") for n in range(10)]
    urls += [host.add(f"/f{n}") for n in range(15) for host in fast]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    task = asyncio.ensure_future(
        run_checks(config(db, concurrency=8, per_host=HostLimits(2, None), timeout=60))
    )
    recorded = 0
    try:
        for _ in range(1000):  # at most ~10 s
            if task.done():
                break
            with contextlib.suppress(sqlite3.OperationalError):  # no table yet
                recorded = query(
                    db, "SELECT COUNT(*) FROM check_results WHERE host != ?", slow.key
                )[0][0]
            if recorded == 45:
                break
            await asyncio.sleep(0.01)
        # Every URL of the other hosts is recorded while the slow host still holds its first
        # two requests (its limit), the other eight waiting in its own queue.
        assert recorded == 45 and not task.done()
        assert (slow.waiting, len(slow.seen)) == (2, 2)
    finally:
        assert slow.gate is not None
        slow.gate.set()
        summary = await asyncio.wait_for(task, 30)
    assert summary.outcomes == {"2xx": 55} and slow.max_in_flight == 2


async def test_a_429_backs_its_host_off_for_its_retry_after(webhosts: Web, tmp_path: Path) -> None:
    throttling = await webhosts.host("throttling", script=[(429, "1")])
    others = await webhosts.host("others", delay=0.005)
    urls = [throttling.add(f"/t{n}") for n in range(3)] + [others.add(f"/o{n}") for n in range(20)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    summary = await run_checks(config(db, per_host=HostLimits(1, None)))

    assert summary.outcomes == {"2xx": 23}  # the throttled URL was asked again, later
    seen = throttling.seen
    assert len(seen) == 4
    assert seen[1].at - seen[0].at >= 1.0  # nothing during the second it asked for
    assert others.seen[-1].at < seen[1].at  # while the other host went on to its end


async def test_a_retry_after_beyond_patience_leaves_the_host_alone_until_then(
    webhosts: Web, tmp_path: Path
) -> None:
    closing = await webhosts.host("closing", script=[(429, "86400")])
    persistent = await webhosts.host("persistent", script=[(429, None)] * 10)
    other = await webhosts.host("other")
    urls = [closing.add(f"/c{n}") for n in range(5)]
    urls += [persistent.add("/p"), other.add("/a"), other.add("/b")]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    summary = await run_checks(
        config(db, per_host=HostLimits(1, None), max_backoff=60, throttle_attempts=3)
    )

    assert len(closing.seen) == 1 and summary.hosts_throttled == [closing.key]
    found = results(db)
    for url in urls[:5]:
        row = found[url]
        assert row["error"] == "throttled" and row["status"] is None
        wait = datetime.fromisoformat(row["next_check_at"]) - datetime.fromisoformat(
            row["checked_at"]
        )
        assert wait.total_seconds() >= 86_000
    # A host answering 429 without Retry-After: a doubling back-off, 3 attempts, recorded.
    assert len(persistent.seen) == 3
    assert (found[urls[5]]["status"], found[urls[5]]["error"]) == (429, "throttled")
    assert query(db, "SELECT host, reason FROM check_hosts") == [(closing.key, "Retry-After")]

    again = await run_checks(config(db, all=True, max_backoff=60))
    assert len(closing.seen) == 1  # a later run leaves it alone too
    assert again.hosts_throttled == [closing.key] and len(other.seen) == 4


async def test_a_failing_host_opens_its_breaker_then_is_given_up(
    webhosts: Web, tmp_path: Path
) -> None:
    down = await webhosts.host("down", always=502)
    fine = await webhosts.host("fine")
    refusing = f"http://127.0.0.1:{closed_port()}"
    urls = [down.add(f"/d{n}") for n in range(20)] + [fine.add(f"/f{n}") for n in range(5)]
    urls += [f"{refusing}/r{n}" for n in range(12)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    summary = await run_checks(
        config(db, per_host=HostLimits(1, None), breaker_failures=3, breaker_trips=2)
    )

    # 3 failures open the breaker; after its pause one request tries again, fails, and it
    # opens again; the second try fails too: given up. 5 requests for 20 URLs.
    assert len(down.seen) == 5
    found = results(db)
    kinds = [found[url]["error"] or found[url]["status"] for url in urls[:20]]
    assert kinds.count(502) == 5 and kinds.count("host_down") == 15
    refused = [found[url]["error"] for url in urls[25:]]
    assert refused.count("refused") == 5 and refused.count("host_down") == 7
    assert summary.hosts_down == sorted([down.key, refusing.removeprefix("http://")])
    assert summary.outcomes["2xx"] == 5 and summary.checked == 37
    assert "breaker" in found[urls[-1]]["detail"]


async def test_robots_txt_is_respected_when_asked(webhosts: Web, tmp_path: Path) -> None:
    host = await webhosts.host("robots", robots="User-agent: *\nDisallow: /private/\n")
    urls = [host.add("/public.csv"), host.add("/private/secret.csv"), host.add("/b.csv")]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    await run_checks(config(db, robots=True))

    assert sorted(s.path for s in host.seen) == ["/b.csv", "/public.csv", "/robots.txt"]
    found = results(db)
    assert found[urls[1]]["error"] == "robots" and found[urls[0]]["status"] == 200
    host.seen.clear()
    await run_checks(config(db, all=True))  # not asked: no robots.txt, every URL
    assert sorted(s.path for s in host.seen) == ["/b.csv", "/private/secret.csv", "/public.csv"]


async def test_a_run_left_with_dead_hosts_only_ends_instead_of_waiting(
    webhosts: Web, tmp_path: Path
) -> None:
    fine = await webhosts.host("fine", delay=0.05)
    refusing = f"http://127.0.0.1:{closed_port()}"
    urls = [fine.add(f"/f{n}") for n in range(10)] + [f"{refusing}/r{n}" for n in range(8)]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    # An hour's pause after 2 failures: waiting for it would hold the run for an hour.
    options = config(db, per_host=HostLimits(1, None), breaker_failures=2, breaker_cooldown=3600)
    summary = await asyncio.wait_for(run_checks(options), 60)

    found = results(db)
    refused = [found[url]["error"] for url in urls[10:]]
    assert refused.count("refused") == 2 and refused.count("host_down") == 6
    assert "nothing else was left" in found[urls[-1]]["detail"]
    assert summary.status == "ok" and summary.checked == 18
    assert summary.hosts_down == [refusing.removeprefix("http://")]
    assert len(fine.seen) == 10  # the live host's URLs were all checked first
