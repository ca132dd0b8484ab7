"""End to end: ``aioudata mirror`` (a subprocess) against the real udata server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.summaries import summary_rows
from tests.udata_server.fixture import UdataServer, running_server

pytestmark = pytest.mark.udata_server
ROOT = Path(__file__).resolve().parent.parent
TABLES = ("datasets", "organizations", "reuses", "resources")


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m aioudata ARGS``, plain progress (CI set), no key from the environment."""
    return subprocess.run(
        [sys.executable, "-m", "aioudata", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        check=False,
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "UDATA_API_KEY"}
    env["CI"] = "1"
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def mirror(server: UdataServer, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("mirror", "--base-url", server.base_url, "--db", str(db), "--rate", "0", *extra)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def rows(db: Path, table: str) -> dict[str, tuple[Any, ...]]:
    """id → row, every column but the bookkeeping."""
    return {row[0]: row for row in dump(db)[table]}


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every mirrored row (every column, JSON included) and every quarantined record."""
    found = {}
    for table in TABLES:
        # Bookkeeping (when and in which run a row was written) is not mirrored data.
        columns = [row[1] for row in query(db, f"PRAGMA table_info({table})")]
        bookkeeping = ("written_at", "changed_run")
        shown = ", ".join(column for column in columns if column not in bookkeeping)
        found[table] = query(db, f"SELECT {shown} FROM {table} ORDER BY id")
    found["errors"] = query(
        db, "SELECT entity, key, item_id, raw, reason FROM errors ORDER BY 1, 2"
    )
    return found


def ids(db: Path, table: str, where: str = "gone_at IS NULL") -> set[str]:
    return {row[0] for row in query(db, f"SELECT id FROM {table} WHERE {where}")}


def test_the_mirror_holds_exactly_the_seeded_public_objects(
    udata_server: UdataServer, tmp_path: Path
) -> None:
    db = tmp_path / "mirror.sqlite"
    done = mirror(udata_server, db, "--page-size", "7")
    assert done.returncode == 0, done.stderr
    manifest = udata_server.manifest
    assert ids(db, "datasets") == set(manifest["datasets"]["public"])
    hidden = {
        *manifest["datasets"]["private"],
        *manifest["datasets"]["archived"],
        *manifest["datasets"]["deleted"],
    }
    assert hidden and not hidden & ids(db, "datasets", "1")
    resources = set(query(db, "SELECT id, dataset_id FROM resources"))
    assert resources == {
        (resource, dataset) for dataset, rids in manifest["resources"].items() for resource in rids
    }
    assert len(resources) == manifest["counts"]["resources_public"]
    assert ids(db, "organizations") == set(manifest["organizations"]["public"])
    assert ids(db, "reuses") == set(manifest["reuses"]["listed"])
    assert not {*manifest["reuses"]["private"], *manifest["reuses"]["deleted"]} & ids(
        db, "reuses", "1"
    )
    assert query(db, "SELECT COUNT(*) FROM errors") == [(0,)]
    # Columns agree with the JSON kept as received.
    for item_id, title, organization, owner, raw in query(
        db, "SELECT id, title, organization_id, owner_id, json FROM datasets"
    ):
        document = json.loads(raw)
        assert document["id"] == item_id and document["title"] == title
        assert organization == (document["organization"] or {}).get("id")
        assert owner == (document["owner"] or {}).get("id")
    assert "datasets" in done.stderr and "mirror of" in done.stderr
    # A second run over an unchanged catalog changes nothing.
    before = dump(db)
    again = mirror(udata_server, db, "--page-size", "7")
    assert again.returncode == 0, again.stderr
    assert summary_rows(again.stderr)["datasets"]["mode"] == "incremental"
    assert dump(db) == before


def test_kill_9_then_resume_gives_the_database_of_an_uninterrupted_run(
    udata_server: UdataServer, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.sqlite"
    done = mirror(udata_server, reference, "--page-size", "2")
    assert done.returncode == 0, done.stderr
    victim = tmp_path / "victim.sqlite"
    slow = ["mirror", "--base-url", udata_server.base_url, "--db", str(victim)]
    slow += ["--page-size", "2", "--concurrency", "1", "--rate", "3", "--quiet"]
    process = subprocess.Popen(
        [sys.executable, "-m", "aioudata", *slow],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            try:
                pages = query(victim, "SELECT page FROM sync_state WHERE entity = 'datasets'")
            except sqlite3.Error:
                continue
            if pages and pages[0][0] >= 3:
                break
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the mirror ended before it could be killed"
    partial = len(ids(victim, "datasets"))
    assert 0 < partial < len(udata_server.manifest["datasets"]["public"])
    resumed = mirror(udata_server, victim, "--page-size", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed full pass" in resumed.stderr
    assert dump(victim) == dump(reference)


@pytest.fixture(scope="module")
def own_server() -> Iterator[UdataServer]:
    """A server of this module's own: the incremental test changes its catalog."""
    yield from running_server(datasets=30)


def call(server: UdataServer, method: str, path: str, body: Any = None) -> Any:
    """A keyed write with the admin key (urllib; the server is on 127.0.0.1)."""
    request = urllib.request.Request(
        server.url(path),
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-API-KEY": server.api_keys["admin"], "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


def test_an_incremental_run_picks_up_exactly_the_changes(
    own_server: UdataServer, tmp_path: Path
) -> None:
    db = tmp_path / "mirror.sqlite"
    first = mirror(own_server, db)
    assert first.returncode == 0, first.stderr
    before = rows(db, "datasets")
    public = own_server.manifest["datasets"]["public"]
    modified, removed = public[3], public[5]
    call(own_server, "PUT", f"/datasets/{modified}/", {"title": "Renamed by the mirror test"})
    added = call(own_server, "POST", "/datasets/", {"title": "Added", "description": "new"})["id"]
    call(own_server, "DELETE", f"/datasets/{removed}/")

    second = mirror(own_server, db)
    assert second.returncode == 0, second.stderr
    assert summary_rows(second.stderr)["datasets"]["mode"] == "incremental"
    after = rows(db, "datasets")
    changed = {key for key in after if after[key] != before.get(key)}
    assert changed == {modified, added, removed}
    assert query(db, f"SELECT title FROM datasets WHERE id = '{modified}'") == [
        ("Renamed by the mirror test",)
    ]
    assert ids(db, "datasets") == (set(public) - {removed}) | {added}
    ((gone_at,),) = query(db, f"SELECT gone_at FROM datasets WHERE id = '{removed}'")
    assert gone_at  # marked with a timestamp, not dropped
    resources = own_server.manifest["resources"][removed]
    assert ids(db, "resources", "gone_at IS NOT NULL") == set(resources)
    counted = summary_rows(second.stderr)["datasets"]
    assert (counted["new"], counted["updated"], counted["deleted"]) == ("1", "1", "1")

    # --full: a complete pass that finds nothing more to change.
    full = mirror(own_server, db, "--full")
    assert full.returncode == 0, full.stderr
    assert summary_rows(full.stderr)["datasets"]["mode"] == "full"
    assert rows(db, "datasets") == after


def test_a_bad_key_is_one_line_and_exit_4(udata_server: UdataServer, tmp_path: Path) -> None:
    secret = "udata_not_a_real_key_0123456789"
    done = cli(
        "mirror",
        "--base-url",
        udata_server.base_url,
        "--api-key",
        secret,
        "--db",
        str(tmp_path / "m.sqlite"),
    )
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1 and "Invalid API token" in done.stderr
    assert secret not in done.stderr + done.stdout


def test_get_and_ls_take_the_connection_options_after_the_command(
    udata_server: UdataServer,
) -> None:
    showcase = udata_server.manifest["datasets"]["showcase"]
    got = cli("get", "dataset", showcase, "--base-url", udata_server.base_url)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["id"] == showcase
    listed = cli("ls", "datasets", "--base-url", udata_server.base_url, "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 5
    assert [line.split("\t")[0] for line in lines] == udata_server.manifest["datasets"]["public"][
        :5
    ]
    as_json = cli("ls", "organizations", "--json", "--base-url", udata_server.base_url)
    assert {json.loads(line)["id"] for line in as_json.stdout.splitlines()} == set(
        udata_server.manifest["organizations"]["public"]
    )
    missing = cli("get", "reuse", "000000000000000000000000", "--base-url", udata_server.base_url)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_ctrl_c_stops_with_one_line_and_the_next_run_resumes(
    udata_server: UdataServer, tmp_path: Path
) -> None:
    db = tmp_path / "interrupted.sqlite"
    slow = ["mirror", "--base-url", udata_server.base_url, "--db", str(db), "--quiet"]
    slow += ["--page-size", "2", "--concurrency", "1", "--rate", "3", "--entities", "datasets"]
    process = subprocess.Popen(
        [sys.executable, "-m", "aioudata", *slow],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            try:
                pages = query(db, "SELECT page FROM sync_state WHERE entity = 'datasets'")
            except sqlite3.Error:
                continue
            if pages and pages[0][0] >= 2:
                break
        os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == 130
    assert stderr.strip().splitlines() == [
        "aioudata: interrupted; run the same command again to resume"
    ]
    resumed = mirror(udata_server, db, "--page-size", "2", "--entities", "datasets")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed full pass" in resumed.stderr
    assert ids(db, "datasets") == set(udata_server.manifest["datasets"]["public"])
    assert query(db, "SELECT status FROM runs ORDER BY id") == [("interrupted",), ("ok",)]
