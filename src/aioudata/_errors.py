"""Every exception aioudata raises, in one hierarchy.

The request's method and URL (never the API key) and the server's own ``message`` and ``errors``
are attributes; the exception text stays one readable line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "APIError",
    "ArgumentError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "DecodeError",
    "GoneError",
    "HostNotFoundError",
    "LockedError",
    "MalformedResponseError",
    "NameResolutionError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "SearchCapError",
    "ServerError",
    "StrictDecodeError",
    "TLSCertificateError",
    "TransportError",
    "TruncatedBodyError",
    "UdataError",
]


class UdataError(Exception):
    """Base class of every error raised by aioudata."""


class ArgumentError(UdataError, ValueError):
    """An operation was called with a bad argument; raised before any request is sent."""


class APIError(UdataError):
    """The server answered with an error status."""

    status: int
    method: str
    url: str
    message: str | None
    errors: dict[str, Any]
    body: Any
    retry_after: float | None
    headers: Mapping[str, str]

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        message: str | None = None,
        errors: Mapping[str, Any] | None = None,
        body: Any = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry_after = retry_after
        #: The answer's headers (read-only, case-insensitive when they come from the server).
        self.headers = headers if headers is not None else {}
        self.status = status
        self.method = method
        self.url = url
        self.message = message
        self.errors = dict(errors or {})
        self.body = body
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.status} on {self.method} {self.url}"
        if self.message:
            text += f": {self.message}"
        if self.errors:
            fields = "; ".join(f"{k}: {_flatten(v)}" for k, v in self.errors.items())
            text += f" [{fields}]"
        return text


class BadRequestError(APIError):
    """400: the server rejected the request; ``errors`` maps each bad field to its messages."""


class AuthenticationError(APIError):
    """401: no API key where one is needed, or the key is invalid, expired or revoked."""


class PermissionDeniedError(APIError):
    """403: the key is valid but may not do this."""


class NotFoundError(APIError):
    """404: unknown (or private) object, unknown route, or a page past the end of a listing."""


class ConflictError(APIError):
    """409: the request conflicts with the object's current state."""


class GoneError(APIError):
    """410: the object existed and was deleted."""


class LockedError(APIError):
    """423: the portal is in read-only mode and refuses writes."""


class RateLimitedError(APIError):
    """429: too many requests; ``retry_after`` is the delay the server asked for, in seconds."""


class ServerError(APIError):
    """5xx: the server (or a gateway before it) failed."""


class SearchCapError(UdataError):
    """A listing reached the search engine's result window (``cap`` items): narrow the query.

    Search-backed listings serve at most ``cap`` results (page × page_size ≤ cap on udata):
    raised instead of requesting the page the server would refuse.
    """

    def __init__(self, *, cap: int, page: int, page_size: int, total: int | None) -> None:
        self.cap = cap
        self.page = page
        self.page_size = page_size
        self.total = total
        listed = f" of {total}" if total is not None else ""
        super().__init__(
            f"page {page} with page_size {page_size} is past the search cap of {cap} results"
            f"{listed}: narrow the query (filters, q) or split it"
        )


class TransportError(UdataError):
    """The request did not get a complete answer; ``method`` and ``url`` say which request."""

    def __init__(self, message: str, *, method: str, url: str) -> None:
        self.method = method
        self.url = url
        super().__init__(f"{method} {url}: {message}")


class ConnectError(TransportError):
    """No connection could be made (refused, DNS, TLS): the request was never sent.

    Retried (for any method: nothing was sent), except for its two permanent kinds,
    :class:`TLSCertificateError` and :class:`HostNotFoundError`, which fail at once. A host
    name that could not be resolved for now is a :class:`NameResolutionError`, retried.
    """


class _HostError(ConnectError):
    """A connection failure about one host: ``host`` and what was said about it, ``reason``."""

    #: The message, from ``{host}`` and ``{reason}``.
    template: ClassVar[str] = "{host}: {reason}"

    def __init__(self, reason: str, *, method: str, url: str, host: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(self.template.format(host=host, reason=reason), method=method, url=url)


class TLSCertificateError(_HostError):
    """The server's TLS certificate failed verification; the request is not retried.

    Self-signed, expired, issued by an authority the system does not trust, or for another
    host name: every attempt would get the same certificate. ``host`` is the host whose
    certificate it was, ``reason`` what the verification said (``"self-signed certificate"``).
    """

    template = (
        "the TLS certificate of {host} failed verification: {reason} (not retried: every"
        " attempt gets the same certificate)"
    )


class HostNotFoundError(_HostError):
    """The host name does not exist (DNS: NXDOMAIN, ``EAI_NONAME``); not retried.

    A temporary resolver failure (``EAI_AGAIN``: no answer from the DNS server in time) is a
    :class:`NameResolutionError`, retried. ``host`` is the name looked up, ``reason`` what the
    resolver said.
    """

    template = "the host name {host} does not exist: {reason} (not retried: check the URL)"


class NameResolutionError(_HostError):
    """The host name could not be resolved for now (DNS: ``EAI_AGAIN``, a timeout); retried.

    The resolver did not say the name does not exist (that is :class:`HostNotFoundError`): the
    DNS server failed to answer, which may pass. Raised once the retries are spent. ``host`` is
    the name looked up, ``reason`` what the resolver said.
    """

    template = (
        "the host name {host} could not be resolved: {reason} (a temporary DNS failure:"
        " check the network and the DNS server)"
    )


class RequestTimeoutError(TransportError):
    """The connection or the answer took longer than the client's timeouts allow."""


class ConnectionLostError(TransportError):
    """The server closed or reset the connection before answering."""


class TruncatedBodyError(TransportError):
    """The answer's body ended before its announced length."""


class ResponseTooLargeError(UdataError):
    """The answer's body is larger than the client accepts; the request is not retried.

    Raised for a body over the client's ``max_response_size`` (by its Content-Length before
    reading, or while reading, so no more than ``limit`` bytes are held), and for a compressed
    body inflating past the decompression limit of aiohttp (a compression bomb). Not a
    :class:`TransportError`: the server was reached and answered; asking again would get the same
    answer. ``limit`` is the limit in bytes that was crossed, ``size`` the announced or decoded
    size when known.
    """

    def __init__(
        self, reason: str, *, method: str, url: str, limit: int, size: int | None = None
    ) -> None:
        self.method = method
        self.url = url
        self.limit = limit
        self.size = size
        super().__init__(f"{method} {url}: answer too large: {reason}")


class MalformedResponseError(UdataError):
    """The server answered, but not with HTTP aioudata can read; the request is not retried.

    A header or status line longer than aiohttp's limit (8190 bytes), a header that does not
    parse, a body whose ``Content-Encoding`` (gzip, deflate...) does not decode. Not a
    :class:`TransportError`: the connection worked and asking again gets the same answer.
    ``reason`` is what was wrong (aiohttp's words, without the offending bytes).
    """

    def __init__(self, reason: str, *, method: str, url: str) -> None:
        self.method = method
        self.url = url
        self.reason = reason
        super().__init__(f"{method} {url}: malformed answer: {reason}")


class ClientClosedError(UdataError, RuntimeError):
    """A request was made through a closed :class:`~aioudata.Client`.

    Closing a client ends what it was doing (listing walks included); it does not open a new
    connection pool behind the caller's back. ``async with client:`` opens it again.
    """


class DecodeError(UdataError):
    """A response body is not what its model says; names the field path and the offending value."""

    path: str
    snippet: str
    url: str | None
    model: str

    def __init__(
        self, reason: str, *, path: str, snippet: str, model: str, url: str | None
    ) -> None:
        self.reason = reason
        self.path = path
        self.snippet = snippet
        self.model = model
        self.url = url
        where = f" from {url}" if url else ""
        super().__init__(f"cannot decode {model}{where}: {reason} at {path} (value: {snippet})")


class StrictDecodeError(DecodeError):
    """Strict mode only: the response carries fields the model does not declare."""


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    423: LockedError,
    429: RateLimitedError,
}


def error_class_for(status: int) -> type[APIError]:
    """The most specific error class for an HTTP status."""
    if status >= 500:
        return ServerError
    return _STATUS_ERRORS.get(status, APIError)


def _flatten(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)
