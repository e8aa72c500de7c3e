"""The media probe: real files of every allowed type pass; lies, cuts and junk are refused."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from contracts.events import MediaType
from services.intake.uploads.probe import (
    ALLOWED,
    MAX_IMAGE_PIXELS,
    MediaRejectedError,
    Probed,
    media_type_for,
    probe_file,
)
from tests.support import media


def _probe(tmp_path: Path, filename: str, data: bytes) -> Probed:
    path = tmp_path / "upload.bin"  # the stored blob's name says nothing; the client's does
    path.write_bytes(data)
    return probe_file(path, filename)


def _rejected(tmp_path: Path, filename: str, data: bytes) -> MediaRejectedError:
    with pytest.raises(MediaRejectedError) as caught:
        _probe(tmp_path, filename, data)
    assert caught.value.filename == filename
    assert str(caught.value) == f"{filename}: {caught.value.reason}"
    return caught.value


def test_allowlist_is_the_api_table() -> None:
    assert dict(ALLOWED) == {
        **dict.fromkeys([".wav", ".mp3", ".m4a", ".ogg", ".aac", ".flac"], "audio"),
        **dict.fromkeys([".mp4", ".mov", ".avi", ".mkv", ".webm"], "video"),
        **dict.fromkeys([".jpg", ".jpeg", ".png", ".gif", ".webp"], "image"),
    }


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("call.wav", "audio"),
        ("CALL.WAV", "audio"),
        ("clip.Mp4", "video"),
        ("photo.JPEG", "image"),
        ("archive.tar.gz", None),
        ("C:\\Users\\me\\voice.flac", "audio"),
        ("notes.wav.txt", None),
        ("wav", None),
    ],
)
def test_media_type_for_uses_the_extension_case_insensitively(
    filename: str, expected: MediaType | None
) -> None:
    assert media_type_for(filename) == expected


def _image(make: Callable[[], bytes]) -> Callable[[float], bytes]:
    return lambda _seconds: make()


# extension -> (generator taking seconds, media type, container reported)
KINDS: dict[str, tuple[Callable[[float], bytes], MediaType, str]] = {
    "wav": (media.wav_bytes, "audio", "wav"),
    "mp3": (media.mp3_bytes, "audio", "mp3"),
    "m4a": (lambda s: media.encode("m4a", s), "audio", "mp4"),
    "ogg": (lambda s: media.encode("ogg", s), "audio", "ogg"),
    "aac": (lambda s: media.encode("aac", s), "audio", "aac"),
    "flac": (lambda s: media.encode("flac", s), "audio", "flac"),
    "mp4": (media.mp4_bytes, "video", "mp4"),
    "mov": (lambda s: media.encode("mov", s), "video", "mp4"),
    "avi": (lambda s: media.encode("avi", s), "video", "avi"),
    "mkv": (lambda s: media.encode("mkv", s), "video", "matroska"),
    "webm": (lambda s: media.encode("webm", s), "video", "webm"),
    "jpg": (_image(media.jpeg_bytes), "image", "jpeg"),
    "jpeg": (_image(media.jpeg_bytes), "image", "jpeg"),
    "png": (_image(media.png_bytes), "image", "png"),
    "gif": (_image(media.gif_bytes), "image", "gif"),
    "webp": (_image(media.webp_bytes), "image", "webp"),
}


def test_every_allowed_extension_has_a_case() -> None:
    assert {f".{ext}" for ext in KINDS} == set(ALLOWED)


@pytest.mark.parametrize("ext", list(KINDS))
def test_each_allowed_type_probes_with_its_media_type_and_duration(
    tmp_path: Path, ext: str
) -> None:
    make, media_type, container = KINDS[ext]
    probed = _probe(tmp_path, f"sample.{ext}", make(2.0))
    assert probed.media_type == media_type
    assert probed.container == container
    if media_type == "image":
        assert probed.duration_seconds is None
        assert probed.codec is None
    else:
        # encoder priming and frame granularity add a little; never the wrong magnitude
        assert probed.duration_seconds == pytest.approx(2.0, abs=0.12)
        assert probed.codec


@pytest.mark.parametrize("seconds", [0.5, 3.25])
@pytest.mark.parametrize("ext", ["wav", "mp4", "mkv", "flac", "mp3"])
def test_duration_follows_the_content(tmp_path: Path, ext: str, seconds: float) -> None:
    probed = _probe(tmp_path, f"x.{ext}", KINDS[ext][0](seconds))
    assert probed.duration_seconds == pytest.approx(seconds, abs=0.12)


def test_a_wav_that_is_really_a_png_is_refused_saying_what_it_is(tmp_path: Path) -> None:
    exc = _rejected(tmp_path, "voice.wav", media.png_bytes())
    assert exc.reason == "content is a PNG image, not .wav audio"


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("clip.mp4", media.wav_bytes(), "content is WAV audio, not .mp4 video"),
        ("photo.png", media.mp4_bytes(), "content is an MP4/QuickTime file, not a .png image"),
        ("song.mp3", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "content is a PDF document, not .mp3 audio"),
        ("a.mp4", b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", "content is an M3U playlist"),
        ("a.wav", b"hello, I am a text file\n", "content is a text file, not .wav audio"),
        ("a.jpg", b"PK\x03\x04" + bytes(40), "content is a ZIP archive, not a .jpg image"),
    ],
)
def test_content_of_another_kind_is_refused_by_its_magic(
    tmp_path: Path, filename: str, data: bytes, reason: str
) -> None:
    assert _rejected(tmp_path, filename, data).reason.startswith(reason)


@pytest.mark.parametrize(
    ("filename", "data", "container"),
    [
        ("photo.jpg", media.png_bytes(), "png"),
        ("voice.wav", media.mp3_bytes(), "mp3"),
        ("clip.mkv", media.mp4_bytes(), "mp4"),
    ],
)
def test_another_format_of_the_same_media_type_is_accepted(
    tmp_path: Path, filename: str, data: bytes, container: str
) -> None:
    probed = _probe(tmp_path, filename, data)
    assert probed.media_type == media_type_for(filename)
    assert probed.container == container


@pytest.mark.parametrize("ext", ["mp4", "webm", "mkv"])
def test_a_video_container_holding_only_audio_is_audio(tmp_path: Path, ext: str) -> None:
    probed = _probe(tmp_path, f"recording.{ext}", media.encode(ext, 1.5, with_video=False))
    assert probed.media_type == "audio"
    assert probed.duration_seconds == pytest.approx(1.5, abs=0.05)


def test_a_silent_video_is_video(tmp_path: Path) -> None:
    probed = _probe(tmp_path, "silent.mp4", media.mp4_bytes(1.0, with_audio=False))
    assert (probed.media_type, probed.codec) == ("video", "h264")


def test_audio_extension_needs_an_audio_stream(tmp_path: Path) -> None:
    exc = _rejected(tmp_path, "song.m4a", media.mp4_bytes(1.0, with_audio=False))
    assert exc.reason == "no audio stream"


def test_an_audio_extension_holding_video_too_is_audio(tmp_path: Path) -> None:
    probed = _probe(tmp_path, "song.m4a", media.mp4_bytes(1.0))
    assert probed.media_type == "audio"


@pytest.mark.parametrize(
    ("filename", "make"),
    [
        ("cut.wav", lambda: media.wav_bytes(3.0)),
        ("cut.mp4", lambda: media.mp4_bytes(3.0, faststart=True)),  # index first: packets lost
        ("cut.mov", lambda: media.mp4_bytes(3.0)),  # index last: the index is lost
        ("cut.m4a", lambda: media.encode("m4a", 3.0)),
        ("cut.mkv", lambda: media.encode("mkv", 3.0)),
        ("cut.webm", lambda: media.encode("webm", 3.0)),
        ("cut.avi", lambda: media.encode("avi", 3.0)),
        ("cut.flac", lambda: media.encode("flac", 3.0)),
        ("cut.png", lambda: media.png_bytes(256, 256)),
        ("cut.jpg", lambda: media.jpeg_bytes(256, 256)),
        ("cut.gif", lambda: media.gif_bytes(128, 128, frames=6)),
        ("cut.webp", lambda: media.webp_bytes(256, 256)),
    ],
)
def test_a_truncated_file_is_refused(
    tmp_path: Path, filename: str, make: Callable[[], bytes]
) -> None:
    whole = make()
    assert _probe(tmp_path, filename, whole)  # the uncut file passes
    exc = _rejected(tmp_path, filename, whole[: len(whole) // 2])
    assert exc.reason.startswith("truncated or corrupt")


def test_a_cut_wav_says_how_much_is_missing(tmp_path: Path) -> None:
    whole = media.wav_bytes(3.0)
    exc = _rejected(tmp_path, "a.wav", whole[: len(whole) // 3])
    assert exc.reason == "truncated or corrupt: media ends at 1.00 s but the file declares 3.00 s"


@pytest.mark.parametrize(
    ("filename", "make"),
    [
        ("a.mp4", lambda: media.encode("mp4", 1.0, with_audio=False, faststart=True)),
        ("a.m4a", lambda: media.encode("m4a", 1.0, faststart=True)),
    ],
)
def test_intact_structure_with_garbage_payload_does_not_decode(
    tmp_path: Path, filename: str, make: Callable[[], bytes]
) -> None:
    data = bytearray(make())
    at = data.find(b"mdat") + 4  # the index comes first: demuxing works, decoding cannot
    data[at:] = bytes(len(data) - at)
    exc = _rejected(tmp_path, filename, bytes(data))
    assert exc.reason.startswith("truncated or corrupt: the ")
    assert "stream does not decode" in exc.reason


def test_a_video_track_without_frames_does_not_decode(tmp_path: Path) -> None:
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as container:
        video = container.add_stream("libx264", rate=10)
        video.width = video.height = 64
        audio = container.add_stream("libopus", rate=48000)
        assert isinstance(audio, av.AudioStream)
        audio.layout = "mono"
        frame = av.AudioFrame(format="s16", layout="mono", samples=48000)
        frame.planes[0].update(media.pcm_tone(1.0, 48000))
        frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    exc = _rejected(tmp_path, "a.mkv", out.getvalue())
    assert exc.reason == "truncated or corrupt: the video stream does not decode"


@pytest.mark.parametrize("ext", ["mp3", "aac", "ogg"])
def test_streams_without_a_stated_duration_are_measured_by_their_packets(
    tmp_path: Path, ext: str
) -> None:
    """A cut MP3/AAC/Ogg is a shorter stream: billed for what it holds, not a bit-rate guess."""
    whole = KINDS[ext][0](4.0)
    probed = _probe(tmp_path, f"a.{ext}", whole[: len(whole) // 2])
    assert probed.duration_seconds is not None
    assert 1.0 < probed.duration_seconds < 3.0


def test_a_header_cannot_under_declare_the_duration(tmp_path: Path) -> None:
    data = bytearray(media.encode("mkv", 3.0))
    at = data.find(b"\x44\x89\x88")  # Matroska Duration, an 8-byte float in milliseconds
    assert struct.unpack(">d", data[at + 3 : at + 11]) == (3008.0,)
    data[at + 3 : at + 11] = struct.pack(">d", 500.0)
    probed = _probe(tmp_path, "cheap.mkv", bytes(data))
    assert probed.duration_seconds == pytest.approx(3.0, abs=0.05)


def test_a_streamed_wav_with_unknown_sizes_is_measured(tmp_path: Path) -> None:
    data = bytearray(media.wav_bytes(2.0))
    data[4:8] = b"\xff\xff\xff\xff"
    at = data.find(b"data")
    data[at + 4 : at + 8] = b"\xff\xff\xff\xff"
    assert _probe(tmp_path, "live.wav", bytes(data)).duration_seconds == pytest.approx(2.0)


@pytest.mark.parametrize("filename", ["a.wav", "a.mp3", "a.aac", "a.mp4", "a.png", "a.jpg"])
def test_random_bytes_are_refused(tmp_path: Path, filename: str) -> None:
    data = random.Random(filename).randbytes(8192)
    assert "unrecognised" in _rejected(tmp_path, filename, data).reason


@pytest.mark.parametrize(
    ("filename", "magic"),
    [
        ("a.wav", b"RIFF\x00\x10\x00\x00WAVE"),
        ("a.mp4", b"\x00\x00\x00\x18ftypmp42"),
        ("a.mkv", b"\x1a\x45\xdf\xa3"),
        ("a.ogg", b"OggS"),
        ("a.flac", b"fLaC"),
        ("a.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x10"),
        ("a.aac", b"\xff\xf1\x50\x80"),
        ("a.png", b"\x89PNG\r\n\x1a\n"),
        ("a.jpg", b"\xff\xd8\xff\xe0"),
        ("a.gif", b"GIF89a"),
    ],
)
def test_random_bytes_behind_a_right_signature_fail_the_real_probe(
    tmp_path: Path, filename: str, magic: bytes
) -> None:
    data = magic + random.Random(filename).randbytes(8192)
    assert _rejected(tmp_path, filename, data).reason.startswith("truncated or corrupt")


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("setup.exe", "extension .exe is not allowed"),
        ("bundle.zip", "extension .zip is not allowed"),
        ("voice.WAV.exe", "extension .exe is not allowed"),
        ("README", "file has no extension"),
    ],
)
def test_disallowed_extensions_are_refused_before_reading(
    tmp_path: Path, filename: str, reason: str
) -> None:
    assert _rejected(tmp_path, filename, media.wav_bytes()).reason == reason


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    assert _rejected(tmp_path, "a.mp4", b"").reason == "file is empty"


def _png_declaring(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header claims another size (CRC fixed, so only the size lies)."""
    data = bytearray(media.png_bytes(1, 1))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


# the probe silences this warning process-wide; pytest restores warning filters per test
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    limit = f"at most {MAX_IMAGE_PIXELS:,} pixels are accepted"
    exc = _rejected(tmp_path, "bomb.png", _png_declaring(100_000, 100_000))
    assert exc.reason == f"image is too large; {limit}"
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    exc = _rejected(tmp_path, "big.png", _png_declaring(side, side))
    assert exc.reason == f"image is {side}x{side} pixels; {limit}"


def test_a_png_lying_about_its_size_within_limits_is_corrupt(tmp_path: Path) -> None:
    exc = _rejected(tmp_path, "liar.png", _png_declaring(300, 200))
    assert exc.reason.startswith("truncated or corrupt")


def test_errors_never_carry_the_servers_path(tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(64)
    exc = _rejected(tmp_path, "a.png", data)
    assert str(tmp_path) not in str(exc)
    exc = _rejected(tmp_path, "a.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    assert str(tmp_path) not in str(exc)
