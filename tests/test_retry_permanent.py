"""Connection failures no retry can mend fail at once; passing ones are still retried.

A TLS server on 127.0.0.1 with a self-signed certificate (tests/fixtures/tls/, made with
``openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=localhost
-addext subjectAltName=DNS:localhost,IP:127.0.0.1``) for certificate failures; DNS answers
injected at aiohttp's resolver, so no name is ever looked up for real.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.resolver import ThreadedResolver

from aioudata import (
    Client,
    ConnectError,
    HostNotFoundError,
    NameResolutionError,
    RateLimiter,
    RequestEvent,
    RetryPolicy,
    TLSCertificateError,
)
from aioudata._client import _transport_error
from aioudata._connect import PERMANENT
from aioudata._retry import ClientStats, Retrier
from tests.faults import Action, FaultServer, serve_local

TLS = Path(__file__).parent / "fixtures" / "tls"
SITE = json.loads((Path(__file__).parent / "fixtures/responses/site.json").read_text())["body"]
KEY = "udata_permanent_secret"
POLICY = RetryPolicy(
    max_attempts=4, backoff=0.01, max_backoff=0.02, refused_burst=2, refused_cool_off=0.05
)
NOWHERE = "nowhere.invalid"  # reserved: can never exist (and is never looked up here)


@pytest.fixture
async def tls_port() -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 whose certificate is self-signed; answers /api/1/site/."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "self_signed.crt", TLS / "self_signed.key")

    async def site(_request: web.Request) -> web.Response:
        return web.json_response(SITE)

    app = web.Application()
    app.router.add_get("/api/1/site/", site)
    runner, port = await serve_local(app, ssl_context=context)
    try:
        yield port
    finally:
        await runner.cleanup()


def attempts_of(client: Client) -> list[int]:
    seen: list[int] = []

    def note(event: RequestEvent) -> None:
        seen.append(event.attempt)

    client.add_event_hook("request", note)
    return seen


async def test_a_self_signed_certificate_fails_at_once_naming_host_and_cause(
    tls_port: int,
) -> None:
    async with Client(f"https://127.0.0.1:{tls_port}/api/1", api_key=KEY, retry=POLICY) as client:
        attempts = attempts_of(client)
        with pytest.raises(TLSCertificateError) as info:
            await client.site.get_site()
    error = info.value
    assert isinstance(error, ConnectError)  # still one: `except ConnectError` catches it
    assert error.host == "127.0.0.1"
    assert "self-signed certificate" in error.reason
    assert "TLS certificate of 127.0.0.1" in str(error) and "self-signed" in str(error)
    assert KEY not in str(error) and KEY not in repr(error)
    assert attempts == [1] and client.stats.retries == 0
    assert client.stats.errors == {"TLSCertificateError": 1} and client.stats.cool_offs == 0


async def test_a_certificate_failure_is_not_retried_for_unsafe_retries_either(
    tls_port: int,
) -> None:
    policy = RetryPolicy(max_attempts=4, backoff=0.01, retry_unsafe=True)
    async with Client(f"https://localhost:{tls_port}/api/1", retry=policy) as client:
        attempts = attempts_of(client)
        for _ in range(3):  # three in a row: not a burst of refusals, no cool-off
            with pytest.raises(TLSCertificateError) as info:
                await client.datasets.create_dataset(body={"title": "t"})
    assert info.value.host == "localhost"
    assert attempts == [1, 1, 1] and client.stats.cool_offs == 0


def resolver_failing(monkeypatch: pytest.MonkeyPatch, *errors: OSError) -> list[str]:
    """aiohttp's resolver raises ``errors`` one per lookup, then answers 127.0.0.1."""
    pending, asked = list(errors), []
    real = ThreadedResolver.resolve

    async def resolve(self: ThreadedResolver, host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        if host != NOWHERE:
            return await real(self, host, *args, **kwargs)
        if pending:
            raise pending.pop(0)
        return await real(self, "127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(ThreadedResolver, "resolve", resolve)
    # The resolver a client's connector makes (aiodns', when installed, would ask a real DNS).
    monkeypatch.setattr(aiohttp.connector, "DefaultResolver", ThreadedResolver)
    return asked


def nowhere_client(server: FaultServer, **options: Any) -> Client:
    return Client(f"http://{NOWHERE}:{server.port}/api/1", retry=POLICY, **options)


async def test_a_name_that_does_not_exist_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, faults: FaultServer
) -> None:
    nxdomain = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    asked = resolver_failing(monkeypatch, nxdomain, nxdomain, nxdomain)
    async with nowhere_client(faults) as client:
        with pytest.raises(HostNotFoundError) as info:
            await client.site.get_site()
    error = info.value
    assert isinstance(error, ConnectError)
    assert error.host == NOWHERE and error.reason == "Name or service not known"
    assert f"the host name {NOWHERE} does not exist" in str(error)
    assert asked == [NOWHERE] and client.stats.retries == 0 and faults.seen == []


async def test_a_temporary_dns_failure_is_retried(
    monkeypatch: pytest.MonkeyPatch, faults: FaultServer
) -> None:
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    asked = resolver_failing(monkeypatch, again, again)
    faults.script("/site/", Action(200, SITE))
    async with nowhere_client(faults) as client:
        site = await client.site.get_site()
    assert site.id == SITE["id"]
    assert asked == [NOWHERE] * 3
    assert client.stats.retries == 2 and client.stats.retry_reasons == {"NameResolutionError": 2}
    # A DNS server that does not answer says nothing about being blocked: no cool-off.
    assert client.stats.cool_offs == 0


async def test_a_temporary_dns_failure_every_time_ends_naming_the_host(
    monkeypatch: pytest.MonkeyPatch, faults: FaultServer
) -> None:
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    resolver_failing(monkeypatch, *[again] * POLICY.max_attempts)
    async with nowhere_client(faults) as client:
        with pytest.raises(NameResolutionError) as info:
            await client.site.get_site()
    error = info.value
    assert isinstance(error, ConnectError) and not isinstance(error, PERMANENT)
    assert error.host == NOWHERE and error.reason == "Temporary failure in name resolution"
    assert f"the host name {NOWHERE} could not be resolved" in str(error)
    assert client.stats.retries == POLICY.max_attempts - 1 and faults.seen == []


class DNSError(Exception):
    """Stands for aiodns' error (what aiohttp's AsyncResolver wraps when aiodns is there)."""


DNSError.__module__ = "aiodns.error"


def aiodns_error(code: int, message: str) -> OSError:
    error = OSError(None, message)
    error.__cause__ = DNSError(code, message)
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (aiodns_error(4, "Domain name not found"), HostNotFoundError),
        (aiodns_error(12, "Timeout while contacting DNS servers"), NameResolutionError),
        (aiodns_error(3, "Server failed"), NameResolutionError),
        (OSError(None, "DNS lookup failed"), ConnectError),
        (socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure"), ConnectError),
    ],
)
async def test_the_resolver_s_answers_are_told_apart(
    monkeypatch: pytest.MonkeyPatch, faults: FaultServer, error: OSError, kind: type[Exception]
) -> None:
    resolver_failing(monkeypatch, error, error)
    faults.script("/site/", Action(200, SITE))
    retries = RetryPolicy(max_attempts=1)
    async with Client(f"http://{NOWHERE}:{faults.port}/api/1", retry=retries) as client:
        with pytest.raises(kind) as info:
            await client.site.get_site()
        assert type(info.value) is kind
        if kind is not HostNotFoundError:  # the others are retried: the next lookup passes
            async with nowhere_client(faults) as patient:
                await patient.site.get_site()
            assert patient.stats.retries == 1


def connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    key: Any = type("Key", (), {"host": "h", "port": 443, "ssl": True})()
    return aiohttp.ClientConnectorError(key, os_error)


CLASSIFY: list[tuple[str, Callable[[], BaseException], bool]] = [
    ("refused", lambda: connector_error(ConnectionRefusedError(111, "refused")), True),
    ("connect timeout", lambda: connector_error(TimeoutError("timed out")), True),
    ("reset", lambda: aiohttp.ServerDisconnectedError(), True),
    ("read timeout", lambda: aiohttp.ServerTimeoutError("read timed out"), True),
    ("cert wrapped", lambda: connector_error(ssl.SSLCertVerificationError(1, "x")), False),
]


@pytest.mark.parametrize(("name", "make", "retried"), CLASSIFY, ids=[c[0] for c in CLASSIFY])
def test_what_the_policy_still_retries(
    name: str, make: Callable[[], BaseException], retried: bool
) -> None:
    error = _transport_error(make(), "GET", "http://h/api/1/site/")
    assert isinstance(error, PERMANENT) is not retried, name
    retrier = Retrier(RetryPolicy(), RateLimiter(), ClientStats())
    assert retrier.retryable(error, "GET", None) is retried
