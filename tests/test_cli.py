"""The ``aioudata`` command line: parsing, one-line errors, exit statuses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from aioudata._cli import build_parser, main
from aioudata._mirror.entities import ENTITIES

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "UDATA_API_KEY"}
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.run(
        [sys.executable, "-m", "aioudata", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_connection_options_are_accepted_after_the_command() -> None:
    args = build_parser().parse_args(
        ["get", "dataset", "abc", "--base-url", "http://h/api/1", "--api-key", "k", "--verbose"]
    )
    assert (args.command, args.id) == ("get", "abc")
    assert args.entity.endpoint == ENTITIES["datasets"].get_endpoint
    assert (args.base_url, args.api_key, args.verbose) == ("http://h/api/1", "k", True)


def test_connection_options_are_accepted_before_the_command_too() -> None:
    args = build_parser().parse_args(["--base-url", "http://h/api/1", "ls", "reuses", "--json"])
    assert args.base_url == "http://h/api/1" and args.entity is ENTITIES["reuses"] and args.json


def test_mirror_options_and_defaults() -> None:
    args = build_parser().parse_args(["mirror"])
    assert args.entities == ("datasets", "organizations", "reuses")
    # No --db: udata-mirror.sqlite, unless $AIOUDATA_DB_URL names a PostgreSQL database.
    assert args.db is None and args.db_url is None and args.format is None
    assert (args.concurrency, args.rate, args.page_size, args.full) == (4, 5.0, 100, False)
    args = build_parser().parse_args(
        [
            "mirror",
            "--entities",
            "datasets,harvest-sources,users",
            "--tag",
            "a",
            "--tag",
            "b",
            "--organization",
            "o",
            "--q",
            "text",
            "--full",
            "--quiet",
            "--rate",
            "0",
        ]
    )
    assert args.entities == ("datasets", "harvest_sources", "users")
    assert (args.tag, args.organization, args.q, args.full, args.quiet, args.rate) == (
        ["a", "b"],
        "o",
        "text",
        True,
        True,
        0.0,
    )
    assert build_parser().parse_args(["mirror", "--entities", "all"]).entities == tuple(ENTITIES)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["mirror", "--entities", "datasets,nope"], "unknown entity 'nope'"),
        (["mirror", "--page-size", "0"], "--page-size"),
        (["mirror", "--page-size", "5000"], "at most 1000"),
        (["mirror", "--concurrency", "x"], "--concurrency"),
        (["get", "nothing", "id"], "unknown entity 'nothing'"),
        (["mirror", "--quiet", "--verbose"], "not allowed with"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("aioudata") and "error:" in line and needle in line


def test_unknown_entity_in_a_subprocess() -> None:
    done = cli("mirror", "--entities", "widgets")
    assert done.returncode == 2
    assert "unknown entity 'widgets'" in one_line(done.stderr)


def test_bad_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = cli("mirror", "--base-url", "not a url", "--db", str(tmp_path / "m.sqlite"))
    assert done.returncode == 2
    assert "--base-url must be an http(s) URL" in one_line(done.stderr)
    assert not (tmp_path / "m.sqlite").exists()


def test_jsonl_needs_an_output_directory() -> None:
    done = cli("mirror", "--format", "jsonl")
    assert done.returncode == 2 and "--out" in one_line(done.stderr)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_unreachable_host_is_one_line_and_exit_3(closed_port: int, tmp_path: Path) -> None:
    started = time.monotonic()
    done = cli(
        "mirror",
        "--base-url",
        f"http://127.0.0.1:{closed_port}/api/1",
        "--db",
        str(tmp_path / "m.sqlite"),
    )
    assert done.returncode == 3
    assert "cannot reach" in one_line(done.stderr)
    assert time.monotonic() - started < 45  # no long cool-off before giving up
    got = cli("get", "dataset", "x", "--base-url", f"http://127.0.0.1:{closed_port}/api/1")
    assert got.returncode == 3 and "cannot reach" in one_line(got.stderr)


class _Refusing:
    """A server on 127.0.0.1 (own thread) answering 401 "Invalid API token" to everything."""

    def __init__(self) -> None:
        self.port = 0
        self.keys: list[str] = []
        self._ready = threading.Event()
        self._stop: object = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import asyncio

        async def handle(request: web.Request) -> web.Response:
            self.keys.append(request.headers.get("X-API-KEY", ""))
            return web.json_response({"message": "Invalid API token"}, status=401)

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handle)
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            stop = asyncio.Event()
            self._stop = (asyncio.get_running_loop(), stop)
            self._ready.set()
            await stop.wait()
            await runner.cleanup()

        asyncio.run(serve())

    def __enter__(self) -> _Refusing:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        loop, stop = self._stop  # type: ignore[misc]
        loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)


def test_a_refused_key_is_one_line_exit_4_and_never_printed(tmp_path: Path) -> None:
    secret = "udata_secret_value_that_must_not_leak"
    with _Refusing() as server:
        base = f"http://127.0.0.1:{server.port}/api/1"
        done = cli(
            "mirror", "--db", str(tmp_path / "m.sqlite"), "--base-url", base, "--api-key", secret
        )
        listed = cli("ls", "datasets", "--base-url", base, "--api-key", secret)
    assert server.keys and set(server.keys) == {secret}  # it was sent, to this host only
    for result in (done, listed):
        assert result.returncode == 4
        assert "Invalid API token" in one_line(result.stderr)
        assert secret not in result.stderr + result.stdout


def test_version_and_help() -> None:
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("aioudata ")
    helped = cli("mirror", "--help")
    assert helped.returncode == 0
    for option in ("--base-url", "--api-key", "--entities", "--full", "--db", "--format"):
        assert option in helped.stdout


async def test_ls_with_a_limit_closes_its_page_requests_with_the_client() -> None:
    import asyncio

    from tests.catalog import Catalog, catalog_server

    catalog = Catalog(500)
    catalog.slow_pages = {page: 1.0 for page in range(2, 11)}  # still in flight at the limit
    env = {k: v for k, v in os.environ.items() if k != "UDATA_API_KEY"}
    env["PYTHONPATH"] = str(ROOT / "src")
    async for server in catalog_server(catalog):
        command = ["ls", "datasets", "--base-url", server.base_url, "--limit", "3"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioudata",
            *command,
            "--page-size",
            "50",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert out.decode().splitlines() == [f"00000{n}\tthing {n}" for n in range(3)]
    assert b"Unclosed" not in err, err.decode()  # no session outlived the command
