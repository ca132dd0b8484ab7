"""Why no connection could be made, as a typed error: permanent failures apart from the others.

A certificate that fails verification and a host name that does not exist get the same answer
every time: :class:`TLSCertificateError` and :class:`HostNotFoundError`, which the retry policy
does not retry. A temporary resolver failure (``EAI_AGAIN``, a DNS timeout) may pass: a
:class:`NameResolutionError` naming the host, retried. So may a refused connection or a
connection timeout: a plain :class:`ConnectError`, retried.
"""

from __future__ import annotations

import socket
import ssl

import aiohttp

from ._errors import ConnectError, HostNotFoundError, NameResolutionError, TLSCertificateError

__all__ = ["PERMANENT", "connect_error"]

#: Connection failures that no retry can mend.
PERMANENT: tuple[type[ConnectError], ...] = (TLSCertificateError, HostNotFoundError)

#: c-ares' "domain name not found" (aiohttp's AsyncResolver, with aiodns installed, raises an
#: ``OSError`` without errno from aiodns' ``DNSError(code, message)``).
_ARES_ENOTFOUND = 4
#: c-ares' answers that may pass: ESERVFAIL, ECONNREFUSED (by the DNS server), ETIMEOUT.
_ARES_TEMPORARY = frozenset({3, 11, 12})


def connect_error(
    exc: aiohttp.ClientConnectorError, text: str, *, method: str, url: str
) -> ConnectError:
    """The typed error for a connection aiohttp could not make; ``text`` describes ``exc``."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = _verify_message(exc.certificate_error)
        return TLSCertificateError(reason, method=method, url=url, host=exc.host)
    if isinstance(exc.os_error, ssl.SSLCertVerificationError):  # wrapped otherwise
        reason = _verify_message(exc.os_error)
        return TLSCertificateError(reason, method=method, url=url, host=exc.host)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        kind = _dns_failure(exc.os_error)
        if kind is not None:
            reason = exc.os_error.strerror or str(exc.os_error) or "no answer"
            return kind(reason, method=method, url=url, host=exc.host)
    return ConnectError(text, method=method, url=url)


def _verify_message(error: BaseException) -> str:
    message = getattr(error, "verify_message", None)  # set by ssl on a failed handshake
    return str(message or error or type(error).__name__)


def _dns_failure(error: OSError) -> type[HostNotFoundError | NameResolutionError] | None:
    """What the resolver said: the name does not exist, or it could not find out for now.

    None when it does not say (an ``OSError`` of another kind): a plain :class:`ConnectError`.
    """
    if isinstance(error, socket.gaierror):
        code = error.errno
        if code == socket.EAI_NONAME:
            return HostNotFoundError
        return NameResolutionError if code == socket.EAI_AGAIN else None
    cause = error.__cause__
    if cause is None or not type(cause).__module__.startswith("aiodns"):
        return None
    code = cause.args[0] if cause.args else None
    if code == _ARES_ENOTFOUND:
        return HostNotFoundError
    return NameResolutionError if code in _ARES_TEMPORARY else None
