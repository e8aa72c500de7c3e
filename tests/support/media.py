"""Small, real, deterministic media for tests: a tone, a gradient, a clip, an archive.

Everything is generated (no fixtures on disk) and nothing is random, so a failing probe test can
be reproduced byte for byte. Audio and video are encoded with PyAV's bundled ffmpeg.
"""

from __future__ import annotations

import io
import math
import tempfile
import wave
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def pcm_tone(seconds: float, rate: int, freq: float = 440.0) -> bytes:
    """Mono signed 16-bit PCM of a sine tone; one second is computed and then repeated."""
    block = array(
        "h", (int(12000 * math.sin(2 * math.pi * freq * n / rate)) for n in range(rate))
    ).tobytes()
    need = int(seconds * rate) * 2
    return (block * (need // len(block) + 1))[:need]


def wav_bytes(seconds: float = 1.0, rate: int = 16000, freq: float = 440.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm_tone(seconds, rate, freq))
    return out.getvalue()


def _gradient(w: int, h: int, shift: int = 0, *, alpha: bool = False) -> bytes:
    """RGB (or RGBA) bytes of a diagonal gradient; `shift` moves it, for frames that differ."""
    extra = (255,) if alpha else ()
    return bytes(
        v
        for y in range(h)
        for x in range(w)
        for v in ((x * 4 + shift) % 256, (y * 5) % 256, (x + y + shift * 3) % 256, *extra)
    )


def image(w: int = 64, h: int = 48) -> Image.Image:
    return Image.frombytes("RGB", (w, h), _gradient(w, h))


def _save(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def png_bytes(w: int = 64, h: int = 48) -> bytes:
    return _save(image(w, h), "PNG")


def jpeg_bytes(w: int = 64, h: int = 48, quality: int = 85) -> bytes:
    return _save(image(w, h), "JPEG", quality=quality)


def webp_bytes(w: int = 64, h: int = 48) -> bytes:
    return _save(image(w, h), "WEBP", quality=80)


def gif_bytes(w: int = 64, h: int = 48, frames: int = 3) -> bytes:
    """An animated GIF (still an image to the API)."""
    seq = [Image.frombytes("RGB", (w, h), _gradient(w, h, 16 * i)) for i in range(frames)]
    return _save(seq[0], "GIF", save_all=True, append_images=seq[1:], duration=100, loop=0)


# (container format, video codec, audio codec, extra muxer options) per extension.
_CONTAINERS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "mp4": ("mp4", "libx264", "aac", {}),
    "mov": ("mov", "libx264", "aac", {}),
    "avi": ("avi", "mpeg4", "libmp3lame", {}),
    "mkv": ("matroska", "libx264", "libopus", {}),
    "webm": ("webm", "libvpx", "libopus", {}),
    "m4a": ("ipod", "", "aac", {}),
    "mp3": ("mp3", "", "libmp3lame", {}),
    "aac": ("adts", "", "aac", {}),
    "ogg": ("ogg", "", "libopus", {}),
    "flac": ("flac", "", "flac", {}),
}


def encode(
    ext: str,
    seconds: float = 1.0,
    *,
    with_video: bool | None = None,
    with_audio: bool = True,
    size: tuple[int, int] = (64, 64),
    fps: int = 10,
    rate: int = 48000,
    faststart: bool = False,
) -> bytes:
    """Encode a tone and/or a moving gradient into the container of `ext` (see _CONTAINERS).

    `with_video` defaults to whether the extension is a video one; an mp4/mkv/webm can be made
    audio-only or silent to test how the probe treats them. `faststart` puts an MP4's index
    first (as web-ready files have it), so that cutting the file loses packets, not the index.
    """
    video = bool(_CONTAINERS[ext][1]) if with_video is None else with_video
    clip = _Clip(ext, seconds, video, with_audio, size, fps, rate)
    if faststart:
        # the muxer rereads its output to move the index to the front: needs a real file
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"clip.{ext}"
            clip.write(path, {"movflags": "+faststart"})
            return path.read_bytes()
    out = io.BytesIO()
    clip.write(out, {})
    return out.getvalue()


@dataclass(frozen=True)
class _Clip:
    ext: str
    seconds: float
    video: bool
    audio: bool
    size: tuple[int, int]
    fps: int
    rate: int

    def write(self, out: io.BytesIO | Path, extra: dict[str, str]) -> None:
        fmt, vcodec, acodec, options = _CONTAINERS[self.ext]
        with av.open(out, "w", format=fmt, options={**options, **extra}) as container:
            vstream = (
                container.add_stream(vcodec or "libx264", rate=self.fps) if self.video else None
            )
            astream = container.add_stream(acodec, rate=self.rate) if self.audio else None
            if isinstance(vstream, av.VideoStream):  # configure every stream before encoding
                vstream.width, vstream.height = self.size
                vstream.pix_fmt = "yuv420p"
            if isinstance(astream, av.AudioStream):
                astream.layout = "mono"
            if isinstance(vstream, av.VideoStream):
                for frame in self._video_frames():
                    container.mux(vstream.encode(frame))
                container.mux(vstream.encode(None))
            if isinstance(astream, av.AudioStream):
                for aframe in self._audio_frames():
                    container.mux(astream.encode(aframe))
                container.mux(astream.encode(None))

    def _video_frames(self) -> Iterator[av.VideoFrame]:
        w, h = self.size
        for i in range(round(self.seconds * self.fps)):
            rgba = av.VideoFrame.from_bytes(_gradient(w, h, 8 * i, alpha=True), w, h, "rgba")
            frame = rgba.reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, self.fps)
            yield frame

    def _audio_frames(self) -> Iterator[av.AudioFrame]:
        pcm = pcm_tone(self.seconds, self.rate)
        step = self.rate // 10 * 2  # 100 ms per frame; the encoder re-chunks as it needs
        for start in range(0, len(pcm), step):
            chunk = pcm[start : start + step]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
            frame.planes[0].update(chunk)
            frame.sample_rate = self.rate
            frame.pts = start // 2
            frame.time_base = Fraction(1, self.rate)
            yield frame


def mp4_bytes(seconds: float = 1.0, with_audio: bool = True, *, faststart: bool = False) -> bytes:
    return encode("mp4", seconds, with_audio=with_audio, faststart=faststart)


def mp3_bytes(seconds: float = 1.0) -> bytes:
    return encode("mp3", seconds)


def zip_bytes(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of `entries` in order, names kept verbatim (even unsafe ones), fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = compression
            zf.writestr(info, data)
    return out.getvalue()


DETECTOR_DATA = Path(__file__).parents[1] / "data" / "detector"
PHOTO = DETECTOR_DATA / "astronaut.jpg"  # a real photograph with one face (see its README)
SPEECH = DETECTOR_DATA / "speech_16k.wav"  # a real recording of one speaker
SPEECH2 = DETECTOR_DATA / "speech2_16k.wav"  # another recording of the same speaker


def photo_video(
    seconds: float,
    *,
    photo: Path = PHOTO,
    speech: Path | None = SPEECH,
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
) -> bytes:
    """An MP4 (H.264 + AAC) that slowly pans over a real photo, with real speech looped under it.

    The frames are a real photograph (camera pixels, recompressed), so an image model sees the
    kind of content it is meant for; the pan makes every sampled frame different.
    """
    w, h = size
    source = Image.open(photo).convert("RGB")
    scale = max(w / source.width, h / source.height) * 1.2
    big = source.resize((round(source.width * scale), round(source.height * scale)))
    slack_x, slack_y = big.width - w, big.height - h
    frames = round(seconds * fps)
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
        astream = container.add_stream("aac", rate=16000) if speech is not None else None
        if isinstance(astream, av.AudioStream):
            astream.layout = "mono"
        for i in range(frames):
            x = round(slack_x * i / max(frames - 1, 1))
            y = round(slack_y * i / max(frames - 1, 1))
            pixels = np.asarray(big.crop((x, y, x + w, y + h)))
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        if isinstance(astream, av.AudioStream) and speech is not None:
            looped = _looped_pcm(speech, seconds)
            total = len(looped)
            step = 1600
            for start in range(0, total, step):
                chunk = looped[start : start + step]
                aframe = av.AudioFrame(format="s16", layout="mono", samples=len(chunk))
                aframe.planes[0].update(chunk.tobytes())
                aframe.sample_rate = 16000
                aframe.pts = start
                aframe.time_base = Fraction(1, 16000)
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))
    return out.getvalue()


def _looped_pcm(source: Path, seconds: float) -> array[int]:
    """The 16 kHz 16-bit samples of `source`, repeated to `seconds`."""
    with wave.open(str(source), "rb") as w:
        pcm = array("h", w.readframes(w.getnframes()))
    total = round(seconds * 16_000)
    return (pcm * (total // len(pcm) + 1))[:total]


def looped_speech(seconds: float, source: Path = SPEECH) -> bytes:
    """A real 16 kHz recording repeated to `seconds`, as a WAV file's bytes."""
    looped = _looped_pcm(source, seconds)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(looped.tobytes())
    return out.getvalue()
