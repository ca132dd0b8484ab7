"""The writes of one transaction: rows, their resources and tags, warnings, errors, marks.

A row is written when it is new, when its JSON differs (``updated``), or when its columns were
read otherwise (``rewrite``: the same JSON, read by another version of the mirror); an
unchanged row only gets its seen mark. ``changed_run`` says in which run a row's content last
changed (new, updated, gone), ``written_at`` when it was last written.

A dataset's resources are written with it: only when the dataset's row is, since they are part
of its JSON. Each resource's JSON stays in its dataset's (``json_at``, ``json_length``); the
ones the dataset no longer has keep their last JSON in their own row and are marked gone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from .entities import EntitySpec
from .records import Batch, ErrorRow, Row
from .schema import RESOURCE_ROW_COLUMNS

__all__ = ["Counts", "Writes", "chunks", "utcnow"]

T = TypeVar("T")
_CHUNK = 500  # ids per IN (...) clause, below SQLite's variable limit

_RESOURCE_UPSERT = (
    f"INSERT INTO resource_rows (id, {', '.join(RESOURCE_ROW_COLUMNS)})"
    f" VALUES ({', '.join('?' * (len(RESOURCE_ROW_COLUMNS) + 1))}) ON CONFLICT(id) DO UPDATE SET"
    f" {', '.join(f'{name} = excluded.{name}' for name in RESOURCE_ROW_COLUMNS)}"
)
#: What is read back of a stored resource: (dataset_id, json, json_at, json_length, gone_at,
#: changed_run, then the values a Row holds, then json_at and json_length again).
_RESOURCE_VALUES = RESOURCE_ROW_COLUMNS[: RESOURCE_ROW_COLUMNS.index("json_at") + 2]
_RESOURCE_STORED = ("dataset_id", "json", "json_at", "json_length", "gone_at", "changed_run")


def utcnow() -> str:
    """Now, as the ISO text stored in the database."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices small enough for one ``IN (...)``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


@dataclass(slots=True)
class Counts:
    """What writing changed: objects new, updated (JSON differs), unchanged, deleted, errors."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: int = 0
    resources_new: int = 0
    resources_updated: int = 0
    resources_deleted: int = 0
    #: Objects written with schema warnings (stored off their model: ``schema_warnings``);
    #: a dataset counts once, whatever number of its resources are off theirs.
    warned: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other`` into these counts."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _change(json: str, values: tuple[Any, ...], before: tuple[Any, ...] | None) -> str:
    """How an object differs from its stored ``(json, gone_at, changed_run, *values)``.

    ``new`` (not stored), ``updated`` (other JSON, or marked gone), ``rewrite`` (same JSON
    but other values: written again, counted unchanged) or ``same``.
    """
    if before is None:
        return "new"
    if before[0] != json or before[1] is not None:
        return "updated"
    return "rewrite" if before[3:] != values else "same"


class Writes:
    """The writes of one transaction on ``conn``, for run ``run_id``, counted in ``counts``."""

    def __init__(self, conn: sqlite3.Connection, run_id: int | None, counts: Counts) -> None:
        self.conn = conn
        self.run_id = run_id
        self.counts = counts
        self.now = utcnow()

    def batch(self, spec: EntitySpec, batch: Batch, pass_no: int) -> None:
        """A page: its rows (their resources, tags, warnings), errors and seen marks."""
        written = self.rows(spec, batch.rows, pass_no)
        if spec.name == "datasets" and written:
            self.resources(written, batch.resources)
        if batch.rows:
            self.warnings(spec, batch)
            good = list(dict.fromkeys(row.id for row in batch.rows))
            for chunk in chunks(good) if self._holds("errors", spec.name) else ():
                self.conn.execute(
                    f"DELETE FROM errors WHERE entity = ? AND item_id IN ({_marks(chunk)})",
                    (spec.name, *chunk),
                )
        if batch.errors:
            self.errors(batch.errors)
        done = {row.id for row in batch.rows}
        listed = [item for item in dict.fromkeys(batch.listed) if item not in done]
        self.seen(spec, listed, pass_no)

    def _holds(self, table: str, entity: str) -> bool:
        """Whether ``table`` (errors, schema_warnings) has a row of ``entity``: the deletes of
        the rows written are skipped when it has none (most pages of most runs)."""
        found = self.conn.execute(f"SELECT 1 FROM {table} WHERE entity = ? LIMIT 1", (entity,))
        return found.fetchone() is not None

    def _stored(
        self, table: str, columns: Sequence[str], ids: Sequence[str]
    ) -> dict[str, tuple[Any, ...]]:
        """id → the ``columns`` stored for it, for the stored ones among ``ids``."""
        found: dict[str, tuple[Any, ...]] = {}
        selected = ", ".join(("id", *columns))
        for chunk in chunks(ids):
            for row in self.conn.execute(
                f"SELECT {selected} FROM {table} WHERE id IN ({_marks(chunk)})", tuple(chunk)
            ):
                found[row[0]] = row[1:]
        return found

    def rows(self, spec: EntitySpec, rows: list[Row], pass_no: int) -> dict[str, str | None]:
        """Write the rows that are new or differ, mark the others seen; the ids written, each
        with the JSON it had before (None: new)."""
        if not rows:
            return {}
        unique = list({row.id: row for row in rows}.values())  # last one wins
        names = spec.column_names()
        kept = ("json", "gone_at", "changed_run", *names)
        stored = self._stored(spec.name, kept, [row.id for row in unique])
        counts, run = self.counts, self.run_id
        written: dict[str, str | None] = {}
        params: list[tuple[Any, ...]] = []
        for row in unique:
            before = stored.get(row.id)
            change = _change(row.json, row.values, before)
            if change == "new":
                counts.new += 1
            elif change == "updated":
                counts.updated += 1
            else:
                counts.unchanged += 1
            if change == "same":
                continue
            written[row.id] = None if before is None else before[0]
            changed_run = before[2] if change == "rewrite" and before is not None else run
            params.append((row.id, *row.values, row.json, None, self.now, changed_run))
        if params:
            columns = (*names, "json", "gone_at", "written_at", "changed_run")
            self.conn.executemany(
                f"INSERT INTO {spec.name} (id, {', '.join(columns)})"
                f" VALUES ({', '.join('?' * (len(columns) + 1))}) ON CONFLICT(id) DO UPDATE SET"
                f" {', '.join(f'{name} = excluded.{name}' for name in columns)}",
                params,
            )
            if spec.tagged:
                self.tags(spec, [row for row in unique if row.id in written], written)
        self.seen(spec, [row.id for row in unique], pass_no)
        return written

    def tags(self, spec: EntitySpec, rows: list[Row], before: dict[str, str | None]) -> None:
        """The written rows' tags replace their stored ones."""
        known = [row.id for row in rows if before.get(row.id) is not None]
        for chunk in chunks(known):
            self.conn.execute(
                f"DELETE FROM tags WHERE entity = ? AND id IN ({_marks(chunk)})",
                (spec.name, *chunk),
            )
        self.conn.executemany(
            "INSERT OR IGNORE INTO tags (entity, id, tag) VALUES (?, ?, ?)",
            [(spec.name, row.id, tag) for row in rows for tag in row.tags or ()],
        )

    def seen(self, spec: EntitySpec, ids: Sequence[str], pass_no: int) -> None:
        """Note that pass ``pass_no`` listed these objects."""
        self.conn.executemany(
            "INSERT INTO listed (entity, id, pass_no) VALUES (?, ?, ?) ON CONFLICT(entity, id)"
            " DO UPDATE SET pass_no = excluded.pass_no WHERE pass_no != excluded.pass_no",
            [(spec.name, item, pass_no) for item in ids],
        )

    def resources(self, datasets: dict[str, str | None], resources: dict[str, list[Row]]) -> None:
        """The written datasets' resources become their rows; the ones they no longer have
        are marked gone, keeping their last JSON. ``datasets``: id → its JSON before."""
        written = list(datasets)
        listed: dict[str, Row] = {}
        for dataset_id in written:
            for row in resources.get(dataset_id, ()):
                listed[row.id] = row  # a resource listed twice: the last one wins
        stored = self._stored("resource_rows", (*_RESOURCE_STORED, *_RESOURCE_VALUES), [*listed])
        elsewhere = {b[0] for b in stored.values() if b[0] not in datasets and b[1] is None}
        if elsewhere:  # resources moved in from other datasets: their JSON is in those
            found = self._stored("datasets", ("json",), sorted(elsewhere))
            datasets = {**datasets, **{key: row[0] for key, row in found.items()}}
        params = self._resource_params(listed, stored, datasets)
        gone: list[tuple[Any, ...]] = []
        # A dataset new to the mirror has no resource rows: its resources are only ever
        # written with it (one moved in from another is found by its id above).
        for chunk in chunks([key for key in written if datasets[key] is not None]):
            for rid, dataset_id, json, at, length in self.conn.execute(
                "SELECT id, dataset_id, json, json_at, json_length FROM resource_rows"
                f" WHERE dataset_id IN ({_marks(chunk)}) AND gone_at IS NULL",
                tuple(chunk),
            ):
                if rid not in listed:  # else written below, under its dataset of now
                    last = _text_before(dataset_id, json, at, length, datasets)
                    gone.append((self.now, self.run_id, last, rid))
        if gone:
            self.conn.executemany(
                "UPDATE resource_rows SET gone_at = ?, changed_run = ?, json = COALESCE(json, ?)"
                " WHERE id = ?",
                gone,
            )
            self.counts.resources_deleted += len(gone)
        if params:
            self.conn.executemany(_RESOURCE_UPSERT, params)

    def _resource_params(
        self,
        listed: dict[str, Row],
        stored: dict[str, tuple[Any, ...]],
        datasets: dict[str, str | None],
    ) -> list[tuple[Any, ...]]:
        """The upsert parameters of the resources to write (new or changed), counted."""
        params: list[tuple[Any, ...]] = []
        counts, now, run_id = self.counts, self.now, self.run_id
        for rid, row in listed.items():
            before = stored.get(rid)
            at, json = row.at, row.json
            if before is None:  # the common case, made as cheap as it can be
                counts.resources_new += 1
                if at:
                    params.append((rid, *row.values, at, len(json), None, None, now, run_id))
                else:
                    params.append((rid, *row.values, None, None, json, None, now, run_id))
                continue
            values = (*row.values, at or None, len(json) if at else None)
            text = _text_before(before[0], before[1], before[2], before[3], datasets)
            change = _change(json, values, (text, before[4], before[5], *before[6:]))
            if change == "updated":
                counts.resources_updated += 1
            elif change == "same":
                continue
            run = before[5] if change == "rewrite" else run_id
            params.append((rid, *values, None if at else json, None, now, run))
        return params

    def gone(self, spec: EntitySpec, ids: Sequence[str]) -> None:
        """Mark objects (a dataset's resources with it) as no longer listed."""
        for chunk in chunks(ids):
            marks = _marks(chunk)
            cursor = self.conn.execute(
                f"UPDATE {spec.name} SET gone_at = ?, changed_run = ? WHERE id IN ({marks})"
                " AND gone_at IS NULL",
                (self.now, self.run_id, *chunk),
            )
            self.counts.deleted += max(cursor.rowcount, 0)
            if spec.name == "datasets":
                cursor = self.conn.execute(
                    "UPDATE resource_rows SET gone_at = ?, changed_run = ?"
                    f" WHERE dataset_id IN ({marks}) AND gone_at IS NULL",
                    (self.now, self.run_id, *chunk),
                )
                self.counts.resources_deleted += max(cursor.rowcount, 0)

    def warnings(self, spec: EntitySpec, batch: Batch) -> None:
        """Each written row's warnings become the batch's (none: it fit its model).

        A warning already stored as is keeps its row (and ``recorded_at``): writing the same
        page again changes nothing.
        """
        conn, notes = self.conn, batch.warnings
        ids = list(dict.fromkeys(row.id for row in batch.rows))
        warned = [item for item in ids if item in notes] if notes else []
        clean = [item for item in ids if item not in notes] if notes else ids
        for chunk in chunks(clean) if self._holds("schema_warnings", spec.name) else ():
            conn.execute(
                f"DELETE FROM schema_warnings WHERE entity = ? AND item_id IN ({_marks(chunk)})",
                (spec.name, *chunk),
            )
        if not warned:
            return
        self.counts.warned += len(warned)
        stale: list[tuple[str, str, str]] = []
        fresh: list[tuple[str, str, str, str, str]] = []
        for item in warned:
            paths = notes[item]
            for (path,) in conn.execute(
                "SELECT path FROM schema_warnings WHERE entity = ? AND item_id = ?",
                (spec.name, item),
            ):
                if path not in paths:
                    stale.append((spec.name, item, path))
            fresh.extend(
                (spec.name, item, path, reason, self.now) for path, reason in paths.items()
            )
        conn.executemany(
            "DELETE FROM schema_warnings WHERE entity = ? AND item_id = ? AND path = ?", stale
        )
        conn.executemany(
            "INSERT INTO schema_warnings (entity, item_id, path, reason, recorded_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(entity, item_id, path) DO UPDATE SET"
            " reason = excluded.reason, recorded_at = excluded.recorded_at"
            " WHERE reason IS NOT excluded.reason",
            fresh,
        )

    def errors(self, errors: Iterable[ErrorRow]) -> None:
        """Quarantine records (one row per entity and key: the last one wins)."""
        rows = [(e.entity, e.key, e.item_id, e.raw, e.reason, self.now) for e in errors]
        self.counts.errors += len(rows)
        self.conn.executemany(
            "INSERT INTO errors (entity, key, item_id, raw, reason, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity, key) DO UPDATE SET"
            " item_id = excluded.item_id, raw = excluded.raw, reason = excluded.reason,"
            " recorded_at = excluded.recorded_at",
            rows,
        )


def _text_before(
    dataset_id: str,
    json: str | None,
    at: int | None,
    length: int | None,
    datasets: dict[str, str | None],
) -> str | None:
    """A stored resource's JSON: its own, or its place in its dataset's JSON before."""
    if json is not None:
        return json
    dataset = datasets.get(dataset_id)
    if dataset is None or not at or length is None:
        return None  # its dataset is not at hand: taken as changed
    return dataset[at - 1 : at - 1 + length]
