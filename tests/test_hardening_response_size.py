"""A too large answer is a typed error, not a connection problem, and not retried (issue 12)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp.http_exceptions
import pytest
from aiohttp import web

import aioudata
from aioudata import Client, ResponseTooLargeError, RetryPolicy, TransportError
from aioudata._cli import _failure
from tests.faults import serve_local

#: Would retry any transport error (the old classification) at once.
RETRYING = RetryPolicy(max_attempts=3, backoff=0.001, max_backoff=0.002)
HANG = 10.0  # only to stop a hang


@dataclass
class _Big:
    """A server on 127.0.0.1 whose /api/1/site/ answer each test sets."""

    base_url: str = ""
    hits: int = 0
    answer: str = "plain"
    size: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        body = b"[" + b" " * (self.size - 2) + b"]"
        if self.answer == "plain":  # Content-Length announced
            return web.Response(body=body, content_type="application/json")
        if self.answer == "gzip":  # small on the wire, large once inflated
            return web.Response(
                body=gzip.compress(body),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        # "stream": chunked, no Content-Length; the end never comes unless released.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(4):
                await response.write(b" " * 16384)
            await asyncio.wait_for(self.release.wait(), HANG)
            await response.write_eof()
        except (ConnectionError, TimeoutError):
            pass  # the client hung up, as it should
        return response


@pytest.fixture
async def big() -> AsyncIterator[_Big]:
    server = _Big()
    app = web.Application()
    app.router.add_get("/api/1/site/", server.handle)
    runner, port = await serve_local(app)
    server.base_url = f"http://127.0.0.1:{port}/api/1"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


def _check(error: ResponseTooLargeError, big: _Big, limit: int) -> None:
    assert error.limit == limit and error.url == f"{big.base_url}/site/"
    assert error.url in str(error) and str(limit) in str(error)
    assert not isinstance(error, TransportError)
    code, line = _failure(error)
    assert code == 1 and "cannot reach" not in line  # the mirror no longer says exit 3
    assert big.hits == 1  # not retried


async def test_a_content_length_over_the_limit_is_refused_before_reading(big: _Big) -> None:
    big.size = 5000
    async with Client(big.base_url, retry=RETRYING, max_response_size=1000) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await asyncio.wait_for(client.site.get_site(), HANG)
        assert client.stats.errors["ResponseTooLargeError"] == 1
    _check(info.value, big, 1000)
    assert info.value.size == 5000 and "Content-Length 5000" in str(info.value)


async def test_a_body_growing_past_the_limit_stops_being_read(big: _Big) -> None:
    big.answer = "stream"
    async with Client(big.base_url, retry=RETRYING, max_response_size=40000) as client:
        # The server holds the end of its body back: only a client that stops reading at the
        # limit gets an answer before HANG.
        with pytest.raises(ResponseTooLargeError) as info:
            await asyncio.wait_for(client.site.get_site(), HANG)
    _check(info.value, big, 40000)


async def test_the_limit_counts_inflated_bytes(big: _Big) -> None:
    big.answer, big.size = "gzip", 200_000  # a few hundred bytes on the wire
    async with Client(big.base_url, retry=RETRYING, max_response_size=100_000) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await asyncio.wait_for(client.site.get_site(), HANG)
    _check(info.value, big, 100_000)


async def test_a_body_at_the_limit_is_accepted(big: _Big) -> None:
    big.size = 1000
    async with Client(big.base_url, retry=RETRYING, max_response_size=1000) as client:
        raw = await client.raw(client.site.get_site())
    assert len(raw.content) == 1000


@pytest.mark.skipif(
    not hasattr(aiohttp.http_exceptions, "DecompressSizeError"),
    reason="this aiohttp has no decompression limit",
)
async def test_a_compression_bomb_is_too_large_not_a_lost_connection(big: _Big) -> None:
    # Past aiohttp's own limit (32 MiB inflated from one chunk): it used to come out as a
    # TruncatedBodyError, retried, and the mirror's "cannot reach" (exit 3).
    big.answer, big.size = "gzip", 40 * 2**20
    async with Client(big.base_url, retry=RETRYING) as client:  # default max_response_size
        with pytest.raises(ResponseTooLargeError) as info:
            await asyncio.wait_for(client.site.get_site(), HANG)
    _check(info.value, big, 2**25)
    assert "decompression limit" in str(info.value)


def test_max_response_size_is_checked() -> None:
    with pytest.raises(ValueError, match="max_response_size"):
        Client(max_response_size=0)
    with pytest.raises(TypeError, match="max_response_size"):
        Client(max_response_size=1.5)  # type: ignore[arg-type]
    assert "ResponseTooLargeError" in aioudata.__all__
    assert aioudata.ResponseTooLargeError is ResponseTooLargeError
    assert issubclass(ResponseTooLargeError, aioudata.UdataError)
