"""Zip intake: which entries count as media, which archives are refused, and bounded extraction."""

from __future__ import annotations

import hashlib
import random
import struct
import zipfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import pytest

from services.common.blobstore import CHUNK_SIZE, BlobInfo, FilesystemBlobStore
from services.intake.uploads.ziparchive import (
    MIB,
    NOT_A_ZIP,
    ZipLimits,
    ZipMember,
    ZipRejectedError,
    extract,
    plan,
)
from tests.support import media

LIMITS = ZipLimits()
# offsets of fields in the local file header and in the central directory header
LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"
FLAGS = {LOCAL: 6, CENTRAL: 8}
METHOD = {LOCAL: 8, CENTRAL: 10}
CRC = {LOCAL: 14, CENTRAL: 16}
FILE_SIZE = {LOCAL: 22, CENTRAL: 24}


def _zip(tmp_path: Path, entries: list[tuple[str, bytes]], **kwargs: int) -> Path:
    path = tmp_path / "upload.zip"
    path.write_bytes(media.zip_bytes(entries, **kwargs))
    return path


def _names(members: list[ZipMember]) -> list[str]:
    return [m.name for m in members]


def _refused(path: Path, limits: ZipLimits = LIMITS) -> str:
    with pytest.raises(ZipRejectedError) as caught:
        plan(path, limits)
    return str(caught.value)


def _patch(path: Path, field: dict[bytes, int], value: int, fmt: str = "<I") -> None:
    """Set one field of the (first) entry in both its local and its central header."""
    data = bytearray(path.read_bytes())
    for signature, offset in field.items():
        at = data.find(signature)
        assert at >= 0
        struct.pack_into(fmt, data, at + offset, value)
    path.write_bytes(bytes(data))


def _noise(n: int, seed: int = 0) -> bytes:
    """Incompressible bytes, so declared ratios stay honest."""
    return random.Random(seed).randbytes(n)


# --- plan ---------------------------------------------------------------------------------


def test_media_entries_keep_archive_order_and_lose_their_folders(tmp_path: Path) -> None:
    path = _zip(
        tmp_path,
        [
            ("b.wav", b"1"),
            ("music/a.mp3", b"2"),
            ("photos/2024/c.png", b"3"),
            ("z.JPG", b"4"),
        ],
    )
    members = plan(path, LIMITS)
    assert _names(members) == ["b.wav", "a.mp3", "c.png", "z.JPG"]
    assert [m.info.filename for m in members] == [
        "b.wav",
        "music/a.mp3",
        "photos/2024/c.png",
        "z.JPG",
    ]


def test_duplicate_basenames_are_numbered_ignoring_case(tmp_path: Path) -> None:
    path = _zip(
        tmp_path,
        [
            ("a.wav", b"1"),
            ("x/a.wav", b"2"),
            ("y/A.WAV", b"3"),
            ("a (2).wav", b"4"),
            ("clip.mp4", b"5"),
            ("old/clip.mp4", b"6"),
        ],
    )
    assert _names(plan(path, LIMITS)) == [
        "a.wav",
        "a (2).wav",
        "A (3).WAV",
        "a (2) (2).wav",
        "clip.mp4",
        "clip (2).mp4",
    ]


def test_non_media_entries_are_skipped(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link.wav", date_time=media.ZIP_TIME)
    link.external_attr = 0o120777 << 16  # a symlink
    path = tmp_path / "upload.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name in [
            "__MACOSX/._keep.wav",
            "__MACOSX/sub/other.wav",
            "folder/",
            ".hidden.wav",
            "folder/.DS_Store",
            "nested.zip",
            "backup.tar.gz",
            "inner.7z",
            "notes.txt",
            "setup.exe",
            "folder/keep.wav",
            "Thumbs.db",
        ]:
            zf.writestr(zipfile.ZipInfo(name, date_time=media.ZIP_TIME), b"x")
        zf.writestr(link, "/etc/passwd")
    assert _names(plan(path, LIMITS)) == ["keep.wav"]


@pytest.mark.parametrize(
    "name",
    [
        "../evil.wav",
        "a/../../evil.wav",
        "/etc/evil.wav",
        "C:/evil.wav",
        "c:evil.wav",
        "..\\evil.wav",
        "sub\\..\\..\\evil.wav",
        "\\\\server\\share\\evil.wav",
        "../readme.txt",  # refused even though it would be skipped: the archive is hostile
    ],
)
def test_unsafe_paths_are_refused_naming_the_entry(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path, [("fine.wav", b"1"), (name, b"2")])
    assert _refused(path) == f"unsafe path {name!r}"


def test_unsafe_path_message_reads_plainly(tmp_path: Path) -> None:
    assert _refused(_zip(tmp_path, [("../x.wav", b"1")])) == "unsafe path '../x.wav'"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip at all",
        _noise(4096),
        media.png_bytes(),
        media.zip_bytes([("a.wav", b"x" * 100)])[:-10],  # end of central directory cut off
        media.zip_bytes([("a.wav", b"x" * 100)])[60:],  # the start cut off
    ],
)
def test_not_a_zip_is_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    assert _refused(path) == NOT_A_ZIP


def test_an_empty_but_valid_zip_has_no_media(tmp_path: Path) -> None:
    assert _refused(_zip(tmp_path, [])) == "zip holds no media files"


def test_a_zip_without_media_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("notes.txt", b"1"), ("__MACOSX/._a.wav", b"2"), ("dir/", b"")])
    assert _refused(path) == "zip holds no media files"


def test_at_most_max_media_files(tmp_path: Path) -> None:
    fifty = [(f"f{i:02d}.wav", b"x") for i in range(50)]
    assert len(plan(_zip(tmp_path, fifty), LIMITS)) == 50
    path = _zip(tmp_path, [*fifty, ("one-more.png", b"x")])
    assert _refused(path) == "zip holds 51 media files; at most 50"


def test_too_many_entries_are_refused_even_when_skipped(tmp_path: Path) -> None:
    entries = [("a.wav", b"x")] + [(f"n{i}.txt", b"x") for i in range(6)]
    assert _refused(_zip(tmp_path, entries), ZipLimits(max_entries=5)) == (
        "zip holds 7 entries; at most 5"
    )


def test_the_entry_count_in_the_end_record_cannot_hide_entries(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("a.wav", b"x")] + [(f"n{i}.txt", b"x") for i in range(6)])
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # claims a single entry
    path.write_bytes(bytes(data))
    assert _refused(path, ZipLimits(max_entries=5)) == "zip holds 7 entries; at most 5"


def test_a_huge_central_directory_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "upload.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(20):
            info = zipfile.ZipInfo(f"a{i}.wav", date_time=media.ZIP_TIME)
            info.comment = b"c" * 60_000
            zf.writestr(info, b"x")
    reason = _refused(path, ZipLimits(max_entries=20))
    assert reason.startswith("zip directory is ")
    assert reason.endswith(f"bytes; at most {MIB} are read")


def test_an_encrypted_media_entry_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("secret.wav", b"x" * 64)])
    _patch(path, FLAGS, 0x1, "<H")
    assert _refused(path) == "entry 'secret.wav' is encrypted"


def test_an_unsupported_compression_method_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("a.wav", b"x" * 64)])
    _patch(path, METHOD, 9, "<H")  # Deflate64, which zipfile cannot read
    assert _refused(path) == "entry 'a.wav' uses an unsupported compression method (9)"


def test_a_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    """600 MB of zeros in ~2.7 MB: refused from declared sizes, nothing is inflated."""
    path = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("zeros.wav", "w", force_zip64=True) as entry,
    ):
        zeros = bytes(MIB)
        for _ in range(600):
            entry.write(zeros)
    assert path.stat().st_size < 5 * MIB
    reason = _refused(path)
    assert reason.startswith("entry 'zeros.wav' looks like a zip bomb: it claims to expand ")
    # without the ratio bound, the declared total still stops it
    assert _refused(path, ZipLimits(max_ratio=1e9)) == "zip expands beyond 500 MB"


def test_small_compressible_entries_are_not_bombs(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("quiet.wav", bytes(MIB))])  # 1 MiB of silence: ~1000:1
    assert _names(plan(path, LIMITS)) == ["quiet.wav"]


def test_the_declared_total_is_bounded(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("a.wav", _noise(2 * MIB, 1)), ("b.wav", _noise(2 * MIB, 2))])
    assert _refused(path, ZipLimits(max_total_bytes=3 * MIB)) == "zip expands beyond 3 MB"
    assert len(plan(path, ZipLimits(max_total_bytes=4 * MIB))) == 2


# --- extract ------------------------------------------------------------------------------


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "compression",
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
    ids=["stored", "deflated", "bzip2", "lzma"],
)
async def test_extract_writes_exactly_the_original_bytes(tmp_path: Path, compression: int) -> None:
    originals = {
        "voice.wav": media.wav_bytes(2.0),
        "photo.png": media.png_bytes(),
        "big.wav": _noise(CHUNK_SIZE + 123),  # more than one read chunk
    }
    folders = {"voice.wav": "a/", "photo.png": "", "big.wav": "b/c/"}
    entries = [(folders[name] + name, data) for name, data in originals.items()]
    path = _zip(tmp_path, entries, compression=compression)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    for n, member in enumerate(plan(path, LIMITS)):
        info = await extract(path, member, blobs, f"media/{n}", max_bytes=10 * MIB)
        data = (tmp_path / "blobs" / "media" / str(n)).read_bytes()
        assert data == originals[member.name]
        assert info == BlobInfo(f"media/{n}", len(data), hashlib.sha256(data).hexdigest())


async def test_extract_is_bounded_by_max_bytes_and_keeps_nothing(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("dir/a.wav", _noise(3 * MIB))])
    [member] = plan(path, LIMITS)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    with pytest.raises(ZipRejectedError) as caught:
        await extract(path, member, blobs, "media/0", max_bytes=MIB)
    assert str(caught.value) == "zip expands beyond 1 MB (at entry 'dir/a.wav')"
    assert _stored_files(tmp_path / "blobs") == []


class CountingStore(FilesystemBlobStore):
    """Counts the bytes extract() hands over, whatever happens to them."""

    received = 0

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> BlobInfo:
        async def counted() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                self.received += len(chunk)
                yield chunk

        return await super().write(key, counted(), max_bytes=max_bytes)


async def test_an_entry_under_declaring_its_size_yields_no_more_and_is_refused(
    tmp_path: Path,
) -> None:
    """2 MiB of zeros declared as 1000 bytes: plan() sees nothing wrong; extract() reads no
    more than declared, and the CRC then shows the lie."""
    path = _zip(tmp_path, [("liar.wav", bytes(2 * MIB))])
    _patch(path, FILE_SIZE, 1000)
    [member] = plan(path, LIMITS)
    assert member.info.file_size == 1000
    blobs = CountingStore(tmp_path / "blobs")
    with pytest.raises(ZipRejectedError) as caught:
        await extract(path, member, blobs, "media/0", max_bytes=100 * MIB)
    assert str(caught.value).startswith("entry 'liar.wav' is corrupt: Bad CRC-32")
    assert blobs.received <= 1000
    assert _stored_files(tmp_path / "blobs") == []


async def test_an_entry_over_declaring_its_size_stores_its_real_size(tmp_path: Path) -> None:
    data = _noise(MIB + 5)
    path = _zip(tmp_path, [("a.wav", data)])
    _patch(path, FILE_SIZE, 3 * MIB)
    [member] = plan(path, LIMITS)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    info = await extract(path, member, blobs, "media/0", max_bytes=10 * MIB)
    assert info.size == len(data)


async def test_a_bad_crc_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("a.wav", _noise(CHUNK_SIZE * 2))])
    _patch(path, CRC, 0x12345678)
    [member] = plan(path, LIMITS)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    with pytest.raises(ZipRejectedError, match=r"^entry 'a\.wav' is corrupt: Bad CRC-32"):
        await extract(path, member, blobs, "media/0", max_bytes=10 * MIB)
    assert _stored_files(tmp_path / "blobs") == []


async def test_damaged_compressed_data_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("a.wav", media.wav_bytes(30.0))])
    data = bytearray(path.read_bytes())
    data[200:400] = bytes(range(200))  # inside the deflate stream
    path.write_bytes(bytes(data))
    [member] = plan(path, LIMITS)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    with pytest.raises(ZipRejectedError, match=r"^entry 'a\.wav' is corrupt: "):
        await extract(path, member, blobs, "media/0", max_bytes=10 * MIB)
    assert _stored_files(tmp_path / "blobs") == []
