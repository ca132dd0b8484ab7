"""File hosts for the downloader's tests (and its benchmark): each an aiohttp server on
127.0.0.1 serving files in chunks, with ``Range`` / ``If-Range`` (or not), transfers cut
mid-way, corrupted bodies, ``Content-Disposition`` names, and a record of every request and of
the requests in flight. Nothing here touches the internet.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aioudata._crawl import DownloadConfig, HostLimits
from tests.faults import serve_local
from tests.test_crawl_web import LAST_MODIFIED, Resolver, Web, make_mirror, rows_by_url

_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FileHost:
    """One host: its files, how it serves them, and what it received."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: Honour Range requests (else answer 200 with the whole file).
    ranges: bool = True
    #: path → bytes after which the next answers are cut (one entry per answer to cut).
    cuts: dict[str, list[int]] = field(default_factory=dict)
    #: path → what is sent instead of the file (a corrupted copy).
    corrupt: dict[str, bytes] = field(default_factory=dict)
    #: path → Content-Disposition file name.
    names: dict[str, str] = field(default_factory=dict)
    #: Paths sent chunked (no Content-Length).
    chunked: set[str] = field(default_factory=set)
    chunk: int = 64 * 1024
    #: Seconds between two chunks (a slow transfer).
    pause: float = 0.0
    #: Answers wait for this event before their first byte, when set.
    gate: asyncio.Event | None = None
    #: path → the ETag sent (else one from the body): a server that keeps it across changes.
    etags: dict[str, str] = field(default_factory=dict)
    seen: list[Request] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    port: int = 0
    runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url(path)

    def etag(self, path: str) -> str:
        if path in self.etags:
            return self.etags[path]
        return '"' + hashlib.sha1(self.files[path]).hexdigest()[:16] + '"'

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]  # as sent: %2F stays encoded
        self.seen.append(Request(request.method, path, dict(request.headers)))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            return await self.answer(request)
        except ConnectionResetError:  # the client went away (killed, or it stopped reading)
            return web.Response(status=499)
        finally:
            self.in_flight -= 1

    async def answer(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        if path not in self.files:
            return web.Response(status=404)
        full = self.files[path]
        etag = self.etag(path)
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Content-Type": "text/csv"}
        if path in self.names:
            headers["Content-Disposition"] = f'attachment; filename="{self.names[path]}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        body, status, start = self.corrupt.get(path, full), 200, 0
        wanted = _RANGE.match(request.headers.get("Range", ""))
        if_range = request.headers.get("If-Range")
        if wanted and self.ranges and (if_range is None or if_range in (etag, LAST_MODIFIED)):
            start = int(wanted[1])
            if start >= len(body):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        response = web.StreamResponse(status=status, headers=headers)
        if path not in self.chunked:
            response.content_length = len(body) - start
        await response.prepare(request)
        cut = self.cuts[path].pop(0) if self.cuts.get(path) else None
        sent = start
        while sent < len(body):
            end = min(len(body), sent + self.chunk)
            if cut is not None and end >= cut:
                await response.write(body[sent:cut])
                await asyncio.sleep(0.2)  # the bytes sent arrive and are read, then the line drops
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-transfer
                return response
            await response.write(body[sent:end])
            sent = end
            if self.pause:
                await asyncio.sleep(self.pause)
        await response.write_eof()
        return response


class Files(Web):
    """The file hosts of one test (closed as the checker's web hosts are)."""

    async def host(self, **behaviour: Any) -> FileHost:  # type: ignore[override]
        host = FileHost(**behaviour)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", host.handle)
        host.runner, host.port = await serve_local(app)
        self.hosts.append(host)  # type: ignore[arg-type]
        return host


@pytest.fixture
async def filehosts() -> AsyncIterator[Files]:
    hosts = Files()
    try:
        yield hosts
    finally:
        await hosts.close()


def digest(body: bytes, kind: str = "sha256") -> str:
    return hashlib.new(kind, body).hexdigest()


def mirror_with_checksums(
    db: Path, entries: list[tuple[str, str | None, str | None]], per_dataset: int = 5
) -> list[str]:
    """A mirror whose resources have these (URL, checksum type, checksum value); their ids."""
    ids = make_mirror(db, [entry[0] for entry in entries], per_dataset=per_dataset)
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.executemany(
                "UPDATE resource_rows SET checksum_type = ?, checksum_value = ? WHERE id = ?",
                [(kind, value, rid) for rid, (_, kind, value) in zip(ids, entries, strict=True)],
            )
    finally:
        conn.close()
    return ids


def download_config(db: Path | None, directory: Path, **options: Any) -> DownloadConfig:
    """A download of ``db`` (None: of ``db_url`` in ``options``) into ``directory`` without
    waits, no DNS, and room on the disk."""
    values: dict[str, Any] = {
        "per_host": HostLimits(2, None),
        "backoff": 0.01,
        "breaker_cooldown": 0.01,
        "timeout": 10.0,
        "resolver": Resolver(),
        "min_free": 0,
    }
    values.update(options)
    if db is not None:
        values["db"] = db
    return DownloadConfig(dir=directory, **values)


def downloads(db: Path) -> dict[str, dict[str, Any]]:
    """``download_results`` rows by URL."""
    return rows_by_url(db, "download_results")


def files_under(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative POSIX path → bytes); one renamed or removed
    meanwhile (by a run in another process) is left out."""
    found = {}
    for path in sorted(directory.rglob("*")):
        try:
            found[path.relative_to(directory).as_posix()] = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
    return found


async def kill_when_under_way(child: asyncio.subprocess.Process, out: Path, whole: int) -> None:
    """``kill -9`` the download run ``child`` once ``whole`` files under ``out`` are complete
    and a part has bytes (10 s at most)."""
    try:
        for _ in range(1000):
            if _under_way(out, whole) or child.returncode is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        await child.wait()


def _under_way(out: Path, whole: int) -> bool:
    """``whole`` files under ``out`` are complete, and a part has bytes."""
    found = files_under(out) if out.exists() else {}
    done = [n for n in found if not Path(n).name.startswith(".")]
    return len(done) >= whole and any(n.endswith(".part") and b for n, b in found.items())
