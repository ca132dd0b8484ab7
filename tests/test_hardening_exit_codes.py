"""``aioudata resources download``: a full disk and an unusable database exit differently.

6 is the PostgreSQL database that cannot be used, for ``mirror`` and ``resources`` alike; a
download stopped because the disk is nearly full is 7 (tests/test_crawl_download_cli.py runs
one). No database server here: a refused port stands for one that cannot be reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aioudata import _cli
from aioudata._cli import build_parser, main
from aioudata._crawl.download_config import EXIT_NO_SPACE
from aioudata._mirror.config import EXIT_DATABASE
from tests.test_hardening_preflight import refused_port as refused_port  # the fixture


def test_every_exit_status_means_one_thing() -> None:
    codes = {
        name: value
        for name, value in vars(_cli).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }
    codes |= {"EXIT_DATABASE": EXIT_DATABASE, "EXIT_NO_SPACE": EXIT_NO_SPACE}
    assert len(set(codes.values())) == len(codes), codes
    assert (EXIT_DATABASE, EXIT_NO_SPACE) == (6, 7)


def test_a_database_that_cannot_be_used_is_6_for_a_download(
    refused_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://aioudata:pw-never-shown@127.0.0.1:{refused_port}/udata"
    argv = ["resources", "download", "--db-url", url, "--dir", str(tmp_path / "d"), "--quiet"]
    assert main(argv) == EXIT_DATABASE == 6
    err = capsys.readouterr().err
    assert "cannot reach the database server" in err and "pw-never-shown" not in err
    assert not (tmp_path / "d").exists()


def test_the_help_says_both(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["resources", "download", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Exit status 7: stopped because the disk is nearly full" in shown
    assert "6: the PostgreSQL database cannot be used" in shown
