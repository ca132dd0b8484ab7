"""Raw records to table rows: decode each one alone, quarantine what does not decode."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from .._decoding import decode
from .._errors import DecodeError
from .columns import Extractor, extractor, generic
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


def _text(raw: bytes | msgspec.Raw) -> str:
    return str(raw, "utf-8", "replace")


def decode_records(
    spec: EntitySpec, raws: Sequence[msgspec.Raw | bytes], *, url: str | None = None
) -> Batch:
    """Decode each raw record into its model; bad ones become error rows, never exceptions.

    Each record is decoded once into its model (which checks all of it), and once more into a
    small side struct for the text of its datetime columns and its resources' raw JSON; the
    columns are read by the spec's compiled extraction (:mod:`.columns`).
    """
    batch = Batch()
    datasets = spec.name == "datasets"
    plan = extractor(spec.model, spec.columns, resources=datasets)
    extract, side_decode, model_type = plan.function, plan.side, plan.model
    items = None if plan.item is None else extractor(plan.item, RESOURCE_COLUMNS, lead=True)
    rows, listed = batch.rows, batch.listed
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
                listed.append(item_id)
            continue
        item_id = getattr(model, "id", None)
        if not isinstance(item_id, str) or not item_id:
            batch.errors.append(
                ErrorRow(spec.name, error_key(None, text, "?"), None, text, "record without an id")
            )
            continue
        side = _side(side_decode, raw) if type(model) is model_type else _FAILED
        values = generic(spec.columns, model) if side is _FAILED else extract(model, side)
        rows.append(Row(item_id, values, text))
        listed.append(item_id)
        if datasets:
            raws_of = None if side is _FAILED else side.resources
            batch.resources[item_id] = _resources(item_id, raw, raws_of, model, items, batch)
    return batch


#: The side decode did not take the record (or was not tried): the getters read its columns.
_FAILED: Any = object()


def _side(
    side_decode: Callable[[bytes | msgspec.Raw], Any] | None, raw: bytes | msgspec.Raw
) -> Any:
    """The record's side struct (None when its plan needs none), or ``_FAILED``."""
    if side_decode is None:
        return None
    try:
        return side_decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _FAILED


def _resources(
    dataset_id: str,
    raw: bytes,
    raws: list[msgspec.Raw] | None,
    model: Any,
    plan: Extractor | None,
    batch: Batch,
) -> list[Row]:
    """The dataset's resources as rows, each with its own JSON as received.

    ``raws``: the resources' raw JSON from the side decode (None: decoded here); ``plan``:
    the compiled extraction of their columns (None: their getters).
    """
    parsed = getattr(model, "resources", None) or []
    if not parsed:
        return []
    if raws is None:
        raws = msgspec.json.decode(raw, type=_RawResources).resources
    rows: list[Row] = []
    for resource, resource_raw in zip(parsed, raws or [], strict=False):
        text = _text(resource_raw)
        rid = getattr(resource, "id", None)
        if not isinstance(rid, str) or not rid:
            key = error_key(None, text, "?")
            batch.errors.append(
                ErrorRow("resources", key, None, text, f"resource without an id in {dataset_id}")
            )
            continue
        if plan is not None and type(resource) is plan.model:
            side = _side(plan.side, resource_raw)
            if side is not _FAILED:
                rows.append(Row(rid, plan.function(dataset_id, resource, side), text))
                continue
        rows.append(Row(rid, (dataset_id, *generic(RESOURCE_COLUMNS, resource)), text))
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
