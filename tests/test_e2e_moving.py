"""End to end: ``aioudata mirror`` loses nothing while the real udata catalog moves under it.

A server of this module's own (300 public datasets). While the mirror (a subprocess, slowed
down by small pages and little concurrency) crawls it, this test deletes datasets (half of them
among the oldest third: the early pages of the mirror's ascending ``created`` walk), creates
new ones (last in that order) and publishes private ones (created long ago: the middle of the
order), with the admin key, a seeded number of them at seeded moments. Every dataset listed
from before the run to its end must be in the mirror, live.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.test_e2e_mirror import _env, call, ids
from tests.udata_server.fixture import UdataServer, running_server

pytestmark = pytest.mark.udata_server
#: Mutations per run, at most, and the time a run (crawl and mutations) may take.
MAX_MOVES = 16
DEADLINE = 60.0


@pytest.fixture(scope="module")
def own_server() -> Iterator[UdataServer]:
    """A server of this module's own: its catalog is changed by the tests."""
    yield from running_server(datasets=300)


def listed(server: UdataServer) -> list[str]:
    """The anonymous listing now, oldest first (the mirror's full-pass order)."""
    url = server.url("/datasets/?sort=created&page_size=1000")
    with urllib.request.urlopen(url, timeout=60) as response:
        page = json.loads(response.read())
    assert page["next_page"] is None and len(page["data"]) == page["total"]
    return [item["id"] for item in page["data"]]


def started(db: Path) -> bool:
    """True once the mirror has committed a first listing page."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        rows = conn.execute("SELECT page FROM sync_state WHERE entity = 'datasets'").fetchall()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return bool(rows) and rows[0][0] >= 1


@dataclass
class Moves:
    """What the test did to the catalog during one run."""

    removed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    log: list[tuple[float, str, str]] = field(default_factory=list)
    #: Mutations answered while the mirror was still running.
    landed: int = 0


def move(rng: random.Random, present: list[str], hidden: list[str]) -> tuple[str, str]:
    """One mutation: delete (60%), create (25%) or publish a private dataset (15%)."""
    roll = rng.random()
    if roll < 0.6:
        if rng.random() < 0.5:  # the mirror's early pages
            victim = rng.choice(present[: max(1, len(present) // 3)])
        else:
            victim = rng.choice(present)
        present.remove(victim)
        return "deleted", victim
    if roll < 0.85 or not hidden:
        return "created", ""
    return "published", hidden.pop(rng.randrange(len(hidden)))


def crawl_while_moving(server: UdataServer, db: Path, seed: int) -> tuple[list[str], Moves, str]:
    """Run the mirror and move the catalog until it ends; (listed before, moves, its stderr)."""
    rng = random.Random(f"e2e moving {seed}")
    before = listed(server)
    present = list(before)
    private = server.manifest["datasets"]["private"]
    hidden = [private[(2 * seed) % len(private)], private[(2 * seed + 1) % len(private)]]
    hidden = [item for item in hidden if item not in before]
    moves = Moves()
    log = db.with_suffix(".log")
    command = [sys.executable, "-m", "aioudata", "mirror", "--base-url", server.base_url]
    command += ["--db", str(db), "--entities", "datasets", "--rate", "0"]
    command += ["--page-size", "3", "--concurrency", "2"]
    began = time.monotonic()
    deadline = began + DEADLINE
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, env=_env(), stdout=subprocess.DEVNULL, stderr=stderr, text=True
        )
        try:
            while process.poll() is None and time.monotonic() < deadline and not started(db):
                time.sleep(0.02)
            while (
                process.poll() is None
                and len(moves.log) < MAX_MOVES
                and time.monotonic() < deadline
            ):
                time.sleep(rng.uniform(0.02, 0.15))
                kind, target = move(rng, present, hidden)
                try:
                    if kind == "deleted":
                        moves.removed.add(target)  # before the request: not owed from now on
                        call(server, "DELETE", f"/datasets/{target}/")
                    elif kind == "created":
                        body = {"title": f"Created during crawl {seed}", "description": "moving"}
                        target = call(server, "POST", "/datasets/", body)["id"]
                        moves.added.add(target)
                    else:
                        moves.added.add(target)
                        call(server, "PUT", f"/datasets/{target}/", {"private": False})
                except urllib.error.HTTPError as error:
                    kind = f"{kind} failed ({error.code})"
                moves.log.append((time.monotonic() - began, kind, target))
                if process.poll() is None:
                    moves.landed += 1
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    return before, moves, log.read_text()


@pytest.mark.parametrize("seed", range(3))
def test_no_dataset_listed_for_the_whole_run_is_lost(
    own_server: UdataServer, tmp_path: Path, seed: int
) -> None:
    db = tmp_path / "mirror.sqlite"
    before, moves, stderr = crawl_while_moving(own_server, db, seed)
    assert moves.landed >= 3, f"the catalog barely moved during the crawl: {moves.log}\n{stderr}"
    assert all("failed" not in kind for _, kind, _ in moves.log), moves.log
    after = set(listed(own_server))
    assert after == (set(before) | moves.added) - moves.removed  # the moves are what changed
    stable = set(before) - moves.removed
    stored = ids(db, "datasets")
    lost = stable - stored
    assert not lost, (
        f"{len(lost)} of {len(stable)} datasets listed for the whole run lost after"
        f" {moves.landed} changes during the crawl: {sorted(lost)[:5]}\n{stderr}"
    )
    assert stored <= set(before) | moves.added  # nothing invented
