"""What every part of one mirror run shares: its options, clients, store and progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from .._client import Client, mask_credentials
from .._hooks import RequestEvent
from .._retry import RetryPolicy
from .config import MirrorConfig, MirrorError
from .entities import EntitySpec
from .progress import EntityProgress, Progress
from .store import AsyncStore, Counts

__all__ = ["Run", "make_client", "v2_url"]


def v2_url(base_url: str) -> str:
    """The API v2 root next to a v1 root (topics live there); credentials kept, never shown."""
    head, _, version = base_url.rstrip("/").rpartition("/")
    if version != "1" or not head:
        shown = mask_credentials(base_url)
        raise MirrorError(f"topics need the API v2: cannot derive it from {shown}", code=2)
    return f"{head}/2"


def make_client(
    config: MirrorConfig, base_url: str | None = None, *, retry: RetryPolicy | None = None
) -> Client:
    """A client with the run's pacing: ``rate`` requests/s, ``concurrency`` in flight."""
    return Client(
        base_url or config.base_url,
        api_key=config.api_key,
        rate=config.rate,
        burst=max(1, config.concurrency),
        max_in_flight=config.concurrency,
        retry=retry or config.retry or RetryPolicy(),
        user_agent=config.user_agent,
        timeout=config.timeout,
        event_hooks=config.event_hooks,
    )


@dataclass(eq=False)
class Run:
    """One run over several entities: one v1 client (and a v2 one for topics), one store.

    Every retry of the run's clients is counted for the entity whose URL it was for (from the
    clients' request events: the count holds however the run logs).
    """

    config: MirrorConfig
    store: AsyncStore
    client: Client
    progress: Progress
    specs: tuple[EntitySpec, ...] = ()
    _v2: Client | None = field(default=None, repr=False)
    _unhook: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._watch(self.client)

    def _watch(self, client: Client) -> None:
        self._unhook.append(client.add_event_hook("request", self._count_retry))

    def _count_retry(self, event: RequestEvent) -> None:
        if event.attempt < 2:
            return
        path = URL(event.url).path
        for spec in self.specs:
            if path.startswith(spec.list_endpoint.path) or f"/{spec.name}/" in path:
                self.live(spec).retries += 1
                return

    def client_for(self, spec: EntitySpec) -> Client:
        """The v1 client, or a v2 one (same options) for topics."""
        if spec.api_version == 1:
            return self.client
        if self._v2 is None:
            # From the configured URL: the client's own is shown without its credentials.
            self._v2 = make_client(self.config, v2_url(self.config.base_url))
            self._watch(self._v2)
        return self._v2

    async def close(self) -> None:
        """Stop counting the clients' retries; close the v2 client if one was made."""
        for remove in self._unhook:
            remove()
        if self._v2 is not None:
            await self._v2.close()

    def retries(self) -> int:
        """Retries of every client of the run."""
        return self.client.stats.retries + (self._v2.stats.retries if self._v2 else 0)

    def requests(self) -> int:
        """Requests of every client of the run."""
        return self.client.stats.requests + (self._v2.stats.requests if self._v2 else 0)

    def live(self, spec: EntitySpec) -> EntityProgress:
        """The progress counters of ``spec``."""
        return self.progress.entity(spec.name)

    def show(self, spec: EntitySpec, written: Counts) -> None:
        """Show what one write changed."""
        live = self.live(spec)
        live.new += written.new
        live.updated += written.updated
        live.deleted += written.deleted
        live.errors += written.errors

    def filters(self, spec: EntitySpec) -> dict[str, Any]:
        """The run's filters that this entity's listing accepts."""
        config = self.config
        args: dict[str, Any] = {}
        if config.organization:
            if spec.accepts("organization"):
                args["organization"] = config.organization
            elif spec.accepts("org"):
                args["org"] = config.organization
        if config.q and spec.accepts("q"):
            args["q"] = config.q
        if config.tag and spec.accepts("tag"):
            args["tag"] = list(config.tag)
        return args
