"""The description of one API operation, as the generated stubs hand it to the core.

Generated modules build one :class:`Endpoint` per operation at import time; the core reads it to
validate arguments, build the request and decode the answer. Nothing here does I/O.

An Endpoint's ``path`` is relative to the root of its API version: a client is made with the
API v1 root (``https://www.data.gouv.fr/api/1``) and finds the API v2 root next to it
(:func:`api_root`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from ._pagination import Paginator

T = TypeVar("T")
PageT = TypeVar("PageT")
ItemT = TypeVar("ItemT")

Location = Literal["path", "query", "header", "body", "form"]


class Kind(StrEnum):
    """What Python values a parameter takes."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING_LIST = "string_list"
    FILE = "file"
    BODY = "body"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its Python name, its name on the wire, where it goes and what it takes."""

    name: str
    wire: str
    location: Location
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[T]):
    """One operation of the API: method, path template, parameters and response model.

    ``response`` is the type the body decodes to: a msgspec Struct or container of them,
    ``bytes`` for a non-JSON body, ``None`` when nothing useful is returned. ``item`` is the
    type of a listing's items.
    """

    operation_id: str
    method: str
    path: str
    response: Any
    params: tuple[Param, ...] = ()
    item: Any = None
    tag: str = ""
    #: What ``response`` and ``item`` become for a call with an ``X-Fields`` mask: their
    #: partial twins, every field optional (the server sends only the fields the mask names).
    partial: Any = None
    partial_item: Any = None
    #: The API version whose root ``path`` is relative to (1: the client's base URL).
    api: int = 1

    @property
    def paginated(self) -> bool:
        """True when the response is a page of a listing (``data``, ``page``, ``total``...)."""
        return self.item is not None

    def masked(self) -> Endpoint[Any]:
        """This operation as a call with an ``X-Fields`` mask: answers decode into the partial
        models. Raises ``ValueError`` for an operation without them."""
        if self.partial is None:
            raise ValueError(f"{self.operation_id} has no partial model for masked calls")
        return replace(
            self,
            response=self.partial,
            item=self.partial_item,
            partial=None,
            partial_item=None,
        )


_VERSION_SEGMENT = re.compile(r"(?P<head>.*)/(?P<version>[0-9]+)/?")


def api_root(base_path: str, api: int) -> str:
    """The path of the API ``api``'s root next to the API root ``base_path`` (already escaped).

    udata serves its API versions side by side: ``/api/1`` and ``/api/2``. A base path whose
    last segment is a version number gets that segment replaced (``/api/1`` -> ``/api/2``; a
    client made with the v2 root keeps it); any other is refused with ``ValueError``: the
    other version's root cannot be derived from it.
    """
    match = _VERSION_SEGMENT.fullmatch(base_path)
    if match is None:
        raise ValueError(
            f"the API v{api} root cannot be derived from the base path {base_path or '/'!r}:"
            " it should end with the API version, as /api/1 does"
        )
    return f"{match['head']}/{api}"


class Requester(Protocol):
    """The narrow interface generated operations call; the client implements it."""

    async def request(self, endpoint: Endpoint[T], args: dict[str, Any]) -> T:
        """Send one request for ``endpoint`` and decode its answer."""
        ...

    def paginate(
        self, endpoint: Endpoint[PageT], args: dict[str, Any], item: type[ItemT]
    ) -> Paginator[PageT, ItemT]:
        """A listing: awaitable for one page, async-iterable over every item of every page."""
        ...
