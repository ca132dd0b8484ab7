"""The resource checker (issue 15) on a local stand-in for the web of file hosts.

The stand-in (``serve`` below, in a child process): ``HOSTS`` hosts, each its own port of
127.0.0.1, with a realistic skew (one host has 40% of the URLs, the others a long tail) and
latencies from 5 ms to 400 ms; one host answers its first request 429 with ``Retry-After: 1``,
one refuses HEAD (405), one redirects every URL once, two refuse connections. Every host counts
its requests in flight (the peak), and the throttling one the requests that arrived during its
back-off. Resources come from a synthetic mirror database (``resources``, ``datasets``).

- Speed: ``run_checks`` against the ideal schedule its limits allow (per host: ceil(URLs / in
  flight) × latency; in all: Σ URLs × latency / global limit; the larger), against hydra's
  schedule (batches of 40 URLs checked with ``gather``, run without its 60 s pause, and the
  pause added as modelled by its published defaults), and against a naive ``gather`` behind one
  global semaphore (which puts no limit on a host). hydra's schedule is slow: it is measured
  on every 4th URL and multiplied by 4.
- Politeness, from the servers' own counts: requests in flight per host never above the limit;
  zero requests to the throttling host during its Retry-After.
- Scale: peak RSS of a check of 10× the URLs (1,000,000 vs 100,000; --quick: 10,000 vs 1,000),
  each in its own process, the database made beforehand by the parent.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Settings, check_row, peak_rss_mb, row

GROUP = "resource checks (issue 15)"
HOSTS = 40
BIG_SHARE = 0.4
LATENCIES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
PER_HOST, BIG_HOST, GLOBAL = 4, 16, 64
HYDRA_BATCH, HYDRA_PAUSE, HYDRA_SAMPLE = 40, 60.0, 4
THROTTLE, HEAD_405, REDIRECT = 3, 5, 7  # host indexes with a behaviour
REFUSING = 2  # hosts with nothing listening
BREAKER_COOLDOWN, BREAKER_TRIPS = 0.2, 3


# --- the stand-in web -------------------------------------------------------------------


def plan(urls: int, seed: int = 15) -> dict[str, Any]:
    """Hosts (latency, behaviour) and how many URLs each has."""
    weights = [1 / (rank**0.9) for rank in range(1, HOSTS)]
    rest = urls - int(urls * BIG_SHARE)
    counts = [int(urls * BIG_SHARE)] + [max(1, int(rest * w / sum(weights))) for w in weights]
    counts[1] += urls - sum(counts)
    hosts = []
    for index, count in enumerate(counts):
        # Hosts with many URLs are the quick ones (CDNs); the long tail is slower.
        latency = 0.01 if index == 0 else LATENCIES[min(len(LATENCIES) - 1, index // 6)]
        behaviour = {THROTTLE: "throttle", HEAD_405: "head405", REDIRECT: "redirect"}.get(
            index, "ok"
        )
        hosts.append({"latency": latency, "count": count, "behaviour": behaviour})
    return {"hosts": hosts, "seed": seed}


class Stand:
    """The per-host counters of the stand-in (in the server process)."""

    def __init__(self, hosts: list[dict[str, Any]]) -> None:
        self.hosts = hosts
        self.reset()

    def reset(self) -> None:
        n = len(self.hosts)
        self.in_flight = [0] * n
        self.peak = [0] * n
        self.requests = [0] * n
        self.throttled_until = 0.0
        self.during_backoff = 0
        self.throttled = 0


async def serve_forever(spec: dict[str, Any]) -> None:
    from aiohttp import web

    hosts = spec["hosts"]
    stand = Stand(hosts)
    port_index: dict[int, int] = {}
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        index = port_index[request.transport.get_extra_info("sockname")[1]]
        host = hosts[index]
        now = loop.time()
        stand.requests[index] += 1
        stand.in_flight[index] += 1
        stand.peak[index] = max(stand.peak[index], stand.in_flight[index])
        try:
            if host["behaviour"] == "throttle":
                # Requests sent before the 429 reached the client arrive right after it:
                # those later than 50 ms are ones it started during its back-off.
                if stand.throttled_until - 0.95 < now < stand.throttled_until:
                    stand.during_backoff += 1
                if not stand.throttled:
                    stand.throttled = 1
                    stand.throttled_until = now + 1.0
                    return web.Response(status=429, headers={"Retry-After": "1"})
            await asyncio.sleep(host["latency"])
            if host["behaviour"] == "redirect" and not request.path.startswith("/final/"):
                return web.Response(status=302, headers={"Location": "/final" + request.path})
            if host["behaviour"] == "head405" and request.method == "HEAD":
                return web.Response(status=405)
            return web.Response(
                body=b"x" * 64, headers={"ETag": f'"{request.path}"', "Content-Type": "text/csv"}
            )
        finally:
            stand.in_flight[index] -= 1

    async def control(request: web.Request) -> web.Response:
        if request.path == "/reset":
            stand.reset()
        return web.json_response(
            {
                "peak": stand.peak,
                "requests": stand.requests,
                "during_backoff": stand.during_backoff,
                "throttled": stand.throttled,
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for index in range(len(hosts)):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        port_index[port] = index
        ports.append(port)
    control_app = web.Application()
    control_app.router.add_route("*", "/{tail:.*}", control)
    control_runner = web.AppRunner(control_app, access_log=None)
    await control_runner.setup()
    control_site = web.TCPSite(control_runner, "127.0.0.1", 0)
    await control_site.start()
    control_port = control_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({"ports": ports, "control": control_port}), flush=True)
    await asyncio.Event().wait()


class Server:
    """The stand-in in a child process (``with Server(spec) as server:``): ``script serve
    SPEC`` prints its ports as JSON and serves until killed."""

    script = __file__

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.process: subprocess.Popen[str] | None = None
        self.ports: list[int] = []
        self.control = 0

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            [sys.executable, self.script, "serve", json.dumps(self.spec)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        found = json.loads(self.process.stdout.readline())
        self.ports, self.control = found["ports"], found["control"]
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stats(self, reset: bool = False) -> dict[str, Any]:
        import urllib.request

        path = "reset" if reset else "stats"
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control}/{path}") as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]


def closed_ports(count: int) -> list[int]:
    ports = []
    for _ in range(count):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def urls_of(spec: dict[str, Any], ports: list[int], dead: list[int]) -> list[str]:
    """Every URL, shuffled (a catalog's order mixes hosts), and a few on dead hosts."""
    urls = [
        f"http://127.0.0.1:{port}/d{index}/f{n}.csv"
        for index, (host, port) in enumerate(zip(spec["hosts"], ports, strict=True))
        for n in range(host["count"])
    ]
    urls += [f"http://127.0.0.1:{port}/f{n}.csv" for port in dead for n in range(10)]
    random.Random(spec["seed"]).shuffle(urls)
    return urls


def make_db(path: Path, urls: list[str]) -> None:
    """A minimal mirror: what the checker reads of one (``resources``, ``datasets``)."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('application', 'aioudata');"
        "CREATE TABLE datasets (id TEXT PRIMARY KEY, organization_id TEXT);"
        "CREATE TABLE resources (id TEXT PRIMARY KEY, dataset_id TEXT, url TEXT,"
        " format TEXT, gone_at TEXT);"
    )
    conn.executemany(
        "INSERT INTO resources VALUES (?, ?, ?, 'csv', NULL)",
        ((f"r{n:08d}", f"d{n // 10:07d}", url) for n, url in enumerate(urls)),
    )
    conn.executemany(
        "INSERT INTO datasets VALUES (?, NULL)",
        ((f"d{n:07d}",) for n in range(len(urls) // 10 + 1)),
    )
    conn.commit()
    conn.close()


def ideal(spec: dict[str, Any]) -> float:
    """The shortest time the limits allow, from the stand-in's own latencies and the waits
    politeness imposes (the throttling host's Retry-After, a dead host's breaker pauses)."""
    per_host = [BREAKER_COOLDOWN * (2**BREAKER_TRIPS - 1)]  # a dead host: 1 + 2 + 4 pauses
    work = 0.0
    for index, host in enumerate(spec["hosts"]):
        limit = BIG_HOST if index == 0 else PER_HOST
        requests = host["count"] * (2 if host["behaviour"] == "redirect" else 1)
        wait = 1.0 if host["behaviour"] == "throttle" else 0.0
        per_host.append(wait + math.ceil(requests / limit) * host["latency"])
        work += requests * host["latency"]
    return float(max(max(per_host), work / GLOBAL))


# --- the three ways to check ---------------------------------------------------------------


def check_config(db: Path, ports: list[int]) -> Any:
    from aioudata._crawl import CheckConfig, HostLimits

    return CheckConfig(
        db=db,
        all=True,
        concurrency=GLOBAL,
        per_host=HostLimits(PER_HOST, None),
        host_limits={f"127.0.0.1:{ports[0]}": HostLimits(BIG_HOST, None)},
        timeout=10.0,
        breaker_cooldown=BREAKER_COOLDOWN,
        breaker_trips=BREAKER_TRIPS,
    )


async def aioudata_check(db: Path, ports: list[int]) -> dict[str, Any]:
    from aioudata._crawl import run_checks

    started = time.perf_counter()
    summary = await run_checks(check_config(db, ports))
    return {
        "seconds": time.perf_counter() - started,
        "checked": summary.checked,
        "requests": summary.requests,
        "outcomes": summary.outcomes,
    }


async def _head(session: Any, url: str) -> int:
    import aiohttp

    try:
        async with session.head(url, allow_redirects=True) as answer:
            return int(answer.status)
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def naive_check(urls: list[str]) -> float:
    """``gather`` of every URL behind one global semaphore."""
    import aiohttp

    started = time.perf_counter()
    semaphore = asyncio.Semaphore(GLOBAL)
    connector = aiohttp.TCPConnector(limit=GLOBAL)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:

        async def one(url: str) -> int:
            async with semaphore:
                return await _head(session, url)

        await asyncio.gather(*(one(url) for url in urls))
    return time.perf_counter() - started


async def hydra_check(urls: list[str]) -> float:
    """hydra's schedule: batches of 40 URLs with ``gather``, one after another (no pause)."""
    import aiohttp

    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for start in range(0, len(urls), HYDRA_BATCH):
            await asyncio.gather(*(_head(session, u) for u in urls[start : start + HYDRA_BATCH]))
    return time.perf_counter() - started


def measure_rss(urls: int) -> dict[str, Any]:
    """Peak RSS of one check of ``urls`` URLs on 20 instant hosts, in a fresh process; the
    stand-in and the database are made here, so the child holds only the check (it streams
    the frontier from the database: no list of the URLs)."""
    spec = {
        "hosts": [{"latency": 0.0, "count": urls // 20, "behaviour": "ok"} for _ in range(20)],
        "seed": 1,
    }
    with tempfile.TemporaryDirectory() as tmp, Server(spec) as server:
        db = Path(tmp) / "m.sqlite"
        make_db(db, urls_of(spec, server.ports, []))
        done = subprocess.run(
            [sys.executable, __file__, "rss", json.dumps({"db": str(db), "ports": server.ports})],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def rss_child(args: dict[str, Any]) -> None:
    """``rss``: one check of the database ``db``; prints seconds and peak RSS."""
    import aioudata  # noqa: F401  (counted before the check)

    before = peak_rss_mb()
    result = asyncio.run(aioudata_check(Path(args["db"]), args["ports"]))
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_after_imports_mb"] = before
    print(json.dumps(result))


# --- the rows --------------------------------------------------------------------------


def run(settings: Settings) -> list[dict[str, Any]]:
    urls_count, repeat, scale = settings.pick((20_000, 3, 100_000), (1_000, 1, 1_000))
    spec = plan(urls_count)
    best = ideal(spec)
    ours: list[float] = []
    naive: list[float] = []
    hydra: list[float] = []
    peaks: list[int] = []
    backoff_violations = throttled = 0
    outcomes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp, Server(spec) as server:
        dead = closed_ports(REFUSING)
        urls = urls_of(spec, server.ports, dead)
        db = Path(tmp) / "m.sqlite"
        make_db(db, urls)
        for r in range(repeat):
            for side in ("ours", "naive") if r % 2 == 0 else ("naive", "ours"):
                server.stats(reset=True)
                if side == "ours":
                    result = asyncio.run(aioudata_check(db, server.ports))
                    ours.append(result["seconds"])
                    outcomes = result["outcomes"]
                    stats = server.stats()
                    peaks = stats["peak"]
                    backoff_violations += stats["during_backoff"]
                    throttled += stats["throttled"]
                else:
                    naive.append(asyncio.run(naive_check(urls)))
                    naive_peaks = server.stats()["peak"]
        server.stats(reset=True)
        # On every HYDRA_SAMPLE-th URL (the same mix), times HYDRA_SAMPLE: it is slow.
        sample = urls[::HYDRA_SAMPLE]
        hydra.append(asyncio.run(hydra_check(sample)) * len(urls) / len(sample))
    batches = math.ceil(len(urls) / HYDRA_BATCH)
    modelled = [hydra[0] + batches * HYDRA_PAUSE]
    limits = [BIG_HOST] + [PER_HOST] * (len(peaks) - 1)
    over = [i for i, (peak, limit) in enumerate(zip(peaks, limits, strict=True)) if peak > limit]
    label = f"check {len(urls):,} URLs on {HOSTS + REFUSING} hosts"
    note = (
        f"per host {PER_HOST} in flight ({BIG_HOST} for the host with 40% of the URLs), no"
        f" rate limit, {GLOBAL} in all; outcomes {outcomes}"
    )
    rows = [
        row(
            f"{label} vs the ideal schedule of its limits",
            ours=ours,
            theirs=[best],
            baseline="ideal: max(per host: its waits + ⌈URLs/limit⌉ × latency;"
            " Σ URLs × latency / global)",
            unit="s",
            direction="fraction",
            target=0.8,
            group=GROUP,
            note=note,
        ),
        row(
            f"{label} vs hydra's schedule (batches of 40, run without its pause)",
            ours=ours,
            theirs=hydra,
            baseline="batches of 40 URLs with gather, one after another",
            note=f"measured on every {HYDRA_SAMPLE}th URL, times {HYDRA_SAMPLE}",
            unit="s",
            direction="speedup",
            target=None,
            group=GROUP,
        ),
        row(
            f"{label} vs hydra's schedule with its 60 s pause (modelled)",
            ours=ours,
            theirs=modelled,
            baseline=f"the batches above + {batches} pauses of 60 s",
            unit="s",
            direction="speedup",
            target=None,
            group=GROUP,
        ),
        row(
            f"{label} vs a naive gather behind one semaphore of {GLOBAL}",
            ours=ours,
            theirs=naive,
            baseline=f"gather + Semaphore({GLOBAL}), no per-host limit",
            unit="s",
            direction="cost",
            target=None,
            group=GROUP,
            note=f"the naive gather had up to {max(naive_peaks)} requests in flight on one host",
        ),
        check_row(
            f"{label}: politeness, from the servers' counts",
            ok=not over and backoff_violations == 0 and throttled > 0,
            detail=(
                f"in flight per host at most {max(peaks[1:])} (limit {PER_HOST}) and"
                f" {peaks[0]} (limit {BIG_HOST}); {backoff_violations} requests during a"
                f" Retry-After ({throttled} 429 sent)"
            ),
            group=GROUP,
            target="in flight within the limits, 0 requests during a back-off",
        ),
    ]
    small, large = measure_rss(scale), measure_rss(scale * 10)
    rows.append(
        row(
            f"peak RSS, check of {scale * 10:,} URLs vs {scale:,}",
            ours=[large["peak_rss_mb"]],
            theirs=[small["peak_rss_mb"]],
            baseline=f"the same check of {scale:,} URLs",
            unit="MB",
            direction="cost",
            target=1.2,
            group=GROUP,
            note=(
                f"20 hosts, no latency; each run in its own process; RSS after the imports"
                f" {small['rss_after_imports_mb']:.1f} MB; {large['checked']:,} checked in"
                f" {large['seconds']:.1f} s ({large['checked'] / large['seconds']:,.0f} URLs/s)"
            ),
        )
    )
    return rows


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve_forever(json.loads(sys.argv[2])))
    elif sys.argv[1] == "rss":
        rss_child(json.loads(sys.argv[2]))
    else:
        print(json.dumps(run(Settings(quick=sys.argv[1] == "quick")), indent=1))
