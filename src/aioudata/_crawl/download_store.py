"""The downloader's tables, on the checker's store (one writer thread, group commits).

``download_frontier`` holds the files a run still has to fetch, with their published checksum;
a result and the removal of its frontier row commit together (a run killed at any moment
resumes with what was not recorded). ``download_results`` keeps the latest result of each
resource, ``download_runs`` the runs. Documented in docs/schema.md.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from .._mirror.schema import SQLITE, Dialect
from .download_config import DownloadConfig
from .fetch import DownloadJob
from .hosts import Job
from .results import Outcome, stamp
from .store import CHECKSUMS, DDL, MIRROR_SOURCE, CheckStore, Recorded, real_type, runs_ddl

__all__ = ["DOWNLOAD_DDL", "DOWNLOAD_TABLES", "DownloadStore", "download_ddl"]

DOWNLOAD_TABLES = ("download_results", "download_frontier", "download_runs")
_RESULTS = (
    "resource_id",
    "dataset_id",
    "url",
    "host",
    "result",
    "status",
    "final_url",
    "error",
    "detail",
    "path",
    "size",
    "content_type",
    "etag",
    "last_modified",
    "checksum_type",
    "checksum_expected",
    "checksum_actual",
    "bytes",
    "resumed_from",
    "refetched",
    "elapsed",
    "attempted_at",
    "downloaded_at",
    "run_id",
)
#: What a failed attempt leaves as it was: the last good file on disk.
_KEPT = ("path", "size", "content_type", "etag", "last_modified", "downloaded_at")


def download_ddl(dialect: Dialect) -> list[str]:
    """The downloader's tables as ``dialect`` spells them (docs/schema.md)."""
    integer, real = dialect.integer, real_type(dialect)
    return [
        "CREATE TABLE IF NOT EXISTS download_results (resource_id TEXT PRIMARY KEY,"
        " dataset_id TEXT, url TEXT NOT NULL, host TEXT NOT NULL, result TEXT NOT NULL,"
        f" status {integer}, final_url TEXT, error TEXT, detail TEXT, path TEXT, size {integer},"
        " content_type TEXT, etag TEXT, last_modified TEXT, checksum_type TEXT,"
        f" checksum_expected TEXT, checksum_actual TEXT, bytes {integer} NOT NULL,"
        f" resumed_from {integer} NOT NULL, refetched {integer} NOT NULL, elapsed {real},"
        f" attempted_at TEXT NOT NULL, downloaded_at TEXT, run_id {integer})",
        "CREATE INDEX IF NOT EXISTS download_results_result ON download_results (result)",
        f"CREATE TABLE IF NOT EXISTS download_frontier (seq {dialect.run_key},"
        " host TEXT NOT NULL, resource_id TEXT NOT NULL UNIQUE, dataset_id TEXT,"
        " url TEXT NOT NULL, checksum_type TEXT, checksum_value TEXT)",
        "CREATE INDEX IF NOT EXISTS download_frontier_host ON download_frontier (host, seq)",
        *runs_ddl("download_runs", dialect, f"skipped {integer} NOT NULL DEFAULT 0"),
    ]


DOWNLOAD_DDL = download_ddl(SQLITE)
_UPSERT = (
    f"INSERT INTO download_results ({', '.join(_RESULTS)})"
    f" VALUES ({', '.join('?' * len(_RESULTS))}) ON CONFLICT(resource_id) DO UPDATE SET"
    f" {', '.join(f'{c} = excluded.{c}' for c in _RESULTS[1:])}"
)
#: A file known unchanged: its published checksum is the one of the good file on disk.
_UNCHANGED = (
    "d.result IN ('downloaded', 'not_modified') AND d.url IS s.url"
    " AND s.checksum_value IS NOT NULL AND d.checksum_actual = lower(trim(s.checksum_value))"
    " AND aioudata_file_ok(d.path, d.size)"
)


class DownloadStore(CheckStore):
    """The downloader's side of the database."""

    ddl = (*DDL, *DOWNLOAD_DDL)
    frontier = "download_frontier"
    runs = "download_runs"
    mirror_source = MIRROR_SOURCE.format(CHECKSUMS)
    config: DownloadConfig

    def _functions(self, conn: sqlite3.Connection) -> None:
        super()._functions(conn)
        conn.create_function("aioudata_file_ok", 2, self._file_ok)

    def _file_ok(self, path: object, size: object) -> int:
        """The file ``path`` (under the download directory) is there, of ``size`` bytes."""
        if not isinstance(path, str) or not isinstance(size, int):
            return 0
        try:
            return int(os.stat(self.config.dir / path).st_size == size)
        except OSError:
            return 0

    def frontier_sql(self, source: str) -> tuple[str, list[Any]]:
        """Every selected file, but those known unchanged (unless ``all``)."""
        selected, params = self.selection(source)
        sql = (
            "INSERT OR IGNORE INTO download_frontier"
            " (host, resource_id, dataset_id, url, checksum_type, checksum_value)"
            " SELECT aioudata_host(s.url), s.id, s.dataset_id, COALESCE(s.url, ''),"
            " lower(trim(s.checksum_type)), lower(trim(s.checksum_value))"
            f" FROM (SELECT * FROM {selected}) s"
            " LEFT JOIN download_results d ON d.resource_id = s.id"
            + ("" if self.config.all else f" WHERE NOT ({_UNCHANGED})")
        )
        return sql, params

    async def build_frontier(self, source: str) -> int:
        """The frontier, and how many selected files were skipped as unchanged."""
        count = await super().build_frontier(source)
        selected, params = self.selection(source)
        run_id = self.run_id

        def work(conn: sqlite3.Connection) -> None:
            # The walked rows are gone by now: a walked selection counts what it fetches.
            found = conn.execute(f"SELECT COUNT(*) FROM (SELECT * FROM {selected})", params)
            skipped = max(0, int(found.fetchone()[0]) - count) if source == "mirror" else 0
            conn.execute("UPDATE download_runs SET skipped = ? WHERE id = ?", (skipped, run_id))

        await self.call(work)
        return count

    def skipped(self) -> int:
        """Files of the run not fetched because they are known unchanged."""
        assert self.reader is not None
        row = self.reader.execute(
            "SELECT skipped FROM download_runs WHERE id = ?", (self.run_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    def load(self, host: str, after: int, limit: int) -> list[Job]:
        """The next ``limit`` downloads of ``host``; conditional (the validators of the file
        on disk) when that file is of the same URL and published checksum, and the last
        attempt found it good."""
        assert self.reader is not None
        rows = self.reader.execute(
            "SELECT f.seq, f.resource_id, f.dataset_id, f.url, f.checksum_type,"
            " f.checksum_value, d.url, d.etag, d.last_modified, d.path, d.size,"
            " d.checksum_expected, d.result FROM download_frontier f"
            " LEFT JOIN download_results d ON d.resource_id = f.resource_id"
            " WHERE f.host = ? AND f.seq > ? ORDER BY f.seq LIMIT ?",
            (host, after, limit),
        ).fetchall()
        jobs: list[Job] = []
        for seq, rid, dataset_id, url, ctype, cvalue, *last in rows:
            job = DownloadJob(seq, rid, dataset_id, url, host)
            job.checksum_type, job.checksum_value = ctype, cvalue
            last_url, etag, last_modified, path, size, expected, result = last
            job.previous = path
            if (
                not self.config.all
                and result in ("downloaded", "not_modified")  # not after a mismatch
                and last_url == url
                and expected == cvalue
                and self._file_ok(path, size)
            ):
                job.etag, job.last_modified = etag, last_modified
            jobs.append(job)
        return jobs

    def _write(
        self, conn: sqlite3.Connection, job: Job, outcome: Outcome, wait: float, done: Recorded
    ) -> None:
        found = self._get(
            conn,
            f"SELECT {', '.join(_RESULTS)} FROM download_results WHERE resource_id = ?",
            job.resource_id,
        )
        previous = dict(zip(_RESULTS, found, strict=True)) if found else {}
        row = _row(job, outcome, previous, stamp(self.group_now), self.run_id)
        self._put(conn, _UPSERT, [row[c] for c in _RESULTS], job.resource_id)
        self._put(conn, "DELETE FROM download_frontier WHERE seq = ?", (job.seq,), job.resource_id)
        done.add(outcome, row["result"] == "downloaded")


def _row(
    job: Job, outcome: Outcome, previous: dict[str, Any], now: str, run_id: int
) -> dict[str, Any]:
    """The new ``download_results`` row of ``job``'s resource."""
    file = outcome.file
    row: dict[str, Any] = {c: previous.get(c) for c in _KEPT}
    row.update(
        resource_id=job.resource_id,
        dataset_id=job.dataset_id,
        url=job.url,
        host=job.host,
        status=outcome.status,
        final_url=outcome.final_url,
        error=outcome.error,
        detail=outcome.detail,
        bytes=(file.bytes if file else 0) + getattr(job, "received", 0),
        resumed_from=file.resumed_from if file else 0,
        refetched=int(bool(file and file.refetched)),
        elapsed=None if outcome.elapsed is None else round(outcome.elapsed, 6),
        attempted_at=now,
        run_id=run_id,
        checksum_type=previous.get("checksum_type"),
        checksum_expected=previous.get("checksum_expected"),
        checksum_actual=previous.get("checksum_actual"),
    )
    if outcome.not_modified:
        row["result"] = "not_modified"
        for name in ("etag", "last_modified"):
            row[name] = getattr(outcome, name) or row[name]
    elif file is None:
        row["result"] = "failed"
    else:
        row["result"] = file.result
        row["detail"] = file.detail or outcome.detail
        if file.checksum_actual is not None:
            row["checksum_type"] = file.checksum_type
            row["checksum_expected"] = file.checksum_expected
            row["checksum_actual"] = file.checksum_actual
    if file is not None and file.result == "downloaded":
        row.update(
            path=file.path,
            size=file.size,
            content_type=outcome.content_type,
            etag=outcome.etag,
            last_modified=outcome.last_modified,
            downloaded_at=now,
        )
    return row
