"""What one check found, and how it becomes a resource's latest result and next check.

A result keeps what the resource's file looked like when last seen (content type, length,
validators): a 304 confirms it, an error (timeout, host down...) leaves it as it was. A result
*changed* when its status, final URL, error, content type, length or validators differ from
the previous one; a change resets the re-check interval to ``min_interval``, and each check
that finds the file unchanged lets it grow to half the time it has stayed so, up to
``max_interval`` (files that never change are checked less and less often).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["RESULT_COLUMNS", "FileResult", "Outcome", "kind", "merge", "stamp"]

#: Columns of ``check_results``, in order.
RESULT_COLUMNS = (
    "resource_id",
    "dataset_id",
    "url",
    "host",
    "status",
    "not_modified",
    "final_url",
    "redirects",
    "content_type",
    "length",
    "etag",
    "last_modified",
    "method",
    "elapsed",
    "error",
    "detail",
    "checked_at",
    "changed_at",
    "checks",
    "changes",
    "next_check_at",
    "run_id",
)
#: What a change is made of (and what a history row keeps).
SIGNATURE = ("status", "final_url", "content_type", "length", "etag", "last_modified", "error")
_CONTENT = ("content_type", "length", "etag", "last_modified")


def stamp(moment: datetime) -> str:
    """A time as stored: UTC ISO 8601 with microseconds (so that text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(slots=True)
class FileResult:
    """What a download wrote: ``result`` is ``downloaded`` (complete, and verified when a
    checksum is published), ``mismatch``, ``too_large`` or ``incomplete`` (cut: the part file
    is kept for the next attempt); ``path`` is relative to the download directory."""

    result: str
    path: str | None = None
    size: int | None = None
    #: Bytes received by this attempt.
    bytes: int = 0
    checksum_type: str | None = None
    checksum_expected: str | None = None
    checksum_actual: str | None = None
    #: The byte a resumed transfer started from (0: from the start).
    resumed_from: int = 0
    #: A partial file was dropped and the file fetched again from zero.
    refetched: bool = False
    detail: str | None = None


@dataclass(slots=True)
class Outcome:
    """The result of one resource's check: an HTTP answer, or an error class."""

    status: int | None = None
    final_url: str | None = None
    redirects: int = 0
    content_type: str | None = None
    length: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    method: str | None = None
    elapsed: float | None = None
    error: str | None = None
    detail: str | None = None
    #: A 304: the file is as the validators sent describe it.
    not_modified: bool = False
    #: What a download wrote, if anything.
    file: FileResult | None = None


def kind(outcome: Outcome) -> str:
    """The summary's label of an outcome: ``2xx``... ``not_modified``, what a download
    wrote (``downloaded``, ``mismatch``...), or the error class."""
    if outcome.not_modified:
        return "not_modified"
    if outcome.file is not None:  # a download's: downloaded, mismatch, too_large...
        return outcome.file.result
    if outcome.error is not None:
        return outcome.error
    if outcome.status is None:
        return "other"
    return f"{outcome.status // 100}xx"


def merge(
    previous: dict[str, Any] | None,
    resource: tuple[str, str | None, str, str],
    outcome: Outcome,
    now: datetime,
    run_id: int,
    min_interval: float,
    max_interval: float,
    wait: float = 0.0,
) -> tuple[dict[str, Any], bool]:
    """The new ``check_results`` row of ``resource`` (id, dataset id, URL, host) and whether
    it changed. ``wait``: seconds the host asked to be left alone (the next check waits)."""
    resource_id, dataset_id, url, host = resource
    same = previous is not None and previous["url"] == url
    kept: dict[str, Any] = dict(previous) if same and previous is not None else {}
    row: dict[str, Any] = {
        "resource_id": resource_id,
        "dataset_id": dataset_id,
        "url": url,
        "host": host,
        "not_modified": int(outcome.not_modified),
        "final_url": outcome.final_url,
        "redirects": outcome.redirects,
        "method": outcome.method,
        "elapsed": None if outcome.elapsed is None else round(outcome.elapsed, 6),
        "error": outcome.error,
        "detail": outcome.detail,
        "checked_at": stamp(now),
        "run_id": run_id,
    }
    for name in _CONTENT:
        row[name] = kept.get(name)
    if outcome.not_modified:
        before = kept.get("status")
        row["status"] = before if isinstance(before, int) and 200 <= before < 300 else 200
        for name in _CONTENT:  # a 304 may carry fresh validators
            value = getattr(outcome, name)
            if value is not None:
                row[name] = value
    elif outcome.error is None:
        row["status"] = outcome.status
        if outcome.status is not None and 200 <= outcome.status < 300:
            for name in _CONTENT:
                row[name] = getattr(outcome, name)
    else:
        row["status"] = outcome.status  # None, or the 429/503 of a URL throttled to the end
    changed = previous is None or not same or any(row[k] != previous[k] for k in SIGNATURE)
    changed_at = stamp(now) if changed or previous is None else previous["changed_at"]
    row["changed_at"] = changed_at
    row["checks"] = (int(previous["checks"]) if same and previous is not None else 0) + 1
    row["changes"] = (int(previous["changes"]) if previous is not None else 0) + int(changed)
    broken = row["error"] is not None or row["status"] is None or row["status"] >= 400
    if broken or changed:
        interval = min_interval
    else:
        unchanged_for = (now - datetime.fromisoformat(changed_at)).total_seconds()
        interval = min(max(unchanged_for / 2, min_interval), max_interval)
    row["next_check_at"] = stamp(now + timedelta(seconds=max(interval, wait)))
    return row, changed
