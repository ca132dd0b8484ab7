"""What the mirror knows about each kind of object: endpoints, model, sorts and queried columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import msgspec

from .._endpoint import Endpoint
from .._generated import models as m
from .._generated.operations.datasets import GET_DATASET as _GET_DATASET
from .._generated.operations.datasets import LIST_DATASETS as _LIST_DATASETS
from .._generated.operations.discussions import GET_DISCUSSION as _GET_DISCUSSION
from .._generated.operations.discussions import LIST_DISCUSSIONS as _LIST_DISCUSSIONS
from .._generated.operations.harvest import GET_HARVEST_SOURCE as _GET_HARVEST_SOURCE
from .._generated.operations.harvest import LIST_HARVEST_SOURCES as _LIST_HARVEST_SOURCES
from .._generated.operations.organizations import GET_ORGANIZATION as _GET_ORGANIZATION
from .._generated.operations.organizations import LIST_ORGANIZATIONS as _LIST_ORGANIZATIONS
from .._generated.operations.posts import GET_POST as _GET_POST
from .._generated.operations.posts import LIST_POSTS as _LIST_POSTS
from .._generated.operations.reuses import GET_REUSE as _GET_REUSE
from .._generated.operations.reuses import LIST_REUSES as _LIST_REUSES
from .._generated.operations.users import GET_USER as _GET_USER
from .._generated.operations.users import LIST_USERS as _LIST_USERS
from .._generated.v2.operations.topics import GET_TOPIC, LIST_TOPICS

__all__ = ["DEFAULT_ENTITIES", "ENTITIES", "RESOURCE_COLUMNS", "EntitySpec", "RawPage", "entity"]


class RawPage(msgspec.Struct):
    """A listing page whose items are kept as raw JSON, so one bad record never spoils its page."""

    data: list[msgspec.Raw] = []
    page: int | None = None
    page_size: int | None = None
    total: int | None = None
    next_page: str | None = None


Getter = Callable[[Any], Any]


def _value(value: Any) -> Any:
    """A model value as SQLite stores it: ISO text for datetimes, 0/1 for booleans."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, int | float | str):
        return value
    return str(value)


@dataclass(frozen=True, slots=True)
class Field:
    """A column's getter that says what it reads: an attribute path, then ``_value`` or not.

    Called on a model, it is the generic extraction (any object, missing attributes give
    None); :func:`compile_columns` turns a spec's fields into one function for its model.
    """

    path: tuple[str, ...]
    #: True: the value as :func:`_value` stores it; False: as is (an embedded object's id).
    convert: bool = True

    def __call__(self, model: Any) -> Any:
        value = model
        for name in self.path:
            value = getattr(value, name, None)
        return _value(value) if self.convert else value


def _field(name: str) -> Getter:
    return Field((name,))


def _ref(name: str) -> Getter:
    return Field((name, "id"), convert=False)


def _subject(part: str) -> Getter:
    return Field(("subject", part), convert=False)


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """One mirrored kind of object."""

    name: str
    singular: str
    list_endpoint: Endpoint[RawPage]
    get_endpoint: Endpoint[bytes]
    get_param: str
    model: type[Any]
    #: (column, getter) pairs: the columns people query, besides id and the raw JSON.
    columns: tuple[tuple[str, Getter], ...]
    #: Sort of a full pass: ascending creation, so new objects land on the last pages.
    full_sort: str | None
    #: Sort by last change, newest first (None: every run is a full pass).
    changed_sort: str | None = None
    #: Timestamp fields compared by the cheap id pass to find changed objects.
    stamps: tuple[str, ...] = ()
    #: Fields telling that an object is no longer listed (deleted, private, archived...).
    hidden: tuple[str, ...] = ("deleted",)
    #: The column shown by ``aioudata ls``.
    label: str = "title"
    api_version: int = 1

    @property
    def hwm_field(self) -> str | None:
        """The field ``changed_sort`` orders by."""
        return self.changed_sort.lstrip("-") if self.changed_sort else None

    def accepts(self, name: str) -> bool:
        """True when the listing takes the query parameter ``name``."""
        return any(param.name == name for param in self.list_endpoint.params)

    def column_names(self) -> tuple[str, ...]:
        """The queried columns, in table order."""
        return tuple(name for name, _ in self.columns)

    @property
    def tagged(self) -> bool:
        """True when the objects have ``tags`` (kept in the ``tags`` table)."""
        return "tags" in getattr(self.model, "__struct_fields__", ())

    def id_mask(self, *fields: str) -> str:
        """The ``X-Fields`` mask of a listing giving only ``id`` and ``fields`` of each item."""
        return "data{" + ",".join(("id", *fields)) + "},page,page_size,total,next_page"

    def hidden_in(self, values: tuple[Any, ...]) -> bool:
        """True when a row's columns say the object is no longer listed (deleted, private...)."""
        names = self.column_names()
        return any(values[names.index(name)] for name in self.hidden if name in names)


def _raw_list(endpoint: Endpoint[Any]) -> Endpoint[RawPage]:
    return cast(Endpoint[RawPage], dataclasses.replace(endpoint, response=RawPage))


def _raw_get(endpoint: Endpoint[Any]) -> Endpoint[bytes]:
    return cast(Endpoint[bytes], dataclasses.replace(endpoint, response=bytes))


_OWNED = (("organization_id", _ref("organization")), ("owner_id", _ref("owner")))

ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec(
            name="datasets",
            singular="dataset",
            list_endpoint=_raw_list(_LIST_DATASETS),
            get_endpoint=_raw_get(_GET_DATASET),
            get_param="dataset",
            model=m.Dataset,
            columns=(
                ("title", _field("title")),
                ("slug", _field("slug")),
                *_OWNED,
                ("license", _field("license")),
                ("frequency", _field("frequency")),
                ("created_at", _field("created_at")),
                ("last_modified", _field("last_modified")),
                ("last_update", _field("last_update")),
                ("private", _field("private")),
                ("archived", _field("archived")),
                ("deleted", _field("deleted")),
            ),
            full_sort="created",
            changed_sort="-last_update",
            stamps=("last_modified", "last_update"),
            hidden=("deleted", "private", "archived"),
        ),
        EntitySpec(
            name="organizations",
            singular="organization",
            list_endpoint=_raw_list(_LIST_ORGANIZATIONS),
            get_endpoint=_raw_get(_GET_ORGANIZATION),
            get_param="org",
            model=m.Organization,
            columns=(
                ("name", _field("name")),
                ("acronym", _field("acronym")),
                ("slug", _field("slug")),
                ("created_at", _field("created_at")),
                ("last_modified", _field("last_modified")),
                ("deleted", _field("deleted")),
            ),
            full_sort="created",
            changed_sort="-last_modified",
            stamps=("last_modified",),
            label="name",
        ),
        EntitySpec(
            name="reuses",
            singular="reuse",
            list_endpoint=_raw_list(_LIST_REUSES),
            get_endpoint=_raw_get(_GET_REUSE),
            get_param="reuse",
            model=m.Reuse,
            columns=(
                ("title", _field("title")),
                ("slug", _field("slug")),
                ("type", _field("type")),
                *_OWNED,
                ("created_at", _field("created_at")),
                ("last_modified", _field("last_modified")),
                ("private", _field("private")),
                ("archived", _field("archived")),
                ("deleted", _field("deleted")),
            ),
            full_sort="created",
            changed_sort="-last_modified",
            stamps=("last_modified",),
            hidden=("deleted", "private"),
        ),
        EntitySpec(
            name="users",
            singular="user",
            list_endpoint=_raw_list(_LIST_USERS),
            get_endpoint=_raw_get(_GET_USER),
            get_param="user",
            model=m.User,
            columns=(
                ("slug", _field("slug")),
                ("first_name", _field("first_name")),
                ("last_name", _field("last_name")),
                ("created_at", _field("since")),
                ("active", _field("active")),
                ("deleted", _field("deleted")),
            ),
            full_sort="created",
            label="slug",
        ),
        EntitySpec(
            name="harvest_sources",
            singular="harvest_source",
            list_endpoint=_raw_list(_LIST_HARVEST_SOURCES),
            get_endpoint=_raw_get(_GET_HARVEST_SOURCE),
            get_param="source",
            model=m.HarvestSource,
            columns=(
                ("name", _field("name")),
                ("slug", _field("slug")),
                ("url", _field("url")),
                ("backend", _field("backend")),
                *_OWNED,
                ("created_at", _field("created_at")),
                ("active", _field("active")),
                ("deleted", _field("deleted")),
            ),
            full_sort=None,
            label="name",
        ),
        EntitySpec(
            name="topics",
            singular="topic",
            list_endpoint=_raw_list(LIST_TOPICS),
            get_endpoint=_raw_get(GET_TOPIC),
            get_param="topic",
            model=m.TopicV2,
            columns=(
                ("name", _field("name")),
                ("slug", _field("slug")),
                *_OWNED,
                ("created_at", _field("created_at")),
                ("last_modified", _field("last_modified")),
                ("private", _field("private")),
                ("featured", _field("featured")),
            ),
            full_sort="created",
            changed_sort="-last_modified",
            stamps=("last_modified",),
            hidden=("private",),
            label="name",
            api_version=2,
        ),
        EntitySpec(
            name="posts",
            singular="post",
            list_endpoint=_raw_list(_LIST_POSTS),
            get_endpoint=_raw_get(_GET_POST),
            get_param="post",
            model=m.Post,
            columns=(
                ("name", _field("name")),
                ("slug", _field("slug")),
                ("kind", _field("kind")),
                ("owner_id", _ref("owner")),
                ("created_at", _field("created_at")),
                ("last_modified", _field("last_modified")),
                ("published", _field("published")),
            ),
            full_sort="created",
            changed_sort="-last_modified",
            stamps=("last_modified",),
            hidden=(),
            label="name",
        ),
        EntitySpec(
            name="discussions",
            singular="discussion",
            list_endpoint=_raw_list(_LIST_DISCUSSIONS),
            get_endpoint=_raw_get(_GET_DISCUSSION),
            get_param="id",
            model=m.Discussion,
            columns=(
                ("title", _field("title")),
                ("subject_class", _subject("class_")),
                ("subject_id", _subject("id")),
                ("user_id", _ref("user")),
                ("organization_id", _ref("organization")),
                ("created_at", _field("created")),
                ("closed_at", _field("closed")),
            ),
            full_sort="created",
            hidden=(),
        ),
    )
}

#: Mirrored when ``entities`` is not given.
DEFAULT_ENTITIES = ("datasets", "organizations", "reuses")

#: Columns of the resources table besides id, dataset_id, position and the raw JSON.
RESOURCE_COLUMNS: tuple[tuple[str, Getter], ...] = (
    ("title", _field("title")),
    ("type", _field("type")),
    ("format", _field("format")),
    ("filetype", _field("filetype")),
    ("url", _field("url")),
    ("mime", _field("mime")),
    ("filesize", _field("filesize")),
    ("checksum_type", Field(("checksum", "type"), convert=False)),
    ("checksum_value", Field(("checksum", "value"), convert=False)),
    ("created_at", _field("created_at")),
    ("last_modified", _field("last_modified")),
)

_ALIASES = {"harvest-sources": "harvest_sources", "harvest_source": "harvest_sources"}


def entity(name: str) -> EntitySpec:
    """The spec for ``name``, plural or singular (``dataset``, ``harvest-sources``...)."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in ENTITIES:
        return ENTITIES[key]
    for spec in ENTITIES.values():
        if spec.singular == key:
            return spec
    raise KeyError(name)
