"""``aioudata resources check``: options, the run, its summary; the README's example."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import aioudata
from aioudata._cli import build_parser, main
from aioudata._crawl import HostLimits, run_command
from aioudata._crawl.cli import config_from
from tests.test_crawl_web import Web, make_mirror, results
from tests.test_crawl_web import webhosts as webhosts  # the fixture

ROOT = Path(__file__).resolve().parent.parent


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["resources", "check", *argv])


def test_options_make_the_config(tmp_path: Path) -> None:
    args = parse(
        "--db",
        str(tmp_path / "x.sqlite"),
        "--all",
        "--format",
        "csv,JSON",
        "--format",
        "zip",
        "--organization",
        "org-a",
        "--host",
        "Example.org",
        "--per-host",
        "3",
        "--host-rate",
        "0",
        "--host-limit",
        "static.data.gouv.fr=8/40",
        "--host-limit",
        "files.example.org=1",
        "--concurrency",
        "32",
        "--robots",
        "--contact",
        "mailto:me@example.org",
        "--timeout",
        "5",
        "--max-redirects",
        "4",
    )
    config = config_from(args)
    assert config.all and config.robots and config.db == tmp_path / "x.sqlite"
    assert config.format == ("csv", "json", "zip") and config.organization == ("org-a",)
    assert config.host == ("example.org",) and config.concurrency == 32
    assert config.per_host == HostLimits(3, None)
    assert config.limits("static.data.gouv.fr") == HostLimits(8, 40.0)
    assert config.limits("files.example.org") == HostLimits(1, 5.0)
    assert config.limits("other.example.org") == HostLimits(3, None)
    assert (config.timeout, config.max_redirects) == (5.0, 4)
    assert config.contact == "mailto:me@example.org"


@pytest.mark.parametrize(
    "argv",
    [
        ["--host-limit", "static.data.gouv.fr"],
        ["--host-limit", "h=0"],
        ["--per-host", "0"],
        ["--host-rate", "-1"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["resources", "check", *argv])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


async def test_the_command_checks_and_sums_up(
    webhosts: Web, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = await webhosts.host("files")
    urls = [host.add(f"/f{n}.csv") for n in range(5)] + [host.url("/missing.csv")]
    db = tmp_path / "m.sqlite"
    make_mirror(db, urls)
    args = parse("--db", str(db), "--host-rate", "0")
    assert await run_command(args) == 0
    err = capsys.readouterr().err
    assert f"check of 6 URLs in {db} (mirror): ok" in err
    assert "6 checked with 7 requests on 1 hosts" in err and "2xx 5, 4xx 1" in err

    assert "check: 100%, 6/6 URLs" in err and "results: 2xx 5, 4xx 1" in err  # last progress
    assert set(results(db)) == set(urls)
    args = parse("--db", str(db), "--quiet")
    assert await run_command(args) == 0
    assert capsys.readouterr().err == ""


def test_the_readme_example_uses_public_names() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Resource files\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    examples = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(examples) == 2  # run_checks, run_downloads
    for example in examples:
        compile(example, "README.md", "exec")
        for name in re.findall(r"aioudata\.(\w+)", example):
            assert name in aioudata.__all__, name


def test_the_summaries_fit_80_columns_at_the_scale_of_data_gouv_fr() -> None:
    from aioudata._crawl.config import CheckSummary
    from aioudata._crawl.download_config import DownloadSummary

    check = CheckSummary(
        "m.sqlite",
        "mirror",
        1,
        total=690_000,
        checked=690_000,
        requests=1_234_567,
        changed=345_678,
        outcomes={"2xx": 600_000, "4xx": 50_000, "timeout": 40_000},
        hosts=12_345,
        elapsed=3_599.0,
    )
    download = DownloadSummary(
        "m.sqlite",
        "files",
        "mirror",
        1,
        total=690_000,
        done=612_345,
        requests=1_234_567,
        bytes=5 * 2**40,
        skipped=123_456,
        resumed=12_345,
        refetched=1_234,
        hosts=12_345,
        elapsed=86_399.0,
    )
    for summary in (check, download):
        lines = summary.lines()
        assert all(len(line) <= 80 for line in lines[1:]), [len(line) for line in lines]
