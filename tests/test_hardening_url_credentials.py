"""Credentials in the base URL are a secret: sent as Basic auth, never stored, shown or logged.

Issue 12, item 1: ``--base-url http://user:PASSWORD@host/api/1`` put the password in
``meta.base_url``, ``runs.options``, ``runs.summary``, the "mirror of ..." line and ``get``'s
errors. The client now keeps them apart from ``base_url``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from aioudata import (
    Client,
    ConnectError,
    MirrorConfig,
    MirrorError,
    NotFoundError,
    RetryPolicy,
    run_mirror,
)
from aioudata._errors import MalformedResponseError
from aioudata._hooks import RequestEvent, ResponseEvent
from tests.catalog import things_endpoint
from tests.faults import serve_local
from tests.test_mirror_job import FakeCatalog, _body
from tests.test_mirror_store import dataset

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "PASSWORD-s3cr3t-0f-the-portal"
USER = "mirror-user"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, BASIC.removeprefix("Basic "))
HANG = 60.0  # only to stop a hang


class _Guarded(FakeCatalog):
    """The fake catalog behind Basic auth (401 without it); the first /site/ and the first
    datasets page answer 503 once (retries get logged); ``/api/1/moved/`` redirects to
    ``elsewhere`` (another origin), ``/api/1/here/`` to ``/api/1/site/`` (the same one)."""

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: list[str | None] = []
        self.elsewhere = ""
        self._failed: set[str] = set()

    async def start(self) -> None:
        @web.middleware
        async def basic_auth(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            got = request.headers.get("Authorization")
            self.authorizations.append(got)
            if got != BASIC:
                return web.json_response({"message": "Unauthorized"}, status=401)
            flaky = request.path in ("/api/1/site/", "/api/1/datasets/")
            if flaky and request.path not in self._failed:
                self._failed.add(request.path)
                return web.json_response({"message": "Service Unavailable"}, status=503)
            return await handler(request)

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPFound(self.elsewhere)

        async def here(request: web.Request) -> web.Response:
            raise web.HTTPFound("/api/1/site/")

        app = web.Application(middlewares=[basic_auth])
        app.router.add_get("/api/1/moved/", moved)
        app.router.add_get("/api/1/here/", here)
        app.router.add_get("/api/1/site/", self._site)
        app.router.add_get("/api/1/{entity}/", self._list)
        app.router.add_get("/api/1/{entity}/{id}/", self._get)
        self._runner, self.port = await serve_local(app)

    def url_with_credentials(self) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}/api/1"


@pytest.fixture
async def guarded() -> AsyncIterator[_Guarded]:
    server = _Guarded()
    organization = _body("organization.json")
    for number in range(1, 3):
        item = copy.deepcopy(organization)
        item["id"] = f"{number:024x}"
        server.items["organizations"].append(item)
    server.items["datasets"] = [dataset(n) for n in range(1, 6)]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def other_origin() -> AsyncIterator[tuple[str, list[str | None]]]:
    """Another server (another port: another origin) recording the Authorization it gets."""
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"id": "site", "title": "elsewhere"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner, port = await serve_local(app)
    try:
        yield f"http://127.0.0.1:{port}/api/1/site/", seen
    finally:
        await runner.cleanup()


def _assert_clean(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret!r} found in {where}"


async def _cli(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "UDATA_API_KEY"}
    env["PYTHONPATH"] = str(ROOT / "src")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioudata",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), HANG)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_mirror_through_url_credentials_stores_and_prints_none_of_them(
    guarded: _Guarded, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    mirror = ("mirror", "--db", str(db), "--entities", "datasets,organizations", "--rate", "0")
    code, out, err = await _cli(
        *mirror, "--page-size", "2", "--base-url", guarded.url_with_credentials(), "--verbose"
    )
    assert code == 0, err
    assert f"mirror of http://127.0.0.1:{guarded.port}/api/1 into" in err
    assert "retrying GET" in err  # the logs were on (--verbose), with URLs in them
    # Every request carried the credentials as Basic auth (else 401, and exit 4).
    assert guarded.authorizations and set(guarded.authorizations) == {BASIC}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM datasets").fetchone() == (5,)
        (options, summary) = conn.execute("SELECT options, summary FROM runs").fetchone()
        assert json.loads(options)["base_url"] == f"http://127.0.0.1:{guarded.port}/api/1"
        assert json.loads(summary)["base_url"] == f"http://127.0.0.1:{guarded.port}/api/1"
    conn.close()
    # Again, incremental (the scope check passes), then `get` of an unknown id: an error line.
    again = await _cli(*mirror, "--base-url", guarded.url_with_credentials())
    missing = await _cli("get", "dataset", "nope", "--base-url", guarded.url_with_credentials())
    assert again[0] == 0, again[2]
    assert missing[0] == 1 and f"at http://127.0.0.1:{guarded.port}/api/1" in missing[2]
    for number, (_, shown, errors) in enumerate([(code, out, err), again, missing]):
        _assert_clean(shown, f"stdout of run {number}")
        _assert_clean(errors, f"stderr of run {number}")
    files = sorted(os.listdir(tmp_path))
    assert db.name in files
    for name in files:  # the database, its WAL and shared memory if any are left
        _assert_clean((tmp_path / name).read_bytes(), name)


async def test_the_client_sends_url_credentials_to_its_origin_only(
    guarded: _Guarded, other_origin: tuple[str, list[str | None]]
) -> None:
    guarded.elsewhere, seen_elsewhere = other_origin
    requests: list[RequestEvent] = []
    responses: list[ResponseEvent] = []
    async with Client(
        guarded.url_with_credentials(),
        event_hooks={"request": [requests.append], "response": [responses.append]},
    ) as client:
        assert client.base_url == f"http://127.0.0.1:{guarded.port}/api/1"
        _assert_clean(repr(client), "the client's repr")
        # A redirect within the origin keeps them (the server refuses requests without).
        assert await client.request(things_endpoint("/here/", bytes), {})
        # A redirect to another origin does not carry them there.
        assert await client.request(things_endpoint("/moved/", bytes), {})
        with pytest.raises(NotFoundError) as info:
            await client.datasets.get_dataset("nope")
    assert seen_elsewhere == [None]
    assert len(guarded.authorizations) >= 4 and set(guarded.authorizations) == {BASIC}
    _assert_clean(str(info.value), "an error")
    _assert_clean(repr(info.value), "an error's repr")
    for event in [*requests, *responses]:
        _assert_clean(event.url, "an event's URL")
        _assert_clean(repr(event), "an event")
    assert all("Authorization" not in event.headers for event in requests)


async def test_a_mirror_is_known_by_its_url_without_credentials(
    guarded: _Guarded, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    settings = {"db": db, "entities": ("organizations",), "rate": None, "api_key": ""}
    summary = await run_mirror(MirrorConfig(base_url=guarded.url_with_credentials(), **settings))
    assert summary.status == "ok" and summary.base_url == guarded.base_url
    # A database written before: the URL stored with its credentials. Still the same portal;
    # the stored URL loses them.
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'base_url'", (guarded.url_with_credentials(),)
        )
    conn.close()
    summary = await run_mirror(MirrorConfig(base_url=guarded.url_with_credentials(), **settings))
    assert summary.status == "ok"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'base_url'").fetchone() == (
            guarded.base_url,
        )
    conn.close()
    # Another portal is still refused, and the refusal shows no credentials either.
    elsewhere = f"http://{USER}:{PASSWORD}@localhost:{guarded.port}/api/1"
    with pytest.raises(MirrorError) as info:
        await run_mirror(MirrorConfig(base_url=elsewhere, **settings))
    assert "use another --db" in str(info.value)
    _assert_clean(str(info.value), "the scope error")


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://{USER}:{PASSWORD}@example.org/api/1",
        f"http://{USER}:{PASSWORD}@example.org:99999/api/1",
        f"http://{USER}:{PASSWORD}@/api/1",
    ],
)
def test_a_bad_url_is_refused_without_showing_its_credentials(url: str) -> None:
    with pytest.raises(MirrorError) as refused:
        MirrorConfig(base_url=url)
    with pytest.raises(ValueError, match="base_url") as raised:
        Client(url)
    for error in (refused.value, raised.value):
        assert "***@" in str(error) or "not a valid URL" in str(error)
        _assert_clean(str(error), "the error")


def _chain(error: BaseException) -> list[BaseException]:
    """The error and what it was raised from or while handling, a few levels deep."""
    found: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(found) < 10:
        found.append(seen)
        seen = seen.__cause__ or seen.__context__
    return found


@pytest.fixture
async def overlong_header() -> AsyncIterator[str]:
    """A server on 127.0.0.1 whose answers carry a 9000-byte header (aiohttp refuses them)."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"id": "x"}, headers={"X-Padding": "a" * 9000})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner, port = await serve_local(app)
    try:
        yield f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/api/1"
    finally:
        await runner.cleanup()


async def test_no_secret_is_reachable_from_a_transport_error(
    overlong_header: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "the-api-key-0123456789-abcdef"
    async with Client(overlong_header, api_key=key) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.site.get_site()
    # aiohttp's own exception (its repr holds the request headers: the key, Basic auth) is not
    # chained to the typed error; its text is in the message.
    for error in _chain(info.value):
        for text in (str(error), repr(error)):
            _assert_clean(text, f"{type(error).__name__}")
            assert key not in text
    # Nor a proxy's credentials (aiohttp's connection error holds them in its repr).
    proxy_password = "proxy-password-fedcba9876"
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    try:
        port = refused.getsockname()[1]
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://proxy-user:{proxy_password}@127.0.0.1:{port}")
        async with Client("http://127.0.0.1:9/api/1", retry=RetryPolicy(max_attempts=1)) as c:
            with pytest.raises(ConnectError) as refused_info:
                await c.site.get_site()
    finally:
        refused.close()
    for error in _chain(refused_info.value):
        assert proxy_password not in str(error) + repr(error), type(error).__name__
