"""A udata-like dataset catalog on 127.0.0.1 that moves while it is crawled.

It serves ``/api/1/site/``, ``/api/1/datasets/`` and ``/api/1/datasets/{id}/`` the way the real
server does (see /work/shared/UDATA-SERVER-NOTES.md): ``page``, ``page_size``, ``total``,
``next_page``/``previous_page``, 404 past the end, 400 on a bad ``page``/``page_size``/``sort``,
``sort`` over ``created`` (``internal.created_at_internal``) and ``last_update`` with an optional
``-``, the default order newest first, ``X-Fields`` masks applied as flask-restx applies them
(only the named keys, nested masks on lists), 404 for a private dataset and 410 for a deleted
one fetched by id.

The catalog changes **during** the crawl, driven by a seeded :class:`random.Random`: removals
(deleted or made private; half of them among the oldest third, i.e. the early pages of an
ascending ``created`` walk), additions (created "now": last in ``created`` order), private
datasets becoming public (created long ago: they land in the middle of the order; like the real
server, only their ``last_modified`` moves) and edits (``last_modified`` moves to "now",
``last_update`` too half of the time). Mutations are planned up front: a fixed number
(``mutations``), each attached to a request number drawn in ``[2, horizon]``; a mutation runs
when its request arrives, before that request's own random latency, so the pages answered
concurrently see the catalog before and after it. Nothing else changes the catalog, and nothing
loops: requests past the plan find a still catalog.

``stable`` is what the crawl owes: the ids listed when the first request arrived and never
removed afterwards.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.faults import serve_local
from tests.test_mirror_store import dataset

__all__ = ["MaskError", "MovingCatalog", "apply_mask", "moving_catalog", "parse_mask"]

#: Creation dates of the seeded datasets start here, one hour apart; "now" comes after.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
#: udata's ``sort`` choices for datasets that this server implements, and the field they use.
SORTS = {"created": ("internal", "created_at_internal"), "last_update": (None, "last_update")}
NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please"
    " check your spelling and try again."
)


class MaskError(ValueError):
    """An X-Fields mask flask-restx would refuse (400 "Mask parse error: ...")."""


Mask = dict[str, "Mask | None"]


def parse_mask(text: str) -> Mask:
    """``data{id,last_update},total`` → ``{"data": {"id": None, "last_update": None}, ...}``."""
    mask, end = _parse(text.replace(" ", ""), 0)
    if end != len(text.replace(" ", "")):
        raise MaskError("Unexpected closing bracket")
    return mask


def _parse(text: str, at: int) -> tuple[Mask, int]:
    mask: Mask = {}
    name = ""
    while at < len(text):
        char = text[at]
        if char == "{":
            if not name:
                raise MaskError("Unexpected opening bracket")
            mask[name], at = _parse(text, at + 1)
            if at >= len(text) or text[at] != "}":
                raise MaskError("Missing closing bracket")
            name = ""
            at += 1
            continue
        if char == "}":
            break
        if char == ",":
            if name:
                mask[name] = None
            name = ""
        else:
            name += char
        at += 1
    if name:
        mask[name] = None
    return mask, at


def apply_mask(value: Any, mask: Mask | None) -> Any:
    """Only the masked keys (unknown ones are ignored silently, as udata does)."""
    if mask is None:
        return value
    if isinstance(value, list):
        return [apply_mask(item, mask) for item in value]
    if isinstance(value, dict):
        return {key: apply_mask(value[key], sub) for key, sub in mask.items() if key in value}
    return value


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


class MovingCatalog:
    """The server (``start()``/``stop()``); see the module docstring.

    Args:
        size: public datasets at the start (ids of ``dataset(1..size)``).
        seed: drives the mutation plan, the victims and the latencies.
        mutations: how many mutations in all (0: a still catalog).
        horizon: mutations are attached to request numbers 2..horizon (default: the number of
            requests a crawl at ``page_size`` 10 makes, so that they land during the crawl).
        hidden: private datasets interleaved in the creation order, published by mutations.
        latency: each request waits a random 0..latency seconds before it is answered.
        total: a ``total`` reported instead of the true one (a listing lying about its size).
        serve_size: at most this many items per page, whatever ``page_size`` asks (the asked
            one is still echoed in ``page_size``), like a server with its own ceiling.
    """

    def __init__(
        self,
        size: int = 300,
        *,
        seed: int = 0,
        mutations: int = 30,
        horizon: int | None = None,
        hidden: int = 30,
        latency: float = 0.004,
        total: int | None = None,
        serve_size: int | None = None,
    ) -> None:
        self._random = random.Random(f"mutations {seed}")
        self._latency_random = random.Random(f"latency {seed}")
        self.latency = latency
        self.total_override = total
        self.serve_size = serve_size
        #: Every dataset ever served, by id (removed ones stay, flagged).
        self.records: dict[str, dict[str, Any]] = {}
        #: Private datasets that a mutation may publish (never one that was listed before).
        self.unpublished: list[str] = []
        number = 0
        hidden_at = set(self._random.sample(range(size + hidden), hidden)) if hidden else set()
        for position in range(size + hidden):
            number += 1
            record = self._make(number, EPOCH + timedelta(hours=position))
            if position in hidden_at:
                record["private"] = True
                self.unpublished.append(record["id"])
            self.records[record["id"]] = record
        self._next_number = number
        self._now = EPOCH + timedelta(days=3650)
        self.initial = set(self.visible_ids())
        #: Ids removed (deleted or made private) and ids added (new or published) so far.
        self.removed: set[str] = set()
        self.added: set[str] = set()
        #: (request number, kind, dataset id) of each mutation done, in order.
        self.log: list[tuple[int, str, str]] = []
        horizon = horizon if horizon is not None else size // 10 + 3
        triggers = sorted(self._random.randint(2, max(2, horizon)) for _ in range(mutations))
        #: Request number → how many mutations run when it arrives.
        self.plan: dict[int, int] = {}
        for trigger in triggers:
            self.plan[trigger] = self.plan.get(trigger, 0) + 1
        self.requests = 0
        #: Request numbers of the listing pages answered (after their latency).
        self.pages_answered: list[int] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    # --- the catalog ---------------------------------------------------------------------

    def _make(self, number: int, created: datetime) -> dict[str, Any]:
        record = dataset(number, resources=0)
        modified = created + timedelta(minutes=self._random.randint(0, 60 * 24 * 400))
        record["created_at"] = _stamp(created)
        record["last_modified"] = _stamp(modified)
        record["last_update"] = _stamp(modified)
        record["internal"] = {
            "created_at_internal": _stamp(created),
            "last_modified_internal": _stamp(modified),
        }
        record["private"] = False
        record["deleted"] = None
        record["uri"] = f"http://127.0.0.1:7000/api/1/datasets/{record['slug']}/"
        return record

    @staticmethod
    def listed(record: dict[str, Any]) -> bool:
        return not record["private"] and not record["deleted"] and not record["archived"]

    def ordered(self, sort: str) -> list[dict[str, Any]]:
        """The listed datasets in ``sort`` order (udata's default: newest created first)."""
        descending = sort.startswith("-")
        group, field = SORTS[sort.lstrip("-")]

        def key(record: dict[str, Any]) -> tuple[str, str]:
            holder = record[group] if group else record
            return (holder[field], record["id"])

        found = [record for record in self.records.values() if self.listed(record)]
        return sorted(found, key=key, reverse=descending)

    def visible_ids(self) -> list[str]:
        return [record["id"] for record in self.ordered("created")]

    @property
    def stable(self) -> set[str]:
        """Listed from the first request to the last: what a complete crawl must store."""
        return self.initial - self.removed

    def _tick(self) -> str:
        self._now += timedelta(seconds=1)
        return _stamp(self._now)

    def mutate(self, at: int) -> None:
        """One mutation, chosen by the seeded generator (``at``: the request number)."""
        listed = self.visible_ids()
        roll = self._random.random()
        if roll < 0.5 and len(listed) > 1:
            if self._random.random() < 0.5:  # the early pages of the ascending walk
                victim = self._random.choice(listed[: max(1, len(listed) // 3)])
            else:
                victim = self._random.choice(listed)
            record = self.records[victim]
            if self._random.random() < 0.7:
                record["deleted"] = self._tick()
                kind = "deleted"
            else:
                record["private"] = True
                kind = "made private"
            record["last_modified"] = record["last_update"] = self._tick()
            self.removed.add(victim)
        elif roll < 0.7 or (roll < 0.85 and not self.unpublished):
            self._next_number += 1
            now = self._tick()
            record = self._make(self._next_number, self._now)
            record["last_modified"] = record["last_update"] = now
            self.records[record["id"]] = record
            self.added.add(record["id"])
            victim, kind = record["id"], "created"
        elif roll < 0.85:
            victim = self.unpublished.pop(self._random.randrange(len(self.unpublished)))
            record = self.records[victim]
            record["private"] = False
            # As the real server does: last_modified moves, last_update (the newest of the
            # resources' changes) does not.
            record["last_modified"] = self._tick()
            self.added.add(victim)
            kind = "published"
        else:
            victim = self._random.choice(listed)
            record = self.records[victim]
            record["last_modified"] = self._tick()
            if self._random.random() < 0.5:  # a resource changed too
                record["last_update"] = record["last_modified"]
            kind = "edited"
        self.log.append((at, kind, victim))

    def postpone(self, requests: int) -> None:
        """Move the mutation plan ``requests`` requests later (after a still first crawl)."""
        self.plan = {number + requests: count for number, count in self.plan.items()}

    # --- the server ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/1"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/1/site/", self._site)
        app.router.add_get("/api/1/datasets/", self._list)
        app.router.add_get("/api/1/datasets/{id}/", self._get)
        self._runner, self.port = await serve_local(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _arrive(self) -> int:
        """Count the request, run the mutations planned for it, then wait its latency."""
        self.requests += 1
        number = self.requests
        for _ in range(self.plan.pop(number, 0)):
            self.mutate(number)
        if self.latency:
            await asyncio.sleep(self._latency_random.uniform(0, self.latency))
        return number

    @staticmethod
    def _masked(request: web.Request, body: Any) -> web.Response:
        header = request.headers.get("X-Fields")
        if header:
            try:
                body = apply_mask(body, parse_mask(header))
            except MaskError as error:
                return web.json_response({"message": f"Mask parse error: {error}"}, status=400)
        return web.json_response(body)

    async def _site(self, request: web.Request) -> web.Response:
        await self._arrive()
        return self._masked(request, {"id": "moving", "title": "a moving udata catalog"})

    async def _list(self, request: web.Request) -> web.Response:
        number = await self._arrive()
        errors: dict[str, str] = {}
        values: dict[str, int] = {}
        for name, default in (("page", 1), ("page_size", 20)):
            text = request.query.get(name, str(default))
            try:
                values[name] = int(text)
            except ValueError:
                errors[name] = f"The page size to fetch {text} is not a valid integer"
                continue
            if values[name] < 1:
                errors[name] = f"Invalid {name}: {text}. {name} must be a positive integer"
        sort = request.query.get("sort", "-created")
        if sort.lstrip("-") not in SORTS:
            errors["sort"] = f"The value '{sort}' is not a valid choice for 'sort'."
        if errors:
            body = {"errors": errors, "message": "Input payload validation failed"}
            return web.json_response(body, status=400)
        page, asked = values["page"], values["page_size"]
        size = min(asked, self.serve_size) if self.serve_size else asked
        items = self.ordered(sort)
        chunk = items[(page - 1) * size : page * size]
        if not chunk and page != 1:
            return web.json_response({"message": NOT_FOUND}, status=404)
        self.pages_answered.append(number)
        url = f"{self.base_url}/datasets/"
        total = len(items) if self.total_override is None else self.total_override
        body = {
            "data": chunk,
            "next_page": f"{url}?page={page + 1}&page_size={asked}"
            if page * size < len(items)
            else None,
            "page": page,
            "page_size": asked,
            "previous_page": f"{url}?page={page - 1}&page_size={asked}" if page > 1 else None,
            "total": total,
        }
        return self._masked(request, body)

    async def _get(self, request: web.Request) -> web.Response:
        await self._arrive()
        record = self.records.get(request.match_info["id"])
        if record is None or record["private"]:
            return web.json_response({"message": NOT_FOUND}, status=404)
        if record["deleted"]:
            return web.json_response({"message": "Dataset has been deleted"}, status=410)
        return self._masked(request, copy.deepcopy(record))


async def moving_catalog(catalog: MovingCatalog) -> AsyncIterator[MovingCatalog]:
    """Start ``catalog``, yield it, stop it (for a fixture)."""
    await catalog.start()
    try:
        yield catalog
    finally:
        await catalog.stop()
