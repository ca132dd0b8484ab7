"""What a check run is asked to do, what it did, and how it is going."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from aiohttp.abc import AbstractResolver

from .._client import DEFAULT_BASE_URL, check_api_key, check_header_value, mask_credentials
from .._display import clock
from .._errors import ArgumentError
from .._mirror.config import DEFAULT_DB, MirrorError
from .._mirror.pgurl import DatabaseURL, is_database_url
from .._version import __version__

__all__ = [
    "CONTACT_URL",
    "CheckConfig",
    "CheckError",
    "CheckProgress",
    "CheckProgressCallback",
    "CheckSummary",
    "HostLimits",
    "user_agent",
]

#: Where a site owner who sees the checker in their logs learns what it is.
CONTACT_URL = "https://github.com/aioudata/aioudata"
DAY = 86_400.0


class CheckError(MirrorError):
    """A check run cannot start or go on; ``code`` is the exit status the command line uses."""


@dataclass(frozen=True, slots=True)
class HostLimits:
    """Politeness towards one host: requests in flight, and requests per second (None: no
    rate limit, only the in-flight one)."""

    in_flight: int = 2
    rate: float | None = 5.0

    def __post_init__(self) -> None:
        if self.in_flight < 1:
            raise CheckError("a host's requests in flight must be at least 1", code=2)
        if self.rate is not None and self.rate <= 0:
            object.__setattr__(self, "rate", None)


def user_agent(contact: str | None = None) -> str:
    """The checker's User-Agent: the tool, its version, where to learn more, who runs it."""
    extra = f"; {contact}" if contact else ""
    return f"aioudata/{__version__} (resource checker; +{CONTACT_URL}{extra})"


def _database(db: Path | DatabaseURL | str, url: DatabaseURL | str | None) -> Path | DatabaseURL:
    """The run's database from ``db`` and ``db_url``: a URL is read (a bad one: exit status 2).

    ``db`` may still be a ``postgresql://`` string (as before ``db_url``); ``db`` other than the
    default file and ``db_url`` together are refused.
    """
    if isinstance(db, str):
        db = DatabaseURL.parse(db) if is_database_url(db) else Path(db)
    if url is None:
        return db
    if db != DEFAULT_DB:
        raise CheckError("give db or db_url, not both", code=2)
    return DatabaseURL.parse(url) if isinstance(url, str) else url


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """Options of one check run; the defaults are polite to every host.

    Resources come from the mirror database ``db`` (``aioudata mirror``) when it holds one,
    else from the API at ``base_url`` (``api_key``, or ``UDATA_API_KEY``, is sent to the API
    only, never to the hosts of the files). Results go to ``db`` either way: the SQLite file, or
    the schema of a PostgreSQL database given as ``db_url`` (``postgresql://...``, whose
    password is never shown). Once made, ``db`` is the database the run uses (the file, or the
    URL read: a ``DatabaseURL``) and ``db_url`` that URL, or None for a file.

    Politeness: ``concurrency`` requests in flight in all, ``host_limits.get(host,
    per_host)`` for each host (``host`` is ``name[:port]``); a host answering 429/503 is left
    alone for its ``Retry-After`` (else ``backoff`` seconds, doubling), one failing
    ``breaker_failures`` times in a row (timeouts, refused or reset connections, 502/503/504)
    is left alone for ``breaker_cooldown`` seconds (doubling), then tried with one request;
    after ``breaker_trips`` such pauses, or a Retry-After over ``max_backoff``, its remaining
    URLs are recorded as ``host_down`` (or ``throttled``) without a request, for a later run.

    Incremental: a resource is checked when it was never checked, its URL changed, or its
    ``next_check_at`` has come: ``min_interval`` after a change or a failure, then half the
    time it has stayed unchanged, up to ``max_interval`` (seconds). ``all`` checks every one.
    """

    #: The SQLite file, or a PostgreSQL database (a ``postgresql://`` URL, read once).
    db: Path | DatabaseURL = DEFAULT_DB
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    all: bool = False
    organization: tuple[str, ...] = ()
    format: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    concurrency: int = 64
    per_host: HostLimits = HostLimits()
    host_limits: Mapping[str, HostLimits] = field(default_factory=dict)
    timeout: float = 20.0
    connect_timeout: float = 10.0
    max_redirects: int = 10
    contact: str | None = None
    robots: bool = False
    backoff: float = 10.0
    max_backoff: float = 600.0
    #: Answers 429/503 one URL may get before it is recorded as such.
    throttle_attempts: int = 3
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    breaker_trips: int = 3
    min_interval: float = DAY
    max_interval: float = 30 * DAY
    #: Page size of the API walk (when the database holds no mirror).
    page_size: int = 1000
    #: Resolves host names (tests, air-gapped setups); aiohttp's default when None.
    resolver: AbstractResolver | None = field(default=None, repr=False, compare=False)
    #: Now, as an aware datetime (tests move it to see the schedule at work).
    now: Callable[[], datetime] | None = field(default=None, repr=False, compare=False)
    #: A PostgreSQL database instead of the SQLite file ``db``: ``postgresql://...``.
    db_url: DatabaseURL | str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["base_url"] = mask_credentials(self.base_url)
        return f"CheckConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise CheckError("--concurrency must be at least 1", code=2)
        if self.max_redirects < 0:
            raise CheckError("--max-redirects must be 0 or more", code=2)
        for name in ("timeout", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise CheckError(f"{name} must be positive", code=2)
        if not 0 < self.min_interval <= self.max_interval:
            raise CheckError("min_interval must be positive and at most max_interval", code=2)
        if self.throttle_attempts < 1 or self.breaker_failures < 1 or self.breaker_trips < 1:
            raise CheckError("attempts, failures and trips must be at least 1", code=2)
        if not 1 <= self.page_size <= 1000:
            raise CheckError("page_size must be between 1 and 1000", code=2)
        if self.contact is not None:
            try:
                check_header_value(self.contact, "--contact", what="a contact")
            except ArgumentError as error:
                raise CheckError(str(error), code=2) from None
        if self.api_key:
            try:
                check_api_key(self.api_key)
            except ArgumentError as error:
                raise CheckError(str(error), code=2) from None
        db = _database(self.db, self.db_url)
        object.__setattr__(self, "db", db)
        object.__setattr__(self, "db_url", db if isinstance(db, DatabaseURL) else None)
        object.__setattr__(self, "host_limits", {k.lower(): v for k, v in self.host_limits.items()})
        object.__setattr__(self, "host", tuple(h.strip().lower() for h in self.host if h.strip()))
        object.__setattr__(
            self, "format", tuple(f.strip().lower() for f in self.format if f.strip())
        )

    def limits(self, host: str) -> HostLimits:
        """The politeness limits of ``host`` (``name[:port]``)."""
        found = self.host_limits.get(host)
        if found is None and ":" in host:
            found = self.host_limits.get(host.rsplit(":", 1)[0])
        return found or self.per_host

    def options(self) -> dict[str, Any]:
        """What selects the run's resources: a run resumes only with the same ones."""
        return {
            "all": self.all,
            "organization": sorted(self.organization),
            "format": sorted(self.format),
            "host": sorted(self.host),
        }


@dataclass(frozen=True, slots=True)
class CheckProgress:
    """Where a check run is, given to progress callbacks about once a second.

    ``total`` is the URLs this run has to check (a resumed run: what was left), ``done`` those
    recorded so far. ``hosts_active`` have a request in flight or URLs left to check now;
    ``hosts_waiting`` are backing off (429/503) or paused by their circuit
    breaker; ``hosts_down`` were given up for this run. ``urls_per_second`` and ``eta``
    (seconds, smoothed) are measured over the last 30 s; None until known. ``outcomes``
    counts the results so far by kind, as :attr:`CheckSummary.outcomes` does.
    """

    total: int
    done: int
    requests: int
    in_flight: int
    hosts: int
    hosts_active: int
    hosts_waiting: int
    hosts_down: int
    elapsed: float
    urls_per_second: float | None
    eta: float | None
    final: bool = False
    outcomes: Mapping[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One line for a log or a terminal."""
        speed = f"{self.urls_per_second:.1f} URLs/s" if self.urls_per_second else "- URLs/s"
        eta = f" ETA {clock(self.eta)}" if self.eta is not None else ""
        return (
            f"checked {self.done:,}/{self.total:,}  {speed}  {self.requests:,} requests"
            f"  hosts: {self.hosts_active} active, {self.hosts_waiting} backing off,"
            f" {self.hosts_down} down  {clock(self.elapsed)}{eta}"
        )


class CheckProgressCallback(Protocol):
    """What ``run_checks(progress=...)`` accepts: called in the event loop, must be quick."""

    def __call__(self, update: CheckProgress, /) -> object: ...


@dataclass(slots=True)
class CheckSummary:
    """What a check run did.

    ``outcomes`` counts this run's results by kind: ``2xx``, ``3xx``, ``4xx``, ``5xx`` (the
    final HTTP status), ``not_modified`` (a 304 to a conditional request), or the error class
    (``timeout``, ``dns``, ``refused``, ``tls``, ``host_down``...). ``changed`` counts the
    results that differ from the resource's previous one (a first check included).
    """

    database: str
    source: Literal["mirror", "api"]
    run_id: int
    resumed: bool = False
    status: Literal["ok", "interrupted", "failed"] = "ok"
    total: int = 0
    checked: int = 0
    requests: int = 0
    changed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    hosts: int = 0
    hosts_down: list[str] = field(default_factory=list)
    hosts_throttled: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def broken(self) -> int:
        """Results that are not a working file: 4xx, 5xx and every error class."""
        working = ("2xx", "3xx", "not_modified")
        return sum(count for kind, count in self.outcomes.items() if kind not in working)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)

    def lines(self) -> list[str]:
        """A human summary."""
        head = "resumed check" if self.resumed else "check"
        out = [
            f"{head} of {self.total:,} URLs in {self.database} ({self.source}): {self.status}",
            f"  {self.checked:,} checked with {self.requests:,} requests on {self.hosts:,} hosts"
            f" in {clock(self.elapsed)}",
            f"  {self.changed:,} changed, {self.broken:,} broken",
        ]
        if self.outcomes:
            kinds = sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))
            out.append("  " + ", ".join(f"{kind} {count:,}" for kind, count in kinds))
        return out + host_lines(self.hosts_down, self.hosts_throttled)


def host_lines(down: list[str], throttled: list[str]) -> list[str]:
    """The summary's lines naming the hosts given up."""
    out = []
    for label, hosts in (("down", down), ("throttled", throttled)):
        if hosts:
            more = f" and {len(hosts) - 8} more" if len(hosts) > 8 else ""
            shown = ", ".join(hosts[:8]) + more
            out.append(f"  hosts {label} (retried by a later run): {shown}")
    return out
