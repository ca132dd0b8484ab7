"""``aioudata get`` and ``ls`` as a user meets them: whole listings, ``--sort -created``, JSON
for a terminal or a pipe, ``-v``, Ctrl-C, a resource by its id alone (API v2)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.faults import serve_local

ROOT = Path(__file__).resolve().parent.parent
SECRET = "udata_key_that_must_not_be_logged"
TITLE = "Qualité de l'air — données"

# The command, with Ctrl-C raising KeyboardInterrupt even where the test runner's parent
# ignores SIGINT (a background job): as in an interactive shell.
COMMAND = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " from aioudata._cli import main; sys.exit(main())"
)


class Portal:
    """A udata-like portal on 127.0.0.1 in its own thread: a dataset listing, datasets by id
    (JSON ASCII-escaped, as udata sends it), resources by id on the API v2."""

    def __init__(self, size: int = 250) -> None:
        self.items = [{"id": f"{n:06d}", "title": f"thing {n}"} for n in range(size)]
        self.items[0]["title"] = TITLE
        #: (path, query) of every request, as received.
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: Listing pages (or dataset ids) that answer only when the client has left.
        self.hang: set[str] = set()
        #: Listing pages answering 503 once (then normally).
        self.fail_once: set[str] = set()
        self.hanging = threading.Event()
        self.port = 0
        self._ready = threading.Event()
        self._stop: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/1"

    async def _wait_for_client_to_leave(self, request: web.Request) -> web.Response:
        self.hanging.set()
        for _ in range(3000):  # at most 30 s
            if request.transport is None or request.transport.is_closing():
                break
            await asyncio.sleep(0.01)
        return web.Response(status=499)

    async def _list(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.query)))
        page = request.query.get("page", "1")
        if page in self.hang:
            return await self._wait_for_client_to_leave(request)
        if page in self.fail_once:
            self.fail_once.discard(page)
            return web.json_response({"message": "busy"}, status=503, headers={"Retry-After": "0"})
        number, size = int(page), int(request.query.get("page_size", "20"))
        chunk = self.items[(number - 1) * size : number * size]
        if not chunk and number > 1:
            return web.json_response({"message": "not found"}, status=404)
        more = number * size < len(self.items)
        url = f"{self.base_url}/datasets/?page={number + 1}&page_size={size}"
        return web.json_response(
            {
                "data": chunk,
                "page": number,
                "page_size": size,
                "total": len(self.items),
                "next_page": url if more else None,
            }
        )

    async def _dataset(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.query)))
        wanted = request.match_info["id"]
        if wanted in self.hang:
            return await self._wait_for_client_to_leave(request)
        for item in self.items:
            if item["id"] == wanted:
                body = {**item, "tags": ["air", "qualité"], "extras": {"n": 1.5}}
                return web.Response(text=json.dumps(body), content_type="application/json")
        return web.json_response({"message": "not found"}, status=404)

    async def _resource(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.query)))
        resource = {"id": request.match_info["rid"], "title": "Données brutes", "format": "csv"}
        return web.json_response({"resource": resource, "dataset_id": "000007"})

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/api/1/datasets/", self._list)
        app.router.add_get("/api/1/datasets/{id}/", self._dataset)
        app.router.add_get("/api/2/datasets/resources/{rid}/", self._resource)
        runner, self.port = await serve_local(app)
        stop = asyncio.Event()
        self._stop = (asyncio.get_running_loop(), stop)
        self._ready.set()
        await stop.wait()
        await runner.cleanup()

    def __enter__(self) -> Portal:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        loop, stop = self._stop
        loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)


@pytest.fixture
def portal() -> Iterator[Portal]:
    with Portal() as server:
        yield server


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("UDATA_API_KEY", "CI")}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
    )


def test_ls_lists_everything_by_default(portal: Portal) -> None:
    done = run("ls", "datasets", "--base-url", portal.base_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 250 and lines[0] == f"000000\t{TITLE}" and lines[-1] == "000249\tthing 249"
    assert done.stderr == ""


def test_ls_says_on_stderr_when_the_limit_stopped_it(portal: Portal) -> None:
    done = run("ls", "datasets", "--base-url", portal.base_url, "--limit", "120")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 120
    assert done.stderr == "aioudata: --limit 120 stopped the listing: 120 of 250 datasets shown\n"
    whole = run("ls", "datasets", "--base-url", portal.base_url, "--limit", "250")
    assert len(whole.stdout.splitlines()) == 250 and whole.stderr == ""  # nothing was left


@pytest.mark.parametrize("form", [["--sort", "-created"], ["--sort=-created"]])
def test_a_sort_value_starting_with_a_dash(portal: Portal, form: list[str]) -> None:
    done = run("ls", "datasets", *form, "--limit", "1", "--base-url", portal.base_url, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "000000"
    assert portal.requests[0][1]["sort"] == "-created"


def test_a_query_starting_with_a_dash_and_options_after_it(portal: Portal) -> None:
    done = run("ls", "datasets", "--q", "-air", "-v", "--limit", "1", "--base-url", portal.base_url)
    assert done.returncode == 0, done.stderr
    assert portal.requests[0][1]["q"] == "-air"
    assert "aioudata.http" in done.stderr  # -v after it is still the option


def _on_a_terminal(*args: str) -> str:
    """The command's output on a pseudo-terminal (stdout only)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", COMMAND, *args],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(10) == 0, process.stderr.read() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_get_on_a_terminal_is_indented_with_real_unicode(portal: Portal) -> None:
    shown = _on_a_terminal("get", "dataset", "000000", "--base-url", portal.base_url)
    assert shown.startswith('{\n  "id": "000000",\n  "title": "Qualité de l\'air — données",')
    assert '"qualité"' in shown and "\\u" not in shown
    assert json.loads(shown)["extras"] == {"n": 1.5}
    compact = _on_a_terminal("get", "dataset", "000000", "--compact", "--base-url", portal.base_url)
    assert compact.count("\n") == 1 and json.loads(compact)["title"] == TITLE


def test_get_piped_is_one_json_document(portal: Portal) -> None:
    done = run("get", "dataset", "000000", "--base-url", portal.base_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and TITLE in done.stdout  # one line, real Unicode
    assert json.loads(done.stdout)["tags"] == ["air", "qualité"]


def test_get_a_resource_by_its_id_alone_from_the_api_v2(portal: Portal) -> None:
    rid = "0dd7fcfd-7e6e-4f2e-9ac6-4b1f6d2b0a1e"
    done = run("get", "resource", rid, "--base-url", portal.base_url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["dataset_id"] == "000007" and answer["resource"]["id"] == rid
    assert portal.requests[-1][0] == f"/api/2/datasets/resources/{rid}/"


def test_help_lists_the_entities() -> None:
    get, ls = run("get", "--help"), run("ls", "--help")
    assert get.returncode == ls.returncode == 0
    get_help, ls_help = " ".join(get.stdout.split()), " ".join(ls.stdout.split())
    assert (
        "dataset, organization, reuse, user, harvest_source, topic, post, discussion, resource"
        in get_help
    )
    assert "datasets, organizations, reuses, users, harvest_sources, topics" in ls_help
    assert "--sort -created" in ls_help


def test_verbose_logs_each_request_and_its_retry_never_the_key(portal: Portal) -> None:
    portal.fail_once.add("2")
    done = run(
        "ls", "datasets", "--limit", "150", "-v", "--api-key", SECRET, "--base-url", portal.base_url
    )
    assert done.returncode == 0, done.stderr
    url = re.escape(f"{portal.base_url}/datasets/?page=")
    logged = re.findall(
        rf"aioudata\.http INFO GET {url}(\d)&page_size=100 (\d+) \d+\.\d{{3}}s attempt (\d)",
        done.stderr,
    )
    # Pages 1 and 2 (refused once, then retried); pages fetched ahead may follow.
    assert {("1", "200", "1"), ("2", "503", "1"), ("2", "200", "2")} <= set(logged)
    assert "retrying" in done.stderr and SECRET not in done.stderr


def _interrupted(portal: Portal, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command, press Ctrl-C once the portal holds its request."""
    process = subprocess.Popen(
        [sys.executable, "-c", COMMAND, *args, "--base-url", portal.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert portal.hanging.wait(30), "the request never came"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_ctrl_c_during_ls_exits_130_without_a_traceback(portal: Portal) -> None:
    portal.hang.add("2")
    done = _interrupted(portal, "ls", "datasets")
    assert (done.returncode, done.stderr) == (130, "aioudata: interrupted\n")
