"""Why no connection could be made, as a typed error: permanent failures apart from the others.

A certificate that fails verification and a host name that does not exist get the same answer
every time: :class:`TLSCertificateError` and :class:`HostNotFoundError`, which the retry policy
does not retry. A refused connection, a temporary resolver failure (``EAI_AGAIN``) or a
connection timeout may pass: a plain :class:`ConnectError`, retried.
"""

from __future__ import annotations

import socket
import ssl

import aiohttp

from ._errors import ConnectError, HostNotFoundError, TLSCertificateError

__all__ = ["PERMANENT", "connect_error"]

#: Connection failures that no retry can mend.
PERMANENT: tuple[type[ConnectError], ...] = (TLSCertificateError, HostNotFoundError)

#: c-ares' "domain name not found" (aiohttp's AsyncResolver, with aiodns installed, raises an
#: ``OSError`` without errno from aiodns' ``DNSError(code, message)``).
_ARES_ENOTFOUND = 4


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
    if isinstance(exc, aiohttp.ClientConnectorDNSError) and _name_not_found(exc.os_error):
        reason = exc.os_error.strerror or str(exc.os_error) or "name not found"
        return HostNotFoundError(reason, method=method, url=url, host=exc.host)
    return ConnectError(text, method=method, url=url)


def _verify_message(error: BaseException) -> str:
    message = getattr(error, "verify_message", None)  # set by ssl on a failed handshake
    return str(message or error or type(error).__name__)


def _name_not_found(error: OSError) -> bool:
    """The resolver said the name does not exist (not: could not find out for now)."""
    if isinstance(error, socket.gaierror):
        return error.errno == socket.EAI_NONAME
    cause = error.__cause__
    return (
        cause is not None
        and type(cause).__module__.startswith("aiodns")
        and cause.args[:1] == (_ARES_ENOTFOUND,)
    )
