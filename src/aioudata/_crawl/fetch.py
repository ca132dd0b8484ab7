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
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

import aiohttp
from yarl import URL

from .download_config import DiskSpaceError, DownloadConfig
from .files import PART, PART_INFO, FreeSpace, Partial, file_name, resource_dir
from .hosts import Job
from .probe import Answer, Prober, encoded
from .results import FileResult

__all__ = ["ALGORITHMS", "DownloadJob", "Fetched", "Fetcher", "TransferCut"]

#: Published checksum types and the hash computing each (udata's ``sha2`` is SHA-256); a
#: file without one (or of another type, ``crc``) gets its SHA-256 recorded, unverified.
ALGORITHMS = {"sha1": "sha1", "sha2": "sha256", "sha256": "sha256", "md5": "md5"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_AGAIN = object()


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
        directory = resource_dir(self.config.dir, job.resource_id)
        refetched = False
        while True:
            partial = _partial(directory, job.current)
            headers = self._headers_for(job, partial)
            response = await self.session.get(
                URL(job.current, encoded=encoded(job.current)),
                headers=headers,
                allow_redirects=False,
                **proxy,
            )
            try:
                answer = await self._receive(job, response, directory, partial, refetched)
            finally:
                response.close()
            if answer is not _AGAIN:
                assert isinstance(answer, Answer)
                return answer
            _discard(directory)  # so the next request has no Range: it cannot come back here
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
        directory: Path,
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
        info = None
        if start == 0:
            info = Partial(job.current, headers.get("ETag"), headers.get("Last-Modified"), total)
        out = await _opened(directory, info, start)
        with out:
            file = await self._stream(job, response, out, directory, file, total)
        if file.result == "mismatch" and start and not refetched:
            return _AGAIN  # the resumed part may be of an older version: once from zero
        if file.result == "downloaded":
            disposition = response.content_disposition
            name = file_name(disposition.filename if disposition else None, job.current)
            file.path = await asyncio.to_thread(_complete, directory, name, self.config.dir)
        return Fetched(status, headers, file)

    async def _stream(
        self,
        job: DownloadJob,
        response: aiohttp.ClientResponse,
        out: BinaryIO,
        directory: Path,
        file: FileResult,
        total: int | None,
    ) -> FileResult:
        """Append the body to the part file ``out``, hashing it; ``file`` completed."""
        published = (job.checksum_type or "").lower()
        algorithm = ALGORITHMS.get(published, "sha256")
        hasher = hashlib.new(algorithm)
        part = directory / PART
        start = file.resumed_from
        if start:
            await asyncio.to_thread(_hash_file, part, hasher, start)
        written, over = await self._copy(job, response, out, hasher, start)
        if over:
            file.result, file.detail = "too_large", f"over --max-size ({self.config.max_size:,})"
        file.bytes, file.size = written, start + written
        if file.result == "too_large":
            _discard(directory)
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
            _discard(directory)  # never kept: nothing may take it for the file
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
        passed ``max_size`` (the copy then stops)."""
        limit = self.config.max_size
        written = 0
        try:
            async for chunk in response.content.iter_chunked(self.config.chunk_size):
                if limit is not None and start + written + len(chunk) > limit:
                    return written, True
                _write(out, chunk, self.space)
                hasher.update(chunk)
                written += len(chunk)
                self.received += len(chunk)
                self.space.check(len(chunk))
        except (aiohttp.ClientError, TimeoutError) as error:
            job.received += written
            raise TransferCut(written, error) from error
        return written, False


async def _opened(directory: Path, info: Partial | None, start: int) -> BinaryIO:
    """The part file open to write from byte ``start`` (a new one, ``info`` saved first,
    when ``start`` is 0), opened in a thread; closed if the caller is cancelled meanwhile."""
    work = asyncio.ensure_future(asyncio.to_thread(_open_part, directory, info, start))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        work.add_done_callback(_close_result)
        raise


def _close_result(work: asyncio.Future[BinaryIO]) -> None:
    if not work.cancelled() and work.exception() is None:
        work.result().close()


def _open_part(directory: Path, info: Partial | None, start: int) -> BinaryIO:
    """See :func:`_opened`."""
    if info is not None:
        directory.mkdir(parents=True, exist_ok=True)
        info.save(directory)
    out = open(directory / PART, "r+b" if start else "wb")  # noqa: SIM115 (the caller's)
    out.truncate(start)
    out.seek(start)
    return out


def _write(out: BinaryIO, chunk: bytes, space: FreeSpace) -> None:
    try:
        out.write(chunk)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskSpaceError(f"the disk of {space.root} is full ({error.strerror})") from None
        raise


def _partial(directory: Path, url: str) -> tuple[Partial, int] | None:
    """The part file of ``directory`` and its size, when it may be resumed for ``url``."""
    if not (directory / PART_INFO).exists():  # the common case, without an open()
        return None
    info = Partial.load(directory)
    if info is None or info.url != url or not info.validator():
        return None
    try:
        size = (directory / PART).stat().st_size
    except OSError:
        return None
    if size == 0 or (info.length is not None and size >= info.length):
        return None
    return info, size


def _discard(directory: Path) -> None:
    for name in (PART, PART_INFO):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def _complete(directory: Path, name: str, root: Path) -> str:
    """Rename the part file to ``name`` (the resource's only file); its path under ``root``."""
    target = directory / name
    if target.parent != directory:  # safe_name() makes this impossible: say so loudly
        raise ValueError(f"file name {name!r} leaves its directory")
    os.replace(directory / PART, target)
    with contextlib.suppress(FileNotFoundError):
        (directory / PART_INFO).unlink()
    for other in directory.iterdir():
        if other.name != name and not other.name.startswith("."):
            with contextlib.suppress(OSError):
                other.unlink()  # an earlier version under another name
    return target.relative_to(root).as_posix()


def _hash_file(path: Path, hasher: Any, size: int) -> None:
    """Feed the first ``size`` bytes of ``path`` to ``hasher``."""
    left = size
    with open(path, "rb") as source:
        while left > 0:
            block = source.read(min(left, 1 << 20))
            if not block:
                break
            hasher.update(block)
            left -= len(block)
