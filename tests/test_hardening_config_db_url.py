"""``CheckConfig`` / ``DownloadConfig`` take a PostgreSQL database as ``db_url``, typed.

As ``MirrorConfig`` does: a ``postgresql://`` string or a ``DatabaseURL``, read once, its
password never shown. A ``db`` given as such a string (as before ``db_url``) still works; the
command line (--db URL, --db-url, AIOUDATA_DB_URL) gives ``db_url``. No server is needed: the
URL is only read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from aioudata import CheckConfig, DownloadConfig, MirrorError
from aioudata._cli import build_parser
from aioudata._crawl.cli import config_from
from aioudata._mirror.config import DEFAULT_DB
from aioudata._mirror.pgurl import DB_URL_ENV, DatabaseURL

SECRET = "s3cret-pw"
URL = f"postgresql://aioudata:{SECRET}@127.0.0.1:5/udata?schema=portal"


@pytest.mark.parametrize("kind", [CheckConfig, DownloadConfig])
@pytest.mark.parametrize("given", [URL, DatabaseURL.parse(URL)], ids=["text", "parsed"])
def test_db_url_names_the_database_the_run_uses(
    kind: type[CheckConfig], given: str | DatabaseURL
) -> None:
    config = kind(db_url=given)
    assert isinstance(config.db, DatabaseURL) and config.db_url == config.db
    assert config.db.schema == "portal" and config.db.url.startswith("postgresql://aioudata:")
    assert str(config.db) == "postgresql://aioudata@127.0.0.1:5/udata (schema portal)"
    assert SECRET not in repr(config) and kind.__name__ in repr(config)


def test_a_url_given_as_db_still_works() -> None:
    legacy: dict[str, Any] = {"db": URL}  # callers from before db_url
    config = DownloadConfig(**legacy)
    assert config.db == config.db_url == DatabaseURL.parse(URL)


def test_a_file_has_no_db_url(tmp_path: Path) -> None:
    assert CheckConfig().db == DEFAULT_DB and CheckConfig().db_url is None
    as_text: dict[str, Any] = {"db": str(tmp_path / "x.sqlite")}
    config = CheckConfig(**as_text)
    assert config.db == tmp_path / "x.sqlite" and config.db_url is None


def test_a_file_and_a_url_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MirrorError, match="give db or db_url, not both") as info:
        CheckConfig(db=tmp_path / "x.sqlite", db_url=URL)
    assert info.value.code == 2


def test_a_bad_url_is_refused_without_its_password() -> None:
    with pytest.raises(MirrorError, match="schema") as info:
        DownloadConfig(db_url=f"postgresql://u:{SECRET}@h/d?schema=Bad-Name")
    assert info.value.code == 2 and SECRET not in str(info.value)


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["resources", "download", "--dir", "d", *argv])


@pytest.mark.parametrize(
    ("argv", "env"),
    [(("--db", URL), None), (("--db-url", URL), None), ((), URL)],
    ids=["--db", "--db-url", DB_URL_ENV],
)
def test_the_command_line_gives_db_url(
    monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], env: str | None
) -> None:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(DB_URL_ENV, env)
    config = config_from(_parse(*argv))
    assert isinstance(config, DownloadConfig)
    assert config.db_url == config.db == DatabaseURL.parse(URL)


def test_the_command_line_gives_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DB_URL_ENV, URL)  # --db wins over the environment
    config = config_from(_parse("--db", str(tmp_path / "m.sqlite")))
    assert config.db == tmp_path / "m.sqlite" and config.db_url is None
