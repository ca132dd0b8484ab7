"""Path parameters that would be dot segments are refused before any request (issue 12)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest
from aiohttp import web

from aioudata import ArgumentError, Client, RetryPolicy
from aioudata._arguments import prepare
from aioudata._cli import main
from aioudata._generated.operations import datasets
from tests.faults import serve_local

ONCE = RetryPolicy(max_attempts=1)
RAW_GET_DATASET = dataclasses.replace(datasets.GET_DATASET, response=bytes)


class _Paths:
    """A server on 127.0.0.1 answering 200 ``{}`` and recording each request's raw path."""

    def __init__(self) -> None:
        self.raw_paths: list[str] = []
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.raw_paths.append(request.raw_path)
        return web.json_response({})


@pytest.fixture
async def paths() -> AsyncIterator[_Paths]:
    recorder = _Paths()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner, port = await serve_local(app)
    recorder.base_url = f"http://127.0.0.1:{port}/api/1"
    try:
        yield recorder
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("value", [".", ".."])
async def test_a_dot_segment_id_is_refused_and_nothing_is_sent(paths: _Paths, value: str) -> None:
    async with Client(paths.base_url, retry=ONCE) as client:
        with pytest.raises(ArgumentError, match=r"get_dataset\(\): dataset must not be") as info:
            await client.request(datasets.GET_DATASET, {"dataset": value})
        assert repr(value) in str(info.value)
        with pytest.raises(ArgumentError, match="rid must not be"):
            await client.request(datasets.GET_RESOURCE, {"dataset": "d", "rid": value})
    assert paths.raw_paths == []  # /api/1/datasets/../ would have reached /api/1/


@pytest.mark.parametrize("value", ["...", "a..", "..b", ". .", "%2E%2E", "%2e", "../x", "./"])
async def test_values_near_a_dot_segment_reach_the_dataset_endpoint_as_they_are(
    paths: _Paths, value: str
) -> None:
    async with Client(paths.base_url, retry=ONCE) as client:
        assert await client.request(RAW_GET_DATASET, {"dataset": value}) == b"{}"
    # What went on the wire is the dataset endpoint with the value as one segment: not
    # normalised by yarl or aiohttp into another endpoint.
    assert paths.raw_paths == [f"/api/1/datasets/{quote(value, safe='')}/"]


def test_a_parameter_glued_to_text_is_judged_by_its_segment() -> None:
    # rdf.{_format}: a "." format makes the segment "rdf..", not a dot segment.
    prepared = prepare(datasets.RDF_DATASET_FORMAT, {"dataset": "d", "format": "."})
    assert prepared.path == "/datasets/d/rdf.."


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.mark.parametrize("value", [".", ".."])
def test_get_with_a_dot_segment_is_bad_usage(
    closed_port: int, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = f"http://127.0.0.1:{closed_port}/api/1"
    code = main(["get", "dataset", value, "--base-url", base])
    err = capsys.readouterr().err
    assert code == 2, err  # not 3: no connection was even tried
    assert len(err.splitlines()) == 1 and "must not be" in err
