"""The ``aioudata`` command: ``mirror`` a catalog, ``get`` one object, ``ls`` a listing.

Exit status: 0 ok, 1 failure, 2 bad usage, 3 cannot connect, 4 key refused, 5 partial (the
mirror finished, but an entity was skipped or may lack objects its listing serves: the summary
says which), 6 the PostgreSQL database cannot be reached or used (unreachable, password refused,
missing, permissions, connection lost mid-run), 130 interrupted; every failure is one line on
stderr. The API key and the database password are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import msgspec

from ._client import DEFAULT_BASE_URL, Client
from ._crawl import add_commands as add_resources_commands
from ._crawl import run_command as run_resources_command
from ._endpoint import Endpoint
from ._errors import (
    APIError,
    ArgumentError,
    AuthenticationError,
    BadRequestError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    TransportError,
    UdataError,
)
from ._generated.v2.operations.datasets import GET_RESOURCE as V2_GET_RESOURCE
from ._hooks import EventHooks, ResponseEvent
from ._mirror.config import DEFAULT_DB, MAX_PAGE_SIZE, MirrorConfig, MirrorError
from ._mirror.entities import DEFAULT_ENTITIES, ENTITIES, EntitySpec, RawPage, entity
from ._mirror.job import run_mirror
from ._mirror.pgurl import DB_URL_ENV, is_database_url
from ._mirror.progress import Progress, progress_mode
from ._mirror.run import v2_url
from ._options import non_negative, positive
from ._pagination import Paginator
from ._retry import RetryPolicy
from ._version import __version__

__all__ = ["main"]

PROG = "aioudata"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECT, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_PARTIAL = 5


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` and exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _entities(text: str) -> tuple[str, ...]:
    names: list[str] = []
    for part in text.split(","):
        if not part.strip():
            continue
        if part.strip() == "all":
            names.extend(ENTITIES)
            continue
        try:
            names.append(entity(part).name)
        except KeyError:
            choices = ", ".join(ENTITIES)
            raise argparse.ArgumentTypeError(
                f"unknown entity {part.strip()!r} (choose from {choices}, all)"
            ) from None
    if not names:
        raise argparse.ArgumentTypeError("no entity given")
    return tuple(dict.fromkeys(names))


def _one_entity(text: str) -> EntitySpec:
    try:
        return entity(text)
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"unknown entity {text!r} (choose from {', '.join(ENTITIES)})"
        ) from None


@dataclass(frozen=True, slots=True)
class _Target:
    """What ``get`` fetches: one object by id, from the API v1 or v2."""

    singular: str
    endpoint: Endpoint[bytes]
    param: str
    api_version: int = 1


#: The API v2 finds a resource by its id alone (the API v1 needs its dataset's id too); its
#: generated endpoint, answering bytes (``get`` prints the JSON as the server sent it).
_GET_RESOURCE = cast(Endpoint[bytes], dataclasses.replace(V2_GET_RESOURCE, response=bytes))
_TARGETS = {
    **{
        spec.singular: _Target(spec.singular, spec.get_endpoint, spec.get_param, spec.api_version)
        for spec in ENTITIES.values()
    },
    "resource": _Target("resource", _GET_RESOURCE, "rid", api_version=_GET_RESOURCE.api),
}


def _get_target(text: str) -> _Target:
    if text.strip().lower() in ("resource", "resources"):
        return _TARGETS["resource"]
    try:
        return _TARGETS[entity(text).singular]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"unknown entity {text!r} (choose from {', '.join(_TARGETS)})"
        ) from None


def _page_size(text: str) -> int:
    value = positive(text)
    if value > MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_PAGE_SIZE}, not {value}")
    return value


def _rate(text: str) -> float:
    return non_negative(text, zero="0: unlimited")


def _connection() -> _Parser:
    """Options every command takes, before or after its name."""
    parent = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--base-url", metavar="URL", help=f"API v1 root of the portal (default {DEFAULT_BASE_URL})"
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key (default: the UDATA_API_KEY variable, better: a command line is visible"
        " to every user of the machine in the process list, the environment is not)",
    )
    group.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="read the API key from this file ('-': standard input), kept out of the process list",
    )
    output = group.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="no progress, no summary")
    output.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each request (method, URL without the key, status, time, attempt) and"
        " retries on stderr",
    )
    return parent


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--q", metavar="TEXT", help="full-text query")
    parser.add_argument("--organization", metavar="ID", help="only this organization's objects")
    parser.add_argument(
        "--tag", metavar="TAG", action="append", default=[], help="only objects with this tag"
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    connection = _connection()
    parser = _Parser(
        prog=PROG,
        description="Async client and mirror of a udata portal (data.gouv.fr by default).",
        parents=[connection],
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    mirror = commands.add_parser(
        "mirror",
        parents=[connection],
        allow_abbrev=False,
        help="mirror the catalog into SQLite, PostgreSQL (or JSON Lines)",
        description="Mirror a udata catalog into SQLite (default), PostgreSQL or JSON Lines:"
        " resumable after an interruption, incremental after a complete run.",
    )
    mirror.add_argument(
        "--db",
        metavar="PATH|URL",
        help=f"the SQLite file (default {DEFAULT_DB}), or a PostgreSQL database:"
        " postgresql://USER@HOST:PORT/DBNAME[?schema=NAME] (the password from the URL,"
        " PGPASSWORD or ~/.pgpass; also $AIOUDATA_DB_URL)",
    )
    mirror.add_argument("--db-url", metavar="URL", help="a PostgreSQL database (as --db URL)")
    mirror.add_argument(
        "--format",
        choices=("sqlite", "jsonl"),
        help="jsonl: JSON Lines files in --out DIR (the default when --out is given)",
    )
    mirror.add_argument(
        "--out", metavar="DIR", type=Path, help="JSON Lines into DIR (implies --format jsonl)"
    )
    mirror.add_argument(
        "--entities",
        type=_entities,
        default=DEFAULT_ENTITIES,
        metavar="LIST",
        help=f"comma-separated, or all (default {','.join(DEFAULT_ENTITIES)};"
        f" also: {', '.join(n for n in ENTITIES if n not in DEFAULT_ENTITIES)})",
    )
    mirror.add_argument(
        "--concurrency", type=positive, default=4, help="requests in flight (default 4)"
    )
    mirror.add_argument(
        "--rate",
        type=_rate,
        default=5.0,
        help="requests per second for the whole run, 0: unlimited (default 5)",
    )
    mirror.add_argument("--page-size", type=_page_size, default=100, help="(default 100)")
    _filters(mirror)
    mirror.add_argument(
        "--full", action="store_true", help="a complete pass, even after a complete run"
    )

    get = commands.add_parser(
        "get",
        parents=[connection],
        allow_abbrev=False,
        help="one object as JSON on stdout",
        description="Print one object as JSON on stdout: indented on a terminal, one line"
        " (one JSON document) when piped or with --compact.",
    )
    get.add_argument(
        "entity", type=_get_target, metavar="ENTITY", help=f"one of: {', '.join(_TARGETS)}"
    )
    get.add_argument("id", metavar="ID", help="id or slug (a resource: its id)")
    get.add_argument("--compact", action="store_true", help="one line, even on a terminal")

    ls = commands.add_parser(
        "ls",
        parents=[connection],
        allow_abbrev=False,
        help="list objects, one line each",
        description="List objects: id and title (or name) per line, or their JSON.",
    )
    ls.add_argument(
        "entity", type=_one_entity, metavar="ENTITY", help=f"one of: {', '.join(ENTITIES)}"
    )
    _filters(ls)
    ls.add_argument(
        "--sort", metavar="FIELD", help="e.g. --sort -created (newest first), --sort title"
    )
    ls.add_argument(
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="stop after N (default: all; stderr says when it stopped the listing)",
    )
    ls.add_argument(
        "--page-size", type=_page_size, default=None, metavar="N", help="1 to 1000 (default 100)"
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    add_resources_commands(commands, parents=[connection])
    return parser


def _option(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def _api_key(args: argparse.Namespace) -> str | None:
    return _option(args, "api_key") or os.environ.get("UDATA_API_KEY") or None


#: More than any API key (udata's are a few hundred characters): a bigger file is not one.
_MAX_KEY_FILE = 64 * 1024


def _read_api_key_file(args: argparse.Namespace) -> None:
    """``--api-key-file PATH``: the key, stripped, into ``args.api_key``; bad usage otherwise.

    ``-`` reads standard input. The file must hold the key alone (no inner whitespace or
    control character: the key goes into a header). Errors name the file, never its content.
    """
    path = _option(args, "api_key_file")
    if path is None:
        return
    if _option(args, "api_key") is not None:
        raise MirrorError("--api-key and --api-key-file are mutually exclusive", code=EXIT_USAGE)
    where = "standard input" if path == "-" else f"API key file {path!r}"
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(_MAX_KEY_FILE + 1)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(_MAX_KEY_FILE + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise MirrorError(f"cannot read the {where}: {reason}", code=EXIT_USAGE) from None
    if len(raw) > _MAX_KEY_FILE:
        raise MirrorError(f"the {where} is too large to hold an API key", code=EXIT_USAGE)
    try:
        key = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise MirrorError(f"the {where} is not UTF-8 text", code=EXIT_USAGE) from None
    if not key:
        raise MirrorError(f"the {where} is empty: no API key in it", code=EXIT_USAGE)
    if not key.isprintable() or any(char.isspace() for char in key):
        raise MirrorError(f"the {where} must hold the API key alone, on one line", code=EXIT_USAGE)
    args.api_key = key


def _base_url(args: argparse.Namespace) -> str:
    return str(_option(args, "base_url") or DEFAULT_BASE_URL)


class _Stderr(logging.Handler):
    """Writes to ``sys.stderr`` as it is at each record: the progress bars, while they show,
    replace it so that what is logged scrolls above them."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record."""
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a log line must never end the command
            self.handleError(record)


def _configure_logging(args: argparse.Namespace) -> None:
    """``--verbose``: each request and the client's logs on stderr; otherwise none (progress
    tells enough)."""
    log = logging.getLogger("aioudata")
    if not _option(args, "verbose", False):
        log.addHandler(logging.NullHandler())
    else:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


_requests_log = logging.getLogger("aioudata.http")


def _log_response(event: ResponseEvent) -> None:
    """``--verbose``: one line per HTTP exchange (the URL never holds the key)."""
    _requests_log.info(
        "%s %s %d %.3fs attempt %d",
        event.method,
        event.url,
        event.status,
        event.elapsed,
        event.attempt,
    )


def _event_hooks(args: argparse.Namespace) -> EventHooks | None:
    return {"response": [_log_response]} if _option(args, "verbose", False) else None


def _database(args: argparse.Namespace) -> dict[str, Any]:
    """``db`` (a file) or ``db_url`` (PostgreSQL) from --db, --db-url or $AIOUDATA_DB_URL."""
    if args.db_url and args.db:
        raise MirrorError("give --db or --db-url, not both", code=EXIT_USAGE)
    url = args.db_url or (args.db if args.db and is_database_url(args.db) else None)
    if url is None and args.db is None and args.format != "jsonl" and args.out is None:
        url = os.environ.get(DB_URL_ENV) or None
    if url is not None:
        return {"db_url": url}
    return {"db": Path(args.db) if args.db else DEFAULT_DB}


async def _mirror(args: argparse.Namespace) -> int:
    config = MirrorConfig(
        base_url=_base_url(args),
        api_key=_api_key(args),
        **_database(args),
        format=args.format,
        out=args.out,
        event_hooks=_event_hooks(args),
        entities=args.entities,
        concurrency=args.concurrency,
        rate=args.rate or None,
        page_size=args.page_size,
        organization=args.organization,
        q=args.q,
        tag=tuple(args.tag),
        full=args.full,
    )
    quiet = bool(_option(args, "quiet", False))
    progress = Progress(sys.stderr, progress_mode(sys.stderr, quiet))
    summary = await run_mirror(config, progress=progress)
    if not quiet:
        for line in summary.lines():
            print(line, file=sys.stderr)
    if summary.status == "partial":
        short = ", ".join(
            f"{item.name} {item.status}"
            for item in summary.entities.values()
            if item.status != "ok"
        )
        print(f"{PROG}: partial mirror ({short}): see the summary", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


#: get and ls are interactive: a few quick attempts, no client-wide cool-off.
_INTERACTIVE = RetryPolicy(max_attempts=3, max_time=30.0, refused_burst=1_000_000)


#: Pages ``ls`` requests at once.
_LS_CONCURRENCY = 4


def _client(args: argparse.Namespace, api_version: int = 1, what: str = "") -> Client:
    """A client for get and ls: the API v1 root (or the v2 one next to it), no rate limit."""
    config = MirrorConfig(base_url=_base_url(args), api_key=_api_key(args), rate=None)
    base_url = config.base_url
    if api_version == 2:
        try:
            base_url = v2_url(base_url)
        except MirrorError:
            raise MirrorError(
                f"{what} needs the API v2: cannot derive its root from {base_url}", code=EXIT_USAGE
            ) from None
    return Client(
        base_url,
        api_key=config.api_key,
        retry=_INTERACTIVE,
        max_in_flight=_LS_CONCURRENCY,
        event_hooks=_event_hooks(args),
    )


def _json_document(body: bytes, *, pretty: bool) -> bytes:
    """The answer as one JSON document with real Unicode: indented, or on one line."""
    try:
        compact = msgspec.json.encode(msgspec.json.decode(body))
    except msgspec.DecodeError:
        return body.rstrip()  # not JSON: as the server sent it
    return msgspec.json.format(compact, indent=2) if pretty else compact


async def _get(args: argparse.Namespace) -> int:
    target: _Target = args.entity
    async with _client(args, target.api_version, f"get {target.singular}") as client:
        try:
            body = await client.request(target.endpoint, {target.param: args.id})
        except NotFoundError:
            raise MirrorError(f"no {target.singular} {args.id!r} at {client.base_url}") from None
        except GoneError:
            raise MirrorError(f"{target.singular} {args.id!r} has been deleted") from None
    pretty = not args.compact and sys.stdout.isatty()
    sys.stdout.buffer.write(_json_document(body, pretty=pretty) + b"\n")
    sys.stdout.flush()
    return EXIT_OK


def _ls_line(spec: EntitySpec, raw: msgspec.Raw, as_json: bool) -> str:
    """One listed object: its JSON as received, or its id and title (or name)."""
    if as_json:
        return bytes(raw).decode("utf-8", "replace") + "\n"
    item = msgspec.json.decode(raw)
    label = item.get(spec.label) if isinstance(item, dict) else None
    item_id = item.get("id") if isinstance(item, dict) else None
    return f"{item_id}\t{label}\n"


async def _ls(args: argparse.Namespace) -> int:
    spec: EntitySpec = args.entity
    query: dict[str, Any] = {}
    if args.q:
        query["q"] = args.q
    if args.organization:
        query["organization" if spec.accepts("organization") else "org"] = args.organization
    if args.tag:
        query["tag"] = list(args.tag)
    if args.sort:
        query["sort"] = args.sort
    for name in query:
        if not spec.accepts(name):
            raise MirrorError(f"{spec.name} cannot be filtered by --{name}", code=EXIT_USAGE)
    limit = max(0, args.limit)
    query["page_size"] = args.page_size or (min(limit, 100) if limit else 100)
    shown, total, cut = 0, None, False
    out = sys.stdout
    async with _client(args, spec.api_version, f"ls {spec.name}") as client:
        paginator: Paginator[RawPage, Any] = Paginator(
            client.request, spec.list_endpoint, query, concurrency=_LS_CONCURRENCY
        )
        # Closed on leaving, so that page requests still in flight end with the client.
        async with contextlib.aclosing(paginator.pages()) as pages:
            async for page in pages:
                total = page.total if page.total is not None else total
                for raw in page.data:
                    if limit and shown >= limit:
                        cut = True
                        break
                    out.write(_ls_line(spec, raw, args.json))
                    shown += 1
                if limit and shown >= limit:
                    cut = cut or bool(page.next_page) or (total or 0) > shown
                    break
    if cut:
        out.flush()
        listed = f" of {total:,}" if total is not None else ""
        print(
            f"{PROG}: --limit {limit} stopped the listing: {shown:,}{listed} {spec.name} shown",
            file=sys.stderr,
        )
    return EXIT_OK


def _failure(error: BaseException) -> tuple[int, str]:
    """Exit status and one-line reason for an error."""
    if isinstance(error, MirrorError):
        return error.code, str(error)
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        reason = error.message or f"status {error.status}"
        hint = "" if error.status == 403 else " (check the key: --api-key-file or UDATA_API_KEY)"
        return EXIT_AUTH, f"access refused by {error.url}: {reason}{hint}"
    if isinstance(error, BadRequestError):
        return EXIT_USAGE, f"the server rejected the request: {error}"
    if isinstance(error, APIError):
        return EXIT_FAILED, str(error)
    if isinstance(error, TransportError):
        text = str(error).removeprefix(f"{error.method} {error.url}: ")
        return EXIT_CONNECT, f"cannot reach {error.url}: {text}"
    if isinstance(error, ArgumentError):
        return EXIT_USAGE, str(error)
    if isinstance(error, UdataError):
        return EXIT_FAILED, str(error)
    if isinstance(error, ValueError):
        return EXIT_USAGE, str(error)
    if isinstance(error, OSError):
        return EXIT_FAILED, f"{type(error).__name__}: {error}"
    return EXIT_FAILED, f"{type(error).__name__}: {error}"


async def _run(args: argparse.Namespace) -> int:
    """Run the command; SIGTERM cancels it like Ctrl-C (checkpoints are already committed)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    command = {"mirror": _mirror, "get": _get, "ls": _ls, "resources": run_resources_command}[
        args.command
    ]
    return await command(args)


#: Options whose value may start with "-" (``--sort -created``): argparse would take such a
#: value for an unknown option.
_DASHED_VALUES = frozenset({"--sort", "--q"})
#: The short options: after ``--sort``, ``-v`` is still the option.
_SHORT_OPTIONS = frozenset({"-h", "-v"})


def _join_dashed_values(argv: Sequence[str]) -> list[str]:
    """``--sort -created`` as ``--sort=-created`` (up to a ``--``)."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        arg, value = argv[index], argv[index + 1] if index + 1 < len(argv) else ""
        if arg == "--":
            joined.extend(argv[index:])
            break
        dashed = value.startswith("-") and not value.startswith("--")
        if arg in _DASHED_VALUES and dashed and value not in _SHORT_OPTIONS:
            joined.append(f"{arg}={value}")
            index += 2
        else:
            joined.append(arg)
            index += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aioudata`` command; the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(_join_dashed_values(argv))
    _configure_logging(args)
    try:
        _read_api_key_file(args)  # before the loop: reading stdin blocks
        return asyncio.run(_run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(
            f"{PROG}: interrupted"
            + (
                "; run the same command again to resume"
                if args.command in ("mirror", "resources")
                else ""
            ),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            sys.stdout.close()
        return EXIT_OK
    except Exception as error:  # every failure ends as one line and an exit status
        code, reason = _failure(error)
        line = " ".join(reason.split())
        print(f"{PROG}: error: {line}", file=sys.stderr)
        return code
