"""One download: a GET streamed to a part file, resumed with ``Range`` where it can be, the
published checksum computed while the bytes arrive, renamed to its name once complete and
verified. Redirects are not followed here: the scheduler queues each hop at its own host.

The session is the checker's (:class:`Prober`): no API key, no cookie, no .netrc login, only
the User-Agent and ``Accept-Encoding: identity`` (a checksum is of the file's own bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, Literal

import aiohttp
from yarl import URL

from .disk import DiskWriters, Stream
from .download_config import DiskSpaceError, DownloadConfig
from .files import FreeSpace, Partial, Place, file_name, place_of
from .hosts import Job
from .probe import Answer, Prober, encoded
from .results import FileResult

__all__ = ["ALGORITHMS", "DownloadJob", "Fetched", "Fetcher", "TransferCut"]

#: Published checksum types and the hash computing each (udata's ``sha2`` is SHA-256); a
#: file without one (or of another type, ``crc``) gets its SHA-256 recorded, unverified.
ALGORITHMS = {"sha1": "sha1", "sha2": "sha256", "sha256": "sha256", "md5": "md5"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_AGAIN = object()
#: Files larger (or of unknown length) may be resumed after a kill -9 (see _receive).
_RESUMABLE = 1024 * 1024
#: Transfers at least this large are written and hashed by a thread (see disk.py).
_THREADED = 1024 * 1024


@dataclass(slots=True)
class DownloadJob(Job):
    """One resource's download: a check's job with the published checksum."""

    FIRST: ClassVar[Literal["HEAD", "GET"]] = "GET"
    checksum_type: str | None = None
    checksum_value: str | None = None
    #: Transfers of this file cut so far in this run.
    attempts: int = 0
    #: Bytes received by the attempts before the last one.
    received: int = 0
    #: The path of its file on disk, from an earlier download (removed when replaced).
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched(Answer):
    """A final answer, and what was written of its body."""

    file: FileResult | None = None


class TransferCut(Exception):
    """The connection failed after some of the file was written (kept for a resumption)."""

    def __init__(self, received: int, cause: BaseException) -> None:
        super().__init__(f"transfer cut after {received:,} bytes: {cause!r}")
        self.received = received
        self.cause = cause


class Fetcher(Prober):
    """Downloads the files of a run; an async context manager owning its session."""

    config: DownloadConfig

    def __init__(self, config: DownloadConfig) -> None:
        super().__init__(config)
        self.space = FreeSpace(
            config.dir, config.min_free, config.free_space, every=8 * config.chunk_size
        )
        #: Bytes received in all (progress).
        self.received = 0
        #: Folders of the layout known to exist.
        self.folders: set[str] = set()
        self._root = os.fspath(config.dir)
        self.disk = DiskWriters()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await super().__aexit__(*exc_info)
        finally:
            await asyncio.to_thread(self.disk.close)

    def timeout(self) -> aiohttp.ClientTimeout:
        """No limit on a whole file, only on connecting and on each wait for bytes."""
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.connect_timeout, sock_read=self.config.timeout
        )

    async def exchange(self, job: Job, proxy: dict[str, Any]) -> Answer:
        """GET ``job.current`` into its part file; the answer, with what was written when it
        was the file (2xx). Raises :class:`DiskSpaceError` (the run stops) and
        :class:`TransferCut` (the part file is kept)."""
        assert isinstance(job, DownloadJob)
        self.space.check()
        place = place_of(self._root, job.resource_id)
        refetched = False
        while True:
            partial = _partial(place, job.current)
            headers = self._headers_for(job, partial)
            response = await self.session.get(
                URL(job.current, encoded=encoded(job.current)),
                headers=headers,
                allow_redirects=False,
                **proxy,
            )
            try:
                answer = await self._receive(job, response, place, partial, refetched)
            finally:
                response.close()
            if answer is not _AGAIN:
                assert isinstance(answer, Answer)
                return answer
            _discard(place)  # so the next request has no Range: it cannot come back here
            refetched = True

    def _headers_for(self, job: DownloadJob, partial: tuple[Partial, int] | None) -> dict[str, str]:
        if partial is None:
            return self.headers(job)  # conditional when a good copy is on disk
        info, size = partial
        headers = dict(self.headers(job))
        headers.pop("If-None-Match", None)
        headers.pop("If-Modified-Since", None)
        headers["Range"] = f"bytes={size}-"
        headers["If-Range"] = info.validator() or ""
        return headers

    async def _receive(
        self,
        job: DownloadJob,
        response: aiohttp.ClientResponse,
        place: Place,
        partial: tuple[Partial, int] | None,
        refetched: bool,
    ) -> object:
        """The answer to return, or ``_AGAIN`` to fetch the file from zero."""
        status, headers = response.status, response.headers
        if status == 416 and partial is not None:
            return _AGAIN  # the part file is longer than the file now is
        if status not in (200, 206):
            await self.close_early(response)
            return Fetched(status, headers)
        start = 0
        if status == 206:
            found = _CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
            if partial is None:
                detail = "206 (a part) to a request for the whole file"
                return Fetched(status, headers, FileResult("incomplete", detail=detail))
            if found is None or int(found[1]) != partial[1]:
                return _AGAIN
            start = partial[1]
            total = None if found[3] == "*" else int(found[3])
        else:
            refetched = refetched or partial is not None  # the range was not honoured
            total = response.content_length
        file = FileResult("downloaded", resumed_from=start, refetched=refetched)
        limit = self.config.max_size
        if limit is not None and total is not None and total > limit:
            file.result, file.detail = "too_large", f"{total:,} bytes, over --max-size"
            return Fetched(status, headers, file)
        return await self._write_file(job, response, place, file, total, partial is not None)

    async def _write_file(
        self,
        job: DownloadJob,
        response: aiohttp.ClientResponse,
        place: Place,
        file: FileResult,
        total: int | None,
        had_info: bool,
    ) -> object:
        """Stream the body to the part file, then rename it when complete and verified; the
        answer, or ``_AGAIN`` to fetch the file from zero. ``had_info``: the part file's
        ``.part.json`` was there before this request."""
        status, headers, start = response.status, response.headers, file.resumed_from
        info = None
        if start == 0:
            info = Partial(job.current, headers.get("ETag"), headers.get("Last-Modified"), total)
        # Small files are fetched again rather than resumed after a kill -9: their part
        # gets its .json only if their transfer is cut (one file less to write each).
        early = info is not None and (total is None or total > _RESUMABLE)
        if place.folder not in self.folders:  # one mkdir per folder and run, not per file
            os.makedirs(place.folder, exist_ok=True)
            self.folders.add(place.folder)
        with _open_part(place, info if early else None, start) as out:
            try:
                file = await self._stream(job, response, out, place, file, total)
            except TransferCut:
                if info is not None and not early:
                    info.save(place)  # the next attempt resumes
                raise
        if file.result == "mismatch" and start and not file.refetched:
            return _AGAIN  # the resumed part may be of an older version: once from zero
        if file.result == "downloaded":
            disposition = response.content_disposition
            name = file_name(disposition.filename if disposition else None, job.current)
            info_on_disk = had_info or early
            file.path = _complete(place, name, self._root, job.previous, info_on_disk)
        return Fetched(status, headers, file)

    async def _stream(
        self,
        job: DownloadJob,
        response: aiohttp.ClientResponse,
        out: BinaryIO,
        place: Place,
        file: FileResult,
        total: int | None,
    ) -> FileResult:
        """Append the body to the part file ``out``, hashing it; ``file`` completed."""
        published = (job.checksum_type or "").lower()
        algorithm = ALGORITHMS.get(published, "sha256")
        hasher = hashlib.new(algorithm)
        start = file.resumed_from
        if start:
            await asyncio.to_thread(_hash_file, place.part, hasher, start)
        written, over = await self._copy(job, response, out, hasher, start)
        if over:
            file.result, file.detail = "too_large", f"over --max-size ({self.config.max_size:,})"
        file.bytes, file.size = written, start + written
        if file.result == "too_large":
            _discard(place)
            return file
        if total is not None and file.size != total:
            job.received += written
            raise TransferCut(written, ConnectionResetError(f"{file.size} of {total} bytes"))
        file.checksum_type = algorithm if published in ALGORITHMS else "sha256"
        file.checksum_actual = hasher.hexdigest()
        file.checksum_expected = (job.checksum_value or "").strip().lower() or None
        verified = published in ALGORITHMS and file.checksum_expected
        if verified and file.checksum_actual != file.checksum_expected:
            file.result = "mismatch"
            file.detail = f"{published} {file.checksum_actual}, not the published one"
            _discard(place)  # never kept: nothing may take it for the file
        return file

    async def _copy(
        self,
        job: DownloadJob,
        response: aiohttp.ClientResponse,
        out: BinaryIO,
        hasher: Any,
        start: int,
    ) -> tuple[int, bool]:
        """Bytes copied from the body to ``out`` (and ``hasher``), and whether the body
        passed ``max_size`` (the copy then stops). A large transfer is written and hashed by
        a thread of :attr:`disk` while the loop goes on (all of it is written on return)."""
        limit = self.config.max_size
        length = response.content_length
        stream: Stream | None = None
        if length is not None and length >= _THREADED:
            stream = self.disk.stream(functools.partial(_write, out, space=self.space), hasher)
        written, over = 0, False
        try:
            async for chunk in response.content.iter_chunked(self.config.chunk_size):
                if limit is not None and start + written + len(chunk) > limit:
                    over = True
                    break
                if stream is None:
                    _write(out, chunk, space=self.space)
                    hasher.update(chunk)
                else:
                    await stream.put(chunk)
                written += len(chunk)
                self.received += len(chunk)
                self.space.check(len(chunk))
        except (aiohttp.ClientError, TimeoutError) as error:
            if stream is not None:
                await stream.finish()  # what was received is on disk, for a resumption
            job.received += written
            raise TransferCut(written, error) from error
        except BaseException:
            if stream is not None:
                stream.abandon()
            raise
        if stream is not None:
            await stream.finish()
        return written, over


def _open_part(place: Place, info: Partial | None, start: int) -> BinaryIO:
    """The part file open to write from byte ``start`` (``info`` saved first, if any). In
    the loop, not a thread: a few quick system calls, which the default executor's few
    threads only queued."""
    if info is not None:
        info.save(place)
    out = open(place.part, "r+b" if start else "wb")  # noqa: SIM115 (the caller's)
    if start:  # a new file ("wb") is empty already
        out.truncate(start)
        out.seek(start)
    return out


def _write(out: BinaryIO, chunk: bytes, *, space: FreeSpace) -> None:
    try:
        out.write(chunk)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskSpaceError(f"the disk of {space.root} is full ({error.strerror})") from None
        raise


def _partial(place: Place, url: str) -> tuple[Partial, int] | None:
    """The part file of ``place`` and its size, when it may be resumed for ``url``."""
    if not os.path.exists(place.info):  # the common case, without an open()
        return None
    info = Partial.load(place)
    if info is None or info.url != url or not info.validator():
        _discard(place)  # of no use now: gone, so that nothing needs to look for it again
        return None
    try:
        size = os.stat(place.part).st_size
    except OSError:
        return None
    if size == 0 or (info.length is not None and size >= info.length):
        return None
    return info, size


def _discard(place: Place) -> None:
    for path in (place.part, place.info):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _complete(place: Place, name: str, root: str, previous: str | None, info: bool) -> str:
    """Rename the part file to ``name``; its path under ``root``. Its ``.part.json`` is
    removed when there may be one (``info``), and so is the resource's file of an earlier
    download (``previous``, under another name)."""
    target = place.final(name)
    if os.path.dirname(target) != place.folder:  # safe_name() makes this impossible: say so
        raise ValueError(f"file name {name!r} leaves its directory")
    os.replace(place.part, target)
    if info:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(place.info)
    folder = os.path.basename(place.folder)
    path = f"{folder}/{os.path.basename(target)}"  # under root
    if previous and previous != path:
        old_folder, _, old_name = previous.rpartition("/")
        if old_folder == folder and old_name.startswith(place.stem + "_"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, previous))
    return path


def _hash_file(path: str, hasher: Any, size: int) -> None:
    """Feed the first ``size`` bytes of ``path`` to ``hasher``."""
    left = size
    with open(path, "rb") as source:
        while left > 0:
            block = source.read(min(left, 1 << 20))
            if not block:
                break
            hasher.update(block)
            left -= len(block)
