"""The asynchronous client: one aiohttp session, every operation of the API as typed methods."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar

import aiohttp
import aiohttp.compression_utils
import aiohttp.http_exceptions
import msgspec
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._arguments import PreparedRequest, prepare
from ._connect import connect_error
from ._decoding import decode_body
from ._endpoint import Endpoint, api_root
from ._errors import (
    APIError,
    ArgumentError,
    ClientClosedError,
    ConnectionLostError,
    MalformedResponseError,
    RequestTimeoutError,
    ResponseTooLargeError,
    TransportError,
    TruncatedBodyError,
    UdataError,
    error_class_for,
)
from ._generated.namespaces import Namespaces
from ._hooks import EventHooks, RequestEvent, ResponseEvent, check_hooks, emit
from ._limits import RateLimiter
from ._pagination import Paginator, WalkTasks
from ._proxy import route_for
from ._response import RAW, RawCapture, Response
from ._retry import ClientStats, Retrier, RetryPolicy, parse_retry_after
from ._version import __version__

__all__ = ["DEFAULT_BASE_URL", "Client", "check_header_value", "mask_credentials"]

T = TypeVar("T")
PageT = TypeVar("PageT")
ItemT = TypeVar("ItemT")

DEFAULT_BASE_URL = "https://www.data.gouv.fr/api/1"
API_KEY_HEADER = "X-API-KEY"
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_ROUTES = 64
#: 512 MiB: see ``max_response_size`` in :class:`Client`.
DEFAULT_MAX_RESPONSE_SIZE = 512 * 2**20
#: What aiohttp raises (as the cause of a ClientPayloadError) when a compressed body inflates
#: past its decompression limit; aiohttp before 3.13 has no such limit.
_INFLATE_LIMIT_ERRORS: tuple[type[BaseException], ...] = tuple(
    cls
    for cls in (getattr(aiohttp.http_exceptions, "DecompressSizeError", None),)
    if isinstance(cls, type) and issubclass(cls, BaseException)
)
_INFLATE_LIMIT: int = getattr(aiohttp.compression_utils, "DEFAULT_MAX_DECOMPRESS_SIZE", 2**25)

_HTTP = aiohttp.http_exceptions

#: What one HTTP exchange gave: status, headers, body, public URL, method, elapsed seconds.
_Answer = tuple[int, CIMultiDictProxy[str], bytes, str, str, float]


class _Secret:
    """Holds the API key; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


class Client(Namespaces):
    """Async client for one udata portal's API, v1 and v2.

    Use it as an async context manager; every operation of the API v1 is a method of a tag
    namespace (``client.datasets``, ``client.harvest``...), every operation of the API v2 one
    of ``client.v2``'s (``client.v2.datasets.search_datasets``...), whose root is found next to
    ``base_url`` (``.../api/1`` → ``.../api/2``)::

        async with Client(api_key=...) as client:
            dataset = await client.datasets.get_dataset("slug-or-id")
            page = await client.v2.datasets.search_datasets(q="transport")

    Args:
        base_url: the portal's API v1 root (data.gouv.fr's by default).
        api_key: sent as ``X-API-KEY`` to that portal only; the ``UDATA_API_KEY`` environment
            variable when not given. Never shown in reprs, errors, logs or events.
        timeout: seconds for a whole request, answer read included.
        connect_timeout: seconds to open a connection.
        read_timeout: seconds of silence allowed while reading an answer.
        max_connections: connections open at once, all hosts together.
        max_connections_per_host: connections open at once to one host.
        user_agent: the ``User-Agent`` header (``aioudata/<version>`` and the project's page
            by default).
        strict: decode answers strictly: a field a model does not declare raises
            :class:`StrictDecodeError` (lenient by default: unknown fields are ignored).
        rate: requests per second on average, for every task of the client together
            (``None`` or 0: unlimited).
        burst: requests that may go at once above ``rate`` after a quiet spell.
        max_in_flight: requests in flight at once (``None``: no cap).
        retry: when and how long to retry a failed request (:class:`RetryPolicy`'s defaults).
        page_concurrency: how many pages a listing requests at once when iterated (the
            default of its paginators; ``listing.options(concurrency=...)`` overrides it).
        event_hooks: ``{"request": [...], "response": [...]}``: callables (plain or ``async``)
            given a :class:`RequestEvent` before each HTTP request is sent (each retry and
            redirect included) and a :class:`ResponseEvent` after each answer (error statuses
            included, before the error is raised). Events never carry the API key. An
            exception raised by a hook propagates to the caller of the operation.
        max_response_size: the largest body accepted, in bytes (decoded size; 512 MiB by
            default). A body is held whole in memory to be decoded, so this bounds what one
            answer may take: a larger one raises :class:`ResponseTooLargeError` (not retried),
            refused by its Content-Length when announced, else once the bytes read pass the
            limit, so no more than the limit is ever held. The default is generous: the largest
            answers of the API (a listing page of 1,000 datasets with all their resources, an
            organization's CSV exports) stay in the tens of MiB, and a mirror's machine can hold
            a few such bodies at once (one per request in flight); it stops a runaway or hostile
            answer before it exhausts memory.

    Credentials in ``base_url`` (``https://user:password@host/api/1``) are taken out of it: they
    are sent as Basic auth to that origin only (never after a redirect to another one), and
    never appear in :attr:`base_url`, reprs, errors, logs or events. They win over .netrc.

    Proxies come from the environment (``http_proxy``, ``https_proxy``, ``no_proxy``; .netrc
    for credentials), read when the connection pool is created.

    Failed requests are retried as ``retry`` (a :class:`RetryPolicy`) says, except what would
    fail the same way every time: a TLS certificate that fails verification raises
    :class:`TLSCertificateError` and a host name that does not exist :class:`HostNotFoundError`
    at the first attempt.

    ``close()`` (or leaving ``async with``) ends every listing walk of the client still
    running; a closed client refuses requests (:class:`ClientClosedError`) until it is entered
    again with ``async with``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        max_connections: int = 32,
        max_connections_per_host: int = 16,
        user_agent: str | None = None,
        strict: bool = False,
        rate: float | None = None,
        burst: int = 10,
        max_in_flight: int | None = 16,
        retry: RetryPolicy | None = None,
        page_concurrency: int = 8,
        event_hooks: EventHooks | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        shown = mask_credentials(base_url)
        try:
            url = URL(base_url.rstrip("/"))
        except (TypeError, ValueError) as error:  # yarl's messages never quote the URL
            raise ValueError(f"base_url {shown!r} is not a valid URL: {error}") from None
        if url.scheme not in {"http", "https"} or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, not {shown!r}")
        # Credentials in the URL are a secret like the key: kept apart, sent as Basic auth.
        self._auth: aiohttp.BasicAuth | None = None
        if url.raw_user is not None or url.raw_password is not None:
            self._auth = aiohttp.BasicAuth(url.user or "", url.password or "", encoding="utf-8")
            url = url.with_user(None)
        self._base = url
        key: str | None = api_key
        source = "api_key"
        if key is None:
            key, source = os.environ.get("UDATA_API_KEY"), "the UDATA_API_KEY variable"
        if key:
            check_header_value(key, source, what="an API key")
        self._api_key = _Secret(key) if key else None
        self._timeout = aiohttp.ClientTimeout(
            total=timeout, connect=connect_timeout, sock_read=read_timeout
        )
        self._max_connections = max_connections
        self._max_connections_per_host = max_connections_per_host
        if user_agent:
            check_header_value(user_agent, "user_agent", what="a User-Agent")
        self._user_agent = (
            user_agent or f"aioudata/{__version__} (+https://pypi.org/project/aioudata/)"
        )
        self._strict = strict
        if isinstance(max_response_size, bool) or not isinstance(max_response_size, int):
            raise TypeError(f"max_response_size must be an int, not {max_response_size!r}")
        if max_response_size < 1:
            raise ValueError(f"max_response_size must be at least 1, not {max_response_size!r}")
        self._max_response_size = max_response_size
        if page_concurrency < 1:
            raise ValueError(f"page_concurrency must be at least 1, not {page_concurrency!r}")
        #: Pages a listing requests at once when iterated (the default of its paginators).
        self.page_concurrency = page_concurrency
        self._request_hooks, self._response_hooks = check_hooks(event_hooks)
        self._headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        self._session: aiohttp.ClientSession | None = None
        # The page requests of the client's listing walks; ``closed`` once close() is called.
        self._walk_tasks = WalkTasks(self._closed_error)
        # Proxy and .netrc keyword arguments per origin, resolved with the session.
        self._base_route: dict[str, Any] = {}
        self._routes: dict[tuple[str, str | None, int | None, bool], dict[str, Any]] = {}
        #: Paces every request of this client (all tasks share it).
        self.limiter = RateLimiter(rate, burst, max_in_flight)
        #: Counters: requests, statuses, retries and their reasons, cool-offs.
        self.stats = ClientStats()
        self._retrier = Retrier(retry or RetryPolicy(), self.limiter, self.stats)
        super().__init__(self)

    def __repr__(self) -> str:
        keyed = "with API key" if self._api_key else "anonymous"
        return f"<Client {self._base} {keyed}>"

    @property
    def base_url(self) -> str:
        """The API root every path is relative to, e.g. ``https://www.data.gouv.fr/api/1``.

        Without the credentials ``base_url`` may have been given with.
        """
        return str(self._base)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`, until the client is entered again (``async with``)."""
        return self._walk_tasks.closed

    async def __aenter__(self) -> Client:
        self._walk_tasks.closed = False  # entering a closed client opens it again
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def add_event_hook(
        self, event: Literal["request", "response"], hook: Callable[[Any], Any]
    ) -> Callable[[], None]:
        """Add a hook as ``event_hooks`` would (see :mod:`aioudata._hooks`); the function that
        removes it again. For code that gets a client it did not make (the mirror counts its
        retries this way)."""
        if not callable(hook):
            raise TypeError(f"{hook!r} is not callable")
        if event == "request":
            self._request_hooks = (*self._request_hooks, hook)
        elif event == "response":
            self._response_hooks = (*self._response_hooks, hook)
        else:
            raise ValueError(f"event_hooks take 'request' and 'response' only, not {event!r}")

        def remove() -> None:
            if event == "request":
                self._request_hooks = tuple(h for h in self._request_hooks if h is not hook)
            else:
                self._response_hooks = tuple(h for h in self._response_hooks if h is not hook)

        return remove

    async def close(self) -> None:
        """End every listing walk still running, then close the connection pool.

        The page requests walks run ahead are cancelled and awaited (a walk resumed afterwards
        raises :class:`ClientClosedError`), requests of other tasks still under way fail with
        it. Until the client is entered again (``async with client:``), requests raise
        :class:`ClientClosedError`: no connection pool is opened behind the caller's back.
        """
        await self._walk_tasks.close()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _closed_error(self) -> ClientClosedError:
        return ClientClosedError(
            f"the client of {self._base} is closed: requests are refused until it is entered"
            " again (async with client: ...)"
        )

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._walk_tasks.closed:
            raise self._closed_error()
        if self._session is None or self._session.closed:
            # The environment's proxy is read here, once: with trust_env, aiohttp would look it
            # up (in a thread) for every request.
            self._base_route = route_for(self._base)
            if self._auth is not None:  # credentials of the URL win over .netrc's
                self._base_route = {**self._base_route, "auth": self._auth}
            self._routes.clear()
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections_per_host,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,
                headers=self._headers,
            )
        return self._session

    async def raw(self, call: Awaitable[T]) -> Response[T]:
        """The HTTP answer of one operation call instead of its model.

        ``await client.raw(client.datasets.get_dataset("x"))`` gives a :class:`Response`
        (status, headers, content, url...) whose :meth:`Response.parse` returns what the call
        would have. Error statuses raise the typed errors, retries and redirects happen as
        usual. Works for listings awaited for one page; other tasks are unaffected.
        """
        capture = RawCapture()
        token = RAW.set(capture)
        try:
            result = await call
        finally:
            RAW.reset(token)
        if not capture.used or not isinstance(result, Response):
            raise TypeError(
                "Client.raw() takes one operation call, e.g. client.raw(client.site.get_site())"
            )
        return result

    # The narrow interface the generated operations call (see aioudata._endpoint.Requester).

    async def request(self, endpoint: Endpoint[T], args: dict[str, Any]) -> T:
        """Send the request ``endpoint`` describes with ``args`` and decode the answer."""
        if self._walk_tasks.closed:
            raise self._closed_error()
        prepared = prepare(endpoint, args)
        capture = RAW.get()
        raw = capture is not None and not capture.used
        if raw:
            capture.used = True  # type: ignore[union-attr]
        tries = 0

        async def attempt() -> _Answer:
            nonlocal tries
            tries += 1
            return await self._send(prepared, tries)

        status, headers, body, url, method, elapsed = await self._retrier.run(
            attempt,
            method=prepared.method,
            url=lambda: _public(self._absolute(prepared.path, prepared.api)),
        )
        if raw:
            return Response(  # type: ignore[return-value]
                status, headers, body, url, method, elapsed, endpoint.response, self._strict
            )
        return decode_body(body, endpoint.response, strict=self._strict, url=url)  # type: ignore[no-any-return]

    def paginate(
        self, endpoint: Endpoint[PageT], args: dict[str, Any], item: type[ItemT]
    ) -> Paginator[PageT, ItemT]:
        """A listing bound to ``args``: await it for one page, iterate it for every item."""
        return Paginator(
            self.request,
            endpoint,
            args,
            concurrency=self.page_concurrency,
            tasks=self._walk_tasks,
        )

    def _absolute(self, path: str, api: int = 1) -> URL:
        """``path`` (already escaped) below the base URL, or below the root of API ``api``
        next to it (``/api/2`` beside ``/api/1``: see :func:`aioudata._endpoint.api_root`)."""
        if api == 1:
            return self._base.with_path(self._base.path + path, encoded=True)
        try:
            root = api_root(self._base.raw_path, api)
        except ValueError as error:
            raise ArgumentError(f"{error} (the client's base URL is {self._base})") from None
        return self._base.with_path(root + path, encoded=True)

    def _route(self, url: URL) -> dict[str, Any]:
        """Proxy and .netrc arguments for another origin than the base (after a redirect)."""
        origin = (url.scheme, url.host, url.port, url.raw_user is None)
        route = self._routes.get(origin)
        if route is None:
            if len(self._routes) >= _MAX_ROUTES:
                self._routes.clear()
            route = self._routes[origin] = route_for(url)
        return route

    def _event_headers(self, headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
        """The headers aioudata sends, as hooks see them: without the API key."""
        shown = CIMultiDict(self._headers)
        shown.update(headers)
        shown.popall(API_KEY_HEADER, None)
        return CIMultiDictProxy(shown)

    async def _send(self, prepared: PreparedRequest, attempt: int) -> _Answer:
        """One attempt: send, follow redirects, return the answer or raise a typed error."""
        url = self._absolute(prepared.path, prepared.api)
        if prepared.query:
            url = url.with_query(prepared.query)
        headers = dict(prepared.headers) if prepared.headers else {}
        data: Any = None
        if prepared.json is not None:
            headers["Content-Type"] = "application/json"
            data = prepared.json
        elif prepared.form is not None:
            form = aiohttp.FormData()
            for name, value in prepared.form:
                form.add_field(name, value)
            data = form
        method = prepared.method
        request_hooks, response_hooks = self._request_hooks, self._response_hooks
        for _ in range(_MAX_REDIRECTS + 1):
            # The key (and the URL's credentials) go only to the configured host: never follow
            # them elsewhere.
            same_origin = _same_origin(url, self._base)
            self._ensure_session()  # the base route is resolved with the pool
            if self._api_key is not None and same_origin:
                headers[API_KEY_HEADER] = self._api_key.reveal()
            else:
                headers.pop(API_KEY_HEADER, None)
            route = self._base_route if same_origin else self._route(url)
            async with self.limiter.slot():
                self.stats.requests += 1
                if request_hooks:
                    event = RequestEvent(
                        method, _public(url), attempt, self._event_headers(headers)
                    )
                    await emit(request_hooks, event)
                started = time.perf_counter()
                # Closed meanwhile (a cool-off can be long): raises, never reopens.
                session = self._ensure_session()
                failure: UdataError | None = None
                try:
                    async with session.request(
                        method, url, headers=headers, data=data, allow_redirects=False, **route
                    ) as response:
                        body = await _read_body(
                            response, self._max_response_size, method, _public(url)
                        )
                        elapsed = time.perf_counter() - started
                        status = response.status
                        answer_headers = response.headers
                except ResponseTooLargeError as too_large:
                    self.stats.errors[type(too_large).__name__] += 1
                    raise
                except (TimeoutError, aiohttp.ClientError) as exc:
                    if self._walk_tasks.closed:  # the pool was closed under this request
                        failure = self._closed_error()
                    else:
                        failure = _transport_error(exc, method, _public(url))
                        self.stats.errors[type(failure).__name__] += 1
                if failure is not None:
                    # Raised here, not in the except block: aiohttp's exception stays out of the
                    # typed error's chain (its repr holds the headers sent, the key and the URL's
                    # credentials among them, or a proxy's credentials); the message has its text.
                    raise failure
            self.stats.statuses[status] += 1
            public = _public(url)
            if response_hooks:
                await emit(
                    response_hooks,
                    ResponseEvent(method, public, status, answer_headers, elapsed, attempt),
                )
            if status in _REDIRECTS:
                location = answer_headers.get("Location")
                if location:
                    url = url.join(URL(location))
                    if status == 303:
                        method, data = "GET", None
                    continue
            if status >= 400:
                retry_after = parse_retry_after(answer_headers.get("Retry-After"))
                raise _api_error(status, method, public, body, retry_after, answer_headers)
            return status, answer_headers, body, public, method, elapsed
        raise UdataError(f"{method} {_public(url)}: more than {_MAX_REDIRECTS} redirects")


async def _read_body(response: aiohttp.ClientResponse, limit: int, method: str, url: str) -> bytes:
    """The whole body, or :class:`ResponseTooLargeError` as soon as it is known to pass ``limit``.

    Read chunk by chunk (as aiohttp hands them, decompressed): at most ``limit`` bytes are held.
    The Content-Length is checked first when it is the body's size (no content coding; a HEAD
    answer announces a body it does not carry).
    """
    length = response.content_length
    coding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if length is not None and length > limit and coding == "identity" and method != "HEAD":
        raise ResponseTooLargeError(
            f"Content-Length {length} is over max_response_size={limit} bytes",
            method=method,
            url=url,
            limit=limit,
            size=length,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLargeError(
                f"more than max_response_size={limit} bytes",
                method=method,
                url=url,
                limit=limit,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _inflate_limit(exc: BaseException) -> BaseException | None:
    """aiohttp's decompression-limit error behind ``exc`` (a few causes deep), if any."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, _INFLATE_LIMIT_ERRORS):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _malformed(exc: BaseException) -> str | None:
    """What aiohttp could not read as HTTP in the answer behind ``exc``; None for other failures.

    A header or status line that does not parse (or is over aiohttp's 8190 bytes), a body whose
    Content-Encoding does not decode. A body ending early (Content-Length, chunks) is not that:
    the connection was lost. The offending bytes are not quoted (they may hold anything).
    """
    if not isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return None
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, _HTTP.ContentEncodingError):
            coding = " ".join(str(seen.message).split())
            return f"its body does not decode ({coding})"
        if isinstance(seen, _HTTP.PayloadEncodingError):
            return None  # cut short: a lost connection, not a malformed answer
        if isinstance(seen, _HTTP.LineTooLong):
            limit = seen.args[1] if len(seen.args) > 1 and isinstance(seen.args[1], int) else None
            over = f"{limit} bytes" if limit else "its limit"
            return f"a status or header line over aiohttp's {over}"
        if isinstance(seen, _HTTP.BadHttpMessage):
            return f"its status line or headers do not parse ({type(seen).__name__})"
        seen = seen.__cause__ or seen.__context__
    return None


def _transport_error(exc: BaseException, method: str, url: str) -> UdataError:
    """The typed error for an aiohttp failure (most specific first).

    A body that inflates past aiohttp's decompression limit is not a transport failure: the
    server answered, and would answer the same again. It is a :class:`ResponseTooLargeError`.
    Nor is an answer aiohttp cannot read as HTTP (an overlong header, a body whose gzip does
    not decode): a :class:`MalformedResponseError`.
    """
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    inflated = _inflate_limit(exc) if _INFLATE_LIMIT_ERRORS else None
    if inflated is not None:
        message = " ".join(str(getattr(inflated, "message", None) or inflated).split())
        found = re.search(r"(\d+) bytes", message)
        limit = int(found[1]) if found else _INFLATE_LIMIT
        return ResponseTooLargeError(
            f"the compressed body inflates past aiohttp's decompression limit of {limit} bytes"
            f" ({message})",
            method=method,
            url=url,
            limit=limit,
        )
    malformed = _malformed(exc)
    if malformed is not None:
        return MalformedResponseError(malformed, method=method, url=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return connect_error(exc, text, method=method, url=url)
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's timeouts derive from it
        return RequestTimeoutError(text, method=method, url=url)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TruncatedBodyError(text, method=method, url=url)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return ConnectionLostError(text, method=method, url=url)
    return TransportError(text, method=method, url=url)


def mask_credentials(text: str) -> str:
    """``text`` (a URL, valid or not) as it may be shown: its user info, if any, masked."""
    return re.sub(r"//.*@", "//***@", text, flags=re.DOTALL) if "@" in text else text


def check_header_value(value: str, source: str, *, what: str) -> None:
    """Refuse a header value (the key, the User-Agent) holding a non-printable character.

    A line break would otherwise end in aiohttp's "header injection" error, and a trailing
    one is an easy mistake (``UDATA_API_KEY=$(cat key.txt)`` keeps none, an editor's file
    read raw does): the message names ``source``, never the value.
    """
    for position, char in enumerate(value):
        if not char.isprintable():
            kind = "a line break" if char in "\r\n" else f"the character U+{ord(char):04X}"
            raise ArgumentError(
                f"{source} holds {kind} (character {position + 1} of {len(value)}):"
                f" {what} is one line of printable characters; check how it was set"
            )


def check_api_key(api_key: str) -> None:
    """:func:`check_header_value` for the key of a job's config (the mirror's, the
    crawler's): the message names the ``UDATA_API_KEY`` variable when the command line took
    the key from there, else ``--api-key``."""
    from_env = api_key == os.environ.get("UDATA_API_KEY")
    source = "the UDATA_API_KEY variable" if from_env else "the API key (--api-key)"
    check_header_value(api_key, source, what="an API key")


def _same_origin(a: URL, b: URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _public(url: URL) -> str:
    """The URL as it may appear in errors and logs: no user info."""
    if url.raw_user is None and url.raw_password is None:
        return str(url)
    return str(url.with_user(None))


def _api_error(
    status: int,
    method: str,
    url: str,
    body: bytes,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> APIError:
    payload: Any = None
    try:
        payload = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        payload = body[:200].decode("utf-8", "replace")
    message: str | None = None
    errors: Mapping[str, Any] | None = None
    if isinstance(payload, dict):
        raw_message = payload.get("message") or payload.get("error")
        message = str(raw_message) if raw_message is not None else None
        raw_errors = payload.get("errors")
        if isinstance(raw_errors, dict):
            errors = raw_errors
    cls = error_class_for(status)
    return cls(
        status=status,
        method=method,
        url=url,
        message=message,
        errors=errors,
        body=payload,
        retry_after=retry_after,
        headers=headers,
    )
