"""What a mirror run is asked to do, and what it did."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from yarl import URL

from .._client import DEFAULT_BASE_URL, check_api_key, mask_credentials
from .._errors import ArgumentError, UdataError
from .._hooks import EventHooks
from .._retry import RetryPolicy
from .entities import DEFAULT_ENTITIES

if TYPE_CHECKING:
    from .pgurl import DatabaseURL

__all__ = [
    "DEFAULT_DB",
    "EXIT_DATABASE",
    "EntitySummary",
    "MirrorConfig",
    "MirrorDatabaseError",
    "MirrorError",
    "MirrorSummary",
]

DEFAULT_DB = Path("udata-mirror.sqlite")
#: Name of the state database kept next to the files of a JSON Lines mirror.
JSONL_STATE = ".aioudata-mirror.sqlite"
MAX_PAGE_SIZE = 1000


class MirrorError(UdataError):
    """The mirror cannot run or go on; ``code`` is the exit status the command line uses."""

    def __init__(self, message: str, *, code: int = 1) -> None:
        self.code = code
        super().__init__(message)


#: Exit status of the command line when the mirror's PostgreSQL database cannot be used.
EXIT_DATABASE = 6


class MirrorDatabaseError(MirrorError):
    """The PostgreSQL database cannot be reached or used; ``kind`` says why.

    ``unreachable``, ``auth`` (password refused), ``missing`` (no such database),
    ``permission``, ``dropped`` (the connection was lost mid-run: every committed page is
    kept, the same command resumes), ``lock`` (the run lock's connection was lost mid-run: the
    run stopped rather than go on unprotected; the same command resumes) or ``failed``. Never
    holds the password.
    """

    def __init__(self, message: str, *, kind: str, code: int = EXIT_DATABASE) -> None:
        self.kind = kind
        super().__init__(message, code=code)


@dataclass(frozen=True, slots=True)
class MirrorConfig:
    """Options of one mirror run; the defaults are polite to a public portal.

    ``api_key=None`` takes ``UDATA_API_KEY`` from the environment. ``rate`` is requests per
    second for the whole run (``None`` or 0: unlimited), ``concurrency`` the requests in flight.
    ``format=None`` is JSON Lines when ``out`` is given, else SQLite (the file ``db``), or
    PostgreSQL when ``db_url`` (or ``db``) is a ``postgresql://`` URL. ``event_hooks`` are given
    to the run's clients (see :class:`~aioudata.Client`). Credentials in ``base_url`` are sent
    as Basic auth to that host only and never shown: not in the repr either.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    db: Path = DEFAULT_DB
    format: Literal["sqlite", "jsonl"] | None = None
    out: Path | None = None
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    concurrency: int = 4
    rate: float | None = 5.0
    page_size: int = 100
    organization: str | None = None
    q: str | None = None
    tag: tuple[str, ...] = ()
    full: bool = False
    #: Ids missing from a complete pass are checked one by one (up to this many) before
    #: being marked deleted: a catalog moving during the crawl can hide an id from a pass.
    verify_deletions: int = 500
    retry: RetryPolicy | None = None
    user_agent: str | None = None
    #: Seconds before a request without an answer is given up (then retried).
    timeout: float = 120.0
    #: Check the URL and the key with one ``GET /site/`` before anything else.
    preflight: bool = True
    event_hooks: EventHooks | None = field(default=None, repr=False, compare=False)
    #: A PostgreSQL database instead of the SQLite file ``db``: ``postgresql://...``.
    db_url: DatabaseURL | str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["base_url"] = mask_credentials(self.base_url)
        if self.db_url is not None:
            shown["db_url"] = str(self.db_url)  # never the password
        return f"MirrorConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        shown = mask_credentials(self.base_url)  # credentials in the URL are never shown
        try:
            url = URL(self.base_url)
        except (TypeError, ValueError) as error:
            raise MirrorError(f"--base-url {shown!r} is not a valid URL: {error}", code=2) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise MirrorError(f"--base-url must be an http(s) URL, not {shown!r}", code=2)
        if self.api_key:
            try:
                check_api_key(self.api_key)
            except ArgumentError as error:
                raise MirrorError(str(error), code=2) from None
        if self.concurrency < 1:
            raise MirrorError("--concurrency must be at least 1", code=2)
        if self.rate is not None and self.rate < 0:
            raise MirrorError("--rate must be positive, or 0 for unlimited", code=2)
        if not self.rate:
            object.__setattr__(self, "rate", None)  # 0: unlimited, as --rate 0
        if self.format is None:
            object.__setattr__(self, "format", "jsonl" if self.out is not None else "sqlite")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise MirrorError(f"--page-size must be between 1 and {MAX_PAGE_SIZE}", code=2)
        if self.format not in ("sqlite", "jsonl"):
            raise MirrorError("--format must be sqlite or jsonl", code=2)
        if self.format == "jsonl" and self.out is None:
            raise MirrorError("--format jsonl needs --out DIR", code=2)
        self._database_url()

    def _database_url(self) -> None:
        """``db_url`` (or a ``db`` given as a URL) read once: a :class:`DatabaseURL`."""
        from .pgurl import DatabaseURL, is_database_url

        url = self.db_url
        if url is None and isinstance(self.db, str) and is_database_url(self.db):
            url = self.db
            object.__setattr__(self, "db", DEFAULT_DB)
        if isinstance(url, str):
            url = DatabaseURL.parse(url)
        object.__setattr__(self, "db_url", url)
        if url is not None and self.format == "jsonl":
            raise MirrorError("JSON Lines (--out) keep their state in SQLite: no --db URL", code=2)

    @property
    def target(self) -> str:
        """The database as it is shown: the SQLite file, or the URL without its password."""
        return str(self.db_url if self.db_url is not None else self.database)

    @property
    def database(self) -> Path:
        """The SQLite file the run writes (for JSON Lines, the state file in the output dir)."""
        if self.format == "jsonl" and self.out is not None:
            return self.out / JSONL_STATE
        return self.db

    def filters(self) -> dict[str, Any]:
        """The listing filters, as stored with the mirror (a mirror keeps one scope)."""
        return {"organization": self.organization, "q": self.q, "tag": sorted(self.tag)}


@dataclass(slots=True)
class EntitySummary:
    """What a run did for one entity."""

    name: str
    mode: str = ""
    pages: int = 0
    listed: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: int = 0
    retries: int = 0
    #: Live rows in the table after the run.
    stored: int = 0
    elapsed: float = 0.0
    #: ``ok``; ``partial`` (the table may lack objects the portal lists: see ``note``);
    #: ``skipped`` (the listing is refused to this key).
    status: str = "ok"
    #: Why the status is not ``ok``.
    note: str = ""
    #: Verification rounds (id passes) the run needed to trust the listing.
    rounds: int = 0
    #: Objects the listing pass did not store that verification found (missed or new).
    repaired: int = 0
    #: Objects written this run off their model, stored with notes in ``schema_warnings``.
    warned: int = 0


@dataclass(slots=True)
class MirrorSummary:
    """What a run did: per entity (resources included), retries, quarantined records, time."""

    base_url: str
    database: str
    entities: dict[str, EntitySummary] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    #: Rows of the errors table after the run (this run's quarantined records are per entity).
    errors_stored: int = 0
    elapsed: float = 0.0
    status: str = "ok"
    files: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every entity holds everything its listing served (none partial/skipped)."""
        return all(entity.status == "ok" for entity in self.entities.values())

    @property
    def quarantined(self) -> int:
        """Records this run put in the errors table."""
        return sum(entity.errors for entity in self.entities.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)

    def lines(self) -> list[str]:
        """A human summary: a table, one entity per row, that fits 80 columns (a long mode
        such as "resumed full pass at page 16" goes on a line of its own); ``errors`` counts
        the records this run quarantined (put in the ``errors`` table)."""
        out = [f"mirror of {self.base_url} into {self.database}: {self.status}"]
        width = max((len(name) for name in self.entities), default=8)
        out.append(
            f"  {'':<{width}}  {'stored':>8} {'new':>7} {'updated':>7} {'deleted':>7}"
            f" {'errors':>7} {'pages':>6}"
        )
        for item in self.entities.values():
            if item.status == "skipped":
                out.append(f"  {item.name:<{width}}  skipped: {item.note}")
                continue
            row = (
                f"  {item.name:<{width}}  {item.stored:>8} {item.new:>7} {item.updated:>7}"
                f" {item.deleted:>7} {item.errors:>7} {item.pages:>6}"
            )
            if item.mode and len(row) + 2 + len(item.mode) <= 80:
                out.append(f"{row}  {item.mode}")
            else:
                out.append(row)
                if item.mode:
                    out.append(f"  {'':<{width}}  {item.mode}")
            if item.warned:
                out.append(f"  {'':<{width}}  {item.warned} stored with schema warnings")
            if item.repaired:
                out.append(
                    f"  {'':<{width}}  verification found {item.repaired} objects the listing"
                    f" pass had not stored ({item.rounds} rounds)"
                )
            if item.status == "partial":
                out.append(f"  {'':<{width}}  partial: {item.note}")
        out.append(
            f"  {self.requests} requests, {self.retries} retries, {self.quarantined} quarantined"
            f" this run ({self.errors_stored} in errors), {self.elapsed:.1f}s"
        )
        if self.files:
            shown = ", ".join(f"{name}: {count}" for name, count in self.files.items())
            out.append(f"  JSON Lines written: {shown}")
        return out
