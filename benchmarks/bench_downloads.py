"""The resource downloader (issue 15) on a local stand-in for file hosts.

The stand-in (``serve`` below, in a child process): ``HOSTS`` hosts, each its own port of
127.0.0.1, serving ``FILES`` files of 16 KiB to 512 KiB (about 128 MiB in all with 1,000) with
``ETag``, ``Range`` and ``If-Range`` (but one host that ignores ranges), generated from their
number (nothing stored). With faults on, ``CORRUPT`` files are served with one byte changed
(their published checksum is of the right bytes) and ``CUT`` files are cut half-way on their
first request (some on the host without ranges).

- Faults: one download of every file: every mismatch found, every cut file resumed (Range) or
  fetched again from zero, every other file whole and verified.
- Throughput: ``run_downloads`` of every file (faults off, a fresh directory and database each
  time) against a plain aiohttp download of the same files on the same loopback (``gather``
  behind one semaphore of the same global limit, each body streamed to a file, no checksum, no
  database), side by side, in alternating order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Settings, abba, check_row, row
from benchmarks.bench_resources import Server

GROUP = "resource downloads (issue 15)"
HOSTS = 8
NO_RANGES = 3  # the index of the host that ignores Range
PER_HOST, GLOBAL = 4, 32
CHUNK = 256 * 1024
KIB = 1024


def size_of(number: int) -> int:
    """16 KiB to 512 KiB, small ones more common (mean about 140 KiB)."""
    spread = (number * 2654435761 % 1000) / 1000
    return (16 + int(496 * spread**3)) * KIB


def body_of(number: int, size: int | None = None) -> bytes:
    """File ``number``'s bytes: ``size`` of them, or :func:`size_of` it."""
    block = hashlib.sha256(str(number).encode()).digest()
    size = size or size_of(number)
    return (block * (size // len(block) + 1))[:size]


def plan(files: int, corrupt: int, cut: int) -> dict[str, Any]:
    """Which files are corrupted or cut (spread over the hosts, the no-range one included)."""
    step = max(1, files // (corrupt + cut + 1))
    picked = list(range(step // 2, files, step))[: corrupt + cut]
    return {"files": files, "corrupt": picked[:corrupt], "cut": picked[corrupt:]}


async def serve_forever(spec: dict[str, Any]) -> None:
    from aiohttp import web

    files, corrupt, cut = spec["files"], set(spec["corrupt"]), set(spec["cut"])
    faults = {"on": True}
    served: set[int] = set()
    port_index: dict[int, int] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        host = port_index[request.transport.get_extra_info("sockname")[1]]
        number = int(request.path.rsplit("/f", 1)[1].split(".")[0])
        if number >= files or number % HOSTS != host:
            return web.Response(status=404)
        body = body_of(number, spec.get("size"))
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        first = number not in served
        served.add(number)
        if faults["on"] and number in corrupt:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        start, status = 0, 200
        headers = {"ETag": etag, "Content-Type": "application/octet-stream"}
        wanted = request.headers.get("Range", "")
        honoured = host != NO_RANGES and request.headers.get("If-Range") in (None, etag)
        if wanted.startswith("bytes=") and honoured:
            start, status = int(wanted[6:].rstrip("-")), 206
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body) - start
        await response.prepare(request)
        end = len(body) // 2 if faults["on"] and number in cut and first else len(body)
        view = memoryview(body)
        for offset in range(start, end, 64 * KIB):
            await response.write(view[offset : min(end, offset + 64 * KIB)])
        if end < len(body):
            await asyncio.sleep(0.2)  # the bytes arrive, then the connection drops
            request.transport.close()
            return response
        await response.write_eof()
        return response

    async def control(request: web.Request) -> web.Response:
        if request.path == "/reset":
            faults["on"] = request.query.get("faults") == "1"
            served.clear()
        return web.json_response({"faults": faults["on"]})

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    ports = []
    for index in range(HOSTS):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        port_index[port] = index
        ports.append(port)
    control_runner = web.AppRunner(web.Application(), access_log=None)
    control_runner.app.router.add_route("*", "/{tail:.*}", control)
    await control_runner.setup()
    control_site = web.TCPSite(control_runner, "127.0.0.1", 0)
    await control_site.start()
    control_port = control_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({"ports": ports, "control": control_port}), flush=True)
    await asyncio.Event().wait()


class FileServer(Server):
    """The stand-in in a child process; ``reset(faults)`` turns the faults on or off."""

    script = __file__

    def reset(self, faults: bool) -> None:
        import urllib.request

        url = f"http://127.0.0.1:{self.control}/reset?faults={int(faults)}"
        with urllib.request.urlopen(url) as answer:
            answer.read()


def urls_of(files: int, ports: list[int]) -> list[str]:
    return [f"http://127.0.0.1:{ports[n % HOSTS]}/d/f{n}.bin" for n in range(files)]


def make_db(path: Path, urls: list[str], size: int | None = None) -> None:
    """A minimal mirror with published SHA-256 checksums."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('application', 'aioudata');"
        "CREATE TABLE datasets (id TEXT PRIMARY KEY, organization_id TEXT);"
        "CREATE TABLE resources (id TEXT PRIMARY KEY, dataset_id TEXT, url TEXT, format TEXT,"
        " checksum_type TEXT, checksum_value TEXT, gone_at TEXT);"
    )
    conn.executemany(
        "INSERT INTO resources VALUES (?, 'd', ?, 'bin', 'sha256', ?, NULL)",
        (
            (f"r{n:08d}", url, hashlib.sha256(body_of(n, size)).hexdigest())
            for n, url in enumerate(urls)
        ),
    )
    conn.execute("INSERT INTO datasets VALUES ('d', NULL)")
    conn.commit()
    conn.close()


async def aioudata_download(db: Path, out: Path) -> Any:
    from aioudata._crawl import DownloadConfig, HostLimits, run_downloads

    config = DownloadConfig(
        db=db,
        dir=out,
        concurrency=GLOBAL,
        per_host=HostLimits(PER_HOST, None),
        timeout=30.0,
        min_free=0,
        chunk_size=CHUNK,
    )
    return await run_downloads(config)


async def plain_download(urls: list[str], out: Path, *, hashing: bool = False) -> int:
    """Every URL with aiohttp, ``gather`` behind one semaphore, each body streamed to a file
    (``hashing``: and its SHA-256 computed while it arrives, as aioudata verifies a file)."""
    import aiohttp

    semaphore = asyncio.Semaphore(GLOBAL)
    received = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=GLOBAL)) as session:

        async def one(number: int, url: str) -> None:
            nonlocal received
            async with semaphore, session.get(url) as answer:
                digest = hashlib.sha256() if hashing else None
                with open(out / f"f{number}.bin", "wb") as sink:  # noqa: ASYNC230
                    async for chunk in answer.content.iter_chunked(CHUNK):
                        sink.write(chunk)
                        if digest is not None:
                            digest.update(chunk)
                        received += len(chunk)

        await asyncio.gather(*(one(n, url) for n, url in enumerate(urls)))
    return received


def verify(out: Path, db: Path, files: int) -> tuple[int, int]:
    """Files whole and right under their names, and files wrong (there should be none)."""
    conn = sqlite3.connect(db)
    paths = dict(conn.execute("SELECT resource_id, path FROM download_results WHERE path NOT NULL"))
    conn.close()
    good = bad = 0
    for n in range(files):
        path = paths.get(f"r{n:08d}")
        if path is None:
            continue
        if (out / path).read_bytes() == body_of(n):
            good += 1
        else:
            bad += 1
    return good, bad


def faults_row(server: FileServer, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    urls = urls_of(spec["files"], server.ports)
    db, out = tmp / "faults.sqlite", tmp / "faults"
    make_db(db, urls)
    server.reset(faults=True)
    summary = asyncio.run(aioudata_download(db, out))
    conn = sqlite3.connect(db)
    by_result = dict(conn.execute("SELECT result, COUNT(*) FROM download_results GROUP BY 1"))
    mismatched = {
        int(rid[1:])
        for (rid,) in conn.execute(
            "SELECT resource_id FROM download_results WHERE result = 'mismatch'"
        )
    }
    conn.close()
    good, bad = verify(out, db, spec["files"])
    corrupt, cut = set(spec["corrupt"]), set(spec["cut"])
    cut_on_no_range = sum(1 for n in cut if n % HOSTS == NO_RANGES)
    ok = (
        mismatched == corrupt
        and summary.resumed + summary.refetched == len(cut)
        and good == spec["files"] - len(corrupt)
        and bad == 0
    )
    return check_row(
        f"download {spec['files']:,} files with published checksums, {len(corrupt)} corrupted,"
        f" {len(cut)} cut mid-transfer",
        ok=ok,
        detail=(
            f"{len(mismatched & corrupt)}/{len(corrupt)} mismatches found"
            f" ({len(mismatched - corrupt)} false); cut files: {summary.resumed} resumed with"
            f" Range, {summary.refetched} fetched again from zero ({cut_on_no_range} were on"
            " the host ignoring Range);"
            f" {good:,} files whole and verified, {bad} wrong; results {by_result}"
        ),
        group=GROUP,
        target="every mismatch found, every cut file resumed or fetched again, 0 wrong",
    )


def race(
    server: FileServer, tmp: Path, repeat: int, sides: tuple[str, ...], size: int | None = None
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each side's times, in alternating order, and each baseline's time over aioudata's in
    the same repeat (``size``: every file that large)."""
    files = server.spec["files"]
    urls = urls_of(files, server.ports)
    total = sum(size or size_of(n) for n in range(files))
    times: dict[str, list[float]] = {side: [] for side in sides}
    ratios: dict[str, list[float]] = {side: [] for side in sides if side != "ours"}
    for r, ours_first in enumerate(abba(repeat)):
        took: dict[str, float] = {}
        for side in sides if ours_first else sides[::-1]:
            out = tmp / f"{side}{r}"
            out.mkdir()
            if side == "ours":
                db = tmp / f"run{r}.sqlite"
                make_db(db, urls, size)
                started = time.perf_counter()
                summary = asyncio.run(aioudata_download(db, out))
                assert summary.outcomes == {"downloaded": files}, summary.outcomes
            else:
                started = time.perf_counter()
                received = asyncio.run(plain_download(urls, out, hashing=side == "hashing"))
                assert received == total
            took[side] = time.perf_counter() - started
            shutil.rmtree(out)  # room on the disk for the next repeats
        for side, seconds in took.items():
            times[side].append(seconds)
            if side != "ours":
                ratios[side].append(seconds / took["ours"])
    return times, ratios


def run(settings: Settings) -> list[dict[str, Any]]:
    files, repeat = settings.pick((1_000, 4), (100, 2))
    spec = plan(files, corrupt=5, cut=5)
    mib = sum(size_of(n) for n in range(files)) / 2**20
    with tempfile.TemporaryDirectory() as name, FileServer(spec) as server:
        tmp = Path(name)
        rows = [faults_row(server, spec, tmp)]
        server.reset(faults=False)
        times, ratios = race(server, tmp, repeat, ("ours", "plain", "hashing"))
    ours, plain = times["ours"], times["plain"]
    rows.append(
        row(
            f"download {files:,} files ({mib:,.0f} MiB) on {HOSTS} loopback hosts vs a plain"
            " aiohttp download",
            ours=ours,
            theirs=plain,
            baseline=f"the loopback's pace: gather + Semaphore({GLOBAL}), bodies streamed to"
            " files, nothing verified",
            unit="s",
            direction="fraction",
            target=0.8,
            group=GROUP,
            ratios=ratios["plain"],
            note=(
                f"aioudata: {PER_HOST} in flight per host, {GLOBAL} in all, SHA-256 verified"
                f" while streaming, part file renamed, a result row per file;"
                f" {mib / min(ours):,.0f} MiB/s at best vs {mib / min(plain):,.0f} MiB/s"
            ),
        )
    )
    rows.append(
        row(
            f"the same {files:,} files vs a plain aiohttp download that also computes each"
            " file's SHA-256",
            ours=ours,
            theirs=times["hashing"],
            baseline="the same gather + Semaphore, SHA-256 of each body while it streams",
            unit="s",
            direction="fraction",
            target=None,
            group=GROUP,
            ratios=ratios["hashing"],
            note="what verifying costs by itself, apart from the rest of aioudata's work",
        )
    )
    rows.append(large_files_row(settings))
    return rows


def large_files_row(settings: Settings) -> dict[str, Any]:
    """Files of 4 MiB, where bytes rather than files cost: aioudata writes and hashes them in
    threads while the loop receives."""
    files, repeat = settings.pick((64, 4), (8, 2))
    size = 4 * 2**20
    spec = {"files": files, "corrupt": [], "cut": [], "size": size}
    with tempfile.TemporaryDirectory() as name, FileServer(spec) as server:
        server.reset(faults=False)
        times, ratios = race(server, Path(name), repeat, ("ours", "plain"), size)
    mib = files * size / 2**20
    return row(
        f"download {files} files of 4 MiB ({mib:,.0f} MiB) vs a plain aiohttp download",
        ours=times["ours"],
        theirs=times["plain"],
        baseline="gather + Semaphore, bodies streamed to files, nothing verified",
        unit="s",
        direction="fraction",
        target=None,
        group=GROUP,
        ratios=ratios["plain"],
        note=(
            "SHA-256 verified, written and hashed by two threads while the loop receives;"
            f" {mib / min(times['ours']):,.0f} MiB/s at best vs"
            f" {mib / min(times['plain']):,.0f} MiB/s"
        ),
    )


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve_forever(json.loads(sys.argv[2])))
    else:
        print(json.dumps(run(Settings(quick=sys.argv[1] == "quick")), indent=1))
