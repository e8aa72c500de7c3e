"""Is an uploaded file the media its name claims? Sniff its magic bytes, then really probe it.

The extension decides eligibility and the media type (API.md, "Allowed media"). The content must
then be a format of that media type, recognised by its magic bytes. The sniffed format, never
the name, picks the decoder: ffmpeg is opened with that one demuxer and Pillow with that one
plugin, so a playlist or a PostScript file renamed to .mp4 or .png never reaches a guessing
parser. Decisions:

- A format of the same media type under another extension is accepted (a PNG named .jpg, an
  MP3 named .wav): clients rename files, and ffmpeg and Pillow do not care. A different media
  type is rejected with what the content really is ("content is a PNG image, not .wav audio").
- Audio extensions need an audio stream; the file is audio even if the container also holds
  video (a .m4a that carries a video track too is analysed, and billed, for its sound).
- Video extensions need a video stream (cover art does not count) - except that an MP4,
  Matroska or WebM file holding only audio is accepted as *audio*: that is what browsers record
  as audio/webm, and the detect is billed and analysed as the audio it is.
- The duration comes from the container and is checked against the packets: demuxing (not
  decoding) every packet proves the file is not cut short of what its header declares, and the
  reported duration is never less than what the packets cover, so a header cannot under-declare
  a file to make it cheaper. Raw MP3 and ADTS AAC streams state no duration (ffmpeg estimates
  one from the bit rate), so for them the packets alone give it.
- A cut is noticed when the packets end more than max(0.5 s, 2 %) short of the declared
  duration. ffmpeg clamps WAV and AVI durations to the bytes present, so for those the headers'
  own figures (data size / byte rate; frame counts) are read. Ogg, MP3 and AAC state nothing
  a cut could contradict: cut, they are simply shorter, and measured as such.
- The first few frames of the primary stream (video for video, else audio) are decoded to prove
  the codec data is real; images are verified and fully decoded, within a pixel budget.

`probe_file` only ever raises MediaRejectedError for bad input, with a reason fit for a client.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Final

import av
import av.error
import av.logging
from av.container import InputContainer
from av.stream import Disposition, Stream
from PIL import Image, ImageSequence, UnidentifiedImageError

from contracts.events import MediaType

ALLOWED: Final[Mapping[str, MediaType]] = MappingProxyType(
    {
        **dict.fromkeys((".wav", ".mp3", ".m4a", ".ogg", ".aac", ".flac"), "audio"),
        **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".webm"), "video"),
        **dict.fromkeys((".jpg", ".jpeg", ".png", ".gif", ".webp"), "image"),
    }
)

# Images above this many pixels are refused before they are decoded (Pillow's own default
# warning threshold, about 9459 x 9459; a fully loaded RGB image of that size is ~270 MB).
MAX_IMAGE_PIXELS: Final = 89_478_485
# Frames of an animated GIF or WebP are decoded (to find truncation) up to this many pixels.
ANIMATION_PIXEL_BUDGET: Final = MAX_IMAGE_PIXELS
# Packets may end this far short of the declared duration: max(absolute seconds, fraction).
TRUNCATION_SLACK_SECONDS: Final = 0.5
TRUNCATION_SLACK_FRACTION: Final = 0.02
# Decode this many frames of the primary stream, feeding the decoder at most this many packets.
DECODE_FRAMES: Final = 3
DECODE_MAX_PACKETS: Final = 256

_HEAD_BYTES = 4096
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)

# ffmpeg's log goes nowhere (PyAV's default, stated here so nobody turns it on by accident for
# the intake: a hostile file can make ffmpeg log a line per packet). Pillow's bomb warning is
# replaced by our own limit, which is checked before anything is decoded.
av.logging.set_level(None)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Probed:
    media_type: MediaType
    duration_seconds: float | None  # None for images
    container: str  # the sniffed format: wav, mp3, aac, flac, ogg, mp4, matroska, webm, avi, png…
    codec: str | None  # the primary stream's codec (None for images)


class MediaRejectedError(Exception):
    """The file is not acceptable media; `reason` is written for the API client."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


def extension(filename: str) -> str:
    """The lower-case extension of the last path segment ('' if none); Windows paths too."""
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def media_type_for(filename: str) -> MediaType | None:
    return ALLOWED.get(extension(filename))


def probe_file(path: Path, filename: str) -> Probed:
    """Check that `path`, uploaded as `filename`, is real media of the type its extension names."""
    ext = extension(filename)
    wanted = ALLOWED.get(ext)
    if wanted is None:
        raise MediaRejectedError(
            filename, f"extension {ext} is not allowed" if ext else "file has no extension"
        )
    try:
        fmt = _sniff(path)
    except OSError as exc:
        raise MediaRejectedError(filename, f"unreadable: {exc.strerror or exc}") from exc
    if fmt is None or wanted not in fmt.media_types:
        raise MediaRejectedError(filename, _mismatch(fmt, ext, wanted))
    try:
        if fmt.pil is not None:
            return _probe_image(path, fmt)
        return _probe_av(path, fmt, wanted)
    except _RejectedError as exc:
        raise MediaRejectedError(filename, exc.reason) from exc


class _RejectedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- sniffing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    key: str  # reported as Probed.container
    description: str  # completes "content is …"
    media_types: frozenset[MediaType] = frozenset()
    demuxer: str | None = None  # the one ffmpeg demuxer allowed to read it
    pil: str | None = None  # the one Pillow plugin allowed to read it
    states_duration: bool = True  # False: ffmpeg's duration is a bit-rate estimate
    options: tuple[tuple[str, str], ...] = ()  # ffmpeg demuxer options


_AUDIO: frozenset[MediaType] = frozenset({"audio"})
_AV: frozenset[MediaType] = frozenset({"audio", "video"})
_VIDEO: frozenset[MediaType] = frozenset({"video"})
_IMAGE: frozenset[MediaType] = frozenset({"image"})

# 64 KiB PCM packets and a small probe keep a 10 MB WAV at a few ms (4 KiB packets cost 15 ms).
_WAV = _Format(
    "wav",
    "WAV audio",
    _AUDIO,
    demuxer="wav",
    options=(("max_size", "65536"), ("probesize", "65536")),
)
_MP3 = _Format("mp3", "MP3 audio", _AUDIO, demuxer="mp3", states_duration=False)
_ADTS = _Format("aac", "AAC audio", _AUDIO, demuxer="aac", states_duration=False)
_FLAC = _Format("flac", "FLAC audio", _AUDIO, demuxer="flac")
_OGG = _Format("ogg", "Ogg media", _AUDIO, demuxer="ogg")
_MP4 = _Format("mp4", "an MP4/QuickTime file", _AV, demuxer="mov")
_MATROSKA = _Format("matroska", "a Matroska file", _AV, demuxer="matroska")
_WEBM = _Format("webm", "a WebM file", _AV, demuxer="matroska")
_AVI = _Format("avi", "an AVI video", _VIDEO, demuxer="avi")
_PNG = _Format("png", "a PNG image", _IMAGE, pil="PNG")
_JPEG = _Format("jpeg", "a JPEG image", _IMAGE, pil="JPEG")
_GIF = _Format("gif", "a GIF image", _IMAGE, pil="GIF")
_WEBP = _Format("webp", "a WebP image", _IMAGE, pil="WEBP")
_EMPTY = _Format("empty", "an empty file")
# WAVE format tags whose byte rate is exact: PCM, IEEE float, A-law, mu-law, extensible.
_PCM_TAGS = frozenset({0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE})

# Recognised only to say what a rejected file really is.
_OTHERS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"#EXTM3U", "an M3U playlist"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO image"),
)


def _sniff(path: Path) -> _Format | None:
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
        if head.startswith(b"ID3") and len(head) >= 10:
            # an ID3v2 tag precedes MP3 (sometimes AAC or FLAC): look past it
            size = _syncsafe(head[6:10]) + 10 + (10 if head[5] & 0x10 else 0)
            f.seek(size)
            found = _sniff_head(f.read(16))
            return found if found in (_MP3, _ADTS, _FLAC) else _MP3  # ffmpeg will judge
    return _sniff_head(head) if head else _EMPTY


def _sniff_head(head: bytes) -> _Format | None:
    riff = head[8:12] if head[:4] in (b"RIFF", b"RF64", b"BW64") else b""
    box = head[4:8]
    if riff == b"WAVE":
        return _WAV
    if riff == b"AVI ":
        return _AVI
    if riff == b"WEBP" and head[:4] == b"RIFF":
        return _WEBP
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if head.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _GIF
    if head.startswith(b"fLaC"):
        return _FLAC
    if head.startswith(b"OggS"):
        return _OGG
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _WEBM if b"webm" in head[:64] else _MATROSKA
    if box == b"ftyp":
        if head[8:12] in _HEIF_BRANDS:
            return _Format("heif", "a HEIF/AVIF image")
        return _MP4
    if box in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return _MP4  # QuickTime without an ftyp box
    if len(head) >= 3 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return _ADTS
        layer, bitrate, rate = (head[1] >> 1) & 3, head[2] >> 4, (head[2] >> 2) & 3
        if head[1] & 0xE0 == 0xE0 and layer != 0 and bitrate != 0xF and rate != 3:
            return _MP3
    for magic, description in _OTHERS:
        if head.startswith(magic):
            return _Format(magic.hex(), description)
    if _looks_like_text(head):
        return _Format("text", "a text file")
    return None


def _syncsafe(b: bytes) -> int:
    return int(b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)


def _looks_like_text(head: bytes) -> bool:
    sample = head[:1024]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the sample's end
            return False
        text = sample[: exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def _mismatch(fmt: _Format | None, ext: str, wanted: MediaType) -> str:
    claimed = f"a {ext} image" if wanted == "image" else f"{ext} {wanted}"
    if fmt is None:
        return f"content is not {claimed} (unrecognised format)"
    if fmt is _EMPTY:
        return "file is empty"
    return f"content is {fmt.description}, not {claimed}"


# --- images -------------------------------------------------------------------------------

# What Pillow raises on hostile or broken input (its fuzzers see all of these).
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
               ZeroDivisionError, struct.error)  # fmt: skip


def _probe_image(path: Path, fmt: _Format) -> Probed:
    assert fmt.pil is not None
    try:
        with Image.open(path, formats=[fmt.pil]) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise _RejectedError(
                    f"image is {w}x{h} pixels; at most {MAX_IMAGE_PIXELS:,} pixels are accepted"
                )
            im.verify()
        # verify() leaves the image unusable and reads no pixel data for most formats: a full
        # decode on a fresh handle is what finds a truncated file. An animation is cut short
        # in its last frames, so frames are decoded too, up to a pixel budget.
        with Image.open(path, formats=[fmt.pil]) as im:
            budget = ANIMATION_PIXEL_BUDGET
            for frame in ImageSequence.Iterator(im):
                frame.load()
                budget -= w * h
                if budget <= 0:
                    break
    except UnidentifiedImageError as exc:
        raise _RejectedError(f"truncated or corrupt: not a readable {fmt.pil} image") from exc
    except Image.DecompressionBombError as exc:
        raise _RejectedError(  # Pillow's own limit (twice ours) fired while opening
            f"image is too large; at most {MAX_IMAGE_PIXELS:,} pixels are accepted"
        ) from exc
    except _PIL_ERRORS as exc:
        reason = str(exc).replace(str(path), "the file") or type(exc).__name__
        raise _RejectedError(f"truncated or corrupt: {reason}") from exc
    return Probed("image", None, fmt.key, None)


# --- audio and video ----------------------------------------------------------------------


def _probe_av(path: Path, fmt: _Format, wanted: MediaType) -> Probed:
    assert fmt.demuxer is not None
    try:
        # ffmpeg clamps a WAV's duration to the bytes present, which would hide a truncation
        stated = _wav_stated_seconds(path) if fmt is _WAV else None
        with av.open(
            str(path),
            "r",
            format=fmt.demuxer,
            container_options=dict(fmt.options),
            metadata_errors="replace",
        ) as container:
            return _inspect(container, fmt, wanted, stated)
    except av.error.FFmpegError as exc:
        raise _RejectedError(f"truncated or corrupt: {_ffmpeg_reason(exc)}") from exc
    except (OSError, ValueError, RuntimeError, EOFError) as exc:
        raise _RejectedError(f"truncated or corrupt: {type(exc).__name__}") from exc


def _ffmpeg_reason(exc: av.error.FFmpegError) -> str:
    # str(exc) carries the server's path; strerror is ffmpeg's own words
    return (exc.strerror or type(exc).__name__).rstrip(".").lower()


def _inspect(
    container: InputContainer, fmt: _Format, wanted: MediaType, stated: float | None
) -> Probed:
    streams = [
        s
        for s in container.streams
        if s.type in ("audio", "video") and not s.disposition & Disposition.attached_pic
    ]
    audio = [s for s in streams if s.type == "audio"]
    video = [s for s in streams if s.type == "video"]
    media_type: MediaType
    if wanted == "audio":
        if not audio:
            raise _RejectedError("no audio stream")
        media_type, primary = "audio", audio[0]
    elif video:
        media_type, primary = "video", video[0]
    elif audio and fmt is not _AVI:
        media_type, primary = "audio", audio[0]  # audio-only MP4/Matroska/WebM
    else:
        raise _RejectedError("no video stream")

    first, last = _scan(container, streams, primary)
    origin = container.start_time / 1e6 if container.start_time is not None else first
    covered = last - origin
    declared = stated or _declared_seconds(container, fmt, video)
    if declared is not None:
        slack = max(TRUNCATION_SLACK_SECONDS, TRUNCATION_SLACK_FRACTION * declared)
        if covered < declared - slack:
            raise _RejectedError(
                f"truncated or corrupt: media ends at {covered:.2f} s"
                f" but the file declares {declared:.2f} s"
            )
    duration = max(covered, declared or 0.0)
    if duration <= 0:
        raise _RejectedError(f"the {primary.type} stream has no duration")
    return Probed(media_type, round(duration, 3), fmt.key, _codec_name(primary))


def _declared_seconds(container: InputContainer, fmt: _Format, video: list[Stream]) -> float | None:
    """What the file says its duration is, where it says so (else None)."""
    if fmt is _AVI:
        # ffmpeg clamps an AVI's duration to the chunks present; the headers' frame counts
        # (one chunk per time-base unit for video) still tell what there should be
        counts = [float(s.frames * s.time_base) for s in video if s.frames and s.time_base]
        return max(counts, default=None)
    if not fmt.states_duration or not container.duration:
        return None
    return container.duration / 1e6


def _wav_stated_seconds(path: Path) -> float | None:
    """Data bytes over byte rate, from a PCM WAV's own chunks; None if unknown or not PCM.

    Streaming writers leave the data size 0 or 0xFFFFFFFF (unknown); RF64/BW64 keep the real
    size in a ds64 chunk.
    """
    rate = size = large = None
    with path.open("rb") as f:
        f.seek(12)
        for _ in range(64):
            header = f.read(8)
            if len(header) < 8:
                return None
            chunk, length = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"data":
                size = large if length == 0xFFFFFFFF and large is not None else length
                break
            body = f.read(min(length, 28))
            if chunk == b"ds64" and len(body) >= 16:
                large = int.from_bytes(body[8:16], "little")
            elif chunk == b"fmt " and len(body) >= 12:
                tag = int.from_bytes(body[:2], "little")
                rate = int.from_bytes(body[8:12], "little") if tag in _PCM_TAGS else 0
            f.seek(length - len(body) + (length & 1), 1)
    if not rate or size in (None, 0, 0xFFFFFFFF):
        return None
    return size / rate


def _scan(container: InputContainer, streams: list[Stream], primary: Stream) -> tuple[float, float]:
    """Demux every packet (first start, last end, in seconds); decode the primary's first frames.

    The per-packet work stays in integer ticks: this loop is most of the probe's time.
    """
    bounds: dict[int, list[int]] = {}  # stream index -> [first start, last end] in its ticks
    frames = fed = 0
    decoding = True
    for packet in container.demux(streams):
        index = packet.stream_index
        ts = packet.pts
        if ts is None:
            ts = packet.dts
        if ts is not None:
            end = ts + (packet.duration or 0)
            seen = bounds.get(index)
            if seen is None:
                bounds[index] = [ts, end]
            else:
                seen[0] = min(seen[0], ts)
                seen[1] = max(seen[1], end)
        if decoding and index == primary.index:
            try:
                frames += len(packet.decode())
            except av.error.FFmpegError as exc:
                raise _RejectedError(
                    f"truncated or corrupt: the {primary.type} stream does not decode"
                    f" ({_ffmpeg_reason(exc)})"
                ) from exc
            fed += 1
            if frames >= DECODE_FRAMES or fed >= DECODE_MAX_PACKETS:
                if frames == 0:
                    break  # so many packets and not one frame: rejected below
                decoding = False
    if frames == 0:
        raise _RejectedError(f"truncated or corrupt: the {primary.type} stream does not decode")
    seconds = [
        (float(first * tb), float(last * tb))
        for index, (first, last) in bounds.items()
        if (tb := container.streams[index].time_base) is not None
    ]
    if not seconds:
        raise _RejectedError(f"the {primary.type} stream has no timestamps")
    return min(a for a, _ in seconds), max(b for _, b in seconds)


def _codec_name(stream: Stream) -> str | None:
    try:
        return stream.codec.canonical_name
    except (av.error.FFmpegError, ValueError, AttributeError):
        return None
