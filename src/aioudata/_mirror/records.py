"""Raw records to table rows: decode each one alone, quarantine what does not decode."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from .._decoding import decode
from .._errors import DecodeError
from .entities import RESOURCE_COLUMNS, EntitySpec

__all__ = ["Batch", "ErrorRow", "Row", "decode_records", "error_key", "stamps_of"]


@dataclass(frozen=True, slots=True)
class Row:
    """One object to upsert: its id, queried columns and JSON as received."""

    id: str
    values: tuple[Any, ...]
    json: str


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """A record that could not be mirrored: kept with the reason, the mirror goes on."""

    entity: str
    key: str
    item_id: str | None
    raw: str | None
    reason: str


@dataclass(slots=True)
class Batch:
    """What one page gives: rows, resources per dataset, quarantined records, ids listed."""

    rows: list[Row] = field(default_factory=list)
    #: dataset id → its resources (the dataset's whole resource set).
    resources: dict[str, list[Row]] = field(default_factory=dict)
    errors: list[ErrorRow] = field(default_factory=list)
    #: Ids the listing showed on this page (the id pass marks them seen).
    listed: list[str] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        """Add ``other``'s content to this batch."""
        self.rows.extend(other.rows)
        self.resources.update(other.resources)
        self.errors.extend(other.errors)
        self.listed.extend(other.listed)


class _Id(msgspec.Struct):
    id: Any = None


class _RawResources(msgspec.Struct):
    resources: list[msgspec.Raw] | None = None


def error_key(item_id: str | None, raw: str | None, fallback: str) -> str:
    """The errors table key: the id when known, else a digest of the JSON, else ``fallback``."""
    if item_id:
        return item_id
    if raw:
        return "sha1:" + hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]
    return fallback


def _id_of(raw: bytes) -> str | None:
    try:
        value = msgspec.json.decode(raw, type=_Id).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return value if isinstance(value, str) and value else None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def decode_records(
    spec: EntitySpec, raws: Sequence[msgspec.Raw | bytes], *, url: str | None = None
) -> Batch:
    """Decode each raw record into its model; bad ones become error rows, never exceptions."""
    batch = Batch()
    for raw_item in raws:
        raw = bytes(raw_item)
        text = _text(raw)
        try:
            model = decode(raw, spec.model, url=url)
        except DecodeError as error:
            item_id = _id_of(raw)
            reason = f"{error.reason} at {error.path} (value: {error.snippet})"
            batch.errors.append(
                ErrorRow(spec.name, error_key(item_id, text, "?"), item_id, text, reason)
            )
            if item_id:
                batch.listed.append(item_id)
            continue
        item_id = getattr(model, "id", None)
        if not isinstance(item_id, str) or not item_id:
            batch.errors.append(
                ErrorRow(spec.name, error_key(None, text, "?"), None, text, "record without an id")
            )
            continue
        batch.rows.append(Row(item_id, spec.extract(model), text))
        batch.listed.append(item_id)
        if spec.name == "datasets":
            batch.resources[item_id] = _resources(item_id, raw, model, batch)
    return batch


def _resources(dataset_id: str, raw: bytes, model: Any, batch: Batch) -> list[Row]:
    """The dataset's resources as rows, each with its own JSON as received."""
    parsed = getattr(model, "resources", None) or []
    raws = msgspec.json.decode(raw, type=_RawResources).resources or []
    rows: list[Row] = []
    for resource, resource_raw in zip(parsed, raws, strict=False):
        text = _text(bytes(resource_raw))
        rid = getattr(resource, "id", None)
        if not isinstance(rid, str) or not rid:
            key = error_key(None, text, "?")
            batch.errors.append(
                ErrorRow("resources", key, None, text, f"resource without an id in {dataset_id}")
            )
            continue
        values = (dataset_id, *(getter(resource) for _, getter in RESOURCE_COLUMNS))
        rows.append(Row(rid, values, text))
    return rows


class _Stamped(msgspec.Struct):
    id: str
    last_modified: datetime | None = None
    last_update: datetime | None = None


def stamps_of(raws: list[msgspec.Raw]) -> list[tuple[str, dict[str, datetime | None]]]:
    """(id, {field: timestamp}) for each record of a masked id page; undecodable ones skipped."""
    found: list[tuple[str, dict[str, datetime | None]]] = []
    for raw in raws:
        try:
            item = msgspec.json.decode(bytes(raw), type=_Stamped)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        found.append(
            (item.id, {"last_modified": item.last_modified, "last_update": item.last_update})
        )
    return found
