"""A local udata look-alike serving a synthetic catalog of any size, for benchmarks and tests.

    server = CatalogServer(CatalogConfig(datasets=74_000, latency=0.15))
    base_url = await server.start()        # http://127.0.0.1:<port>/api/1
    ...
    await server.stop()

or in a child process of its own (so its CPU and memory stay out of the measured process)::

    with ServerProcess(CatalogConfig(datasets=10_000)) as server:
        server.base_url

Items are made on the fly from templates built out of responses recorded from the real udata
server (tests/fixtures/responses/): each template is encoded once with its identifiers replaced by
slots, and an item is its template's chunks joined around its own id, slug and resource ids. So
memory stays flat whatever the catalog's size; only a few encoded pages are cached.

Also ``/api/1/site/`` (recorded) and ``/api/1/<listing>/<id or slug>/``. Pagination is udata's:
``page`` (default 1) and ``page_size`` (default 20), ``next_page`` and
``previous_page`` absolute URLs or null, 404 with udata's message past the last page (page 1 of
an empty listing is a 200 with no data), 400 with udata's validation body for a page or
page_size below 1. Served only on 127.0.0.1.

Knobs: ``latency`` (seconds slept before each answer), ``page_size_cap`` (bigger requests are
clamped, and the page says so, or refused with a 502 like the real gateway), ``fault_rate`` (this
share of requests, drawn from a seeded generator, fails with one of ``fault_kinds``: 500 with
udata's JSON, 502/503/504 with an HTML gateway page, 429 with Retry-After, or ``reset``: the
connection is dropped mid-body). ``POST /_bench/config`` changes the knobs of a running server,
``GET /_bench/stats`` reports what it served.

This module imports nothing from the project: ``python benchmarks/_server.py --datasets N``
runs it stand-alone and prints its base URL on the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["CatalogConfig", "CatalogServer", "ServerProcess"]

RESPONSES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "responses"
RECORDED_ORIGIN = "http://127.0.0.1:7000"

#: Where each listing's templates come from: recorded pages first, then single objects.
SOURCES = {
    "datasets": ("datasets_page.json", "dataset.json", "dataset_harvested.json"),
    "organizations": ("organizations_page.json", "organization.json"),
    "reuses": ("reuses_page.json", "reuse.json"),
}
#: The first 8 hex digits of a synthetic ObjectId say which listing it belongs to.
KIND_CODE = {"datasets": 0xD, "organizations": 0x0, "reuses": 0x3E}
FAULT_KINDS = ("500", "502", "503", "504", "reset")
GATEWAY_PAGE = (
    b"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} "
    b"{reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class CatalogConfig:
    """What the server holds and how it misbehaves."""

    datasets: int = 1000
    organizations: int = 100
    reuses: int = 100
    #: Seconds slept before answering each request.
    latency: float = 0.0
    #: Largest page_size honoured; None: no cap (as udata's v1 lists).
    page_size_cap: int | None = None
    #: "clamp": serve page_size_cap items and say so in the page; "502": refuse, like the gateway.
    over_cap: str = "clamp"
    #: Share of requests (0..1) answered with a fault.
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    #: Retry-After (seconds) sent with a 429 fault.
    retry_after: float = 0.0
    seed: int = 0
    #: Encoded pages kept, most recently used first.
    page_cache: int = 8
    #: Resources of each dataset (the recorded ones repeated, each with its own id); None:
    #: as recorded (1 to 4). Real data.gouv.fr datasets often have 8 or more.
    resources: int | None = None
    #: Characters of each dataset's description (the recorded one repeated); None: as recorded.
    #: Real descriptions run to several KB: with 8 resources, 8,000 gives ~20 KB records.
    description: int | None = None

    def __post_init__(self) -> None:
        if min(self.datasets, self.organizations, self.reuses) < 0:
            raise ValueError("catalog sizes must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be within [0, 1]")
        unknown = set(self.fault_kinds) - {*FAULT_KINDS, "429"}
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if self.over_cap not in {"clamp", "502"}:
            raise ValueError("over_cap must be 'clamp' or '502'")

    def size(self, kind: str) -> int:
        return int(getattr(self, kind))


def object_id(kind: str, number: int) -> str:
    """The synthetic ObjectId of item ``number`` (0-based) of listing ``kind``."""
    return f"{KIND_CODE[kind]:08x}{number:016x}"


def resource_id(number: int, index: int) -> str:
    return f"{number:08x}-{index:04x}-4000-8000-{number:012x}"


class _Template:
    """One recorded item as encoded chunks around its identifier slots."""

    _SLOT = re.compile(rb"@@(ID|SLUG|R\d+)@@")

    def __init__(self, item: dict[str, Any], origin: str) -> None:
        #: Top-level scalar fields, for X-Fields masks (``data{id,last_modified}``).
        self.scalars = {k: v for k, v in item.items() if not isinstance(v, dict | list)}
        text = json.dumps(item, ensure_ascii=True, separators=(",", ":"))
        text = text.replace(RECORDED_ORIGIN, origin)
        # Longest identifiers first, so a slug that contains the id (or the reverse) stays whole.
        slots = {str(item["id"]): "@@ID@@"}
        if item.get("slug"):
            slots[str(item["slug"])] = "@@SLUG@@"
        for index, resource in enumerate(item.get("resources") or ()):
            if isinstance(resource, dict) and resource.get("id"):
                slots[str(resource["id"])] = f"@@R{index}@@"
        for old in sorted(slots, key=len, reverse=True):
            text = text.replace(old, slots[old])
        parts = self._SLOT.split(text.encode())
        self.chunks: list[bytes] = parts[0::2]
        self.slots: list[str] = [slot.decode() for slot in parts[1::2]]
        self.resources = sum(1 for slot in self.slots if slot.startswith("R"))

    def render(self, kind: str, number: int, out: list[bytes]) -> None:
        values = {"ID": object_id(kind, number).encode(), "SLUG": f"{kind}-{number}".encode()}
        chunks, slots = self.chunks, self.slots
        for i, slot in enumerate(slots):
            out.append(chunks[i])
            value = values.get(slot)
            if value is None:
                value = values[slot] = resource_id(number, int(slot[1:])).encode()
            out.append(value)
        out.append(chunks[-1])


def _recorded(name: str) -> dict[str, Any]:
    return json.loads((RESPONSES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _templates(kind: str, origin: str, config: CatalogConfig) -> list[_Template]:
    out = []
    for name in SOURCES[kind]:
        body = _recorded(name)["body"]
        for item in body.get("data", [body]):
            if kind == "datasets":
                item = _grown(item, config.resources, config.description)
            out.append(_Template(item, origin))
    return out


def _grown(item: dict[str, Any], resources: int | None, description: int | None) -> dict[str, Any]:
    """``item`` with ``resources`` resources and a ``description`` that many characters long."""
    item = json.loads(json.dumps(item))
    recorded = item.get("resources") or []
    if resources is not None and recorded:
        grown = []
        for index in range(resources):
            copy = json.loads(json.dumps(recorded[index % len(recorded)]))
            copy["id"] = f"{copy['id']}-{index}" if index >= len(recorded) else copy["id"]
            grown.append(copy)
        item["resources"] = grown
    text = item.get("description") or "description"
    if description is not None:
        item["description"] = (text * (description // len(text) + 1))[:description]
    return item


def _masked(fields: list[str], kind: str, number: int, template: _Template) -> dict[str, Any]:
    """The fields of a masked item: its own id and slug, the template's scalars."""
    own = {"id": object_id(kind, number), "slug": f"{kind}-{number}"}
    return {name: own.get(name, template.scalars.get(name)) for name in fields}


class CatalogServer:
    """The synthetic catalog served by aiohttp on 127.0.0.1, in the running event loop."""

    def __init__(self, config: CatalogConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or CatalogConfig(), **overrides)
        self.stats: Counter[str] = Counter()
        self._random = random.Random(self.config.seed)
        self._runner: web.AppRunner | None = None
        self._origin = ""
        self._templates: dict[str, list[_Template]] = {}
        self._pages: OrderedDict[tuple[str, int, int, str | None], bytes] = OrderedDict()
        self._not_found = json.dumps(_recorded("error_404_page_past_end.json")["body"]).encode()
        self._bad_page = _recorded("error_400_bad_page_size.json")["body"]
        self._site_body = json.dumps(_recorded("site.json")["body"]).encode()

    @property
    def base_url(self) -> str:
        """The API root, ``http://127.0.0.1:<port>/api/1``; only once started."""
        if not self._origin:
            raise RuntimeError("the server is not started")
        return f"{self._origin}/api/1"

    async def start(self) -> str:
        """Listen on 127.0.0.1, on a free port; returns the base URL."""
        app = web.Application()
        for kind in SOURCES:
            app.router.add_get(f"/api/1/{kind}/", self._listing)
            app.router.add_get(f"/api/1/{kind}/{{id}}/", self._item)
        app.router.add_get("/api/1/site/", self._site)
        app.router.add_get("/_bench/stats", self._get_stats)
        app.router.add_post("/_bench/config", self._set_config)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self._runner = runner
        self._origin = f"http://127.0.0.1:{port}"
        self._templates = {kind: _templates(kind, self._origin, self.config) for kind in SOURCES}
        return self.base_url

    async def stop(self) -> None:
        """Close the listening socket and every connection."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> CatalogServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def reconfigure(self, **changes: Any) -> None:
        """Change knobs (latency, fault_rate, ...) of the running server; the cache is dropped."""
        self.config = replace(self.config, **changes)
        self._random = random.Random(self.config.seed)
        self._pages.clear()

    # What one listing holds.

    def ids(self, kind: str = "datasets") -> list[str]:
        """Every id of a listing, in page order (for tests that check nothing is lost)."""
        return [object_id(kind, n) for n in range(self.config.size(kind))]

    def item(self, kind: str, number: int) -> bytes:
        templates = self._templates[kind]
        out: list[bytes] = []
        templates[number % len(templates)].render(kind, number, out)
        return b"".join(out)

    def page(
        self, kind: str, page: int, page_size: int, mask: list[str] | None = None
    ) -> bytes | None:
        """The encoded page, or None past the end; ``mask``: only these fields of each item."""
        key = (kind, page, page_size, ",".join(mask) if mask is not None else None)
        cached = self._pages.get(key)
        if cached is not None:
            self._pages.move_to_end(key)
            return cached
        total = self.config.size(kind)
        first = (page - 1) * page_size
        if first >= total and page != 1:
            return None
        last = min(total, first + page_size)
        templates = self._templates[kind]
        if mask is None:
            out = [b'{"data":[']
            for number in range(first, last):
                if number > first:
                    out.append(b",")
                templates[number % len(templates)].render(kind, number, out)
            out.append(b"]")
        else:
            items = [
                _masked(mask, kind, n, templates[n % len(templates)]) for n in range(first, last)
            ]
            out = [b'{"data":', json.dumps(items, separators=(",", ":")).encode()]
        url = f"{self._origin}/api/1/{kind}/?page={{}}&page_size={page_size}"
        envelope = {
            "next_page": url.format(page + 1) if last < total else None,
            "page": page,
            "page_size": page_size,
            "previous_page": url.format(page - 1) if page > 1 else None,
            "total": total,
        }
        out.append(b"," + json.dumps(envelope, separators=(",", ":")).encode()[1:])
        body = b"".join(out)
        if self.config.page_cache > 0:
            self._pages[key] = body
            while len(self._pages) > self.config.page_cache:
                self._pages.popitem(last=False)
        return body

    # Handlers.

    async def _listing(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.split("/")[3]
        self.stats["requests"] += 1
        fault = await self._delay_or_fault(request)
        if fault is not None:
            return fault
        try:
            page = int(request.query.get("page", "1"))
            page_size = int(request.query.get("page_size", "20"))
        except ValueError:
            page, page_size = 0, 0
        if page < 1 or page_size < 1:
            return self._json(400, self._bad_page)  # udata's body for page_size=0
        cap = self.config.page_size_cap
        if cap is not None and page_size > cap:
            if self.config.over_cap == "502":
                return self._gateway(502)
            page_size = cap
        fields = request.headers.get("X-Fields", "")
        mask = None
        if fields.startswith("data{") and "}" in fields:  # udata's masks: data{id,...},total...
            mask = fields[len("data{") : fields.index("}")].split(",")
        body = self.page(kind, page, page_size, mask)
        if body is None:
            self.stats["404"] += 1
            return web.Response(status=404, body=self._not_found, content_type="application/json")
        self.stats["pages"] += 1
        return web.Response(body=body, content_type="application/json")

    async def _item(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.split("/")[3]
        self.stats["requests"] += 1
        fault = await self._delay_or_fault(request)
        if fault is not None:
            return fault
        wanted = request.match_info["id"]
        size = self.config.size(kind)
        number = next(
            (
                n
                for n in (_number(wanted, kind), _slug_number(wanted, kind))
                if n is not None and n < size
            ),
            None,
        )
        if number is None:
            return self._json(404, {"message": "Not Found"})
        return web.Response(body=self.item(kind, number), content_type="application/json")

    async def _delay_or_fault(self, request: web.Request) -> web.StreamResponse | None:
        config = self.config
        if config.latency > 0:
            await asyncio.sleep(config.latency)
        if config.fault_rate <= 0 or self._random.random() >= config.fault_rate:
            return None
        kind = self._random.choice(config.fault_kinds)
        self.stats[f"fault {kind}"] += 1
        self.stats["faults"] += 1
        if kind == "reset":
            # Promise a body, send part of it, drop the connection: a truncated answer.
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = 4096
            await response.prepare(request)
            await response.write(b'{"data": [')
            if request.transport is not None:
                request.transport.close()
            return response
        if kind == "429":
            response = self._json(429, {"message": "Too Many Requests"})
            response.headers["Retry-After"] = f"{config.retry_after:g}"
            return response
        if kind == "500":
            return self._json(500, {"message": "Internal Server Error"})
        return self._gateway(int(kind))

    async def _site(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        return web.Response(body=self._site_body, content_type="application/json")

    async def _get_stats(self, request: web.Request) -> web.Response:
        return self._json(200, {"stats": dict(self.stats), "config": asdict(self.config)})

    async def _set_config(self, request: web.Request) -> web.Response:
        changes = await request.json()
        reset_stats = bool(isinstance(changes, dict) and changes.pop("reset_stats", True))
        known = {f.name for f in fields(CatalogConfig)}
        if not isinstance(changes, dict) or set(changes) - known:
            return self._json(400, {"message": f"config keys are {sorted(known)}"})
        if "fault_kinds" in changes:
            changes["fault_kinds"] = tuple(changes["fault_kinds"])
        try:
            self.reconfigure(**changes)
        except (TypeError, ValueError) as error:
            return self._json(400, {"message": str(error)})
        if reset_stats:
            self.stats.clear()
        return self._json(200, asdict(self.config))

    @staticmethod
    def _json(status: int, body: Any) -> web.Response:
        return web.Response(status=status, body=json.dumps(body), content_type="application/json")

    @staticmethod
    def _gateway(status: int) -> web.Response:
        reason = {502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Time-out"}
        page = GATEWAY_PAGE.replace(b"{status}", str(status).encode()).replace(
            b"{reason}", reason[status]
        )
        return web.Response(status=status, body=page, content_type="text/html")


def _number(wanted: str, kind: str) -> int | None:
    if len(wanted) == 24 and wanted.startswith(f"{KIND_CODE[kind]:08x}"):
        try:
            return int(wanted[8:], 16)
        except ValueError:
            return None
    return None


def _slug_number(wanted: str, kind: str) -> int | None:
    prefix = f"{kind}-"
    if wanted.startswith(prefix) and wanted[len(prefix) :].isdigit():
        return int(wanted[len(prefix) :])
    return None


@dataclass
class ServerProcess:
    """A CatalogServer in a child process: ``with ServerProcess(config) as s: s.base_url``."""

    config: CatalogConfig = field(default_factory=CatalogConfig)
    base_url: str = ""
    _process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        command = [sys.executable, str(Path(__file__).resolve()), "--config", _dump(self.config)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.base_url = line
        return line

    def stop(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.stdin is not None:
            process.stdin.close()  # the child stops when its stdin closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix("/api/1")

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _dump(config: CatalogConfig) -> str:
    return json.dumps(asdict(config))


def _load(text: str) -> CatalogConfig:
    values = json.loads(text)
    values["fault_kinds"] = tuple(values.get("fault_kinds", FAULT_KINDS))
    return CatalogConfig(**values)


async def _serve(config: CatalogConfig) -> None:
    server = CatalogServer(config)
    print(await server.start(), flush=True)
    loop = asyncio.get_running_loop()
    # Until stdin closes (the parent went away or asked us to stop).
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a synthetic udata catalog locally.")
    parser.add_argument("--config", help="a CatalogConfig as JSON (overrides the flags)")
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--page-size-cap", type=int, default=None)
    args = parser.parse_args(argv)
    if args.config:
        config = _load(args.config)
    else:
        config = CatalogConfig(
            datasets=args.datasets,
            latency=args.latency,
            fault_rate=args.fault_rate,
            page_size_cap=args.page_size_cap,
        )
    asyncio.run(_serve(config))


if __name__ == "__main__":
    main()
