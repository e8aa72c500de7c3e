"""A client's .zip, read safely: judged from its directory first, then unpacked entry by entry.

`plan` decides from the central directory alone, before anything is decompressed, which entries
are media and whether the archive is acceptable at all (paths, counts, declared sizes and
compression ratios). Nothing is ever written under an entry's own name: media entries become
flat, de-duplicated basenames, and `extract` streams one entry into the blob store, bounded by
the bytes it really yields, not by what its header declares.

Skipped, never read: directories, symlinks, macOS `__MACOSX/` metadata, dotfiles, and anything
whose extension is not on the media allowlist (nested archives included). Encryption and
unsupported compression are only refused on media entries, since the others are never read.
An unsafe path is refused on any entry: it marks the archive as hostile.
"""

from __future__ import annotations

import asyncio
import contextlib
import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Final

from services.common.blobstore import BlobInfo, BlobStore, BlobTooLargeError
from services.intake.uploads.probe import media_type_for

MIB: Final = 1 << 20
CHUNK_SIZE: Final = MIB
NOT_A_ZIP: Final = "file is not a valid .zip archive"

# Central-directory bytes allowed per permitted entry (46 fixed + name + extra + comment),
# checked before zipfile turns the whole directory into ZipInfo objects.
_DIRECTORY_BYTES_PER_ENTRY = 1024
_SUPPORTED_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_DRIVE = re.compile(r"^[A-Za-z]:")
# What reading a damaged entry raises: zipfile (CRC, headers), zlib, bz2 (OSError), lzma,
# a compressed stream that ends early (EOFError), encryption (RuntimeError), methods.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError,
                RuntimeError, NotImplementedError, struct.error)  # fmt: skip


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 10_000
    max_media: int = 50
    max_total_bytes: int = 500 * MIB
    max_ratio: float = 200.0  # uncompressed/compressed, for entries above 1 MiB uncompressed


class ZipRejectedError(Exception):
    """The archive is refused; the message is written for the API client."""


@dataclass(frozen=True)
class ZipMember:
    name: str  # flattened basename, unique within the archive (case-insensitively)
    info: zipfile.ZipInfo


def plan(path: Path, limits: ZipLimits) -> list[ZipMember]:
    """The media entries of the zip at `path`, in archive order, or ZipRejectedError."""
    with path.open("rb") as f:
        _check_directory(f, limits)
        try:
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
            raise ZipRejectedError(NOT_A_ZIP) from exc
    if len(infos) > limits.max_entries:
        raise ZipRejectedError(f"zip holds {len(infos)} entries; at most {limits.max_entries}")

    members: list[ZipMember] = []
    taken: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        parts = re.split(r"[/\\]", name)
        if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
            raise ZipRejectedError(f"unsafe path {name!r}")
        base = parts[-1]
        if (
            info.is_dir()
            or not base
            or base.startswith(".")
            or "__MACOSX" in parts
            or stat.S_ISLNK(info.external_attr >> 16)
            or media_type_for(base) is None
        ):
            continue
        if info.flag_bits & 0x1:
            raise ZipRejectedError(f"entry {name!r} is encrypted")
        if info.compress_type not in _SUPPORTED_METHODS:
            raise ZipRejectedError(
                f"entry {name!r} uses an unsupported compression method ({info.compress_type})"
            )
        if info.file_size > MIB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ZipRejectedError(
                f"entry {name!r} looks like a zip bomb: it claims to expand"
                f" {info.file_size / max(info.compress_size, 1):.0f} times"
            )
        total += info.file_size
        members.append(ZipMember(_unique(base, taken), info))

    if not members:
        raise ZipRejectedError("zip holds no media files")
    if len(members) > limits.max_media:
        raise ZipRejectedError(f"zip holds {len(members)} media files; at most {limits.max_media}")
    if total > limits.max_total_bytes:
        raise ZipRejectedError(f"zip expands beyond {_size(limits.max_total_bytes)}")
    return members


async def extract(
    path: Path, member: ZipMember, blobs: BlobStore, key: str, *, max_bytes: int
) -> BlobInfo:
    """Stream one entry, decompressed and CRC-checked, into `key`; nothing is kept on failure.

    The byte count is bounded by `max_bytes` whatever the entry's header says.
    """
    name = member.info.filename
    try:
        entry = await asyncio.to_thread(_Entry, path, member.info)
    except _READ_ERRORS as exc:
        raise ZipRejectedError(f"entry {name!r} is corrupt: {_why(exc)}") from exc
    try:
        async with contextlib.aclosing(_chunks(entry, name)) as chunks:
            return await blobs.write(key, chunks, max_bytes=max_bytes)
    except BlobTooLargeError as exc:
        raise ZipRejectedError(
            f"zip expands beyond {_size(max_bytes)} (at entry {name!r})"
        ) from exc
    finally:
        entry.close()


class _Entry:
    """One open entry: its own ZipFile handle, so extractions never share a file position."""

    def __init__(self, path: Path, info: zipfile.ZipInfo) -> None:
        self._zip = zipfile.ZipFile(path)
        try:
            self._stream: IO[bytes] = self._zip.open(info)
        except BaseException:
            self._zip.close()
            raise

    def read(self) -> bytes:
        return self._stream.read(CHUNK_SIZE)

    def close(self) -> None:
        self._stream.close()
        self._zip.close()


async def _chunks(entry: _Entry, name: str) -> AsyncGenerator[bytes, None]:
    while True:
        try:
            chunk = await asyncio.to_thread(entry.read)
        except _READ_ERRORS as exc:
            raise ZipRejectedError(f"entry {name!r} is corrupt: {_why(exc)}") from exc
        if not chunk:
            return
        yield chunk


def _check_directory(f: BinaryIO, limits: ZipLimits) -> None:
    """Refuse a huge central directory from its end record, before zipfile reads all of it.

    zipfile walks the directory by its byte size, not its declared count, so both are bounded.
    A missing end record is left for zipfile to report.
    """
    size = f.seek(0, os.SEEK_END)
    f.seek(size - min(size, _EOCD.size + 0xFFFF))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise ZipRejectedError(NOT_A_ZIP)
    entries, directory_bytes = _EOCD.unpack_from(tail, at)[4:6]
    if (entries == 0xFFFF or directory_bytes == 0xFFFFFFFF) and at >= _ZIP64_LOCATOR.size:
        signature, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
        if signature == b"PK\x06\x07" and offset < size:
            f.seek(offset)
            record = f.read(_ZIP64_EOCD.size)
            if len(record) == _ZIP64_EOCD.size and record.startswith(b"PK\x06\x06"):
                entries, directory_bytes = _ZIP64_EOCD.unpack(record)[7:9]
    if entries > limits.max_entries:
        raise ZipRejectedError(f"zip holds {entries} entries; at most {limits.max_entries}")
    budget = max(limits.max_entries * _DIRECTORY_BYTES_PER_ENTRY, MIB)
    if directory_bytes > budget:
        raise ZipRejectedError(
            f"zip directory is {directory_bytes} bytes; at most {budget} are read"
        )


def _unique(base: str, taken: set[str]) -> str:
    """`base`, or "stem (2).ext", "stem (3).ext"… - the first not yet taken, ignoring case."""
    stem, _, ext = base.rpartition(".")
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem} ({n}).{ext}"
    taken.add(candidate.lower())
    return candidate


def _size(n: int) -> str:
    return f"{n // MIB} MB" if n >= MIB and n % MIB == 0 else f"{n} bytes"


def _why(exc: BaseException) -> str:
    # an OSError's str() may carry a server path; its strerror does not
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
