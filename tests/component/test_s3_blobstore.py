"""The blob-store contract, run against both stores: the filesystem one and the S3 one on a real
S3-compatible server (moto's, started by deploy/local/s3.sh). Then what only S3 needs saying:
aborted multipart uploads, the key prefix, memory while a large blob streams up.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common.blobstore import (
    BlobError,
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    FilesystemBlobStore,
)
from services.common.s3blobstore import PART_SIZE
from tests.support.infra import S3Server

MiB = 1 << 20
BLOCK = random.Random(0).randbytes(MiB)  # incompressible, and the same in every stream


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
    s3: S3Server = request.getfixturevalue("s3")
    return s3.new_store(prefix="contract")[1]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read_all(store: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, chunk_size=3)])


async def _keys(store: BlobStore, prefix: str) -> list[str]:
    return sorted([blob.key async for blob in store.list(prefix)])


def _random(size: int) -> Iterator[bytes]:
    """`size` bytes in 64 KiB chunks, each a new object (as a network reader hands them out)."""
    for at in range(0, size, 64 * 1024):
        yield BLOCK[at % MiB : at % MiB + 64 * 1024][: size - at]


async def _stream(size: int, consumed: list[int] | None = None) -> AsyncIterator[bytes]:
    for chunk in _random(size):
        if consumed is not None:
            consumed.append(len(chunk))
        yield chunk


# --- the contract ------------------------------------------------------------------------------


async def test_write_hashes_counts_and_reads_back(store: BlobStore) -> None:
    info = await store.write("uploads/b1/0", _chunks(b"hello ", b"world"))
    assert (info.key, info.size) == ("uploads/b1/0", 11)
    assert info.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert await _read_all(store, "uploads/b1/0") == b"hello world"
    assert await store.exists("uploads/b1/0")
    assert not await store.exists("uploads/b1")  # a folder is not a blob


async def test_an_empty_blob_is_a_blob(store: BlobStore) -> None:
    info = await store.write("empty", _chunks())
    assert (info.size, info.sha256) == (0, hashlib.sha256().hexdigest())
    assert await store.exists("empty")
    assert await _read_all(store, "empty") == b""


async def test_a_larger_blob_round_trips(store: BlobStore) -> None:
    size = 2 * PART_SIZE + 12345  # on S3: a multipart upload of three parts
    digest = hashlib.sha256()
    for chunk in _random(size):
        digest.update(chunk)
    info = await store.write("big/0", _stream(size))
    assert (info.size, info.sha256) == (size, digest.hexdigest())
    read = hashlib.sha256()
    total = 0
    async for chunk in store.read("big/0"):
        read.update(chunk)
        total += len(chunk)
    assert (total, read.hexdigest()) == (size, info.sha256)


async def test_limit_aborts_and_leaves_nothing_behind(store: BlobStore) -> None:
    consumed: list[bytes] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            consumed.append(b"x" * 10)
            yield b"x" * 10

    with pytest.raises(BlobTooLargeError):
        await store.write("big/small-limit", endless(), max_bytes=25)
    assert len(consumed) == 3  # stopped reading as soon as the limit was crossed
    assert not await store.exists("big/small-limit")
    assert await _keys(store, "big") == []


async def test_limit_past_a_part_leaves_nothing_behind(store: BlobStore) -> None:
    """Past the first part S3 has started a multipart upload: it is aborted (see below)."""
    with pytest.raises(BlobTooLargeError):
        await store.write("big/0", _stream(3 * PART_SIZE), max_bytes=2 * PART_SIZE + 1)
    assert not await store.exists("big/0")
    assert await _keys(store, "big") == []


async def test_failed_stream_keeps_the_previous_blob(store: BlobStore) -> None:
    await store.write("k", _chunks(b"old"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"new"
        async for chunk in _stream(PART_SIZE + 1):
            yield chunk
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.write("k", broken())
    assert await _read_all(store, "k") == b"old"


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../b", ".hidden", "a//b", ""])
async def test_rejects_unsafe_keys(store: BlobStore, key: str) -> None:
    with pytest.raises(BlobError):
        await store.write(key, _chunks(b"x"))
    with pytest.raises(BlobError):
        await store.exists(key)
    with pytest.raises(BlobError):
        await store.delete(key)
    with pytest.raises(BlobError):
        await store.move(key, "ok")
    with pytest.raises(BlobError):
        await _keys(store, key)
    with pytest.raises(BlobError):
        async with store.local_copy(key):
            pass


async def test_delete_and_missing(store: BlobStore) -> None:
    await store.write("a/b", _chunks(b"x"))
    assert await store.delete("a/b") is True
    assert await store.delete("a/b") is False
    assert not await store.exists("a/b")
    with pytest.raises(BlobNotFoundError):
        await _read_all(store, "a/b")


async def test_move_replaces_the_target_and_is_idempotent(store: BlobStore) -> None:
    await store.write("secure/u1/000", _chunks(b"upload"))
    await store.write("media/b1/000", _chunks(b"older"))
    await store.move("secure/u1/000", "media/b1/000")
    assert await _read_all(store, "media/b1/000") == b"upload"
    assert not await store.exists("secure/u1/000")
    await store.move("secure/u1/000", "media/b1/000")  # a retry: the move already happened
    assert await _read_all(store, "media/b1/000") == b"upload"
    await store.move("media/b1/000", "media/b1/000")
    assert await _read_all(store, "media/b1/000") == b"upload"
    with pytest.raises(BlobNotFoundError):
        await store.move("secure/u2/000", "media/b2/000")
    assert not await store.exists("media/b2/000")


async def test_list_is_by_folder_and_recursive(store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    for key, data in (("up/a/0", b"1"), ("up/a/b/1", b"22"), ("up/ab/0", b"x"), ("up2/a", b"y")):
        await store.write(key, _chunks(data))
    listed = {blob.key: blob async for blob in store.list("up/a")}
    assert sorted(listed) == ["up/a/0", "up/a/b/1"]
    assert listed["up/a/b/1"].size == 2
    assert before <= listed["up/a/0"].last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert await _keys(store, "up") == ["up/a/0", "up/a/b/1", "up/ab/0"]
    assert await _keys(store, "nothing") == []


async def test_delete_all_takes_one_folder(store: BlobStore) -> None:
    for key in ("up/a/0", "up/a/b/1", "up/ab/0"):
        await store.write(key, _chunks(b"x"))
    await store.delete_all("up/a")
    assert await _keys(store, "up") == ["up/ab/0"]
    await store.delete_all("up/a")  # nothing left to delete: fine


async def test_local_copy_holds_the_bytes(store: BlobStore) -> None:
    await store.write("media/b1/000", _chunks(b"RIFF", b"data"))
    async with store.local_copy("media/b1/000") as path:
        assert path.read_bytes() == b"RIFFdata"
    with pytest.raises(BlobNotFoundError):
        async with store.local_copy("media/b1/001"):
            pass


async def test_local_target_stores_only_what_a_clean_block_wrote(store: BlobStore) -> None:
    async with store.local_target("visualizations/b1/d1.png") as path:
        assert not path.exists()
        path.write_bytes(b"\x89PNG")
    assert await _read_all(store, "visualizations/b1/d1.png") == b"\x89PNG"

    async def fail_while_drawing() -> None:
        async with store.local_target("visualizations/b1/d2.png") as path:
            path.write_bytes(b"half")
            raise RuntimeError("the analysis failed")

    with pytest.raises(RuntimeError):
        await fail_while_drawing()
    async with store.local_target("visualizations/b1/d3.png"):
        pass  # nothing drawn
    assert await _keys(store, "visualizations") == ["visualizations/b1/d1.png"]


# --- S3 only ---------------------------------------------------------------------------------


async def test_s3_aborts_the_multipart_upload_of_a_failed_write(s3: S3Server) -> None:
    bucket, store = s3.new_store()
    consumed: list[int] = []
    with pytest.raises(BlobTooLargeError):
        await store.write("big/0", _stream(4 * PART_SIZE, consumed), max_bytes=3 * PART_SIZE)
    assert sum(consumed) == 3 * PART_SIZE + 64 * 1024  # parts had gone up; then it stopped
    assert s3.keys(bucket, "uploads") == []
    assert not await store.exists("big/0")


async def test_s3_keys_live_below_the_prefix(s3: S3Server) -> None:
    bucket, store = s3.new_store(prefix="tenant-a/")
    await store.write("media/b1/000", _chunks(b"x"))
    assert s3.keys(bucket) == ["tenant-a/media/b1/000"]
    assert await _keys(store, "media") == ["media/b1/000"]


async def test_s3_local_copies_are_temporary(s3: S3Server) -> None:
    _, store = s3.new_store()
    await store.write("media/b1/000", _chunks(b"data"))
    async with store.local_copy("media/b1/000") as path:
        assert path.name == "000"
    assert not path.exists()
    assert not path.parent.exists()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_s3_streams_64_mib_in_bounded_memory(s3: S3Server) -> None:
    """Peak resident memory while 64 MiB stream up stays well below the blob's size: the bound
    is (1 + PARTS_IN_FLIGHT) x PART_SIZE = 15 MiB of parts plus the ~1 MiB being handed over
    (measured: about 9 MiB). Buffering the whole blob measures about 62 MiB and fails."""
    _, store = s3.new_store()
    await store.write("warm/0", _stream(2 * PART_SIZE))  # the client and its threads, once
    peak = baseline = _rss_kib()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, _rss_kib())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        info = await store.write("big/0", _stream(64 * MiB))
    finally:
        done.set()
        sampler.join()
    growth_mib = (peak - baseline) / 1024
    print(f"\n64 MiB streamed to S3: peak RSS growth {growth_mib:.1f} MiB")
    assert info.size == 64 * MiB
    assert growth_mib < 32
