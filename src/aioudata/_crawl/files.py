"""Where downloaded files go on disk, and names that cannot leave their directory.

Layout under the download directory: ``<id[:2]>/<id>_<name>`` per resource, ``id`` its
resource id (a UUID; anything else becomes ``x`` + its SHA-1), ``name`` the file's name (the
server's ``Content-Disposition`` file name, else the last segment of the URL, sanitised). While
a file is being written it is ``.<id>.part`` in that directory, with what the server said about
it in ``.<id>.part.json`` (for ``Range`` resumption; written at the start for files over 1 MiB
or of unknown length, else when a transfer is cut): a name starting with a dot is never a
complete file. A complete and verified file is renamed to its name. (Not a directory per
resource: creating one costs as much as writing a small file.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .download_config import DiskSpaceError

__all__ = ["FreeSpace", "Partial", "Place", "file_name", "place_of", "safe_name"]

#: Bytes of a file's own name at most: with its ``<id>_`` prefix (65 at most), within the
#: 255 most file systems allow.
_NAME_BYTES = 180
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where one resource's file goes: ``folder/<stem>_<name>``, written as
    ``folder/.<stem>.part`` (``stem``: the resource id, made safe). Paths as strings: a
    download makes a few of them, and ``pathlib`` cost more than the rest of its names."""

    folder: str
    stem: str
    part: str
    info: str

    def final(self, name: str) -> str:
        """The complete file called ``name`` (made safe by :func:`safe_name`)."""
        return f"{self.folder}{os.sep}{self.stem}_{name}"


def place_of(root: str | os.PathLike[str], resource_id: str) -> Place:
    """Where the file of ``resource_id`` goes under ``root``."""
    if _SAFE_ID.fullmatch(resource_id):
        safe = resource_id
    else:
        safe = "x" + hashlib.sha1(resource_id.encode("utf-8", "surrogatepass")).hexdigest()
    folder = os.path.join(root, safe[:2])
    part = f"{folder}{os.sep}.{safe}.part"
    return Place(folder, safe, part, part + ".json")


def safe_name(name: str) -> str:
    """``name`` as a file name that stays in its directory: no separator, no control
    character or NUL, no leading dot (``..`` included), no name reserved by Windows, at most
    180 bytes of UTF-8 (the extension kept); ``file`` when nothing is left."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")  # RTL overrides...
    if not name or name.split(".", 1)[0].lower() in _RESERVED:
        name = f"file{'_' + name if name else ''}"
    encoded = name.encode("utf-8")
    if len(encoded) > _NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and 0 < len(ext.encode()) <= 16 else ""
        room = _NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
        stem = (stem if ext else name).encode("utf-8")[:room].decode("utf-8", "ignore")
        name = f"{stem.rstrip(' .')}.{ext}" if ext else stem.rstrip(" .")
    return name or "file"


def file_name(disposition: str | None, url: str) -> str:
    """The name of a downloaded file: the server's (``Content-Disposition``) or the URL's
    last path segment, sanitised (see :func:`safe_name`)."""
    if disposition:
        return safe_name(disposition)
    try:
        path = urlsplit(url).path
    except ValueError:
        path = ""
    return safe_name(unquote(path.rstrip("/").rsplit("/", 1)[-1]))


@dataclass(frozen=True, slots=True)
class Partial:
    """A file being downloaded: the URL and validators of the answer it started with."""

    url: str
    etag: str | None
    last_modified: str | None
    length: int | None

    def validator(self) -> str | None:
        """What ``If-Range`` may carry: a strong ETag, else the Last-Modified date."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    def save(self, place: Place) -> None:
        """Write it next to the part file."""
        temporary = place.info + ".new"
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(json.dumps(_fields(self)))
        os.replace(temporary, place.info)

    @classmethod
    def load(cls, place: Place) -> Partial | None:
        """What the part file of ``place`` started with; None when unknown."""
        try:
            with open(place.info, encoding="utf-8") as source:
                data = json.loads(source.read())
            return cls(
                str(data["url"]), data.get("etag"), data.get("last_modified"), data.get("length")
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _fields(partial: Partial) -> dict[str, object]:
    return {
        "url": partial.url,
        "etag": partial.etag,
        "last_modified": partial.last_modified,
        "length": partial.length,
    }


def statvfs_free(path: Path) -> int:
    """Bytes free for an unprivileged user on the disk holding ``path``."""
    found = os.statvfs(path)
    return found.f_bavail * found.f_frsize


class FreeSpace:
    """Stops the run when the disk under the download directory gets nearly full.

    Measured at the first check, then again once ``every`` bytes were written since the last
    measure (or sooner when what was written may have brought it under the minimum); a
    minimum of 0 is never checked."""

    def __init__(
        self, root: Path, minimum: int, measure: Callable[[Path], int] | None, every: int
    ) -> None:
        self.root = root
        self.minimum = minimum
        self.measure = measure or statvfs_free
        self.every = every
        self.free: int | None = None
        self.written = 0

    def check(self, written: int = 0) -> None:
        """``written`` more bytes are on the disk; raises :class:`DiskSpaceError` when free
        space is under the minimum."""
        if self.minimum <= 0:
            return
        self.written += written
        known = self.free is not None and self.written < self.every
        if known and self.free - self.written >= self.minimum:  # type: ignore[operator]
            return
        where = self.root
        while not where.exists() and where.parent != where:
            where = where.parent  # not created yet: the disk it will be on
        free = self.free = self.measure(where)
        self.written = 0
        if free < self.minimum:
            raise DiskSpaceError(
                f"only {free / 2**20:,.0f} MiB free on the disk of {self.root}, under"
                f" --min-free {self.minimum / 2**20:,.0f} MiB: stopped; partial files are"
                " kept and the same command resumes once there is room"
            )
