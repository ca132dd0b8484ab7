"""Raw records to table rows: each decoded alone; one off the model is still stored, with notes.

A record that decodes into its model takes the fast path: compiled extraction of its columns
(:mod:`.columns`). One that does not (another udata version: a required field missing, a value
of another type, a date in another format...) but is a JSON object with a non-empty string id
is stored all the same, its JSON as received and the columns that fit read from the plain
object (:func:`.columns.loose`), with the note of what did not fit (``Batch.warnings``, the
``schema_warnings`` table). Only what cannot be stored (not JSON, not an object, no id) is
quarantined in ``errors``; a dataset's resources follow the same rule one by one.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union, get_args, get_origin

import msgspec

from .._decoding import decode
from .._errors import DecodeError
from .columns import Extractor, extractor, generic, loose, split_reason, struct_fields, struct_of
from .entities import RESOURCE_COLUMNS, EntitySpec

__all__ = [
    "Batch",
    "ErrorRow",
    "Row",
    "Undecoded",
    "decode_records",
    "error_key",
    "misfits",
    "stamps_of",
]


@dataclass(slots=True)
class Row:
    """One object to upsert: its id, queried columns and JSON as received.

    A resource's ``values`` lead with its dataset's id and its position in the dataset's
    ``resources``; ``at`` is where its JSON starts in the dataset's (1-based characters, as
    SQLite's ``substr``; 0: not found), so that it is stored once, in the dataset's JSON.
    Not frozen: rows are made by the hundred per page, and a frozen dataclass's ``__init__``
    costs about five times as much; nothing but :func:`_locate` (``at``) changes a row.
    """

    id: str
    values: tuple[Any, ...]
    json: str
    #: The object's tags, for entities that have them (None: it has none, or no such field).
    tags: tuple[str, ...] | None = None
    at: int = 0


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
    """What one page gives: rows, resources per dataset, quarantined records, ids listed,
    and the schema warnings of the rows that did not fit their model."""

    rows: list[Row] = field(default_factory=list)
    #: dataset id → its resources (the dataset's whole resource set).
    resources: dict[str, list[Row]] = field(default_factory=dict)
    errors: list[ErrorRow] = field(default_factory=list)
    #: Ids the listing showed on this page (the id pass marks them seen).
    listed: list[str] = field(default_factory=list)
    #: Row id → {path: reason}: what of the record (its resources included) did not fit the
    #: model, e.g. ``{"$.resources[3].filetype": "Object missing required field `filetype`"}``.
    #: Only rows stored off the model have an entry; the last row of an id tells.
    warnings: dict[str, dict[str, str]] = field(default_factory=dict)

    def extend(self, other: Batch) -> None:
        """Add ``other``'s content to this batch."""
        if self.warnings:
            for row in other.rows:
                self.warnings.pop(row.id, None)
        self.warnings.update(other.warnings)
        self.rows.extend(other.rows)
        self.resources.update(other.resources)
        self.errors.extend(other.errors)
        self.listed.extend(other.listed)


@dataclass(frozen=True, slots=True)
class Undecoded:
    """A page's raw records, to be decoded where they are written: in the store's thread, so
    that the event loop's thread only fetches (decoding there competes for the GIL with the
    store's thread, which then waits on every statement)."""

    spec: EntitySpec
    raws: Sequence[msgspec.Raw | bytes]
    #: Error rows of the items the listing could not give (see walk's salvage).
    errors: list[ErrorRow] = field(default_factory=list)
    #: The batch once decoded (a store may decode a page ahead, in the thread writing it).
    _decoded: list[Batch] = field(default_factory=list, repr=False, compare=False)

    def decode(self) -> Batch:
        """The batch: :func:`decode_records` of the raws, with the error rows (decoded
        once)."""
        if not self._decoded:
            batch = decode_records(self.spec, self.raws)
            batch.errors.extend(self.errors)
            self._decoded.append(batch)
        return self._decoded[0]


class _RawResources(msgspec.Struct):
    resources: list[msgspec.Raw] | None = None


def error_key(item_id: str | None, raw: str | None, fallback: str) -> str:
    """The errors table key: the id when known, else a digest of the JSON, else ``fallback``."""
    if item_id:
        return item_id
    if raw:
        return "sha1:" + hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]
    return fallback


def _text(raw: bytes | msgspec.Raw) -> str:
    return str(raw, "utf-8", "replace")


def decode_records(
    spec: EntitySpec, raws: Sequence[msgspec.Raw | bytes], *, url: str | None = None
) -> Batch:
    """Decode each raw record into its model; the ones off the model are stored with warnings,
    the ones that cannot be stored become error rows, never exceptions.

    Each record is decoded once into its model (which checks all of it), and once more into a
    small side struct for the text of its datetime columns and its resources' raw JSON; the
    columns are read by the spec's compiled extraction (:mod:`.columns`). A record the model
    refuses goes the tolerant way (:func:`_tolerate`).
    """
    batch = Batch()
    datasets = spec.name == "datasets"
    tagged = spec.tagged
    plan = extractor(spec.model, spec.columns, resources=datasets)
    extract, side_decode, model_type = plan.function, plan.side, plan.model
    items = None if plan.item is None else extractor(plan.item, RESOURCE_COLUMNS, lead=True)
    rows, listed, warnings = batch.rows, batch.listed, batch.warnings
    for raw_item in raws:
        raw = bytes(raw_item)
        text = _text(raw)
        try:
            model = decode(raw, spec.model, url=url)
        except DecodeError as error:
            _tolerate(spec, raw, text, error, items, batch)
            continue
        item_id = getattr(model, "id", None)
        if not isinstance(item_id, str) or not item_id:
            batch.errors.append(
                ErrorRow(spec.name, error_key(None, text, "?"), None, text, "record without an id")
            )
            continue
        side = _side(side_decode, raw) if type(model) is model_type else _FAILED
        values = generic(spec.columns, model) if side is _FAILED else extract(model, side)
        tags = _tags(getattr(model, "tags", None)) if tagged else None
        rows.append(Row(item_id, values, text, tags))
        listed.append(item_id)
        if warnings:
            warnings.pop(item_id, None)  # an earlier copy of it went the tolerant way
        if datasets:
            raws_of = None if side is _FAILED else side.resources
            parsed = getattr(model, "resources", None)
            found = _resources(item_id, text, raw, raws_of, parsed, items, batch)
            batch.resources[item_id] = found
    return batch


def _tags(value: Any) -> tuple[str, ...] | None:
    """The tags of an object: its ``tags`` list's strings (None: no list)."""
    if not isinstance(value, list):
        return None
    return tuple(dict.fromkeys(tag for tag in value if isinstance(tag, str)))


def _located(rows: list[Row], text: str) -> list[Row]:
    """The resource rows, each with ``at``: where its JSON stands in its dataset's ``text``."""
    start = 0
    for row in rows:
        start = _locate(row, text, start)
    return rows


#: What may stand between two items of a JSON array.
_BETWEEN = frozenset(", \t\r\n")


def _locate(row: Row, text: str, start: int) -> int:
    """Set ``row.at`` to where its JSON stands in ``text`` at or after ``start`` (left 0 when
    not found: it cannot be with valid JSON, and the row is then stored whole); the index
    where the next one is looked for.

    The resources come in the order of the dataset's JSON: the next one is most often right
    after the previous one, past a comma, which ``startswith`` checks at no cost; else it is
    looked for (any place holding the same text will do: ``at`` only says where to read it).
    """
    json = row.json
    at = start
    end = min(len(text), start + 8)
    while at < end and text[at] in _BETWEEN:
        at += 1
    if not (start and text.startswith(json, at)):
        at = text.find(json, start)
        if at < 0:
            return start
    row.at = at + 1
    return at + len(json)


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
    dataset_text: str,
    raw: bytes,
    raws: list[msgspec.Raw] | None,
    parsed: list[Any] | None,
    plan: Extractor | None,
    batch: Batch,
    *,
    first: int = 0,
) -> list[Row]:
    """The dataset's resources as rows, each with its own JSON as received and where it
    stands in the dataset's JSON (``dataset_text``).

    ``raws``: the resources' raw JSON from the side decode (None: decoded here from ``raw``);
    ``parsed``: their models; ``plan``: the compiled extraction of their columns (None: their
    getters); ``first``: the position of the first one.
    """
    if not parsed:
        return []
    if raws is None:
        raws = msgspec.json.decode(raw, type=_RawResources).resources
    rows: list[Row] = []
    start = 0
    # Read once: this loop runs for every resource of every page.
    model, side_decode, extract = (None, None, None) if plan is None else plan.parts
    for position, (resource, resource_raw) in enumerate(
        zip(parsed, raws or [], strict=False), first
    ):
        text = str(resource_raw, "utf-8", "replace")
        rid = getattr(resource, "id", None)
        if not isinstance(rid, str) or not rid:
            key = error_key(None, text, "?")
            batch.errors.append(
                ErrorRow("resources", key, None, text, f"resource without an id in {dataset_id}")
            )
            continue
        values = None
        if type(resource) is model and extract is not None:
            try:
                side = None if side_decode is None else side_decode(resource_raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass  # its getters read it
            else:
                values = extract(dataset_id, position, resource, side)
        if values is None:
            values = (dataset_id, position, *generic(RESOURCE_COLUMNS, resource))
        row = Row(rid, values, text)
        rows.append(row)
        if dataset_text:
            start = _locate(row, dataset_text, start)
    return rows


# --- the tolerant path: a record its model refuses ------------------------------------------


def _tolerate(
    spec: EntitySpec,
    raw: bytes,
    text: str,
    error: DecodeError,
    items: Extractor | None,
    batch: Batch,
) -> None:
    """Store a record the model refused when it is an object with an id; else quarantine it.

    Its columns are read from the plain object (the ones that fit), its resources one by one,
    and ``batch.warnings[id]`` notes everything off the model (at least the decoder's error).
    """
    try:
        obj: Any = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        obj = None
    item_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(item_id, str) or not item_id:
        reason = (
            "record without an id"
            if isinstance(obj, dict)
            else f"{error.reason} at {error.path} (value: {error.snippet})"
        )
        batch.errors.append(ErrorRow(spec.name, error_key(None, text, "?"), None, text, reason))
        return
    notes = misfits(obj, spec.model)
    if not notes:  # the walk and the decoder disagree: the decoder's word
        notes[error.path] = error.reason
    values = loose(spec.model, spec.columns)(obj, "$", notes)
    tags = _tags(obj.get("tags")) if spec.tagged else None
    batch.rows.append(Row(item_id, values, text, tags))
    batch.listed.append(item_id)
    if spec.name == "datasets":
        found = _tolerate_resources(item_id, text, raw, items, notes, batch)
        batch.resources[item_id] = _located(found, text)
    batch.warnings[item_id] = notes


def _tolerate_resources(
    dataset_id: str,
    dataset_text: str,
    raw: bytes,
    plan: Extractor | None,
    notes: dict[str, str],
    batch: Batch,
) -> list[Row]:
    """The resources of a dataset its model refused, each on its own: the ones that decode
    as usual, the other objects with an id read as they can, the rest quarantined."""
    if plan is None:
        return []
    try:
        raws = msgspec.json.decode(raw, type=_RawResources).resources or []
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []  # not a list: noted by the walk
    decode_item = _decoder(plan.model)
    read = loose(plan.model, RESOURCE_COLUMNS)
    rows: list[Row] = []
    for index, resource_raw in enumerate(raws):
        try:
            resource = decode_item(resource_raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            rows.extend(
                _resources(
                    dataset_id, "", raw, [resource_raw], [resource], plan, batch, first=index
                )
            )
            continue
        text = _text(resource_raw)
        obj: Any = msgspec.json.decode(resource_raw)  # valid: a part of a decoded document
        rid = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(rid, str) or not rid:
            key = error_key(None, text, "?")
            batch.errors.append(
                ErrorRow("resources", key, None, text, f"resource without an id in {dataset_id}")
            )
            continue
        values = (dataset_id, index, *read(obj, f"$.resources[{index}]", notes))
        rows.append(Row(rid, values, text))
    return rows


_DECODERS: dict[type[Any], Callable[[msgspec.Raw], Any]] = {}


def _decoder(model: type[Any]) -> Callable[[msgspec.Raw], Any]:
    found = _DECODERS.get(model)
    if found is None:
        found = _DECODERS[model] = msgspec.json.Decoder(model).decode
    return found


def misfits(obj: dict[str, Any], model: type[Any], path: str = "$") -> dict[str, str]:
    """What of the JSON object ``obj`` does not fit the struct type ``model``: {path: reason}.

    Every field, not only the first error the decoder meets: a missing required one (at its
    own path: ``$.resources[3].filetype``), a value of another type (the decoder's message,
    ``Expected `int | null`, got `str```). Fields the model does not know are not misfits.
    """
    found: dict[str, str] = {}
    _fields_misfits(obj, model, path, found)
    return found


def _fields_misfits(obj: dict[str, Any], model: type[Any], path: str, out: dict[str, str]) -> None:
    for info in struct_fields(model):
        key = info.encode_name
        if key in obj:
            _value_misfits(obj[key], info.type, f"{path}.{key}", out)
        elif info.required:
            out[f"{path}.{key}"] = f"Object missing required field `{key}`"


def _value_misfits(value: Any, annotation: Any, path: str, out: dict[str, str]) -> None:
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError as error:
        before = len(out)
        model = struct_of(annotation)
        item = _item_of(annotation)
        if model is not None and isinstance(value, dict):
            _fields_misfits(value, model, path, out)
        elif item is not None and isinstance(value, list):
            for index, element in enumerate(value):
                _value_misfits(element, item, f"{path}[{index}]", out)
        if len(out) == before:  # a leaf, or nothing found below: the converter's word
            reason, inner = split_reason(str(error))
            out[path + inner] = reason


def _item_of(annotation: Any) -> Any:
    """The item type of ``list[T]`` (or ``list[T] | None``), else None."""
    origin = get_origin(annotation)
    if origin is list:
        args = get_args(annotation)
        return args[0] if args else Any
    if origin in (Union, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        if len(kinds) == 1:
            return _item_of(kinds[0])
    return None


class _Stamped(msgspec.Struct, gc=False):
    id: str
    last_modified: datetime | None = None
    last_update: datetime | None = None


#: Built once (``msgspec.json.decode(..., type=)`` costs more than the decoding itself here).
_decode_stamped = msgspec.json.Decoder(_Stamped).decode


def stamps_of(raws: list[msgspec.Raw]) -> list[tuple[str, dict[str, datetime | None]]]:
    """(id, {field: timestamp}) for each record of a masked id page.

    A timestamp that is not one (another format: stored NULL too) is None; a record that is
    not an object with a string id is skipped.
    """
    found: list[tuple[str, dict[str, datetime | None]]] = []
    for raw in raws:
        try:
            item = _decode_stamped(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            stamped = _loose_stamps(bytes(raw))
            if stamped is not None:
                found.append(stamped)
            continue
        found.append(
            (item.id, {"last_modified": item.last_modified, "last_update": item.last_update})
        )
    return found


def _loose_stamps(raw: bytes) -> tuple[str, dict[str, datetime | None]] | None:
    try:
        obj: Any = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    item_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(item_id, str):
        return None
    stamps: dict[str, datetime | None] = {}
    for name in ("last_modified", "last_update"):
        try:
            stamps[name] = msgspec.convert(obj.get(name), datetime | None)
        except msgspec.ValidationError:
            stamps[name] = None
    return item_id, stamps
