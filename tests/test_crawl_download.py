"""``run_downloads``: files streamed to disk, verified against their published checksums,
resumed with Range, fetched again where a range cannot be trusted, skipped when unchanged,
limited in size, stopped when the disk is nearly full; the key stays with the API."""

from __future__ import annotations

from pathlib import Path

from aioudata._crawl import run_downloads
from aioudata._crawl.files import PART, PART_INFO
from tests.download_web import (
    Files,
    digest,
    download_config,
    downloads,
    files_under,
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
        f"{ids[0][:2]}/{ids[0]}/a.csv": BODY,
        f"{ids[1][:2]}/{ids[1]}/b.csv": b"b" * 10,
        f"{ids[2][:2]}/{ids[2]}/c.csv": b"c" * 20,
        f"{ids[3][:2]}/{ids[3]}/d.csv": b"d" * 30,
    }
    rows = downloads(db)
    first = rows[entries[0][0]]
    assert (first["result"], first["status"], first["size"]) == ("downloaded", 200, len(BODY))
    assert first["path"] == f"{ids[0][:2]}/{ids[0]}/a.csv"
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
    assert files_under(out) == {f"{ids[0][:2]}/{ids[0]}/big.csv": BODY}
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
    (part,) = out.rglob(PART)  # kept for later, under a name no complete file has
    assert part.stat().st_size == 70_000 and (part.parent / PART_INFO).exists()

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
