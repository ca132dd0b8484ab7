"""A fault-injecting HTTP server on 127.0.0.1 for retry and pagination tests.

Each path gets a script: a list of actions consumed one per request (the last one repeats).
Every request is recorded with its arrival time and headers. Nothing here loops unbounded:
a test's server lives for that test only and answers what it is told.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Action:
    """What the server does with one request."""

    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    reset: bool = False  # close the connection without answering
    truncate: bool = False  # announce a longer body than sent, then close


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    at: float


class FaultServer:
    """Script answers per path (``server.script("/site/", Action(503), Action(200, body))``)."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Action]] = {}
        self.seen: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/1"

    def script(self, path: str, *actions: Action) -> None:
        self.scripts[path] = list(actions)

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_local(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/api/1")
        self.seen.append(
            Seen(
                request.method, path, request.query_string, dict(request.headers), time.monotonic()
            )
        )
        script = self.scripts.get(path)
        if not script:
            return web.json_response({"message": "not scripted"}, status=404)
        action = script.pop(0) if len(script) > 1 else script[0]
        if action.delay:
            await asyncio.sleep(action.delay)
        body = action.body if isinstance(action.body, bytes) else json.dumps(action.body).encode()
        if action.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if action.truncate:
            response = web.StreamResponse(
                status=action.status, headers={"Content-Length": str(len(body) + 100)}
            )
            await response.prepare(request)
            await response.write(body)
            assert request.transport is not None
            request.transport.abort()
            return response
        return web.Response(
            status=action.status,
            body=body,
            headers={"Content-Type": "application/json", **action.headers},
        )


async def serve_local(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 at a free port (over TLS with ``ssl_context``); the caller
    cleans the runner up."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


async def fault_server() -> AsyncIterator[FaultServer]:
    server = FaultServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
