"""Streaming multipart/form-data reader: file parts go straight into the blob store.

Upload bodies can be hundreds of megabytes, so nothing here buffers a file part. One async
generator drives the sans-io `multipart.PushMultipartParser` over the request body and yields
parser events one at a time; each file part's events are handed to `BlobStore.write` as its
chunk iterator, and parsing continues with the next part once the write returns. Backpressure is
therefore natural: the body is only pulled as fast as the store writes, with no queue or task.

Every failure (client error, disconnect, cancellation) deletes the blobs this call wrote, so a
rejected or aborted upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal, TypeAlias

from multipart import (  # type: ignore[import-untyped]  # no py.typed; wrapped in typed helpers
    MultipartError,
    MultipartSegment,
    PushMultipartParser,
    parse_options_header,
)

from services.common.blobstore import BlobStore, BlobTooLargeError

log = logging.getLogger(__name__)

__all__ = ["Form", "UploadError", "UploadLimits", "UploadedFile", "read_form"]

# RFC 2046 section 5.1.1: 1-70 "bchars", the last one not a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")

# Cleanup tasks outlive a second cancellation of the request; keep them referenced until done.
_CLEANUPS: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on one multipart body; every one is enforced while streaming, not afterwards."""

    max_total_bytes: int = 500 * 1024 * 1024
    max_file_bytes: int | None = None
    max_files: int = 50
    max_fields: int = 64
    max_field_bytes: int = 64 * 1024


@dataclass(frozen=True)
class UploadedFile:
    """A file part that was stored completely as `blob_key`."""

    field: str
    filename: str
    content_type: str | None
    blob_key: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class Form:
    """The parsed body: text fields in arrival order (repeats kept) and the stored files."""

    fields: tuple[tuple[str, str], ...]
    files: tuple[UploadedFile, ...]

    def get(self, name: str) -> str | None:
        """The first value of text field `name`, if any."""
        return next((value for key, value in self.fields if key == name), None)


class UploadError(Exception):
    """The client sent something we refuse; `message` is safe to show to that client."""

    def __init__(
        self, status: Literal[400, 413], message: str, *, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status: Literal[400, 413] = status
        self.message = message
        self.field = field


@dataclass(frozen=True)
class _Part:
    """Typed view of a `MultipartSegment` header (the library ships no type information)."""

    name: str
    filename: str | None
    content_type: str | None


# A part header, a chunk of the current part's body, or None at the end of the current part.
_Event: TypeAlias = _Part | bytes | None


async def read_form(
    body: AsyncIterable[bytes],
    content_type: str,
    blobs: BlobStore,
    *,
    key_for: Callable[[int], str],
    file_fields: frozenset[str],
    limits: UploadLimits,
    content_length: int | None = None,
    on_file: Callable[[UploadedFile], None] | None = None,
) -> Form:
    """Parse a multipart/form-data `body`, streaming the n-th file part into `key_for(n)`.

    `key_for` must give keys unique to this upload: on failure every key it returned is deleted.
    `content_length` (the header, if any) only allows an early 413; the bytes actually received
    are what count, since decompressing middleware may legitimately change the length.
    `on_file` hears of each file as soon as it is stored (e.g. to probe it while the rest
    streams in).

    Raises UploadError (400/413) for anything the client got wrong; any other exception from
    `body` (e.g. a disconnect) propagates unchanged. Either way nothing stays in `blobs`.
    """
    if content_length is not None and content_length > limits.max_total_bytes:
        raise _body_too_large(limits.max_total_bytes)
    parser = PushMultipartParser(_boundary(content_type))
    attempted: list[str] = []
    try:
        async with aclosing(_events(body, parser, limits.max_total_bytes)) as events:
            return await _read_parts(
                events,
                blobs,
                attempted,
                key_for=key_for,
                file_fields=file_fields,
                limits=limits,
                on_file=on_file,
            )
    except BaseException:
        if attempted:
            await _discard(blobs, attempted)
        raise


def _boundary(content_type: str) -> str:
    """The boundary parameter of a multipart/form-data Content-Type, quoted or not."""
    mime, options = parse_options_header(content_type)
    boundary: object = options.get("boundary")
    if mime != "multipart/form-data" or not isinstance(boundary, str):
        raise UploadError(400, "expected multipart/form-data with a boundary")
    if not _BOUNDARY.fullmatch(boundary):
        raise UploadError(400, "expected multipart/form-data with a valid boundary")
    return boundary


async def _events(
    body: AsyncIterable[bytes], parser: PushMultipartParser, max_total_bytes: int
) -> AsyncGenerator[_Event, None]:
    """Feed `body` to the parser, enforcing the total size before a chunk is even parsed."""
    total = 0
    try:
        async for chunk in body:
            if not chunk:
                continue  # an empty chunk would tell the parser the input ended
            total += len(chunk)
            if total > max_total_bytes:
                raise _body_too_large(max_total_bytes)
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    yield _part(event)
                elif isinstance(event, bytes):
                    yield event  # a slice of the input, or the input chunk itself: no copy
                elif isinstance(event, bytearray):
                    yield bytes(event)
                else:
                    yield None
        parser.close()  # raises if the final boundary never came
    except MultipartError as exc:
        raise UploadError(400, f"malformed multipart body: {exc}") from exc


def _part(segment: MultipartSegment) -> _Part:
    name, filename, content_type = segment.name, segment.filename, segment.content_type
    return _Part(
        name=name if isinstance(name, str) else "",
        filename=filename if isinstance(filename, str) else None,
        content_type=content_type if isinstance(content_type, str) and content_type else None,
    )


async def _read_parts(
    events: AsyncIterator[_Event],
    blobs: BlobStore,
    attempted: list[str],
    *,
    key_for: Callable[[int], str],
    file_fields: frozenset[str],
    limits: UploadLimits,
    on_file: Callable[[UploadedFile], None] | None,
) -> Form:
    """Walk the parts in order; `attempted` collects blob keys as they are written."""
    fields: list[tuple[str, str]] = []
    files: list[UploadedFile] = []
    async for part in events:
        if not isinstance(part, _Part):
            # Only reachable if the store stopped reading a part early without raising.
            raise RuntimeError("multipart part body was not fully consumed")
        if part.filename is not None:
            if part.name not in file_fields:
                raise UploadError(400, f"unknown file field {part.name!r}", field=part.name)
            if len(files) >= limits.max_files:
                raise UploadError(
                    400, f"at most {limits.max_files} files per batch", field=part.name
                )
            filename = _clean_filename(part.filename)
            if not filename:
                raise UploadError(400, f"file in {part.name!r} has no filename", field=part.name)
            key = key_for(len(files))
            attempted.append(key)  # before writing: a cancelled write may still land the blob
            try:
                async with aclosing(_part_body(events)) as chunks:
                    info = await blobs.write(key, chunks, max_bytes=limits.max_file_bytes)
            except BlobTooLargeError as exc:
                raise UploadError(
                    413, f"file {filename!r} exceeds {exc.limit} bytes", field=part.name
                ) from exc
            stored = UploadedFile(
                field=part.name,
                filename=filename,
                content_type=part.content_type,
                blob_key=key,
                size_bytes=info.size,
                sha256=info.sha256,
            )
            files.append(stored)
            if on_file is not None:
                on_file(stored)
        else:
            if not part.name:
                raise UploadError(400, "form field without a name")
            if part.name in file_fields:
                raise UploadError(400, f"field {part.name!r} must be a file", field=part.name)
            if len(fields) >= limits.max_fields:
                raise UploadError(400, f"at most {limits.max_fields} form fields", field=part.name)
            fields.append((part.name, await _read_text(events, part.name, limits.max_field_bytes)))
    return Form(fields=tuple(fields), files=tuple(files))


async def _part_body(events: AsyncIterator[_Event]) -> AsyncGenerator[bytes, None]:
    """The current part's body chunks, pulled lazily from the shared event stream."""
    async for event in events:
        if event is None:
            return
        if isinstance(event, _Part):  # the parser always ends a part before the next starts
            raise RuntimeError("multipart part started inside another part")
        yield event
    raise UploadError(400, "malformed multipart body: truncated part")


async def _read_text(events: AsyncIterator[_Event], name: str, limit: int) -> str:
    """Collect a (small, bounded) text field and decode it as UTF-8."""
    value = bytearray()
    async with aclosing(_part_body(events)) as chunks:
        async for chunk in chunks:
            if len(value) + len(chunk) > limit:
                raise UploadError(413, f"field {name!r} exceeds {limit} bytes", field=name)
            value += chunk
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError(400, f"field {name!r} is not valid UTF-8", field=name) from None


def _clean_filename(raw: str) -> str:
    """The client's basename only, without control characters; '' if nothing usable is left.

    The name is metadata (storage uses `key_for`), but it ends up in logs, results and maybe in
    someone's download dialog, so paths from either OS and control characters are dropped.
    """
    base = re.split(r"[/\\]", raw)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch) != "Cc").strip()
    return "" if cleaned in {".", ".."} else cleaned


def _body_too_large(limit: int) -> UploadError:
    return UploadError(413, f"request body exceeds {limit} bytes")


async def _discard(blobs: BlobStore, keys: Sequence[str]) -> None:
    """Delete `keys`, shielded so a second cancellation cannot leave some of them behind."""
    task = asyncio.ensure_future(_delete_all(blobs, tuple(keys)))
    _CLEANUPS.add(task)
    task.add_done_callback(_CLEANUPS.discard)
    await asyncio.shield(task)


async def _delete_all(blobs: BlobStore, keys: tuple[str, ...]) -> None:
    for key in keys:
        try:
            await blobs.delete(key)
        except Exception:  # best effort: never hide the error that triggered the cleanup
            log.warning("could not delete blob %s of a failed upload", key, exc_info=True)
