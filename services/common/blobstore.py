"""Blob storage for uploads and artifacts, behind a small interface.

The filesystem implementation writes to a temporary file in the target directory and renames
it into place, so a reader never sees a half-written blob and a failed upload leaves nothing.
The S3 implementation (s3blobstore.py) keeps the same promises over an S3-compatible API;
blobfactory.py picks one from the settings.

Code that needs a real file (PyAV, zipfile, the detector's worker process) asks for
`local_copy(key)` to read and `local_target(key)` to write: the filesystem store hands out its
own paths, the S3 store a temporary file it downloads or uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")
CHUNK_SIZE = 1 << 20


class BlobError(Exception):
    pass


class BlobNotFoundError(BlobError):
    pass


class BlobTooLargeError(BlobError):
    """The stream passed its byte limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"blob exceeds {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BlobMeta:
    """A listed blob: enough for a sweep to tell a leftover from a live upload."""

    key: str
    size: int
    last_modified: datetime


class BlobStore(Protocol):
    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> BlobInfo: ...
    def read(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> bool:
        """True if there was a blob to delete, False if there was none."""
        ...

    async def exists(self, key: str) -> bool: ...
    async def move(self, source: str, target: str) -> None:
        """Give `source`'s bytes the key `target`, replacing it; when `source` is gone but
        `target` is there the move already happened (a retry): no error."""
        ...

    def list(self, prefix: str) -> AsyncIterator[BlobMeta]:
        """Every blob below the folder `prefix` (recursively), in no particular order."""
        ...

    async def delete_all(self, prefix: str) -> None:
        """Delete every blob below the folder `prefix`, unfinished writes included."""
        ...

    def local_copy(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local file holding `key`'s bytes, for the block's duration (BlobNotFoundError)."""
        ...

    def local_target(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local path that does not exist yet: what is there when the block ends without an
        error is stored as `key`; nothing is stored after an error or if nothing was written."""
        ...


@dataclass
class Counted:
    """Bytes seen so far by `grouped`."""

    size: int = 0


async def grouped(
    chunks: AsyncIterable[bytes], max_bytes: int | None, counted: Counted
) -> AsyncIterator[list[bytes]]:
    """An upload's chunks in groups of about 1 MiB: uvicorn hands out <=64 KiB at a time, and
    a thread hop, a disk write or an S3 hand-over per chunk would cost more than the bytes.

    Raises BlobTooLargeError as soon as more than `max_bytes` arrived, without reading further.
    """
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        counted.size += len(chunk)
        if max_bytes is not None and counted.size > max_bytes:
            raise BlobTooLargeError(max_bytes)
        pending.append(bytes(chunk))
        pending_size += len(chunk)
        if pending_size >= CHUNK_SIZE:
            yield pending
            pending, pending_size = [], 0
    if pending:
        yield pending


def check_key(key: str) -> str:
    """Keys are relative slash-separated names; no '..', no absolute paths, no hidden files."""
    if not _KEY.fullmatch(key) or len(key) > 512:
        raise BlobError(f"invalid blob key {key!r}")
    return key


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self._root / check_key(key)

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> BlobInfo:
        """Stream `chunks` into `key` atomically, hashing and counting as it goes.

        Raises BlobTooLargeError as soon as more than `max_bytes` arrived, without reading further.
        """
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary(target)
        digest = hashlib.sha256()
        counted = Counted()
        f = await asyncio.to_thread(open, tmp, "wb")
        # The ~1 MiB groups go to disk in a thread while the next one arrives: one write in
        # flight, so memory stays ~2 MiB per upload.
        in_flight: asyncio.Future[None] | None = None
        try:
            async for group in grouped(chunks, max_bytes, counted):
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(
                    asyncio.to_thread(_hash_and_write, f, digest, group)
                )
            if in_flight is not None:
                await in_flight
            await asyncio.to_thread(_flush_and_sync, f)
            f.close()
            await asyncio.to_thread(os.replace, tmp, target)
        except BaseException:
            if in_flight is not None:  # the thread may still be writing: let it finish first
                await asyncio.wait([in_flight])
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return BlobInfo(key, counted.size, digest.hexdigest())

    async def read(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        try:
            f = await asyncio.to_thread(open, self._path(key), "rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(key) from exc
        try:
            while chunk := await asyncio.to_thread(f.read, chunk_size):
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self._path(key).unlink)
        except FileNotFoundError:
            return False
        return True

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def move(self, source: str, target: str) -> None:
        """Give `source`'s bytes the key `target` (atomic: a rename within the store).

        Idempotent: when `source` is gone but `target` is there, the move already happened.
        """
        destination = self._path(target)
        origin = self._path(source)

        def rename() -> None:
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(origin, destination)
            except FileNotFoundError as exc:
                if not destination.is_file():
                    raise BlobNotFoundError(source) from exc

        await asyncio.to_thread(rename)

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        """The blob's own file, no copy: read it, never change it."""
        path = self._path(key)
        if not await asyncio.to_thread(path.is_file):
            raise BlobNotFoundError(key)
        yield path

    @contextlib.asynccontextmanager
    async def local_target(self, key: str) -> AsyncIterator[Path]:
        """A temporary name beside the blob, renamed into place at the end (atomic)."""
        target = self._path(key)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        tmp = _temporary(target)
        try:
            yield tmp
            if await asyncio.to_thread(tmp.is_file):
                await asyncio.to_thread(os.replace, tmp, target)
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def delete_all(self, prefix: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._path(prefix), True)

    async def list(self, prefix: str) -> AsyncIterator[BlobMeta]:
        """Also lists unfinished writes (their `.<name>.<hex>.part` files, not valid keys), so
        that a sweep sees what a crashed writer left; `delete_all` removes them too."""
        for meta in await asyncio.to_thread(_walk, self._root, self._path(prefix)):
            yield meta


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")


def _walk(root: Path, top: Path) -> list[BlobMeta]:
    found = []
    for directory, _, names in os.walk(top):
        for name in names:
            path = Path(directory, name)
            with contextlib.suppress(FileNotFoundError):  # deleted while we looked
                stat = path.stat()
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                found.append(BlobMeta(path.relative_to(root).as_posix(), stat.st_size, modified))
    return found


def _hash_and_write(f: BinaryIO, digest: Any, chunks: list[bytes]) -> None:
    """One thread hop per ~1 MiB instead of one per chunk; hashing there frees the loop."""
    for chunk in chunks:
        digest.update(chunk)
    f.writelines(chunks)


def _flush_and_sync(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
