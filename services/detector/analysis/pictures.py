"""What a visualization needs, gathered in bounded memory while a file is analysed, and the
write of the PNG (render.py draws it).

- Envelope: min and max of the audio per 20 ms, so a waveform can be drawn at any width
  (an hour of audio is 180,000 pairs, 1.4 MB).
- FrameStrip: thumbnails of the sampled video frames, at most `capacity` of them, evenly
  spread however long the video: when full it drops every other one and keeps every second
  frame from then on.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

ENVELOPE_STEP = 320  # samples at 16 kHz per envelope point (20 ms)
MAX_COLUMNS = 2000  # what render.audio_png draws at most
THUMBNAIL_WIDTH = 160


class Envelope:
    def __init__(self) -> None:
        self._points: list[npt.NDArray[np.float32]] = []

    def add(self, samples: npt.NDArray[np.float32]) -> None:
        usable = len(samples) // ENVELOPE_STEP * ENVELOPE_STEP
        if usable == 0:
            return
        blocks = samples[:usable].reshape(-1, ENVELOPE_STEP)
        self._points.append(np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=1))

    def columns(self) -> npt.NDArray[np.float32]:
        """[N <= MAX_COLUMNS, 2] (min, max) per column."""
        if not self._points:
            return np.zeros((0, 2), dtype=np.float32)
        points = np.concatenate(self._points)
        per = -(-len(points) // MAX_COLUMNS)  # ceil: points per column
        pad = (-len(points)) % per
        if pad:
            points = np.concatenate([points, np.repeat(points[-1:], pad, axis=0)])
        grouped = points.reshape(-1, per, 2)
        merged = np.stack([grouped[:, :, 0].min(axis=1), grouped[:, :, 1].max(axis=1)], axis=1)
        return merged.astype(np.float32)


@dataclass
class FrameStrip:
    capacity: int = 48
    stride: int = 1
    seen: int = 0
    frames: list[tuple[float, Image.Image, float, str, dict[str, int] | None]] = field(
        default_factory=list
    )

    def add(self, timestamp: float, frame: Image.Image, score: float, label: str, box: Any) -> None:
        index, self.seen = self.seen, self.seen + 1
        if index % self.stride:
            return
        scale = THUMBNAIL_WIDTH / frame.width
        thumbnail = frame.resize((THUMBNAIL_WIDTH, max(1, round(frame.height * scale))))
        scaled = None if box is None else {k: round(v * scale) for k, v in box.items()}
        self.frames.append((timestamp, thumbnail, score, label, scaled))
        if len(self.frames) >= self.capacity:
            self.frames = self.frames[::2]
            self.stride *= 2


def write_png(path: Path, data: bytes) -> None:
    """Atomically: a reader sees the whole PNG or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)
