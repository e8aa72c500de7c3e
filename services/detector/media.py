"""Decoding media for analysis with PyAV, streaming, in bounded memory.

Audio comes out as 16 kHz mono float32 windows of `frame_length` seconds, decoded and resampled
as the file is read: only one window (plus one decoded frame) is in memory, however long the
file. Video comes out as RGB frames sampled at a fixed rate (`VIDEO_FPS`, documented in
docs/detector.md). `start_region` / `end_region` / `max_video_secs` bound what is read.

Corrupt or unsupported input raises MediaError with a message fit for the detect's
`error_message`; nothing else escapes for bad input.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
VIDEO_FPS = 1.0  # frames analysed per second of video
Samples = npt.NDArray[np.float32]
Frame = npt.NDArray[np.uint8]


class MediaError(Exception):
    """The file cannot be analysed; the message is shown to the client as is."""


@dataclass(frozen=True)
class Window:
    start: float  # seconds from the start of the file
    end: float
    samples: Samples  # 16 kHz mono float32 in [-1, 1]


@dataclass(frozen=True)
class Region:
    """What to analyse, in seconds of the file (API.md start_region / end_region)."""

    start: float = 0.0
    end: float | None = None


def region_of(options: dict[str, Any], media_type: str = "audio") -> Region:
    """What to analyse; for video, `max_video_secs` caps it as intake billed it."""
    start = float(options.get("start_region") or 0.0)
    end = options.get("end_region")
    cap = options.get("max_video_secs")
    if media_type == "video" and cap is not None:
        end = start + float(cap) if end is None else min(float(end), start + float(cap))
    return Region(start, None if end is None else float(end))


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open media: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(": '/")[0][:200]  # never show a server path


def audio_windows(path: Path, frame_length: float, region: Region = Region()) -> Iterator[Window]:
    """16 kHz mono windows of `frame_length` s over `region`; the last one may be shorter.

    Raises MediaError when the file has no audio stream or cannot be decoded.
    """
    size = round(frame_length * SAMPLE_RATE)
    first = round(region.start * SAMPLE_RATE)
    last = None if region.end is None else round(region.end * SAMPLE_RATE)
    buffer = np.zeros(0, dtype=np.float32)
    position = 0  # samples decoded so far (16 kHz), from the start of the file
    emitted = first
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            if region.start > 0 and stream.time_base is not None:  # skip to near the region
                container.seek(int(region.start / stream.time_base), stream=stream)
                position = -1  # unknown until the first frame says where it is
            frames: Iterator[av.AudioFrame | None] = iter(container.decode(stream))
            for frame in itertools.chain(frames, [None]):  # None flushes the resampler
                if position < 0 and frame is not None:
                    position = round((frame.time or 0.0) * SAMPLE_RATE)
                for resampled in resampler.resample(frame):
                    chunk = resampled.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    lo = max(first - position, 0)
                    hi = len(chunk) if last is None else max(min(last - position, len(chunk)), 0)
                    position += len(chunk)
                    if lo < hi:
                        buffer = np.concatenate((buffer, chunk[lo:hi]))
                    while len(buffer) >= size:
                        yield Window(emitted / SAMPLE_RATE, (emitted + size) / SAMPLE_RATE,
                                     buffer[:size].copy())  # fmt: skip
                        buffer = buffer[size:]
                        emitted += size
                if last is not None and position >= last:
                    break
        except av.error.FFmpegError as exc:
            raise MediaError(f"audio cannot be decoded: {_reason(exc)}") from exc
    if len(buffer):
        yield Window(emitted / SAMPLE_RATE, (emitted + len(buffer)) / SAMPLE_RATE, buffer)


def has_audio(path: Path) -> bool:
    with _open(path) as container:
        return bool(container.streams.audio)


def video_frames(
    path: Path, region: Region = Region(), fps: float = VIDEO_FPS
) -> Iterator[tuple[float, Frame]]:
    """(timestamp, RGB frame) about every 1/fps seconds of `region`."""
    step = 1.0 / fps
    next_at = region.start
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                t = frame.time or 0.0
                if region.end is not None and t >= region.end:
                    break
                if t + 1e-6 < next_at:
                    continue
                rgb: Frame = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                yield t, rgb
                next_at = t + step
        except av.error.FFmpegError as exc:
            raise MediaError(f"video cannot be decoded: {_reason(exc)}") from exc
