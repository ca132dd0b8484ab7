"""``aioudata resources check``: the command line of the resource checker.

:func:`add_commands` adds ``resources`` (and its ``check``) to the ``aioudata`` parser;
:func:`run_command` runs the parsed command and gives its exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .._client import DEFAULT_BASE_URL
from .._mirror.config import DEFAULT_DB
from .._mirror.pgurl import is_database_url
from .config import CheckConfig, CheckError, CheckProgress, HostLimits
from .run import run_checks

__all__ = ["add_commands", "run_command"]

_DEFAULTS = CheckConfig()
#: Seconds between two progress lines when stderr is not a terminal.
_PLAIN_EVERY = 10.0


def _sqlite_file(text: str) -> Path:
    """``--db``: the SQLite file (the checker does not use a PostgreSQL mirror yet)."""
    if is_database_url(text):
        raise argparse.ArgumentTypeError(
            "resources check keeps its results in SQLite only for now: give the SQLite file"
        )
    return Path(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _host_limit(text: str) -> tuple[str, HostLimits]:
    """``HOST=N`` or ``HOST=N/RATE``: N requests in flight (and RATE per second) for HOST."""
    host, sep, value = text.partition("=")
    if not sep or not host.strip():
        raise argparse.ArgumentTypeError(f"expected HOST=N or HOST=N/RATE, not {text!r}")
    count, _, rate = value.partition("/")
    try:
        limits = HostLimits(_positive(count), _number(rate) if rate else _DEFAULTS.per_host.rate)
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
        help="check the files of the resources",
        description="The files of a catalog's resources: check every URL, politely.",
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
    check.add_argument(
        "--db",
        metavar="PATH",
        type=_sqlite_file,
        default=DEFAULT_DB,
        help=f"the SQLite file (default {DEFAULT_DB})",
    )
    check.add_argument("--all", action="store_true", help="check every URL, due or not")
    selection = check.add_argument_group("selection (repeat, or separate with commas)")
    selection.add_argument(
        "--organization", metavar="ID", action="append", help="only these organizations' datasets"
    )
    selection.add_argument(
        "--format", metavar="FMT", action="append", help="only resources of these formats"
    )
    selection.add_argument(
        "--host", metavar="HOST", action="append", help="only URLs on these hosts (and subdomains)"
    )
    polite = check.add_argument_group("politeness")
    polite.add_argument(
        "--concurrency",
        type=_positive,
        metavar="N",
        default=_DEFAULTS.concurrency,
        help=f"requests in flight in all (default {_DEFAULTS.concurrency})",
    )
    polite.add_argument(
        "--per-host",
        type=_positive,
        default=_DEFAULTS.per_host.in_flight,
        metavar="N",
        help=f"requests in flight per host (default {_DEFAULTS.per_host.in_flight})",
    )
    polite.add_argument(
        "--host-rate",
        type=_number,
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
    check.add_argument(
        "--timeout",
        type=_number,
        default=_DEFAULTS.timeout,
        metavar="S",
        help=f"seconds per request (default {_DEFAULTS.timeout:g})",
    )
    check.add_argument(
        "--max-redirects",
        type=int,
        default=_DEFAULTS.max_redirects,
        metavar="N",
        help=f"(default {_DEFAULTS.max_redirects})",
    )
    return resources


def config_from(args: argparse.Namespace) -> CheckConfig:
    """The :class:`CheckConfig` of parsed ``resources check`` arguments."""
    api_key = getattr(args, "api_key", None) or os.environ.get("UDATA_API_KEY") or None
    return CheckConfig(
        db=args.db,
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


class _Lines:
    """Progress on stderr: one line rewritten on a terminal, a line every 10 s elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty() and not os.environ.get("CI")
        self.last = 0.0

    def __call__(self, update: CheckProgress) -> None:
        if self.tty:
            end = "\n" if update.final else ""
            self.stream.write("\r\x1b[2K" + update.line() + end)
            self.stream.flush()
            return
        now = time.monotonic()
        if update.final or now - self.last >= _PLAIN_EVERY:
            self.last = now
            print(update.line(), file=self.stream, flush=True)


async def run_command(args: argparse.Namespace) -> int:
    """Run ``aioudata resources COMMAND``; the exit status (0 when the run ended)."""
    if args.resources_command != "check":
        raise CheckError(f"unknown command {args.resources_command!r}", code=2)
    quiet = bool(getattr(args, "quiet", False))
    summary = await run_checks(config_from(args), progress=None if quiet else _Lines(sys.stderr))
    if not quiet:
        for line in summary.lines():
            print(line, file=sys.stderr)
    return 0
