"""Proxies from the environment, resolved once per origin instead of once per request."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses
from yarl import URL

from aioudata import Client, RetryPolicy
from aioudata._proxy import route_for
from tests.faults import Action, FaultServer, serve_local

SITE = json.loads((Path(__file__).parent / "fixtures/responses/site.json").read_text())["body"]
KEY = "udata_proxy_secret_key"
FAST = RetryPolicy(max_attempts=2, backoff=0.001)
PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "ws_proxy", "wss_proxy")


@dataclass
class ProxyStub:
    """A forward proxy on 127.0.0.1 that answers itself and records what it was asked."""

    port: int = 0
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    answers: list[web.Response] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((str(request.url), dict(request.headers)))
        if self.answers:
            return self.answers.pop(0)
        return web.json_response(SITE)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


@pytest.fixture
async def proxy() -> AsyncIterator[ProxyStub]:
    stub = ProxyStub()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stub.handle)
    runner, stub.port = await serve_local(app)
    try:
        yield stub
    finally:
        await runner.cleanup()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_requests_go_through_the_environments_proxy_with_its_credentials(
    proxy: ProxyStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://me:p%40ss@127.0.0.1:{proxy.port}")
    async with Client("http://udata.test/api/1", api_key=KEY, retry=FAST) as client:
        site = await client.site.get_site()
        assert client._ensure_session().trust_env is False  # no per-request lookup
        await client.site.get_site()
    assert site.id == SITE["id"]
    assert len(proxy.seen) == 2
    url, headers = proxy.seen[0]
    assert url == "http://udata.test/api/1/site/" and headers["Host"] == "udata.test"
    assert headers["Proxy-Authorization"] == basic("me", "p@ss")
    assert headers["X-API-KEY"] == KEY  # the configured host, reached through its proxy


async def test_no_proxy_bypasses_the_proxy(
    proxy: ProxyStub, faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    faults.script("/site/", Action(200, SITE))
    async with Client(faults.base_url, retry=FAST) as client:
        await client.site.get_site()
    assert len(faults.hits("/site/")) == 1 and proxy.seen == []


async def test_a_redirect_to_another_host_is_routed_for_that_host(
    proxy: ProxyStub, faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    faults.script("/files/f.csv", Action(200, b"a;b\n"))
    target = f"http://127.0.0.1:{faults.port}/api/1/files/f.csv"
    proxy.answers.append(web.Response(status=302, headers={"Location": target}))
    async with Client("http://udata.test/api/1", api_key=KEY, retry=FAST) as client:
        body = await client.datasets.redirect_resource("abc")
    assert body == b"a;b\n"
    assert [url for url, _ in proxy.seen] == ["http://udata.test/api/1/datasets/r/abc"]
    (direct,) = faults.hits("/files/f.csv")  # straight to the other host, as no_proxy says
    assert "X-API-KEY" not in direct.headers


async def test_without_a_proxy_nothing_is_added_to_requests() -> None:
    async with Client("http://udata.test/api/1", retry=FAST) as client:
        with aioresponses() as mocked:
            mocked.get("http://udata.test/api/1/site/", payload=SITE)
            await client.site.get_site()
    ((_, calls),) = mocked.requests.items()
    assert not {"proxy", "proxy_auth", "auth"} & set(calls[0].kwargs)


def test_the_proxy_is_chosen_by_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy.test:3128")
    monkeypatch.setenv("HTTP_PROXY", "plain-proxy.test:8080")  # no scheme: http
    assert route_for(URL("https://www.data.gouv.fr/api/1")) == {
        "proxy": URL("http://secure-proxy.test:3128")
    }
    assert route_for(URL("http://portal.test/api/1")) == {
        "proxy": URL("http://plain-proxy.test:8080")
    }
    monkeypatch.setenv("NO_PROXY", ".data.gouv.fr")
    assert route_for(URL("https://www.data.gouv.fr/api/1")) == {}


def test_https_proxies_are_ignored_as_aiohttp_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://tls-proxy.test:443")
    assert route_for(URL("https://www.data.gouv.fr/api/1")) == {}


def test_netrc_credentials_for_the_host_and_for_the_proxy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine portal.test login alice password s3cret\n"
        "machine proxy.test login bob password hunter2\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    route: dict[str, Any] = route_for(URL("http://portal.test/api/1"))
    assert route == {
        "auth": aiohttp.BasicAuth("alice", "s3cret"),
        "proxy": URL("http://proxy.test:3128"),
        "proxy_auth": aiohttp.BasicAuth("bob", "hunter2"),
    }
    assert route_for(URL("http://elsewhere.test/")) == {
        "proxy": URL("http://proxy.test:3128"),
        "proxy_auth": aiohttp.BasicAuth("bob", "hunter2"),
    }


def test_credentials_in_the_url_take_precedence_over_netrc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine portal.test login alice password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert route_for(URL("http://portal.test/api/1")) == {
        "auth": aiohttp.BasicAuth("alice", "s3cret")
    }
    # aiohttp refuses both at once; the URL's own wins, as with trust_env.
    assert route_for(URL("http://bob:pw@portal.test/api/1")) == {}
