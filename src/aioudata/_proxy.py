"""The environment's proxy (and .netrc credentials) for an origin, resolved once, not per request.

aiohttp's ``trust_env=True`` looks these up in a worker thread for every request; the client
instead resolves them when its session is created (and once for each other origin a redirect
leads to), then passes them per request. The rules are aiohttp's: ``http_proxy`` /
``https_proxy`` by the URL's scheme, ``no_proxy`` bypasses, credentials in the proxy URL (or
.netrc for the proxy host) become proxy auth, HTTPS proxies are ignored, and .netrc credentials
for the target host become Basic auth.
"""

from __future__ import annotations

import logging
import netrc
import os
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

__all__ = ["route_for"]

logger = logging.getLogger("aioudata")


def route_for(url: URL) -> dict[str, Any]:
    """The keyword arguments for ``session.request`` to ``url``'s origin: empty when direct."""
    route: dict[str, Any] = {}
    host = url.host
    if host is None:
        return route
    credentials = _netrc()
    if url.raw_user is None and url.raw_password is None:  # credentials in the URL come first
        auth = _from_netrc(credentials, host)
        if auth is not None:
            route["auth"] = auth
    proxy = _proxy_for(url)
    if proxy is not None:
        proxy_auth = None
        if proxy.user is not None:
            proxy_auth = aiohttp.BasicAuth(proxy.user, proxy.password or "")
            proxy = proxy.with_user(None)
        elif proxy.host is not None:
            proxy_auth = _from_netrc(credentials, proxy.host)
        route["proxy"] = proxy
        if proxy_auth is not None:
            route["proxy_auth"] = proxy_auth
    return route


def _proxy_for(url: URL) -> URL | None:
    assert url.host is not None
    if urllib.request.proxy_bypass(url.host):
        return None
    configured = urllib.request.getproxies().get(url.scheme)
    if not configured:
        return None
    proxy = URL(configured if "://" in configured else f"http://{configured}")
    if proxy.scheme != "http":
        # What aiohttp does with the environment's proxies: only plain-HTTP proxies are used.
        logger.warning("%s proxy %s is not supported, ignored", proxy.scheme, proxy.with_user(None))
        return None
    return proxy


def _netrc() -> netrc.netrc | None:
    path = os.environ.get("NETRC")
    try:
        if not path:
            path = str(Path.home() / ("_netrc" if os.name == "nt" else ".netrc"))
        return netrc.netrc(path)
    except (OSError, RuntimeError):
        return None
    except netrc.NetrcParseError as error:
        logger.warning("cannot parse .netrc: %s", error)
        return None


def _from_netrc(credentials: netrc.netrc | None, host: str) -> aiohttp.BasicAuth | None:
    if credentials is None:
        return None
    found = credentials.authenticators(host)
    if found is None:
        return None
    login, account, password = found
    return aiohttp.BasicAuth(login or account or "", password or "")
