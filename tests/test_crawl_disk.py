"""Large files written and hashed by threads (``_crawl/disk.py``): every chunk in its order,
the transfer held back while too much waits for the disk, a write's failure raised in the loop;
and the downloader's scenarios again with every file going through those threads."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from aioudata._crawl import disk, fetch
from aioudata._crawl.disk import BACKLOG, DiskWriters
from tests.download_web import filehosts as filehosts  # the fixture
from tests.test_crawl_download import (
    test_a_checksum_mismatch_is_recorded_and_its_file_not_kept,
    test_a_cut_transfer_is_resumed_with_range_and_if_range,
    test_a_large_file_is_never_held_whole_in_memory,
    test_a_nearly_full_disk_stops_the_run_cleanly_and_it_resumes,
    test_a_server_ignoring_range_is_fetched_from_zero,
    test_files_are_streamed_verified_renamed_and_recorded,
    test_killed_mid_transfer_nothing_passes_for_complete_and_a_rerun_resumes,
    test_max_size_skips_large_files_even_without_a_length,
)

__all__ = [
    "test_a_checksum_mismatch_is_recorded_and_its_file_not_kept",
    "test_a_cut_transfer_is_resumed_with_range_and_if_range",
    "test_a_large_file_is_never_held_whole_in_memory",
    "test_a_nearly_full_disk_stops_the_run_cleanly_and_it_resumes",
    "test_a_server_ignoring_range_is_fetched_from_zero",
    "test_files_are_streamed_verified_renamed_and_recorded",
    "test_killed_mid_transfer_nothing_passes_for_complete_and_a_rerun_resumes",
    "test_max_size_skips_large_files_even_without_a_length",
]

CHUNK = 64 * 1024


@pytest.fixture(autouse=True)
def every_transfer_through_threads(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    """The downloader's tests imported above run with every file of a known length written
    by the threads (the child process of the kill -9 test keeps its own threshold)."""
    monkeypatch.setattr(fetch, "_THREADED", 0)
    streams: list[object] = []
    original = DiskWriters.stream

    def counted(self: DiskWriters, *args: Any) -> Any:
        streams.append(args)
        return original(self, *args)

    monkeypatch.setattr(DiskWriters, "stream", counted)
    yield
    name = request.node.name
    if name in __all__ and "killed" not in name:
        assert streams, "no transfer went through the threads"


@pytest.fixture
def writers() -> Iterator[DiskWriters]:
    pool = DiskWriters(threads=2)
    try:
        yield pool
    finally:
        pool.close()


async def test_chunks_are_written_and_hashed_in_order_off_the_loop(
    writers: DiskWriters,
) -> None:
    chunks = [bytes([n]) * CHUNK for n in range(40)]
    got: list[bytes] = []
    threads: set[str] = set()

    def write(chunk: bytes) -> None:
        threads.add(threading.current_thread().name)
        got.append(chunk)

    hasher = hashlib.sha256()
    stream = writers.stream(write, hasher)
    for chunk in chunks:
        await stream.put(chunk)
    await stream.finish()
    assert got == chunks and hasher.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert threads and threading.current_thread().name not in threads


async def test_a_slow_disk_holds_the_transfer_back(writers: DiskWriters) -> None:
    waiting: list[int] = []

    def slow(chunk: bytes) -> None:
        time.sleep(0.002)

    stream = writers.stream(slow, hashlib.sha256())
    for _ in range(60):  # 3.75 MiB through a 1 MiB backlog
        await stream.put(b"x" * CHUNK)
        waiting.append(stream.queued - stream.done)
    await stream.finish()
    assert max(waiting) <= BACKLOG + CHUNK  # never more than the backlog (and one chunk)
    assert stream.done == stream.queued == 60 * CHUNK


async def test_a_failed_write_is_raised_in_the_loop_and_nothing_after_it_written(
    writers: DiskWriters,
) -> None:
    written: list[bytes] = []

    def write(chunk: bytes) -> None:
        if chunk.startswith(b"3"):
            raise OSError(28, "No space left on device")
        written.append(chunk)

    stream = writers.stream(write, hashlib.sha256())

    async def transfer() -> None:
        for n in range(8):
            await stream.put(str(n).encode() * 10)
        await stream.finish()

    with pytest.raises(OSError, match="No space"):  # at a later put, or at the end
        await transfer()
    await asyncio.sleep(0.05)
    assert written == [str(n).encode() * 10 for n in range(3)]


async def test_an_abandoned_transfer_writes_nothing_more(writers: DiskWriters) -> None:
    gate = threading.Event()
    written: list[bytes] = []

    def write(chunk: bytes) -> None:
        gate.wait(5)
        written.append(chunk)

    stream = writers.stream(write, hashlib.sha256())
    for n in range(5):
        await stream.put(bytes([n]))
    stream.abandon()
    gate.set()
    other = writers.stream(lambda chunk: None, hashlib.sha256())  # the threads go on
    await other.put(b"y")
    await other.finish()
    writers.close()
    assert len(written) <= 1  # at most the one under way when it was abandoned


def test_the_threads_end_with_close() -> None:
    async def one() -> DiskWriters:
        pool = DiskWriters(threads=3)
        stream = pool.stream(lambda chunk: None, hashlib.sha256())
        await stream.put(b"z")
        await stream.finish()
        return pool

    pool = asyncio.run(one())
    names = {t.name for t in threading.enumerate() if t.name.startswith("aioudata-disk")}
    assert len(names) == 3
    pool.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("aioudata-disk")]
    assert disk.BACKLOG == BACKLOG
