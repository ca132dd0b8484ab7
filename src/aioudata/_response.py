"""Raw access: an operation's HTTP answer (status, headers, bytes) instead of its model.

``await client.raw(client.datasets.get_dataset("x"))`` gives a :class:`Response`; its
:meth:`Response.parse` decodes the body exactly as the operation itself would have.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from multidict import CIMultiDictProxy

from ._decoding import decode_body

__all__ = ["Response"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, repr=False)
class Response(Generic[T]):
    """The final HTTP answer of one operation call (after redirects and retries).

    ``headers`` is read-only and case-insensitive; ``url`` never carries credentials;
    ``elapsed`` is the seconds from sending the last request to having read its body.
    Error statuses never reach here: they raise the typed errors, as without raw access.
    """

    status: int
    headers: CIMultiDictProxy[str]
    content: bytes
    url: str
    method: str
    elapsed: float
    _type: Any = field(default=bytes, compare=False)
    _strict: bool = field(default=False, compare=False)

    def parse(self) -> T:
        """The body decoded into the operation's model, as the operation returns it.

        Honours the client's strict mode; ``bytes`` operations give the body, and operations
        that return nothing (or an empty body) give ``None``.
        """
        return decode_body(self.content, self._type, strict=self._strict, url=self.url)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.method} {self.url} ({len(self.content)} bytes)>"


class RawCapture:
    """Set (per task, in a context variable) while :meth:`Client.raw` awaits one call.

    The first request made under it returns its :class:`Response` instead of the model; any
    other request (a second one, or one in a task spawned meanwhile) decodes as usual.
    """

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = False


RAW: ContextVar[RawCapture | None] = ContextVar("aioudata_raw", default=None)
