"""``aioudata resources download``: options, the run, its summary, its exit status when the
disk is nearly full."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from aioudata._cli import build_parser, main
from aioudata._crawl import DownloadConfig, HostLimits, run_command
from aioudata._crawl import files as files_module
from aioudata._crawl.cli import config_from
from aioudata._crawl.download_config import EXIT_NO_SPACE
from tests.download_web import Files, digest, downloads, files_under, mirror_with_checksums
from tests.download_web import filehosts as filehosts  # the fixture


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["resources", "download", *argv])


def test_options_make_the_config(tmp_path: Path) -> None:
    args = parse(
        "--db",
        str(tmp_path / "x.sqlite"),
        "--dir",
        str(tmp_path / "out"),
        "--all",
        "--max-size",
        "1.5G",
        "--min-free",
        "200M",
        "--attempts",
        "5",
        "--format",
        "csv",
        "--host-limit",
        "static.data.gouv.fr=8/40",
        "--timeout",
        "30",
    )
    config = config_from(args)
    assert isinstance(config, DownloadConfig)
    assert config.dir == tmp_path / "out" and config.all and config.attempts == 5
    assert config.max_size == int(1.5 * 2**30) and config.min_free == 200 * 2**20
    assert config.format == ("csv",) and config.timeout == 30.0
    assert config.limits("static.data.gouv.fr") == HostLimits(8, 40.0)
    shown = repr(DownloadConfig(api_key="s3cret-key", max_size=5))
    assert shown.startswith("DownloadConfig(") and "max_size=5" in shown
    assert "s3cret" not in shown
    defaults = config_from(parse())
    assert isinstance(defaults, DownloadConfig)
    assert defaults.max_size is None and defaults.min_free == 2**30
    assert defaults.dir == Path("udata-files")


@pytest.mark.parametrize(
    "argv", [["--max-size", "lots"], ["--min-free", "-1"], ["--attempts", "0"], ["--size", "1"]]
)
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["resources", "download", *argv])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


async def test_the_command_downloads_sums_up_and_says_when_the_disk_is_full(
    filehosts: Files,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = await filehosts.host()
    good = host.add("/good.csv", b"g" * 1000)
    bad = host.add("/bad.csv", b"b" * 1000)
    host.corrupt["/bad.csv"] = b"B" * 1000
    db, out = tmp_path / "m.sqlite", tmp_path / "out"
    mirror_with_checksums(
        db, [(good, "sha256", digest(b"g" * 1000)), (bad, "md5", digest(b"b" * 1000, "md5"))]
    )
    monkeypatch.setattr(files_module, "statvfs_free", lambda path: 2**40)
    argv = ["--db", str(db), "--dir", str(out), "--host-rate", "0"]
    assert await run_command(parse(*argv)) == 0
    err = capsys.readouterr().err
    assert f"download of 2 files from {db} (mirror) into {out}: ok" in err
    assert "downloaded 1, mismatch 1" in err and "1 checksum mismatches" in err
    assert "download: 100%, 2/2 files" in err  # the last progress line
    assert downloads(db)[bad]["result"] == "mismatch" and len(files_under(out)) == 1

    monkeypatch.setattr(files_module, "statvfs_free", lambda path: 10 * 2**20)
    assert await run_command(parse(*argv, "--all", "--min-free", "1G")) == EXIT_NO_SPACE == 7
    err = capsys.readouterr().err
    assert ": no_space" in err and "under --min-free 1,024 MiB" in err
