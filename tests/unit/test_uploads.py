"""The streaming multipart reader: correct parts, limits enforced while streaming, no debris."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx
import pytest

from services.common.blobstore import FilesystemBlobStore
from services.intake.uploads.multipart import Form, UploadError, UploadLimits, read_form

BOUNDARY = "b0undary-XyZ"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
FILE_FIELDS = frozenset({"files[]", "file"})

# (field name, filename or None for a text field, content type or None, payload)
PartSpec = tuple[str, str | None, str | None, bytes]


def _body(*parts: PartSpec, boundary: str = BOUNDARY, close: bool = True) -> bytes:
    out = bytearray()
    for name, filename, content_type, payload in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type is not None:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + payload + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return bytes(out)


class Feed:
    """An async body that hands out `data` in `size`-byte chunks and counts what was pulled."""

    def __init__(self, data: bytes, size: int = 64 * 1024) -> None:
        self.chunks = [data[i : i + size] for i in range(0, len(data), size)]
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk


def _key(n: int) -> str:
    return f"batch/{n}"


async def _read(
    store: FilesystemBlobStore,
    body: bytes | Feed,
    *,
    content_type: str = CONTENT_TYPE,
    limits: UploadLimits | None = None,
    content_length: int | None = None,
) -> Form:
    return await read_form(
        body if isinstance(body, Feed) else Feed(body),
        content_type,
        store,
        key_for=_key,
        file_fields=FILE_FIELDS,
        limits=limits or UploadLimits(),
        content_length=content_length,
    )


def _stored(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def _blob(store: FilesystemBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def test_fields_and_files_in_order_with_exact_bytes(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    audio, image = b"RIFF" + bytes(range(256)) * 40, b"\x89PNG\r\n--" + b"\r\n" * 500
    body = _body(
        ("callback_url", None, None, b"https://example.com/hook?a=1"),
        ("files[]", "clip.wav", "audio/wav", audio),
        ("note", None, None, "héllo".encode()),
        ("files[]", "pic.png", "image/png", image),
        ("note", None, None, b""),
    )
    form = await _read(store, body)

    assert form.fields == (
        ("callback_url", "https://example.com/hook?a=1"),
        ("note", "héllo"),
        ("note", ""),
    )
    assert form.get("note") == "héllo"
    assert [(f.field, f.filename, f.content_type, f.blob_key) for f in form.files] == [
        ("files[]", "clip.wav", "audio/wav", "batch/0"),
        ("files[]", "pic.png", "image/png", "batch/1"),
    ]
    for uploaded, payload in zip(form.files, [audio, image], strict=True):
        assert uploaded.size_bytes == len(payload)
        assert uploaded.sha256 == hashlib.sha256(payload).hexdigest()
        assert await _blob(store, uploaded.blob_key) == payload


async def test_httpx_encoded_body_and_quoted_boundary(tmp_path: Path) -> None:
    request = httpx.Request(
        "POST",
        "http://x",
        data={"visualize": "true"},
        files=[("file", ("a.mp4", b"\x00\x01" * 5000, "video/mp4")), ("file", ("b", b""))],
    )
    body, content_type = request.read(), request.headers["content-type"]
    boundary = content_type.split("boundary=", 1)[1]
    for ct in (content_type, f'Multipart/Form-Data; charset=utf-8; boundary="{boundary}"'):
        form = await _read(FilesystemBlobStore(tmp_path / ct[:9]), body, content_type=ct)
        assert form.fields == (("visualize", "true"),)
        assert [(f.filename, f.content_type, f.size_bytes) for f in form.files] == [
            ("a.mp4", "video/mp4", 10000),
            ("b", "application/octet-stream", 0),
        ]


async def test_chunking_does_not_change_the_result(tmp_path: Path) -> None:
    # Payloads full of near-boundaries: CRLF, "--", the delimiter minus its last byte.
    tricky = f"\r\n--{BOUNDARY[:-1]}\r\n--\r".encode() * 3
    body = _body(
        ("a", None, None, b"1" + tricky[:20]),
        ("files[]", "x.bin", None, tricky + b"\r"),
        ("file", "y.bin", "application/octet-stream", b"\r\n" + tricky),
        ("b", None, None, "ünï\r\n".encode()),
    )
    results = []
    for size in (1, 2, 7, 64, len(body)):
        feed = Feed(body, size)
        results.append(await _read(FilesystemBlobStore(tmp_path / str(size)), feed))
        assert feed.pulled == len(feed.chunks)
    assert all(result == results[0] for result in results)
    assert results[0].fields == (("a", "1" + tricky[:20].decode()), ("b", "ünï\r\n"))
    assert [f.sha256 for f in results[0].files] == [
        hashlib.sha256(tricky + b"\r").hexdigest(),
        hashlib.sha256(b"\r\n" + tricky).hexdigest(),
    ]


async def test_empty_body_chunks_are_skipped(tmp_path: Path) -> None:
    """ASGI servers may deliver empty chunks; to the parser an empty chunk means end of input."""
    body = _body(("files[]", "a.bin", None, b"abc" * 10), ("n", None, None, b"v"))
    feed = Feed(body, 5)
    feed.chunks = [piece for chunk in feed.chunks for piece in (b"", chunk, b"")]
    form = await _read(FilesystemBlobStore(tmp_path), feed)
    assert (form.fields, [f.size_bytes for f in form.files]) == ((("n", "v"),), [30])


async def test_total_limit_stops_reading_and_leaves_nothing(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    body = _body(("files[]", "a.bin", None, b"a" * 3000), ("files[]", "b.bin", None, b"b" * 9000))
    feed = Feed(body, 100)
    with pytest.raises(UploadError) as err:
        await _read(store, feed, limits=UploadLimits(max_total_bytes=5000))
    assert err.value.status == 413
    assert feed.pulled == 51  # the chunk that crossed 5000 bytes, and not one more
    assert _stored(tmp_path) == []


async def test_announced_content_length_over_the_limit_reads_nothing(tmp_path: Path) -> None:
    feed = Feed(_body(("files[]", "a.bin", None, b"a")))
    with pytest.raises(UploadError) as err:
        await _read(
            FilesystemBlobStore(tmp_path),
            feed,
            limits=UploadLimits(max_total_bytes=1000),
            content_length=1001,
        )
    assert err.value.status == 413
    assert feed.pulled == 0


async def test_per_file_limit_is_413_and_removes_earlier_files(tmp_path: Path) -> None:
    body = _body(("files[]", "ok.bin", None, b"a" * 100), ("files[]", "big.bin", None, b"b" * 101))
    with pytest.raises(UploadError) as err:
        await _read(
            FilesystemBlobStore(tmp_path), Feed(body, 10), limits=UploadLimits(max_file_bytes=100)
        )
    assert (err.value.status, err.value.field) == (413, "files[]")
    assert "big.bin" in err.value.message
    assert _stored(tmp_path) == []


async def test_51st_file_is_rejected_when_it_starts(tmp_path: Path) -> None:
    parts: list[PartSpec] = [("files[]", f"{i}.bin", None, b"x" * 10) for i in range(51)]
    body = _body(*parts, ("files[]", "never-read.bin", None, b"y" * 100_000))
    feed = Feed(body, 64)
    with pytest.raises(UploadError) as err:
        await _read(FilesystemBlobStore(tmp_path), feed)
    assert (err.value.status, err.value.message) == (400, "at most 50 files per batch")
    assert feed.pulled < len(feed.chunks) // 2
    assert _stored(tmp_path) == []


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="mid-file"),
        pytest.param(lambda b: b[: -len(f"--{BOUNDARY}--\r\n")], id="no-final-boundary"),
        pytest.param(lambda b: b[:-4], id="final-boundary-cut"),
        pytest.param(lambda b: b"", id="empty"),
    ],
)
async def test_truncated_body_is_400_and_leaves_nothing(
    tmp_path: Path, cut: Callable[[bytes], bytes]
) -> None:
    body = _body(("files[]", "a.bin", None, b"a" * 500), ("files[]", "b.bin", None, b"b" * 500))
    with pytest.raises(UploadError) as err:
        await _read(FilesystemBlobStore(tmp_path), Feed(cut(body), 33))
    assert err.value.status == 400
    assert err.value.message.startswith("malformed multipart body:")
    assert _stored(tmp_path) == []


async def test_wrong_boundary_is_malformed(tmp_path: Path) -> None:
    body = _body(("files[]", "a.bin", None, b"a"), boundary="other")
    with pytest.raises(UploadError, match="malformed multipart body") as err:
        await _read(FilesystemBlobStore(tmp_path), body)
    assert err.value.status == 400


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/mixed; boundary=abc",
        'multipart/form-data; boundary="bad\\"quote"',
        "multipart/form-data; boundary=" + "x" * 71,
    ],
)
async def test_not_multipart_form_data_is_400(tmp_path: Path, content_type: str) -> None:
    feed = Feed(_body(("files[]", "a.bin", None, b"a")))
    with pytest.raises(UploadError, match="expected multipart/form-data") as err:
        await _read(FilesystemBlobStore(tmp_path), feed, content_type=content_type)
    assert err.value.status == 400
    assert feed.pulled == 0


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Desktop\\clip.wav", "clip.wav"),
        ("dir\\sub/mixed\\name.mp3", "name.mp3"),
        ("bad\x01\x7fname\x1b.png", "badname.png"),
        ("  spaced.jpg ", "spaced.jpg"),
        ("ünïcödé ✓.wav", "ünïcödé ✓.wav"),
    ],
)
async def test_filename_is_reduced_to_a_clean_basename(
    tmp_path: Path, raw: str, clean: str
) -> None:
    form = await _read(FilesystemBlobStore(tmp_path), _body(("file", raw, None, b"data")))
    assert [f.filename for f in form.files] == [clean]


@pytest.mark.parametrize("raw", ["", "/", "a/..", "C:\\dir\\", "\x00\x01"])
async def test_empty_filename_is_rejected(tmp_path: Path, raw: str) -> None:
    body = _body(("files[]", "ok.bin", None, b"ok"), ("file", raw, None, b"data"))
    with pytest.raises(UploadError, match="has no filename") as err:
        await _read(FilesystemBlobStore(tmp_path), body)
    assert (err.value.status, err.value.field) == (400, "file")
    assert _stored(tmp_path) == []


async def test_unknown_file_field_is_400(tmp_path: Path) -> None:
    body = _body(("files[]", "ok.bin", None, b"ok"), ("attachment", "x.bin", None, b"data"))
    with pytest.raises(UploadError) as err:
        await _read(FilesystemBlobStore(tmp_path), body)
    assert (err.value.status, err.value.field) == (400, "attachment")
    assert err.value.message == "unknown file field 'attachment'"
    assert _stored(tmp_path) == []


async def test_text_in_a_file_field_is_400(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="must be a file") as err:
        await _read(FilesystemBlobStore(tmp_path), _body(("files[]", None, None, b"x")))
    assert (err.value.status, err.value.field) == (400, "files[]")


@pytest.mark.parametrize(
    ("parts", "status", "message"),
    [
        ([("n", None, None, b"\xff\xfe")], 400, "not valid UTF-8"),
        ([("n", None, None, b"x" * 11)], 413, "exceeds 10 bytes"),
        ([("n", None, None, b"x")] * 4, 400, "at most 3 form fields"),
        ([("", None, None, b"x")], 400, "without a name"),
    ],
)
async def test_text_field_limits(
    tmp_path: Path, parts: Sequence[PartSpec], status: int, message: str
) -> None:
    limits = UploadLimits(max_fields=3, max_field_bytes=10)
    with pytest.raises(UploadError, match=message) as err:
        await _read(FilesystemBlobStore(tmp_path), _body(*parts), limits=limits)
    assert err.value.status == status


async def test_disconnect_mid_file_propagates_and_leaves_nothing(tmp_path: Path) -> None:
    body = _body(("files[]", "a.bin", None, b"a" * 1000), ("files[]", "b.bin", None, b"b" * 1000))

    async def disconnecting() -> AsyncIterator[bytes]:
        yield body[:1500]  # the first file complete, the second one started
        raise ConnectionResetError("client went away")

    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        await read_form(
            disconnecting(),
            CONTENT_TYPE,
            store,
            key_for=_key,
            file_fields=FILE_FIELDS,
            limits=UploadLimits(),
        )
    assert _stored(tmp_path) == []


async def test_cancellation_mid_file_leaves_nothing(tmp_path: Path) -> None:
    body = _body(("files[]", "a.bin", None, b"a" * 1000), ("files[]", "b.bin", None, b"b" * 1000))
    stalled = asyncio.Event()

    async def stalling() -> AsyncIterator[bytes]:
        yield body[:1500]
        stalled.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b""  # pragma: no cover

    store = FilesystemBlobStore(tmp_path)
    task = asyncio.create_task(
        read_form(
            stalling(),
            CONTENT_TYPE,
            store,
            key_for=_key,
            file_fields=FILE_FIELDS,
            limits=UploadLimits(),
        )
    )
    await stalled.wait()
    assert await store.exists("batch/0")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _stored(tmp_path) == []
