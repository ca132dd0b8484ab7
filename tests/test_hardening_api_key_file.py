"""``--api-key-file``: the key kept out of the process list, from a file or stdin (issue 12)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from aioudata._cli import build_parser, main
from tests.faults import serve_local

SECRET = "udata_key_from_a_file_0123456789"


class _Recorder:
    """A server on 127.0.0.1 (own thread, own loop) recording the X-API-KEY of every request."""

    def __init__(self) -> None:
        self.port = 0
        self.keys: list[str | None] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/1"

    async def _serve(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.keys.append(request.headers.get("X-API-KEY"))
            return web.json_response({"id": "abc", "title": "A dataset"})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner, self.port = await serve_local(app)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), 60)  # bounded even if never stopped
        finally:
            await runner.cleanup()

    def __enter__(self) -> _Recorder:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Recorder]:
    monkeypatch.delenv("UDATA_API_KEY", raising=False)
    with _Recorder() as server:
        yield server


def _one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_the_key_is_read_from_a_file_stripped_and_sent(
    recorder: _Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(f"  {SECRET}\n\n")
    code = main(
        ["get", "dataset", "abc", "--base-url", recorder.base_url, "--api-key-file", str(key_file)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert recorder.keys == [SECRET]
    assert '"id": "abc"' in out or '"id":"abc"' in out
    assert SECRET not in out + err


def test_the_key_file_option_works_before_the_command_too(
    recorder: _Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    argv = [
        "--api-key-file",
        str(key_file),
        "get",
        "dataset",
        "abc",
        "--base-url",
        recorder.base_url,
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert recorder.keys == [SECRET]


def test_a_dash_reads_the_key_from_stdin(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(f"{SECRET}\r\n".encode()))
    monkeypatch.setattr("sys.stdin", stdin)
    code = main(["get", "dataset", "abc", "--base-url", recorder.base_url, "--api-key-file", "-"])
    assert code == 0, capsys.readouterr().err
    assert recorder.keys == [SECRET]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read the API key file"),  # no such file
        ("", "is empty"),
        ("  \n\t\n", "is empty"),
        (f"{SECRET}\nsecond line\n", "alone, on one line"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_an_unusable_key_file_is_one_line_exit_2_and_nothing_is_sent(
    recorder: _Recorder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes | None,
    needle: str,
) -> None:
    key_file = tmp_path / "key"
    if isinstance(content, bytes):
        key_file.write_bytes(content)
    elif content is not None:
        key_file.write_text(content)
    code = main(
        ["get", "dataset", "abc", "--base-url", recorder.base_url, "--api-key-file", str(key_file)]
    )
    err = capsys.readouterr().err
    assert code == 2
    line = _one_line(err)
    assert line.startswith("aioudata: error:") and needle in line and str(key_file) in line
    assert SECRET not in err and "second line" not in err
    assert recorder.keys == []  # refused before any request


def test_a_directory_is_not_a_key_file(
    recorder: _Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["get", "dataset", "abc", "--base-url", recorder.base_url, "--api-key-file", str(tmp_path)]
    )
    assert code == 2
    assert "cannot read the API key file" in _one_line(capsys.readouterr().err)
    assert recorder.keys == []


def test_api_key_and_api_key_file_together_are_bad_usage(
    recorder: _Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    argv = ["--api-key", "other", "get", "dataset", "abc", "--base-url", recorder.base_url]
    code = main([*argv, "--api-key-file", str(key_file)])
    assert code == 2
    assert "mutually exclusive" in _one_line(capsys.readouterr().err)
    assert recorder.keys == []


def test_api_key_still_works(recorder: _Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["get", "dataset", "abc", "--base-url", recorder.base_url, "--api-key", SECRET])
    assert code == 0, capsys.readouterr().err
    assert recorder.keys == [SECRET]


def test_help_says_why_the_variable_or_a_file_is_better() -> None:
    helped = " ".join(build_parser().format_help().split())
    assert "--api-key-file PATH" in helped
    assert "process list" in helped and "UDATA_API_KEY" in helped
