"""Errors classed by cause (issue 12, item 9's follow-ups).

An answer aiohttp cannot read as HTTP (a header over 8190 bytes, a body whose gzip does not
decode) was a TransportError: retried, and "cannot reach" (exit 3) on the command line. It is a
MalformedResponseError: not retried, exit 1. An API key holding a line break (UDATA_API_KEY
set from a file with its newline) ended in aiohttp's "header injection" error: it is now a
usage error naming where the key came from, never the key.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from aioudata import (
    ArgumentError,
    Client,
    MirrorConfig,
    MirrorError,
    RetryPolicy,
    TransportError,
    TruncatedBodyError,
)
from aioudata._cli import _failure
from aioudata._errors import MalformedResponseError
from tests.faults import serve_local

ROOT = Path(__file__).resolve().parent.parent
#: Would retry any transport error at once.
RETRYING = RetryPolicy(max_attempts=3, backoff=0.001, max_backoff=0.002)
HANG = 60.0  # only to stop a hang
KEY = "udata-key-part-one\nsecond-line-of-the-key"


@dataclass
class _Odd:
    base_url: str = ""
    hits: int = 0


@pytest.fixture
async def odd() -> AsyncIterator[_Odd]:
    """/api/1/<answer>/...: ``header`` (a 9000-byte header), ``gzip`` (a corrupt gzip body),
    ``deflate`` (the same in deflate), ``short`` (a body cut before its Content-Length)."""
    server = _Odd()

    async def handle(request: web.Request) -> web.StreamResponse:
        server.hits += 1
        answer = request.match_info["answer"]
        if answer == "header":
            return web.json_response({"id": "x"}, headers={"X-Padding": "a" * 9000})
        if answer in ("gzip", "deflate"):
            body = gzip.compress(b'{"id": "x"}')[:10] + b"not the deflate stream" * 4
            if answer == "deflate":
                body = b"not a deflate stream at all" * 4
            return web.Response(
                body=body,
                headers={"Content-Type": "application/json", "Content-Encoding": answer},
            )
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"id": ')
        assert request.transport is not None
        request.transport.abort()
        return response

    app = web.Application()
    app.router.add_get("/api/1/{answer}/{tail:.*}", handle)
    runner, port = await serve_local(app)
    server.base_url = f"http://127.0.0.1:{port}/api/1"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("header", "status or header line over aiohttp's 8190 bytes"),
        ("gzip", "body does not decode (Can not decode content-encoding: gzip)"),
        ("deflate", "body does not decode (Can not decode content-encoding: deflate)"),
    ],
)
async def test_an_answer_that_is_not_http_is_malformed_not_retried_and_exit_1(
    odd: _Odd, answer: str, reason: str
) -> None:
    async with Client(odd.base_url.replace("/api/1", f"/api/1/{answer}"), retry=RETRYING) as c:
        with pytest.raises(MalformedResponseError) as info:
            await asyncio.wait_for(c.site.get_site(), HANG)
    error = info.value
    assert not isinstance(error, TransportError)
    assert odd.hits == 1 and c.stats.retries == 0  # asking again gets the same answer
    assert reason in str(error) and error.url.endswith(f"/api/1/{answer}/site/")
    assert "aaaa" not in str(error)  # the offending bytes are not quoted
    code, line = _failure(error)
    assert code == 1 and "cannot reach" not in line and "malformed answer" in line


async def test_a_body_cut_short_is_still_a_lost_connection_and_retried(odd: _Odd) -> None:
    async with Client(odd.base_url.replace("/api/1", "/api/1/short"), retry=RETRYING) as c:
        with pytest.raises(TruncatedBodyError):
            await asyncio.wait_for(c.site.get_site(), HANG)
    assert odd.hits == 3


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if k != "UDATA_API_KEY"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioudata",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**base, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), HANG)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_mirror_says_malformed_answer_with_exit_1(odd: _Odd, tmp_path: Path) -> None:
    base_url = odd.base_url.replace("/api/1", "/api/1/header")
    code, _, err = await _cli("mirror", "--base-url", base_url, "--db", str(tmp_path / "m.db"))
    assert code == 1 and odd.hits == 1
    (line,) = err.splitlines()
    assert "malformed answer" in line and "cannot reach" not in line


@pytest.mark.parametrize("command", ["mirror", "get", "ls"])
async def test_an_api_key_with_a_line_break_in_the_environment_is_named_not_shown(
    odd: _Odd, tmp_path: Path, command: str
) -> None:
    args = {
        "mirror": ["mirror", "--db", str(tmp_path / "m.db")],
        "get": ["get", "dataset", "x"],
        "ls": ["ls", "datasets"],
    }[command]
    code, out, err = await _cli(
        *args, "--base-url", odd.base_url, env={"UDATA_API_KEY": KEY + "\n"}
    )
    assert code == 2 and odd.hits == 0  # refused before any request
    (line,) = err.splitlines()
    assert "UDATA_API_KEY" in line and "line break" in line, line
    assert "injection" not in line
    for part in KEY.split("\n"):
        assert part not in out + err


def test_a_key_or_user_agent_with_a_control_character_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UDATA_API_KEY", KEY)
    with pytest.raises(ArgumentError, match="the UDATA_API_KEY variable holds a line break"):
        Client()
    with pytest.raises(MirrorError, match="the UDATA_API_KEY variable holds a line break") as info:
        MirrorConfig(api_key=KEY)  # the command line passes the variable's value on
    assert info.value.code == 2
    with pytest.raises(MirrorError, match=r"the API key \(--api-key\) holds a line break"):
        MirrorConfig(api_key="other\r\nkey")
    monkeypatch.delenv("UDATA_API_KEY")
    with pytest.raises(ArgumentError, match="api_key holds the character U\\+0000") as raised:
        Client(api_key="zz-distinct\x00")
    assert "zz-distinct" not in str(raised.value)
    with pytest.raises(ArgumentError, match="user_agent holds a line break"):
        Client(user_agent="agent\r\nX-Injected: 1")
    assert Client(api_key="a-good-key")._api_key is not None
