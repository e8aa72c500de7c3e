"""The blob store over an S3-compatible API (AWS S3, MinIO, moto), through obstore.

The same promises as the filesystem store, S3's way:
- a write streams: small blobs (under one part) go up in a single PUT, larger ones as a
  multipart upload of `PART_SIZE` parts with at most `PARTS_IN_FLIGHT` of them in flight, so an
  upload holds at most (1 + PARTS_IN_FLIGHT) x PART_SIZE in memory whatever its size. A failed
  or too-large write aborts the multipart upload: no object appears, a previous one stays.
  (A process killed mid-upload leaves an incomplete multipart upload that no listing shows;
  the bucket's AbortIncompleteMultipartUpload lifecycle rule is what removes those.)
- `move` is a server-side copy then a delete: S3 has no rename, so it is not atomic (a crash in
  between leaves both objects, each whole) but it is idempotent, and a retry completes it.
  A single copy is limited to 5 GiB, far above intake's upload limits.
- `local_copy` downloads into a temporary file (streamed) and deletes it afterwards;
  `local_target` uploads what was written to a temporary file. Both live in `scratch_dir`
  (default: the system's temporary directory, `TMPDIR`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import obstore
from obstore.store import S3Store

from services.common.blobstore import (
    CHUNK_SIZE,
    BlobInfo,
    BlobMeta,
    BlobNotFoundError,
    Counted,
    check_key,
    grouped,
)

if TYPE_CHECKING:
    from obstore import AsyncWritableFile
    from obstore.store import ClientConfig, S3Config

PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (except the last one)
PARTS_IN_FLIGHT = 2


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        scratch_dir: Path | None = None,
    ) -> None:
        """Connects to nothing yet: the first request does. Credentials that are not given
        come from the usual AWS environment (variables, profile, instance role)."""
        config: S3Config = {"region": region}
        if endpoint:
            config["endpoint"] = endpoint
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        client: ClientConfig = {"connect_timeout": "10s", "timeout": "300s"}
        if endpoint and endpoint.startswith("http://"):
            client["allow_http"] = True
        self._store = S3Store(
            bucket, prefix=prefix.strip("/") or None, config=config, client_options=client
        )  # fmt: skip
        self._scratch = scratch_dir

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> BlobInfo:
        """Stream `chunks` into `key`, hashing and counting as it goes; all or nothing.

        Raises BlobTooLargeError as soon as more than `max_bytes` arrived, without reading further.
        """
        check_key(key)
        digest = hashlib.sha256()
        counted = Counted()
        # leaving the block with an exception aborts the upload; without one completes it
        writer = obstore.open_writer_async(
            self._store, key, buffer_size=PART_SIZE, max_concurrency=PARTS_IN_FLIGHT
        )
        async with writer:
            async for group in grouped(chunks, max_bytes, counted):
                await _send(writer, digest, group)
        return BlobInfo(key, counted.size, digest.hexdigest())

    async def read(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        try:
            result = await obstore.get_async(self._store, check_key(key))
        except FileNotFoundError as exc:  # obstore's NotFoundError is one
            raise BlobNotFoundError(key) from exc
        async for chunk in result.stream(min_chunk_size=chunk_size):
            yield chunk

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self._store, check_key(key))
        except FileNotFoundError:
            return False
        return True

    async def delete(self, key: str) -> bool:
        """True if there was a blob to delete (S3's own delete does not tell: a HEAD first)."""
        if not await self.exists(key):
            return False
        await obstore.delete_async(self._store, key)
        return True

    async def move(self, source: str, target: str) -> None:
        """Copy, then delete the source (see the module's docstring: not atomic, idempotent)."""
        check_key(source)
        check_key(target)
        if source == target:
            if not await self.exists(source):
                raise BlobNotFoundError(source)
            return
        try:
            await obstore.copy_async(self._store, source, target)
        except FileNotFoundError as exc:
            if await self.exists(target):
                return  # moved before (a retry after a crash between the copy and the delete)
            raise BlobNotFoundError(source) from exc
        await obstore.delete_async(self._store, source)

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        check_key(key)
        async with self._scratch_path(key) as path:
            f = await asyncio.to_thread(open, path, "wb")
            try:
                async for chunk in self.read(key):
                    await asyncio.to_thread(f.write, chunk)
            finally:
                f.close()
            yield path

    @contextlib.asynccontextmanager
    async def local_target(self, key: str) -> AsyncIterator[Path]:
        check_key(key)
        async with self._scratch_path(key) as path:
            yield path
            if await asyncio.to_thread(path.is_file):
                await self.write(key, _file_chunks(path))

    async def delete_all(self, prefix: str) -> None:
        keys = [meta.key async for meta in self.list(prefix)]
        if keys:
            await obstore.delete_async(self._store, keys)  # DeleteObjects, 1000 keys a request

    async def list(self, prefix: str) -> AsyncIterator[BlobMeta]:
        """Below the folder `prefix`: `uploads/a` lists `uploads/a/0` but not `uploads/ab/0`."""
        async for page in obstore.list(self._store, f"{check_key(prefix)}/", chunk_size=1000):
            for meta in page:
                yield BlobMeta(meta["path"], meta["size"], meta["last_modified"])

    @contextlib.asynccontextmanager
    async def _scratch_path(self, key: str) -> AsyncIterator[Path]:
        """A path named like the key's last part, in a private temporary directory."""
        directory = await asyncio.to_thread(tempfile.mkdtemp, "", "verity-blob-", self._scratch)
        try:
            yield Path(directory) / PurePosixPath(key).name
        finally:
            await asyncio.to_thread(shutil.rmtree, directory, True)


async def _send(writer: AsyncWritableFile, digest: Any, pending: list[bytes]) -> None:
    if not pending:
        return
    data = b"".join(pending)
    await asyncio.to_thread(digest.update, data)  # hashlib frees the GIL for big buffers
    await writer.write(data)  # waits while PARTS_IN_FLIGHT parts are still uploading


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK_SIZE):
            yield chunk
    finally:
        f.close()
