"""A JSON Lines copy of a mirror: one file per entity, plus resources, errors and deletions.

Written from the mirror database (for ``--format jsonl``, the state database kept in the output
folder) at the end of a run, each file replaced atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from .store import Store

__all__ = ["export_jsonl"]


def export_jsonl(store: Store, out: Path, entities: Sequence[str]) -> dict[str, int]:
    """Write ``<entity>.jsonl`` (live objects, JSON as received), ``resources.jsonl`` (each
    resource's JSON as received, with its ``dataset_id`` first), ``errors.jsonl`` and
    ``deletions.jsonl`` (what is no longer listed, with when the mirror found it gone)."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    tables = [*entities, *(["resources"] if "datasets" in entities else [])]
    for table in entities:
        written[table] = _write_lines(
            out / f"{table}.jsonl",
            (
                row[0]
                for row in store.conn.execute(
                    f"SELECT json FROM {table} WHERE gone_at IS NULL ORDER BY id"
                )
            ),
        )
    if "resources" in tables:
        written["resources"] = _write_lines(
            out / "resources.jsonl",
            (
                _with_dataset(dataset_id, text)
                for dataset_id, text in store.conn.execute(
                    "SELECT dataset_id, json FROM resources WHERE gone_at IS NULL ORDER BY id"
                )
            ),
        )
    written["errors"] = _write_lines(
        out / "errors.jsonl",
        (
            json.dumps(
                {"entity": e, "id": i, "reason": r, "raw": raw, "recorded_at": at},
                ensure_ascii=False,
            )
            for e, i, r, raw, at in store.conn.execute(
                "SELECT entity, item_id, reason, raw, recorded_at FROM errors ORDER BY entity, key"
            )
        ),
    )
    deletions = (
        json.dumps({"entity": table, "id": item_id, "gone_at": at})
        for table in tables
        for item_id, at in store.conn.execute(
            f"SELECT id, gone_at FROM {table} WHERE gone_at IS NOT NULL ORDER BY id"
        )
    )
    written["deletions"] = _write_lines(out / "deletions.jsonl", deletions)
    return written


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write atomically (temporary file, then rename); the number of lines.

    The temporary file is created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``, a random name
    beginning with the target's) in the target's folder, so a file or symlink planted at a
    predictable name is never written through; it is removed if anything fails. Like
    ``tempfile.mkstemp``, but with mode 0o666 less the umask, as ``open()`` gives, not 0o600.
    ``os.replace`` then swaps it in: a symlink at ``path`` itself is replaced, not followed.
    """
    import contextlib
    import os
    import secrets

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):  # a clash of 48 random bits is already improbable
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name next to {path}")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
                handle.write("\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return count


def _with_dataset(dataset_id: str, text: str) -> str:
    """A resource's JSON as received, with ``"dataset_id"`` first (it does not carry it)."""
    body = text.lstrip()
    if not body.startswith("{"):
        return text
    rest = body[1:].lstrip()
    separator = "" if rest.startswith("}") else ","
    return "{" + f'"dataset_id":{json.dumps(dataset_id)}{separator}' + rest
