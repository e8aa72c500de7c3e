"""The filesystem blob store: atomic, bounded, streaming, and safe with keys."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.common.blobstore import (
    BlobError,
    BlobNotFoundError,
    BlobTooLargeError,
    FilesystemBlobStore,
)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read_all(store: FilesystemBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, chunk_size=3)])


async def test_write_hashes_counts_and_reads_back(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    info = await store.write("uploads/b1/0", _chunks(b"hello ", b"world"))
    assert info.size == 11
    assert info.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert await _read_all(store, "uploads/b1/0") == b"hello world"
    assert await store.exists("uploads/b1/0")


async def test_limit_aborts_and_leaves_nothing_behind(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    consumed: list[bytes] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            consumed.append(b"x" * 10)
            yield b"x" * 10

    with pytest.raises(BlobTooLargeError):
        await store.write("big", endless(), max_bytes=25)
    assert len(consumed) == 3  # stopped reading as soon as the limit was crossed
    assert not await store.exists("big")
    assert [p.name for p in tmp_path.iterdir()] == []


async def test_failed_stream_keeps_the_previous_blob(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    await store.write("k", _chunks(b"old"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"new"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.write("k", broken())
    assert await _read_all(store, "k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../b", ".hidden", "a//b", ""])
async def test_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(BlobError):
        await store.write(key, _chunks(b"x"))


async def test_delete_and_missing(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    await store.write("a/b", _chunks(b"x"))
    assert await store.delete("a/b") is True
    assert await store.delete("a/b") is False
    with pytest.raises(BlobNotFoundError):
        await _read_all(store, "a/b")
