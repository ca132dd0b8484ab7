"""MirrorConfig: one meaning of rate 0, --out implying JSON Lines, no credentials shown, and the
command's -v logging every request of a mirror."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aioudata import Client
from aioudata._cli import main
from aioudata._mirror import MirrorConfig
from tests.test_mirror_job import FakeCatalog, catalog

__all__ = ["catalog"]  # the fixture, imported for its use here


async def test_rate_0_is_unlimited_for_the_client_and_the_mirror() -> None:
    assert MirrorConfig(rate=0).rate is None
    async with Client("http://127.0.0.1:9/api/1", rate=0) as client:
        assert client.limiter.rate is None
    with pytest.raises(ValueError, match="rate"):
        Client("http://127.0.0.1:9/api/1", rate=-1)


def test_out_alone_means_json_lines(tmp_path: Path) -> None:
    assert MirrorConfig(out=tmp_path).format == "jsonl"
    assert MirrorConfig(out=tmp_path).database == tmp_path / ".aioudata-mirror.sqlite"
    assert MirrorConfig().format == "sqlite"
    assert MirrorConfig(out=tmp_path, format="sqlite").format == "sqlite"


def test_the_repr_shows_no_credentials() -> None:
    config = MirrorConfig(base_url="https://user:S3CRET@portal.example/api/1", api_key="K3Y")
    shown = repr(config)
    assert "S3CRET" not in shown and "K3Y" not in shown and "portal.example" in shown


async def test_verbose_logs_every_request_of_a_mirror(
    catalog: FakeCatalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["mirror", "-v", "--base-url", catalog.base_url, "--db", str(tmp_path / "m.sqlite")]
    code = await asyncio.to_thread(main, [*argv, "--entities", "datasets", "--rate", "0"])
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "aioudata.http" in line]
    listing = [line for line in lines if "/api/1/datasets/?" in line and " 200 " in line]
    assert len(lines) >= catalog.requests and listing  # every request is logged
    assert any("attempt 1" in line for line in listing)
