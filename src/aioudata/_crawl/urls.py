"""Hosts of URLs, and the error classes a check records."""

from __future__ import annotations

import asyncio
import socket
import ssl
from urllib.parse import urlsplit

import aiohttp

__all__ = ["ERROR_CLASSES", "classify", "host_key", "host_matches"]

#: Every value of ``check_results.error``, with what it means (docs/schema.md says the same).
ERROR_CLASSES = {
    "dns": "the host name does not resolve",
    "refused": "the connection was refused",
    "timeout": "no connection or no answer in time",
    "tls": "the TLS handshake failed (certificate, protocol)",
    "connection": "the connection was reset or closed before an answer",
    "protocol": "the answer is not valid HTTP",
    "too_many_redirects": "more redirects than allowed",
    "redirect_loop": "a redirect leads back to a URL of its own chain",
    "unsupported_scheme": "not an http(s) URL, or a redirect to one",
    "invalid_url": "the URL cannot be parsed",
    "throttled": "the host kept answering 429/503, or asked to wait longer than allowed",
    "host_down": "not requested: the host's circuit breaker gave up on it during the run",
    "robots": "not requested: the host's robots.txt disallows it",
    "other": "another failure (the detail says which)",
}

_DEFAULT_PORTS = {"http": 80, "https": 443}
_DNS_ERRORS: tuple[type[BaseException], ...] = tuple(
    cls
    for cls in (getattr(aiohttp, "ClientConnectorDNSError", None), socket.gaierror)
    if isinstance(cls, type)
)


def host_key(url: str) -> str:
    """``name[:port]`` of an http(s) URL (port only when not the scheme's default), lower
    case; ``""`` when the URL is not one (nothing to request: recorded at once)."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        name = parts.hostname
        port = parts.port
    except ValueError:
        return ""
    if scheme not in _DEFAULT_PORTS or not name:
        return ""
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{name}:{port}"
    return name


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """``host`` is one of ``patterns`` (``name`` or ``name:port``) or a subdomain of one."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    for pattern in patterns:
        if host == pattern or name == pattern or name.endswith("." + pattern):
            return True
    return False


def classify(error: BaseException) -> str:
    """The error class of a failed exchange (a key of :data:`ERROR_CLASSES`)."""
    if isinstance(error, _DNS_ERRORS):
        return "dns"
    if isinstance(error, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "tls"
    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
        if isinstance(cause, socket.gaierror):
            return "dns"
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, ssl.SSLError):
            return "tls"
        if isinstance(cause, TimeoutError):
            return "timeout"
        return "connection"
    if isinstance(error, ssl.SSLError):
        return "tls"
    if isinstance(error, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.InvalidURL | aiohttp.InvalidUrlClientError | UnicodeError):
        return "invalid_url"
    if isinstance(error, aiohttp.ClientResponseError):
        return "protocol"  # aiohttp raises it for an answer it cannot parse
    if isinstance(
        error,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientOSError
        | aiohttp.ClientPayloadError
        | ConnectionError,
    ):
        return "connection"
    if isinstance(error, ValueError):
        return "invalid_url"  # yarl refusing to parse it
    return "other"
