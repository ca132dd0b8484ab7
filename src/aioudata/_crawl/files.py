"""Where downloaded files go on disk, and names that cannot leave their directory.

Layout under the download directory: ``<id[:2]>/<id>/<name>`` per resource, ``id`` its
resource id (a UUID; anything else becomes ``x`` + its SHA-1), ``name`` the file's name (the
server's ``Content-Disposition`` file name, else the last segment of the URL, sanitised; never
starting with a dot). While a file is being written it is ``.part`` in that directory, with
what the server said about it in ``.part.json`` (for ``Range`` resumption): a name starting
with a dot is never a complete file. A complete and verified file is renamed to its name.
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

__all__ = ["PART", "PART_INFO", "FreeSpace", "Partial", "file_name", "resource_dir", "safe_name"]

PART = ".part"
PART_INFO = ".part.json"
#: Bytes of a file name at most (most file systems allow 255).
_NAME_BYTES = 200
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
)


def resource_dir(root: Path, resource_id: str) -> Path:
    """The directory of a resource's file under ``root``."""
    if _SAFE_ID.fullmatch(resource_id):
        safe = resource_id
    else:
        safe = "x" + hashlib.sha1(resource_id.encode("utf-8", "surrogatepass")).hexdigest()
    return root / safe[:2] / safe


def safe_name(name: str) -> str:
    """``name`` as a file name that stays in its directory: no separator, no control
    character or NUL, no leading dot (``..`` included), no name reserved by Windows, at most
    200 bytes of UTF-8 (the extension kept); ``file`` when nothing is left."""
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

    def save(self, directory: Path) -> None:
        """Write it next to the part file (before any byte of the file)."""
        temporary = directory / (PART_INFO + ".new")
        temporary.write_text(json.dumps(_fields(self)), "utf-8")
        os.replace(temporary, directory / PART_INFO)

    @classmethod
    def load(cls, directory: Path) -> Partial | None:
        """What a part file in ``directory`` started with; None when unknown."""
        try:
            data = json.loads((directory / PART_INFO).read_text("utf-8"))
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
