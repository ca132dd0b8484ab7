"""``aioudata resources check``: the command line of the resource checker.

:func:`add_commands` adds ``resources`` (and its ``check``) to the ``aioudata`` parser;
:func:`run_command` runs the parsed command and gives its exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._client import DEFAULT_BASE_URL
from .._mirror.config import DEFAULT_DB, MirrorError
from .._mirror.pgurl import DB_URL_ENV, DatabaseURL, is_database_url
from .._options import non_negative, positive
from .config import CheckConfig, CheckError, CheckSummary, HostLimits
from .download_config import EXIT_NO_SPACE, DownloadConfig, DownloadSummary
from .download_run import run_downloads
from .progress import CrawlDisplay
from .run import run_checks

__all__ = ["add_commands", "run_command"]

_DEFAULTS = CheckConfig()
_DOWNLOADS = DownloadConfig()
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _database(text: str) -> Path | DatabaseURL:
    """``--db``: the SQLite file, or a PostgreSQL database (never shown with its password)."""
    if not is_database_url(text):
        return Path(text)
    return _database_url(text)


def _database_url(text: str) -> DatabaseURL:
    """``--db-url``: a PostgreSQL database."""
    try:
        return DatabaseURL.parse(text)
    except MirrorError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _db(args: argparse.Namespace) -> dict[str, Path | DatabaseURL]:
    """``db`` (a file) or ``db_url`` from --db, --db-url or $AIOUDATA_DB_URL (else the default
    file)."""
    if args.db is not None and args.db_url is not None:
        raise CheckError("give --db or --db-url, not both", code=2)
    given: Path | DatabaseURL | None = args.db if args.db is not None else args.db_url
    if given is None and os.environ.get(DB_URL_ENV):
        given = DatabaseURL.parse(os.environ[DB_URL_ENV])
    if isinstance(given, DatabaseURL):
        return {"db_url": given}
    return {"db": DEFAULT_DB if given is None else given}


def _size(text: str) -> int:
    """Bytes: a number, or with K, M, G or T (binary: 1K is 1024 bytes)."""
    number, unit = text.strip().upper().removesuffix("B").removesuffix("I"), ""
    if number and number[-1] in _UNITS:
        number, unit = number[:-1], number[-1]
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return int(value)


def _host_limit(text: str) -> tuple[str, HostLimits]:
    """``HOST=N`` or ``HOST=N/RATE``: N requests in flight (and RATE per second) for HOST."""
    host, sep, value = text.partition("=")
    if not sep or not host.strip():
        raise argparse.ArgumentTypeError(f"expected HOST=N or HOST=N/RATE, not {text!r}")
    count, _, rate = value.partition("/")
    try:
        limits = HostLimits(
            positive(count), non_negative(rate) if rate else _DEFAULTS.per_host.rate
        )
    except CheckError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return host.strip().lower(), limits


def _listed(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeated options, each possibly comma-separated."""
    return tuple(part.strip() for value in values or () for part in value.split(",") if part)


def add_commands(
    subparsers: Any, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    """Add ``resources`` and its commands to ``subparsers`` (``parents``: the options every
    command takes); the ``resources`` parser."""
    resources: argparse.ArgumentParser = subparsers.add_parser(
        "resources",
        parents=list(parents),
        allow_abbrev=False,
        help="check or download the files of the resources",
        description="The files of a catalog's resources: check every URL, or download"
        " every file, politely.",
    )
    commands = resources.add_subparsers(
        dest="resources_command", metavar="COMMAND", parser_class=type(resources)
    )
    commands.required = True
    check = commands.add_parser(
        "check",
        parents=list(parents),
        allow_abbrev=False,
        help="check every resource URL (HEAD, conditional, polite per host)",
        description="Check the URL of every resource of the mirror in --db (or of the API"
        " when it holds none) and record status, final URL, type, length, validators and"
        " errors in its check_* tables. Incremental: only what is due is checked (--all:"
        " everything); resumable: run it again after an interruption.",
    )
    check.add_argument("--all", action="store_true", help="check every URL, due or not")
    _crawl_options(check, _DEFAULTS.timeout, "seconds per request")
    download = commands.add_parser(
        "download",
        parents=list(parents),
        allow_abbrev=False,
        help="download the resource files (streamed, resumed, checksums verified)",
        description="Download the file of every resource of the mirror in --db (or of the"
        " API when it holds none) into --dir, politely (the same per-host limits as check),"
        " resuming partial files with Range and verifying published checksums; results in"
        " its download_* tables. Files whose published checksum is the one of the file"
        " already there are not requested. Exit status 7: stopped because the disk is"
        " nearly full (run it again once there is room: it resumes); 6: the PostgreSQL"
        " database cannot be used.",
    )
    download.add_argument(
        "--dir",
        metavar="PATH",
        type=Path,
        default=_DOWNLOADS.dir,
        help=f"where the files go (default {_DOWNLOADS.dir})",
    )
    download.add_argument(
        "--all", action="store_true", help="download again even the files known unchanged"
    )
    download.add_argument(
        "--max-size", type=_size, metavar="SIZE", help="skip larger files (e.g. 500M, 2G)"
    )
    download.add_argument(
        "--min-free",
        type=_size,
        metavar="SIZE",
        default=_DOWNLOADS.min_free,
        help="stop when the disk has less free space (default 1G)",
    )
    download.add_argument(
        "--attempts",
        type=positive,
        metavar="N",
        default=_DOWNLOADS.attempts,
        help=f"tries of a file cut mid-transfer, each resuming (default {_DOWNLOADS.attempts})",
    )
    _crawl_options(download, _DOWNLOADS.timeout, "seconds to wait for a byte")
    return resources


def _crawl_options(parser: argparse.ArgumentParser, timeout: float, what: str) -> None:
    """The options check and download share: database, selection, politeness."""
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        type=_database,
        help=f"the mirror database: the SQLite file (default {DEFAULT_DB}), or a PostgreSQL"
        " one: postgresql://USER@HOST:PORT/DBNAME[?schema=NAME] (the password from the URL,"
        f" PGPASSWORD or ~/.pgpass; also ${DB_URL_ENV})",
    )
    parser.add_argument(
        "--db-url", metavar="URL", type=_database_url, help="a PostgreSQL database (as --db URL)"
    )
    selection = parser.add_argument_group("selection (repeat, or separate with commas)")
    selection.add_argument(
        "--organization", metavar="ID", action="append", help="only these organizations' datasets"
    )
    selection.add_argument(
        "--format", metavar="FMT", action="append", help="only resources of these formats"
    )
    selection.add_argument(
        "--host", metavar="HOST", action="append", help="only URLs on these hosts (and subdomains)"
    )
    polite = parser.add_argument_group("politeness")
    polite.add_argument(
        "--concurrency",
        type=positive,
        metavar="N",
        default=_DEFAULTS.concurrency,
        help=f"requests in flight in all (default {_DEFAULTS.concurrency})",
    )
    polite.add_argument(
        "--per-host",
        type=positive,
        default=_DEFAULTS.per_host.in_flight,
        metavar="N",
        help=f"requests in flight per host (default {_DEFAULTS.per_host.in_flight})",
    )
    polite.add_argument(
        "--host-rate",
        type=non_negative,
        default=_DEFAULTS.per_host.rate,
        metavar="R",
        help=f"requests per second per host, 0: no limit (default {_DEFAULTS.per_host.rate:g})",
    )
    polite.add_argument(
        "--host-limit",
        type=_host_limit,
        action="append",
        default=[],
        metavar="HOST=N[/R]",
        help="other limits for one host, e.g. static.data.gouv.fr=8/40",
    )
    polite.add_argument("--robots", action="store_true", help="respect each host's robots.txt")
    polite.add_argument(
        "--contact",
        metavar="URL_OR_EMAIL",
        help="added to the User-Agent, for site owners to reach you",
    )
    parser.add_argument(
        "--timeout",
        type=non_negative,
        default=timeout,
        metavar="S",
        help=f"{what} (default {timeout:g})",
    )
    parser.add_argument(
        "--max-redirects",
        type=int,
        default=_DEFAULTS.max_redirects,
        metavar="N",
        help=f"(default {_DEFAULTS.max_redirects})",
    )


def config_from(args: argparse.Namespace) -> CheckConfig:
    """The :class:`CheckConfig` (``download``: :class:`DownloadConfig`) of parsed
    ``resources`` arguments."""
    api_key = getattr(args, "api_key", None) or os.environ.get("UDATA_API_KEY") or None
    if args.resources_command == "download":
        return DownloadConfig(
            dir=args.dir,
            max_size=args.max_size,
            min_free=args.min_free,
            attempts=args.attempts,
            **_common(args, api_key),
        )
    return CheckConfig(**_common(args, api_key))


def _common(args: argparse.Namespace, api_key: str | None) -> dict[str, Any]:
    return dict(
        **_db(args),
        base_url=getattr(args, "base_url", None) or DEFAULT_BASE_URL,
        api_key=api_key,
        all=args.all,
        organization=_listed(args.organization),
        format=_listed(args.format),
        host=_listed(args.host),
        concurrency=args.concurrency,
        per_host=HostLimits(args.per_host, args.host_rate or None),
        host_limits=dict(args.host_limit),
        timeout=args.timeout or _DEFAULTS.timeout,
        max_redirects=args.max_redirects,
        robots=args.robots,
        contact=args.contact,
    )


async def run_command(args: argparse.Namespace) -> int:
    """Run ``aioudata resources COMMAND``; the exit status: 0 when the run ended, 7
    (:data:`EXIT_NO_SPACE`) when a download stopped because the disk is nearly full.

    Failures raise, and the command line maps them as for ``aioudata mirror``: 6 when the
    PostgreSQL database cannot be used (:class:`~aioudata.MirrorDatabaseError`), 2 for usage."""
    if args.resources_command not in ("check", "download"):
        raise CheckError(f"unknown command {args.resources_command!r}", code=2)
    quiet = bool(getattr(args, "quiet", False))
    display = None if quiet else CrawlDisplay(sys.stderr)
    interval = 0.5 if display is not None and display.mode == "tty" else 1.0
    config = config_from(args)
    summary: CheckSummary | DownloadSummary
    try:
        if isinstance(config, DownloadConfig):
            summary = await run_downloads(config, progress=display, interval=interval)
        else:
            summary = await run_checks(config, progress=display, interval=interval)
    finally:
        if display is not None:
            display.close()
    if not quiet:
        for line in summary.lines():
            print(line, file=sys.stderr)
    if isinstance(summary, DownloadSummary) and summary.status == "no_space":
        print(f"aioudata: {summary.stopped}", file=sys.stderr)
        return EXIT_NO_SPACE
    return 0
