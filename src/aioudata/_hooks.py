"""Event hooks: callables the client calls around every HTTP exchange, for logs and metrics.

``Client(event_hooks={"request": [...], "response": [...]})``. A hook takes one event and
returns ``None`` or an awaitable (``async def`` hooks are awaited). An exception raised by a
hook propagates to the operation's caller, as the operation's own error (it is not retried,
unless it is one of aioudata's retryable errors).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from multidict import CIMultiDictProxy

__all__ = ["EventHooks", "RequestEvent", "ResponseEvent"]


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One HTTP request about to be sent: each retry and each redirect is one.

    ``attempt`` counts from 1 and grows with each retry (redirects followed within one attempt
    share its number). ``headers`` are those aioudata sets, never the API key; ``url`` has no
    credentials.
    """

    method: str
    url: str
    attempt: int
    headers: CIMultiDictProxy[str]


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """One HTTP answer, error statuses and redirects included, before it is acted on.

    ``elapsed`` is the seconds from sending the request to having read the whole body. A
    request that gets no answer (refused, reset, timed out) has no response event.
    """

    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    elapsed: float
    attempt: int


RequestHook = Callable[[RequestEvent], Awaitable[None] | None]
ResponseHook = Callable[[ResponseEvent], Awaitable[None] | None]


class EventHooks(TypedDict, total=False):
    """The ``event_hooks`` argument of :class:`~aioudata.Client`."""

    request: Sequence[RequestHook]
    response: Sequence[ResponseHook]


def check_hooks(
    hooks: Mapping[str, object] | None,
) -> tuple[tuple[RequestHook, ...], tuple[ResponseHook, ...]]:
    """The request and response hooks, validated: unknown events and non-callables are refused."""
    if not hooks:
        return (), ()
    unknown = set(hooks) - {"request", "response"}
    if unknown:
        raise ValueError(
            f"event_hooks takes 'request' and 'response' only, not {', '.join(sorted(unknown))}"
        )
    checked: dict[str, tuple[Any, ...]] = {}
    for name, callables in hooks.items():
        if isinstance(callables, str | bytes) or not isinstance(callables, Sequence):
            raise TypeError(f"event_hooks[{name!r}] must be a list of callables")
        for hook in callables:
            if not callable(hook):
                raise TypeError(f"event_hooks[{name!r}]: {hook!r} is not callable")
        checked[name] = tuple(callables)
    return checked.get("request", ()), checked.get("response", ())


async def emit(hooks: Sequence[Callable[[Any], Awaitable[None] | None]], event: Any) -> None:
    """Call each hook with ``event`` in order, awaiting those that return an awaitable."""
    for hook in hooks:
        result = hook(event)
        if result is not None and inspect.isawaitable(result):
            await result
