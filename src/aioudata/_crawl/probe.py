"""One HTTP exchange with a resource host: a HEAD (or a GET closed after its headers), or
robots.txt. Redirects are not followed here: the scheduler queues each hop at its own host.

The session is the checker's own: it carries no API key, no cookie jar and no credentials of
the environment (.netrc), only the User-Agent, and the environment's proxies.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Self
from urllib.robotparser import RobotFileParser

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from .._proxy import route_for
from .config import CheckConfig, user_agent
from .hosts import Job

__all__ = ["Answer", "Prober", "encoded", "route"]

logger = logging.getLogger("aioudata.crawl")

#: robots.txt larger than this is read up to here (Google reads 500 KiB).
_ROBOTS_MAX = 512 * 1024
#: A GET's body up to this size is read (the connection is then kept), a larger one is not.
_SMALL_BODY = 16 * 1024
#: The User-Agent token robots.txt rules are matched against.
ROBOTS_AGENT = "aioudata"


@dataclass(frozen=True, slots=True)
class Answer:
    """The status and headers of one answer."""

    status: int
    headers: CIMultiDictProxy[str]


def route(url: str) -> dict[str, Any]:
    """The environment's proxy for ``url``'s origin (never credentials for the host)."""
    try:
        found = route_for(URL(url))
    except (ValueError, TypeError):
        return {}
    found.pop("auth", None)  # .netrc logins are for the API, not for every file host
    return found


class Prober:
    """Sends the checker's requests; an async context manager owning its session."""

    def __init__(self, config: CheckConfig) -> None:
        self.config = config
        self.user_agent = user_agent(config.contact)
        self._headers = {
            "User-Agent": self.user_agent,
            "Accept": "*/*",
            # The file's own length, not a compressed one.
            "Accept-Encoding": "identity",
        }
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(
            limit=0,  # the scheduler limits requests, globally and per host
            limit_per_host=0,
            ttl_dns_cache=300,
            resolver=self.config.resolver,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self.timeout(),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def timeout(self) -> aiohttp.ClientTimeout:
        """A check's exchange takes ``config.timeout`` seconds at most."""
        return aiohttp.ClientTimeout(
            total=self.config.timeout, sock_connect=self.config.connect_timeout
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the prober is not open")
        return self._session

    async def exchange(self, job: Job, proxy: dict[str, Any]) -> Answer:
        """``job.method`` to ``job.current``, conditional when the job has validators; the
        body of a GET is not read (the connection is closed after the headers)."""
        headers = self.headers(job)
        response = await self.session.request(
            job.method,
            URL(job.current, encoded=encoded(job.current)),
            headers=headers,
            allow_redirects=False,
            **proxy,
        )
        answer = Answer(response.status, response.headers)
        if job.method == "HEAD":
            response.release()
            return answer
        await self.close_early(response)
        return answer

    def headers(self, job: Job) -> dict[str, str]:
        """The request's headers: conditional when the job has validators."""
        headers = dict(self._headers)
        if job.etag:
            headers["If-None-Match"] = job.etag
        if job.last_modified:
            headers["If-Modified-Since"] = job.last_modified
        return headers

    @staticmethod
    async def close_early(response: aiohttp.ClientResponse) -> None:
        """Done with ``response`` after its headers: a small body is read (so that the
        connection is kept), a larger one is not."""
        length = response.content_length
        if length is not None and length <= _SMALL_BODY:
            # A small body (an error page...) is read, so that the connection is kept.
            try:
                await response.read()
            except (aiohttp.ClientError, TimeoutError):
                response.close()
            else:
                response.release()
        else:
            response.close()  # the headers were enough: not a byte more of the file

    async def robots(self, origin: str, proxy: dict[str, Any]) -> RobotFileParser:
        """The robots.txt of ``origin`` (``scheme://host[:port]``); allowing everything when
        it has none or cannot be read (rules that cannot be read are no rules)."""
        parser = RobotFileParser()  # no rules unless a robots.txt is read
        try:
            async with self.session.get(
                f"{origin}/robots.txt",
                headers=self._headers,
                allow_redirects=True,
                max_redirects=5,
                **proxy,
            ) as response:
                if response.status == 200:
                    body = await response.content.read(_ROBOTS_MAX)
                    parser = RobotFileParser()
                    parser.parse(body.decode("utf-8", "replace").splitlines())
                elif response.status in (401, 403):
                    logger.info("%s/robots.txt answers %d: allowed", origin, response.status)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # no robots.txt to read: no rules
            logger.info("%s/robots.txt cannot be read (%s): allowed", origin, error)
        parser.modified()  # can_fetch() refuses everything from a parser never "read"
        return parser


def encoded(url: str) -> bool:
    """Send a URL as it is written when it is already percent-encoded ASCII (re-encoding
    would change it); otherwise let yarl encode it."""
    return url.isascii() and " " not in url
