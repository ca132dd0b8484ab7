"""Adaptations that make mongomock usable behind the real udata app.

Runs inside the udata venv (imported by ``serve.py``). None of these change what udata
returns for a query MongoDB would answer the same way; they fill gaps (``$text``) and
remove costs (copying every matching document) of the in-memory emulation.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import mongomock.collection
import mongomock.database
import mongomock.filtering
import mongomock.helpers
from mongoengine.queryset.base import BaseQuerySet
from mongoengine.queryset.visitor import Q

# --- text search -------------------------------------------------------------------------

_ACCENTED: dict[str, set[str]] = {}
for _codepoint in range(0x00C0, 0x0250):
    _char = chr(_codepoint)
    _base = unicodedata.normalize("NFKD", _char)[0].lower()
    if _base.isascii() and _base.isalpha():
        _ACCENTED.setdefault(_base, set()).update({_char.lower(), _char.upper()})

_TERMS = re.compile(r'"([^"]*)"|(\S+)')


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _term_pattern(term: str) -> re.Pattern[str]:
    """A case- and accent-insensitive substring pattern for one search term."""
    parts = []
    for char in _strip_accents(term).lower():
        variants = _ACCENTED.get(char)
        if variants:
            parts.append("[" + re.escape(char) + "".join(sorted(variants)) + "]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE)


def text_search_filter(text: str, fields: Iterable[str]) -> dict[str, Any]:
    """The mongomock filter standing in for ``{"$text": {"$search": text}}``.

    MongoDB ANDs quoted phrases (udata quotes every word of ``q``) and ORs bare words;
    each term matches as a substring of any text-indexed field. Negations are ignored.
    """
    fields = list(fields)
    phrases: list[str] = []
    words: list[str] = []
    for quoted, bare in _TERMS.findall(text):
        if quoted.strip():
            phrases.append(quoted.strip())
        elif bare and not bare.startswith("-"):
            words.append(bare)

    def matches(term: str) -> dict[str, Any]:
        pattern = _term_pattern(term)
        return {"$or": [{name: pattern} for name in fields]}

    if phrases:
        return {"$and": [matches(phrase) for phrase in phrases]}
    if words:
        return {"$or": [matches(word) for word in words]}
    return {"_id": {"$exists": False}}  # an empty search matches nothing, as in MongoDB


def _text_fields(queryset: BaseQuerySet) -> list[str]:
    specs = queryset._document._meta.get("index_specs") or []
    fields = [name for spec in specs for name, kind in spec["fields"] if kind == "text"]
    if not fields:
        raise RuntimeError(f"{queryset._document.__name__} has no text index")
    return fields


def _search_text(
    self: BaseQuerySet, text: str, language: str | None = None, text_score: bool = True
) -> BaseQuerySet:
    queryset = self.clone()
    queryset._query_obj &= Q(__raw__=text_search_filter(text, _text_fields(queryset)))
    queryset._mongo_query = None
    queryset._cursor_obj = None
    return queryset


_original_get_order_by = BaseQuerySet._get_order_by


def _get_order_by(self: BaseQuerySet, keys: Iterable[str]) -> list[tuple[str, Any]]:
    # No relevance score without $text: "$text_score" falls back to the model's ordering.
    expanded: list[str] = []
    for key in keys:
        if key == "$text_score":
            expanded.extend(self._document._meta.get("ordering") or [])
        else:
            expanded.append(key)
    order: list[tuple[str, Any]] = _original_get_order_by(self, expanded)
    return order


# --- query cache --------------------------------------------------------------------------


class QueryCache:
    """Matching documents (filtered and sorted, not copied) per (collection, filter, sort).

    Any write to any collection empties it: a generation counter is bumped before and after
    every mutating method of mongomock's Collection and Database.
    """

    MAX_ENTRIES = 256

    def __init__(self) -> None:
        self.enabled = True
        self.generation = 0
        self._entries: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def matching(self, collection: Any, spec: Any, sort: Any) -> list[dict[str, Any]]:
        if not self.enabled:
            return _filter_and_sort(collection, spec, sort)
        generation = self.generation
        # repr() of the filters mongoengine builds (dicts, SON, ObjectId, datetime, regex)
        # is faithful; an unfaithful repr could only cause misses, never false hits
        key = (collection.full_name, repr(spec), repr(sort), generation)
        documents = self._entries.get(key)
        if documents is None:
            documents = _filter_and_sort(collection, spec, sort)
            with self._lock:
                if generation == self.generation:
                    if len(self._entries) >= self.MAX_ENTRIES:
                        self._entries.pop(next(iter(self._entries)))
                    self._entries[key] = documents
        return documents


query_cache = QueryCache()

_WRITE_METHODS = {
    mongomock.collection.Collection: (
        "insert",
        "insert_one",
        "insert_many",
        "_insert",
        "update_one",
        "update_many",
        "replace_one",
        "update",
        "_update",
        "find_one_and_delete",
        "find_one_and_replace",
        "find_one_and_update",
        "find_and_modify",
        "_find_and_modify",
        "save",
        "delete_one",
        "delete_many",
        "_delete",
        "remove",
        "drop",
        "rename",
        "bulk_write",
        "map_reduce",
        "aggregate",  # $out / $merge
    ),
    mongomock.database.Database: ("drop_collection", "rename_collection", "create_collection"),
}


def _invalidating(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        query_cache.invalidate()
        try:
            return method(*args, **kwargs)
        finally:
            query_cache.invalidate()

    wrapper.__wrapped__ = method  # type: ignore[attr-defined]
    wrapper.__name__ = method.__name__
    return wrapper


def _sort_key(key: str, document: dict[str, Any]) -> Any:
    return mongomock.filtering.resolve_sort_key(key, document)


def _filter_and_sort(collection: Any, spec: Any, sort: Any) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = list(collection._iter_documents(spec))
    if sort:
        if isinstance(sort, dict):
            sort = sort.items()
        for sort_key, sort_direction in reversed(list(sort)):
            if sort_key == "$natural":
                if sort_direction < 0:
                    documents.reverse()
                continue
            if sort_key.startswith("$"):
                raise NotImplementedError(f"Sorting by {sort_key} is not implemented")
            documents = sorted(
                documents,
                key=functools.partial(_sort_key, sort_key),
                reverse=sort_direction < 0,
            )
    return documents


_original_count_documents = mongomock.collection.Collection.count_documents


def _count_documents(self: Any, filter: Any, **kwargs: Any) -> int:
    if set(kwargs) - {"maxTimeMS", "hint"}:
        return int(_original_count_documents(self, filter, **kwargs))
    spec = mongomock.helpers.patch_datetime_awareness_in_document(filter)
    return len(query_cache.matching(self, spec, None))


# --- lazy cursor --------------------------------------------------------------------------


def _lazy_get_dataset(
    self: mongomock.collection.Collection,
    spec: dict[str, Any],
    sort: Any,
    fields: Any,
    as_class: Any,
) -> Iterator[_Pending]:
    # The copy out of the store happens when a document is handed out, not for every match.
    for document in query_cache.matching(self, spec, sort):
        yield _Pending(self, document, fields, as_class)


class _Pending:
    """A matched document not yet copied out of the store."""

    __slots__ = ("collection", "container", "copied", "document", "fields")

    def __init__(self, collection: Any, document: Any, fields: Any, container: Any) -> None:
        self.collection = collection
        self.document = document
        self.fields = fields
        self.container = container
        self.copied: Any = None

    def materialize(self) -> Any:
        if self.copied is None:
            doc = self.collection._copy_only_fields(self.document, self.fields, self.container)
            if self.collection.codec_options.tz_aware:
                doc = mongomock.helpers.make_datetime_timezone_aware_in_document(doc)
            self.copied = doc
        return self.copied


def _raw_results(self: Any) -> list[Any]:
    """Matching documents, filtered and sorted, not copied yet."""
    if not self._results or self._factory_last_generated_results != self._factory:
        self._results = list(self._factory())
        self._factory_last_generated_results = self._factory
    results: list[Any] = self._results
    return results


def _compute_results(self: Any, with_limit_and_skip: bool = False) -> list[Any]:
    results = _raw_results(self)
    if with_limit_and_skip:
        results = results[self._skip :]
        if self._limit:
            results = results[: abs(self._limit)]
    return [item.materialize() if isinstance(item, _Pending) else item for item in results]


def _next(self: Any) -> Any:
    results = _raw_results(self)
    if self._limit and self._emitted >= abs(self._limit):
        raise StopIteration()
    try:
        item = results[self._skip + self._emitted]
    except IndexError as err:
        raise StopIteration() from err
    self._emitted += 1
    return item.materialize() if isinstance(item, _Pending) else item


def _alive(self: Any) -> bool:
    return bool(self._emitted != len(_raw_results(self)))


# --- write lock ---------------------------------------------------------------------------


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self) -> None:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def write_lock_middleware(app: WsgiApp) -> WsgiApp:
    """Run requests that can write alone, as MongoDB makes single-document writes atomic.

    mongomock updates documents in place without locking. Requests that may write are any
    method but GET/HEAD/OPTIONS, and any request carrying X-API-KEY (udata records token
    usage and login on each). Anonymous reads stay concurrent with each other.
    """
    lock = ReadWriteLock()

    def locked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        writes = environ.get("REQUEST_METHOD") not in _SAFE_METHODS or bool(
            environ.get("HTTP_X_API_KEY")
        )
        acquire, release = (
            (lock.acquire_write, lock.release_write)
            if writes
            else (lock.acquire_read, lock.release_read)
        )
        acquire()
        try:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]  # render the body while the lock is held
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            release()

    return locked


def install(*, cache_queries: bool = True) -> None:
    """Patch mongoengine and mongomock in place (once per process)."""
    if getattr(mongomock.collection.Collection, "_aioudata_shims", False):
        return
    mongomock.collection.Collection._aioudata_shims = True
    query_cache.enabled = cache_queries
    for owner, names in _WRITE_METHODS.items():
        for name in names:
            method = getattr(owner, name, None)  # some exist only for old pymongo versions
            if method is not None:
                setattr(owner, name, _invalidating(method))
    mongomock.collection.Collection.count_documents = _count_documents
    BaseQuerySet.search_text = _search_text
    BaseQuerySet._get_order_by = _get_order_by
    mongomock.collection.Collection._get_dataset = _lazy_get_dataset
    mongomock.collection.Cursor._compute_results = _compute_results
    mongomock.collection.Cursor.__next__ = _next
    mongomock.collection.Cursor.next = _next
    mongomock.collection.Cursor.alive = property(_alive)
