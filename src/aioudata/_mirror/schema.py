"""The tables of a mirror database, and how a database of an older schema is brought up to date.

Every table and column is documented for users in ``docs/schema.md``; a test checks that the
two agree. ``meta.schema_version`` says which version wrote a database: an older one is
upgraded in place when opened (:func:`upgrade`), a newer one refused.
"""

from __future__ import annotations

import sqlite3

from .entities import ENTITIES, RESOURCE_COLUMNS, EntitySpec

__all__ = ["DDL", "RESOURCE_ROW_COLUMNS", "SCHEMA_VERSION", "UPGRADES", "upgrade"]

SCHEMA_VERSION = "3"

#: What the mirror keeps on every row besides the object's columns and its JSON.
_BOOKKEEPING = "gone_at TEXT, written_at TEXT, changed_run INTEGER"
#: Columns of ``resource_rows`` after ``id``, in the order rows are written.
RESOURCE_ROW_COLUMNS = (
    "dataset_id",
    "position",
    *(name for name, _ in RESOURCE_COLUMNS),
    "json_at",
    "json_length",
    "json",
    "gone_at",
    "written_at",
    "changed_run",
)
_INDEXED = ("organization_id", "owner_id", "last_modified", "slug")


def _entity_ddl(spec: EntitySpec) -> list[str]:
    table = spec.name
    statements = [
        f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY,"
        f" {', '.join(spec.column_names())}, json TEXT NOT NULL, {_BOOKKEEPING})"
    ]
    for column in _INDEXED:
        if column in spec.column_names():
            statements.append(f"CREATE INDEX IF NOT EXISTS {table}_{column} ON {table} ({column})")
    statements.append(f"CREATE INDEX IF NOT EXISTS {table}_changed_run ON {table} (changed_run)")
    return statements


_RESOURCE_SHOWN = ", ".join(
    f"r.{name}" for name in ("dataset_id", "position", *(n for n, _ in RESOURCE_COLUMNS))
)

# A resource's JSON is stored once, in its dataset's: ``json_at``/``json_length`` say where.
# ``json`` holds it only when it is not there (a resource its dataset no longer has keeps its
# last JSON). The ``resources`` view puts it back.
_RESOURCE_ROWS = (
    "CREATE TABLE IF NOT EXISTS resource_rows (id TEXT PRIMARY KEY, dataset_id TEXT,"
    " position INTEGER, "
    + ", ".join(name for name, _ in RESOURCE_COLUMNS)
    + ", json_at INTEGER, json_length INTEGER, json TEXT, gone_at TEXT, written_at TEXT,"
    " changed_run INTEGER)"
)
# Which pass last listed each object: a narrow table of its own, since updating a column of a
# row rewrites the whole row, JSON included (a verification round marks every object).
_LISTED = (
    "CREATE TABLE IF NOT EXISTS listed (entity TEXT NOT NULL, id TEXT NOT NULL,"
    " pass_no INTEGER NOT NULL, PRIMARY KEY (entity, id)) WITHOUT ROWID"
)
_TAGS = (
    "CREATE TABLE IF NOT EXISTS tags (entity TEXT NOT NULL, id TEXT NOT NULL, tag TEXT NOT NULL,"
    " PRIMARY KEY (entity, id, tag)) WITHOUT ROWID"
)

DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    *(ddl for spec in ENTITIES.values() for ddl in _entity_ddl(spec)),
    _RESOURCE_ROWS,
    "CREATE INDEX IF NOT EXISTS resource_rows_dataset_id ON resource_rows (dataset_id)",
    f"CREATE VIEW IF NOT EXISTS resources AS SELECT r.id, {_RESOURCE_SHOWN},"
    " COALESCE(r.json, substr(d.json, r.json_at, r.json_length)) AS json,"
    " r.gone_at, r.written_at, r.changed_run"
    " FROM resource_rows r LEFT JOIN datasets d ON d.id = r.dataset_id",
    _TAGS,
    _LISTED,
    "CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, entity)",
    "CREATE TABLE IF NOT EXISTS errors (entity TEXT NOT NULL, key TEXT NOT NULL, item_id TEXT,"
    " raw TEXT, reason TEXT NOT NULL, recorded_at TEXT NOT NULL, PRIMARY KEY (entity, key))",
    "CREATE TABLE IF NOT EXISTS schema_warnings (entity TEXT NOT NULL, item_id TEXT NOT NULL,"
    " path TEXT NOT NULL, reason TEXT NOT NULL, recorded_at TEXT NOT NULL,"
    " PRIMARY KEY (entity, item_id, path))",
    "CREATE TABLE IF NOT EXISTS sync_state (entity TEXT PRIMARY KEY, pass_no INTEGER NOT NULL,"
    " kind TEXT, page INTEGER NOT NULL, page_size INTEGER NOT NULL, sort TEXT, t0 TEXT,"
    " since TEXT, finished INTEGER NOT NULL, full_done INTEGER NOT NULL, hwm TEXT,"
    " updated_at TEXT NOT NULL, round INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL,"
    " finished_at TEXT, status TEXT NOT NULL, options TEXT, summary TEXT)",
]


def _tables(conn: sqlite3.Connection) -> dict[str, str]:
    """Name → type ("table" or "view") of what the database holds."""
    found = conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')")
    return dict(found.fetchall())


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Verification rounds: ``sync_state.round``."""
    if "sync_state" in _tables(conn):
        conn.execute("ALTER TABLE sync_state ADD COLUMN round INTEGER NOT NULL DEFAULT 0")


#: Entity columns renamed in version 3, so that names agree across entities.
_RENAMED_IN_3 = {
    "users": {"since": "created_at"},
    "discussions": {"created": "created_at", "closed": "closed_at"},
}


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """``deleted_at`` becomes ``gone_at`` (not to be confused with the server's ``deleted``);
    rows say when they were written and in which run they last changed; column names agree
    across entities; which pass listed an object moves to ``listed``; resources keep their
    JSON in their dataset's, with their checksum as columns; tags get their table."""
    tables = _tables(conn)
    for spec in ENTITIES.values():
        if tables.get(spec.name) != "table":
            continue
        columns = _columns(conn, spec.name)
        renames = {"deleted_at": "gone_at", **_RENAMED_IN_3.get(spec.name, {})}
        for old, new in renames.items():
            if old in columns:
                conn.execute(f"ALTER TABLE {spec.name} RENAME COLUMN {old} TO {new}")
        for added in ("written_at TEXT", "changed_run INTEGER"):
            if added.split()[0] not in columns:
                conn.execute(f"ALTER TABLE {spec.name} ADD COLUMN {added}")
        if "seen_pass" in columns:
            conn.execute(_LISTED)
            conn.execute(
                "INSERT OR REPLACE INTO listed (entity, id, pass_no)"
                f" SELECT ?, id, seen_pass FROM {spec.name}",
                (spec.name,),
            )
            conn.execute(f"ALTER TABLE {spec.name} DROP COLUMN seen_pass")
        if spec.tagged:
            conn.execute(_TAGS)
            conn.execute(
                "INSERT OR IGNORE INTO tags (entity, id, tag) SELECT ?, t.id, j.value"
                f" FROM {spec.name} t, json_each(t.json, '$.tags') j"
                " WHERE json_valid(t.json) AND json_type(t.json, '$.tags') = 'array'"
                " AND j.type = 'text'",
                (spec.name,),
            )
    if tables.get("resources") == "table":
        conn.execute(_RESOURCE_ROWS)
        kept = ("dataset_id", *(name for name, _ in RESOURCE_COLUMNS if "checksum" not in name))
        conn.execute(
            f"INSERT INTO resource_rows (id, {', '.join(kept)}, checksum_type, checksum_value,"
            f" json, gone_at) SELECT id, {', '.join(kept)}, json_extract(json, '$.checksum.type'),"
            " json_extract(json, '$.checksum.value'), json, deleted_at FROM resources"
        )
        conn.execute("DROP TABLE resources")


#: How each older version is brought to the next one, in the upgrade's transaction.
UPGRADES = {"1": _v1_to_v2, "2": _v2_to_v3}


def upgrade(conn: sqlite3.Connection, version: str) -> str:
    """Run the upgrades from ``version`` on; the version reached."""
    while version in UPGRADES:
        UPGRADES[version](conn)
        version = str(int(version) + 1)
    return version
