"""``run_downloads``: files streamed to disk, verified against their published checksums,
resumed with Range, fetched again where a range cannot be trusted, skipped when unchanged,
limited in size, stopped when the disk is nearly full; the key stays with the API."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aioudata._crawl import HostLimits, run_downloads
from aioudata._crawl.files import file_name, place_of, safe_name
from tests.download_web import (
    Files,
    digest,
    download_config,
    downloads,
    files_under,
    kill_when_under_way,
    mirror_with_checksums,
)
from tests.download_web import filehosts as filehosts  # the fixture
from tests.test_crawl_web import query

BODY = bytes(range(256)) * 400  # 100 KiB, two chunks and more


async def test_files_are_streamed_verified_renamed_and_recorded(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    entries = [
        (host.add("/a.csv", BODY), "sha256", digest(BODY)),
        (host.add("/b.csv", b"b" * 10), "sha1", digest(b"b" * 10, "sha1").upper()),
        (host.add("/c.csv", b"c" * 20), "md5", digest(b"c" * 20, "md5")),
        (host.add("/d.csv", b"d" * 30), None, None),
        (host.url("/missing.csv"), "sha256", "00"),
    ]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    ids = mirror_with_checksums(db, entries)
    summary = await run_downloads(download_config(db, out, api_key="secret-key-123"))

    assert summary.status == "ok" and summary.total == 5
    assert summary.outcomes == {"downloaded": 4, "4xx": 1}
    assert summary.bytes == len(BODY) + 60 and summary.mismatches == 0
    found = files_under(out)
    assert found == {
        f"{ids[0][:2]}/{ids[0]}_a.csv": BODY,
        f"{ids[1][:2]}/{ids[1]}_b.csv": b"b" * 10,
        f"{ids[2][:2]}/{ids[2]}_c.csv": b"c" * 20,
        f"{ids[3][:2]}/{ids[3]}_d.csv": b"d" * 30,
    }
    rows = downloads(db)
    first = rows[entries[0][0]]
    assert (first["result"], first["status"], first["size"]) == ("downloaded", 200, len(BODY))
    assert first["path"] == f"{ids[0][:2]}/{ids[0]}_a.csv"
    assert first["checksum_actual"] == first["checksum_expected"] == digest(BODY)
    assert first["etag"] == host.etag("/a.csv") and first["downloaded_at"]
    # Without a published checksum, the SHA-256 is recorded (nothing to compare it with).
    fourth = rows[entries[3][0]]
    assert fourth["checksum_type"] == "sha256" and fourth["checksum_expected"] is None
    assert fourth["checksum_actual"] == digest(b"d" * 30)
    missing = rows[entries[4][0]]
    assert (missing["result"], missing["status"], missing["path"]) == ("failed", 404, None)
    # The API key is for the API: no file host ever sees it, in any header.
    assert host.seen and all(
        "secret-key-123" not in value for seen in host.seen for value in seen.headers.values()
    )
    assert all(seen.headers["Accept-Encoding"] == "identity" for seen in host.seen)
    assert query(db, "SELECT status, skipped FROM download_runs") == [("ok", 0)]
    assert query(db, "SELECT COUNT(*) FROM download_frontier") == [(0,)]


async def test_a_checksum_mismatch_is_recorded_and_its_file_not_kept(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    url = host.add("/data.csv", BODY)
    host.corrupt["/data.csv"] = BODY[:-1] + b"X"
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(url, "sha256", digest(BODY))])
    summary = await run_downloads(download_config(db, out))

    assert summary.outcomes == {"mismatch": 1} and summary.mismatches == 1
    assert files_under(out) == {}  # no file, not even a part, that could pass for it
    row = downloads(db)[url]
    assert row["result"] == "mismatch" and row["path"] is None
    assert row["checksum_expected"] == digest(BODY)
    assert row["checksum_actual"] == digest(host.corrupt["/data.csv"])
    # The query of the README finds it.
    assert query(
        db,
        "SELECT r.id FROM resources r JOIN download_results d ON d.resource_id = r.id"
        " WHERE d.result = 'mismatch'",
    ) == [(row["resource_id"],)]


async def test_a_cut_transfer_is_resumed_with_range_and_if_range(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    url = host.add("/big.csv", BODY)
    host.cuts["/big.csv"] = [70_000, 90_000]  # cut twice, then whole
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    ids = mirror_with_checksums(db, [(url, "sha256", digest(BODY))])
    summary = await run_downloads(download_config(db, out, attempts=3))

    assert summary.outcomes == {"downloaded": 1} and summary.resumed == 1
    ranges = [(s.headers.get("Range"), s.headers.get("If-Range")) for s in host.seen]
    assert ranges == [
        (None, None),
        ("bytes=70000-", host.etag("/big.csv")),
        ("bytes=90000-", host.etag("/big.csv")),
    ]
    assert files_under(out) == {f"{ids[0][:2]}/{ids[0]}_big.csv": BODY}
    row = downloads(db)[url]
    assert (row["result"], row["resumed_from"], row["refetched"]) == ("downloaded", 90_000, 0)
    assert row["bytes"] == len(BODY)  # every byte received once, over three answers
    assert summary.bytes == len(BODY)


async def test_a_server_ignoring_range_is_fetched_from_zero(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host(ranges=False)
    url = host.add("/big.csv", BODY)
    host.cuts["/big.csv"] = [70_000]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(url, "sha256", digest(BODY))])
    summary = await run_downloads(download_config(db, out))

    assert summary.outcomes == {"downloaded": 1}
    assert (summary.resumed, summary.refetched) == (0, 1)
    assert [s.headers.get("Range") for s in host.seen] == [None, "bytes=70000-"]
    assert list(files_under(out).values()) == [BODY]  # not the first 70,000 bytes twice
    row = downloads(db)[url]
    assert (row["resumed_from"], row["refetched"], row["result"]) == (0, 1, "downloaded")


async def test_a_file_changed_since_its_part_is_fetched_from_zero(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    url = host.add("/big.csv", BODY)
    host.cuts["/big.csv"] = [70_000]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(url, None, None)])
    first = await run_downloads(download_config(db, out, attempts=1))
    assert first.outcomes == {"incomplete": 1}
    (part,) = out.rglob(".*.part")  # kept for later, under a name no complete file has
    assert part.stat().st_size == 70_000 and part.with_name(part.name + ".json").exists()

    new = b"new version " * 5000
    host.files["/big.csv"] = new  # another ETag: If-Range fails, the server sends it all
    second = await run_downloads(download_config(db, out))
    assert second.outcomes == {"downloaded": 1} and second.refetched == 1
    assert host.seen[-1].headers["If-Range"] != host.etag("/big.csv")
    assert list(files_under(out).values()) == [new]


async def test_a_part_longer_than_the_file_gets_416_and_a_fetch_from_zero(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host(etags={"/f.csv": '"v1"'})  # a server keeping its ETag
    url = host.add("/f.csv", BODY)
    host.cuts["/f.csv"] = [90_000]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(url, None, None)])
    await run_downloads(download_config(db, out, attempts=1))
    host.files["/f.csv"] = b"short"  # shorter than the part, same ETag
    summary = await run_downloads(download_config(db, out))

    assert [s.headers.get("Range") for s in host.seen] == [None, "bytes=90000-", None]
    assert summary.outcomes == {"downloaded": 1} and summary.refetched == 1
    assert list(files_under(out).values()) == [b"short"]


async def test_unchanged_files_are_not_fetched_again(filehosts: Files, tmp_path: Path) -> None:
    host = await filehosts.host()
    with_sum = host.add("/sum.csv", b"1" * 100)
    without = host.add("/plain.csv", b"2" * 100)
    removed = host.add("/removed.csv", b"3" * 100)
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(
        db,
        [
            (with_sum, "sha256", digest(b"1" * 100)),
            (without, None, None),
            (removed, "sha256", digest(b"3" * 100)),
        ],
    )
    await run_downloads(download_config(db, out))
    (out / downloads(db)[removed]["path"]).unlink()  # someone deleted it
    host.seen.clear()
    summary = await run_downloads(download_config(db, out))

    # The published checksum is the file's: not requested at all. Without one, a
    # conditional GET answered 304. A file gone from the disk is fetched again.
    assert summary.skipped == 1 and summary.total == 2
    assert summary.outcomes == {"not_modified": 1, "downloaded": 1}
    seen = {s.path: s.headers for s in host.seen}
    assert set(seen) == {"/plain.csv", "/removed.csv"}
    assert seen["/plain.csv"]["If-None-Match"] == host.etag("/plain.csv")
    assert "If-None-Match" not in seen["/removed.csv"]
    rows = downloads(db)
    assert rows[without]["result"] == "not_modified" and rows[without]["path"]
    assert len(files_under(out)) == 3
    # --all fetches everything again, without conditions.
    host.seen.clear()
    again = await run_downloads(download_config(db, out, all=True))
    assert again.outcomes == {"downloaded": 3} and again.skipped == 0
    assert not any("If-None-Match" in s.headers for s in host.seen)


async def test_max_size_skips_large_files_even_without_a_length(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    small = host.add("/small.csv", b"s" * 1000)
    large = host.add("/large.csv", BODY)
    streamed = host.add("/streamed.csv", BODY)
    host.chunked.add("/streamed.csv")  # no Content-Length: found out while streaming
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    ids = mirror_with_checksums(
        db, [(small, None, None), (large, None, None), (streamed, None, None)]
    )
    summary = await run_downloads(download_config(db, out, max_size=50_000))

    assert summary.outcomes == {"downloaded": 1, "too_large": 2}
    assert files_under(out) == {f"{ids[0][:2]}/{ids[0]}_small.csv": b"s" * 1000}
    rows = downloads(db)
    assert rows[large]["result"] == "too_large" and rows[large]["bytes"] == 0
    assert "over --max-size" in rows[large]["detail"]
    assert rows[streamed]["result"] == "too_large" and rows[streamed]["bytes"] <= 50_000
    assert rows[streamed]["path"] is None


class Disk:
    """A disk whose free space shrinks by what is measured: ``free`` bytes left, minus
    ``step`` at each measure."""

    def __init__(self, free: int, step: int) -> None:
        self.free, self.step, self.calls = free, step, 0

    def __call__(self, path: Path) -> int:
        assert path.exists()
        self.calls += 1
        self.free -= self.step
        return self.free


async def test_a_nearly_full_disk_stops_the_run_cleanly_and_it_resumes(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host(chunk=16 * 1024)
    urls = [host.add(f"/f{n}.csv", BODY) for n in range(4)]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(url, "sha256", digest(BODY)) for url in urls])
    disk = Disk(free=8 * 2**20, step=2**20)  # under 5 MiB at the third measure
    config = download_config(db, out, min_free=5 * 2**20, free_space=disk, chunk_size=16 * 1024)
    summary = await run_downloads(config)

    assert summary.status == "no_space" and summary.stopped is not None
    assert "--min-free" in summary.stopped and "resumes" in summary.stopped
    assert summary.done < 4
    # What stopped mid-way is a dot file; every file under its name is whole and verified,
    # and recorded (the summary may miss one whose commit it did not wait for).
    named = [n for n in files_under(out).items() if not n[0].rsplit("/", 1)[-1].startswith(".")]
    recorded = query(db, "SELECT COUNT(*) FROM download_results WHERE result = 'downloaded'")
    assert [(len(named),)] == recorded and len(named) < 4
    assert summary.outcomes.get("downloaded", 0) <= len(named)
    assert all(body == BODY for _, body in named)
    assert query(db, "SELECT status FROM download_runs") == [("no_space",)]

    # Room again: the same command resumes the run and finishes it.
    resumed = await run_downloads(download_config(db, out))
    assert resumed.resumed_run and resumed.status == "ok"
    assert sorted(files_under(out).values()) == [BODY] * 4
    assert query(db, "SELECT COUNT(*) FROM download_results WHERE result = 'downloaded'") == [(4,)]


async def test_requests_in_flight_stay_within_the_host_limits(
    filehosts: Files, tmp_path: Path
) -> None:
    busy = await filehosts.host(pause=0.005, chunk=8 * 1024)
    other = await filehosts.host(pause=0.005, chunk=8 * 1024)
    urls = [busy.add(f"/b{n}.csv", BODY[:40_000]) for n in range(10)]
    urls += [other.add(f"/o{n}.csv", BODY[:40_000]) for n in range(10)]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(url, None, None) for url in urls])
    config = download_config(
        db,
        out,
        per_host=HostLimits(2, None),
        host_limits={f"127.0.0.1:{other.port}": HostLimits(3, None)},
    )
    summary = await run_downloads(config)

    assert summary.outcomes == {"downloaded": 20}
    # Measured by the servers, over whole transfers (a slot is held until the last byte).
    assert busy.max_in_flight == 2 and other.max_in_flight == 3


async def test_a_large_file_is_never_held_whole_in_memory(filehosts: Files, tmp_path: Path) -> None:
    import tracemalloc

    size = 24 * 2**20
    body = hashlib.sha256(b"seed").digest() * (size // 32)
    host = await filehosts.host(chunk=256 * 1024)
    url = host.add("/huge.bin", body)
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(url, "sha256", digest(body))])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        summary = await run_downloads(download_config(db, out, chunk_size=64 * 1024))
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert summary.outcomes == {"downloaded": 1}
    assert next(out.rglob("*_huge.bin")).stat().st_size == size
    # Server and client together hold a few chunks at a time, never the 24 MiB body.
    assert peak < 4 * 2**20, f"{peak:,} bytes at the peak"


async def test_names_from_servers_and_urls_never_leave_the_directory(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    for path, name in [
        ("/a", "../../escape.sh"),
        ("/b", "/etc/passwd"),
        ("/c", ".."),
        ("/d", "..\\..\\win.bat"),
        ("/e", "x" * 400 + ".csv"),
    ]:
        host.add(path, path.encode())
        host.names[path] = name
    host.add("/%2E%2E%2F%2E%2E%2Fup.csv", b"encoded")
    urls = [host.url(p) for p in ("/a", "/b", "/c", "/d", "/e", "/%2E%2E%2F%2E%2E%2Fup.csv")]
    db, out = tmp_path / "m.sqlite", tmp_path / "deep" / "files"
    ids = mirror_with_checksums(db, [(url, None, None) for url in urls])
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE resource_rows SET id = '../../../outside' WHERE id = ?", (ids[0],))
    conn.close()
    summary = await run_downloads(download_config(db, out))

    assert summary.outcomes == {"downloaded": 6}
    outside = set(files_under(tmp_path)) - {f"deep/files/{name}" for name in files_under(out)}
    assert all(name.startswith("m.sqlite") for name in outside), outside
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["files"]
    names = sorted(Path(name).name.split("_", 1)[1] for name in files_under(out))
    assert names == sorted(["escape.sh", "passwd", "file", "win.bat", "x" * 176 + ".csv", "up.csv"])
    for name in files_under(out):
        assert (out / name).resolve().is_relative_to(out.resolve())
        assert len(Path(name).parts) == 2  # <2 characters>/<resource>_<file>
        assert len(Path(name).name.encode()) <= 255
    rows = downloads(db)
    assert rows[urls[0]]["path"].split("/")[1].startswith("x")  # the odd id, hashed


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("data.csv", "data.csv"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path.txt", "path.txt"),
        ("..", "file"),
        (".", "file"),
        ("", "file"),
        (".hidden", "hidden"),
        ("a\x00b\nc.csv", "a_b_c.csv"),
        ("C:\\dir\\x.txt", "x.txt"),
        ("con.txt", "file_con.txt"),
        ("NUL", "file_NUL"),
        ("a\u202egpj.exe", "agpj.exe"),
        ("é" * 150 + ".csv", "é" * 88 + ".csv"),
    ],
)
def test_safe_names(name: str, safe: str) -> None:
    assert safe_name(name) == safe
    assert len(safe.encode()) <= 180


def test_file_names_come_from_the_server_or_the_url() -> None:
    assert file_name('"quoted".csv', "http://h/x") == "_quoted_.csv"
    assert file_name(None, "http://h/a/b%2F..%2Fc.csv?x=1") == "c.csv"
    assert file_name(None, "http://h/") == "file"
    assert file_name(None, "http://h/dir/") == "dir"


def test_where_files_go() -> None:
    root = Path("/r")
    place = place_of(root, "0a1b-c")
    assert (place.folder, place.stem) == ("/r/0a", "0a1b-c")
    assert (place.part, place.info) == ("/r/0a/.0a1b-c.part", "/r/0a/.0a1b-c.part.json")
    assert place.final("data.csv") == "/r/0a/0a1b-c_data.csv"
    odd = place_of(root, "../x")
    assert Path(odd.folder).parent == root and odd.stem.startswith("x") and len(odd.stem) == 41


CHILD = """
import asyncio, sys
from pathlib import Path
from aioudata._crawl import DownloadConfig, HostLimits, run_downloads
config = DownloadConfig(
    db=Path(sys.argv[1]), dir=Path(sys.argv[2]), per_host=HostLimits(4, None), min_free=0,
    timeout=60, chunk_size=4096,
)
asyncio.run(run_downloads(config))
"""


async def test_killed_mid_transfer_nothing_passes_for_complete_and_a_rerun_resumes(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host(chunk=4096, pause=0.002)  # ~2 MB/s a file: slow enough
    # Over 1 MiB each: files that large are resumed after a kill (smaller: fetched again).
    bodies = {f"/f{n}.bin": hashlib.sha256(bytes([n])).digest() * 36000 for n in range(12)}
    urls = [host.add(path, body) for path, body in bodies.items()]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    mirror_with_checksums(db, [(host.url(p), "sha256", digest(b)) for p, b in bodies.items()])
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(db), str(out), stdout=subprocess.DEVNULL
    )
    await kill_when_under_way(child, out, 4)  # some files whole, others under way
    assert child.returncode == -9
    found = files_under(out)
    whole = {n: b for n, b in found.items() if not Path(n).name.startswith(".")}
    parts = [n for n in found if n.endswith(".part")]
    assert whole and parts
    assert all(body in bodies.values() for body in whole.values())  # whole means verified
    committed = len(downloads(db))
    host.seen.clear()

    summary = await run_downloads(download_config(db, out, per_host=HostLimits(4, None)))

    assert summary.resumed_run and summary.status == "ok"
    assert sorted(files_under(out).values()) == sorted(bodies.values())
    assert len(downloads(db)) == len(urls)
    ranged = [s for s in host.seen if "Range" in s.headers]
    assert ranged and summary.resumed == len(ranged)  # the parts were continued, not redone
    # Nothing recorded is fetched again: only what was under way or not started (and a
    # file renamed whole whose row was not committed yet).
    assert len(urls) - len(whole) <= summary.total == len(host.seen) == len(urls) - committed


async def test_without_a_mirror_the_api_gives_the_checksums_and_keeps_the_key(
    filehosts: Files, tmp_path: Path
) -> None:
    from tests.test_crawl_check import FakeApi
    from tests.test_crawl_web import resource_id

    host = await filehosts.host()
    good, bad = host.add("/good.csv", b"g" * 500), host.add("/bad.csv", b"b" * 500)
    host.corrupt["/bad.csv"] = b"x" * 500
    api = FakeApi(
        [
            {
                "id": f"{n:024x}",
                "organization": {"id": "org"},
                "resources": [
                    {
                        "id": resource_id(n),
                        "url": url,
                        "format": "csv",
                        "checksum": {"type": "sha1", "value": digest(body, "sha1")},
                    }
                ],
            }
            for n, (url, body) in enumerate([(good, b"g" * 500), (bad, b"b" * 500)])
        ]
    )
    await api.start()
    try:
        db, out = tmp_path / "fresh.sqlite", tmp_path / "files"
        options = download_config(
            db, out, base_url=f"http://127.0.0.1:{api.port}/api/1", api_key="s3cret-key"
        )
        summary = await run_downloads(options)
    finally:
        assert api.runner is not None
        await api.runner.cleanup()

    assert summary.source == "api" and summary.outcomes == {"downloaded": 1, "mismatch": 1}
    assert downloads(db)[good]["checksum_expected"] == digest(b"g" * 500, "sha1")
    assert all(h.get("X-API-KEY") == "s3cret-key" for h in api.seen)
    assert not any("s3cret-key" in v for s in host.seen for v in s.headers.values())


async def test_after_a_mismatch_the_file_is_asked_for_whole_again(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    url = host.add("/data.csv", b"v1" * 100)
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    (rid,) = mirror_with_checksums(db, [(url, None, None)])
    await run_downloads(download_config(db, out))  # v1, no checksum published yet
    conn = sqlite3.connect(db)
    with conn:  # the portal now publishes the checksum of a v2 the host does not serve yet
        conn.execute(
            "UPDATE resource_rows SET checksum_type = 'sha256', checksum_value = ? WHERE id = ?",
            (digest(b"v2" * 100), rid),
        )
    conn.close()
    first = await run_downloads(download_config(db, out))
    second = await run_downloads(download_config(db, out))

    assert first.outcomes == second.outcomes == {"mismatch": 1}
    # Not a 304 to the validators of the v1 on disk: the mismatch is seen each time.
    assert [("If-None-Match" in s.headers) for s in host.seen] == [False, False, False]
    assert files_under(out) == {downloads(db)[url]["path"]: b"v1" * 100}  # the last good one


async def test_the_check_filters_select_the_files(filehosts: Files, tmp_path: Path) -> None:
    from tests.test_crawl_web import make_mirror

    one, two = await filehosts.host(), await filehosts.host()
    entries: list[tuple[str, str | None, str | None]] = [
        (one.add("/a.csv", b"a"), "csv", "org-a"),
        (one.add("/b.json", b"b"), "JSON ", "org-a"),
        (two.add("/c.csv", b"c"), "csv", "org-b"),
        (two.add("/d.csv", b"d"), "csv", "org-b"),
    ]
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    make_mirror(db, entries, per_dataset=2)
    conn = sqlite3.connect(db)
    with conn:  # the fixture's made-up checksums
        conn.execute("UPDATE resource_rows SET checksum_type = NULL, checksum_value = NULL")
    conn.close()
    await run_downloads(download_config(db, out, format=("json",)))
    assert set(downloads(db)) == {one.url("/b.json")}
    await run_downloads(download_config(db, out, organization=("org-b",)))
    assert set(downloads(db)) == {one.url("/b.json"), two.url("/c.csv"), two.url("/d.csv")}
    await run_downloads(download_config(db, out, host=(f"127.0.0.1:{one.port}",)))
    assert set(downloads(db)) == {e[0] for e in entries}
    assert sorted(files_under(out).values()) == [b"a", b"b", b"c", b"d"]


async def test_a_new_version_under_another_name_replaces_the_old_file(
    filehosts: Files, tmp_path: Path
) -> None:
    host = await filehosts.host()
    url = host.add("/data", b"v1")
    host.names["/data"] = "2024.csv"
    db, out = tmp_path / "m.sqlite", tmp_path / "files"
    (rid,) = mirror_with_checksums(db, [(url, None, None)])
    await run_downloads(download_config(db, out))
    host.files["/data"], host.names["/data"] = b"v2", "2025.csv"
    await run_downloads(download_config(db, out))

    assert files_under(out) == {f"{rid[:2]}/{rid}_2025.csv": b"v2"}
    assert downloads(db)[url]["path"] == f"{rid[:2]}/{rid}_2025.csv"
