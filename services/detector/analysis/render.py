"""PNG pictures of a detection result, drawn with Pillow only: pure, no I/O, deterministic.

A score alone asks to be trusted; a picture shows where it came from. The same input always
gives the same bytes (no randomness, no timestamps, Pillow's built-in font), so a picture can
be cached, compared and tested.

- audio_png: the waveform, and under it each window's score as a bar against the threshold.
- image_png: the image under a blue→red heatmap of its tile scores, its face boxes and a caption.
- video_png: a grid of the sampled frames, each framed in its label's colour.

Colours by label, compared case-insensitively: fake = red, real = green, anything else
(inconclusive, unscored) = grey.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont

FAKE: RGB = (214, 48, 39)
REAL: RGB = (26, 152, 80)
GREY: RGB = (150, 150, 150)
INK: RGB = (30, 30, 30)
PAPER: RGB = (255, 255, 255)
COLD: RGB = (40, 90, 255)  # heatmap at score 0
HOT: RGB = (255, 30, 30)  # heatmap at score 1

AUDIO_SIZE = (1200, 400)
MAX_IMAGE_SIDE = 1024
MIN_IMAGE_SIDE = 320  # smaller images are enlarged so that boxes and captions stay readable
HEATMAP_ALPHA = 0.45
CAPTION_HEIGHT = 28
MAX_FRAMES = 24
FRAMES_PER_ROW = 8
THUMB_WIDTH = 160
MAX_THUMB_HEIGHT = 240
BORDER = 4
FONT_SIZE = 13


@cache
def _font() -> Font:
    """Pillow's built-in font: at FONT_SIZE when Pillow has FreeType, else its bitmap font."""
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (ImportError, OSError):
        return ImageFont.load_default()


def label_colour(label: str | None) -> RGB:
    key = (label or "").lower()
    return FAKE if key == "fake" else REAL if key == "real" else GREY


def heat_colour(score: float) -> RGB:
    s = min(max(score, 0.0), 1.0)
    r, g, b = (round(c0 + (c1 - c0) * s) for c0, c1 in zip(COLD, HOT, strict=True))
    return (r, g, b)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _text_width(draw: ImageDraw.ImageDraw, text: str) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=_font())
    return int(right - left)


def _dashed_hline(
    draw: ImageDraw.ImageDraw, x0: int, x1: int, y: int, fill: RGB, dash: int = 8, gap: int = 5
) -> None:
    for x in range(x0, x1, dash + gap):
        draw.line([(x, y), (min(x + dash, x1), y)], fill=fill, width=2)


# --- audio ----------------------------------------------------------------------------------

AUDIO_LEFT, AUDIO_RIGHT = 60, 20
WAVE_TOP, WAVE_BOTTOM = 34, 190
SCORE_TOP, SCORE_BOTTOM = 214, 360


def audio_png(
    envelope: npt.NDArray[np.float32],
    duration: float,
    segments: Sequence[Mapping[str, Any]],
    threshold: float,
) -> bytes:
    """Waveform envelope ([N, 2] min/max per column) above the per-window score timeline."""
    width, height = AUDIO_SIZE
    image = Image.new("RGB", AUDIO_SIZE, PAPER)
    draw = ImageDraw.Draw(image)
    span = duration if duration > 0 else 1.0
    x0, x1 = AUDIO_LEFT, width - AUDIO_RIGHT
    scored = [s for s in segments if s.get("score") is not None]
    title = (
        f"Audio: {duration:.1f} s, {len(segments)} windows ({len(scored)} scored), "
        f"threshold {threshold:.2f}"
    )
    draw.text((AUDIO_LEFT, 8), title, fill=INK, font=_font())
    _legend(draw, x1, 8)
    _waveform(draw, np.asarray(envelope, dtype=np.float32), x0, x1)
    _score_bars(draw, segments, span, threshold, x0, x1)
    _time_axis(draw, span, x0, x1, height)
    return _png(image)


def _legend(draw: ImageDraw.ImageDraw, right: int, y: int) -> None:
    x = right
    for name, colour in reversed([("fake", FAKE), ("real", REAL), ("not scored", GREY)]):
        x -= _text_width(draw, name) + 4
        draw.text((x, y), name, fill=INK, font=_font())
        x -= 14
        draw.rectangle([x, y + 1, x + 10, y + 11], fill=colour)
        x -= 12


def _waveform(
    draw: ImageDraw.ImageDraw, envelope: npt.NDArray[np.float32], x0: int, x1: int
) -> None:
    middle = (WAVE_TOP + WAVE_BOTTOM) // 2
    half = (WAVE_BOTTOM - WAVE_TOP) / 2
    draw.rectangle([x0, WAVE_TOP, x1, WAVE_BOTTOM], outline=(200, 200, 200))
    draw.line([(x0, middle), (x1, middle)], fill=(215, 215, 215))
    draw.text((4, WAVE_TOP), "+1", fill=INK, font=_font())
    draw.text((4, WAVE_BOTTOM - 12), "-1", fill=INK, font=_font())
    if envelope.ndim != 2 or envelope.shape[0] == 0 or envelope.shape[1] < 2:
        return
    values = np.clip(np.nan_to_num(envelope[:, :2]), -1.0, 1.0)
    columns = x1 - x0
    edges = np.linspace(0, len(values), columns + 1)
    for i in range(columns):
        lo = min(int(edges[i]), len(values) - 1)
        hi = max(lo + 1, math.ceil(edges[i + 1]))
        top = float(values[lo:hi, 1].max())
        bottom = float(values[lo:hi, 0].min())
        draw.line(
            [(x0 + i, round(middle - top * half)), (x0 + i, round(middle - bottom * half))],
            fill=(60, 90, 140),
        )


def _score_y(score: float) -> int:
    s = min(max(score, 0.0), 1.0)
    return round(SCORE_BOTTOM - s * (SCORE_BOTTOM - SCORE_TOP))


def _score_bars(
    draw: ImageDraw.ImageDraw,
    segments: Sequence[Mapping[str, Any]],
    span: float,
    threshold: float,
    x0: int,
    x1: int,
) -> None:
    def x_of(t: float) -> int:
        return round(x0 + min(max(t / span, 0.0), 1.0) * (x1 - x0))

    draw.rectangle([x0, SCORE_TOP, x1, SCORE_BOTTOM], outline=(200, 200, 200))
    for value in (0.0, 0.5, 1.0):
        draw.text((4, _score_y(value) - 6), f"{value:.1f}", fill=INK, font=_font())
    for segment in segments:
        left = x_of(float(segment.get("start", 0.0)))
        right = max(left, x_of(float(segment.get("end", 0.0))) - 1)
        score = segment.get("score")
        if score is None:
            draw.rectangle([left, SCORE_TOP + 1, right, SCORE_BOTTOM - 1], fill=(236, 236, 236))
            draw.rectangle([left, SCORE_BOTTOM - 4, right, SCORE_BOTTOM - 1], fill=GREY)
            continue
        colour = label_colour(str(segment.get("label", "")))
        top = min(_score_y(float(score)), SCORE_BOTTOM - 2)  # a score of 0 still shows a sliver
        draw.rectangle([left, top, right, SCORE_BOTTOM - 1], fill=colour)
    y = _score_y(threshold)
    _dashed_hline(draw, x0, x1, y, INK)
    text = f"threshold {threshold:.2f}"
    left = x1 - _text_width(draw, text) - 8
    top = y - 19 if y - 19 >= SCORE_TOP else y + 4
    draw.rectangle([left - 2, top, x1 - 4, top + 15], fill=PAPER)
    draw.text((left, top), text, fill=INK, font=_font())
    draw.text((x0 + 4, SCORE_TOP - 18), "score per window", fill=INK, font=_font())


def tick_step(span: float, most: int = 12) -> float:
    """The smallest 'round' step in seconds that puts at most `most` ticks on the axis."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= most:
            return float(step)
    return 3600.0 * math.ceil(span / (3600.0 * most))


def _time_axis(draw: ImageDraw.ImageDraw, span: float, x0: int, x1: int, height: int) -> None:
    step = tick_step(span)
    y = SCORE_BOTTOM
    for i in range(int(span / step + 1e-9) + 1):
        t = i * step
        x = round(x0 + t / span * (x1 - x0))
        draw.line([(x, y), (x, y + 5)], fill=INK)
        text = f"{t:g}s"
        draw.text((x - _text_width(draw, text) // 2, y + 8), text, fill=INK, font=_font())
    draw.text((x1 - 60, height - 14), "time (s)", fill=INK, font=_font())


# --- image ----------------------------------------------------------------------------------


def _fit(image: Image.Image) -> Image.Image:
    """RGB, long side clamped to [MIN_IMAGE_SIDE, MAX_IMAGE_SIDE]."""
    rgb = image.convert("RGB")
    long_side = max(rgb.size)
    target = min(max(long_side, MIN_IMAGE_SIDE), MAX_IMAGE_SIDE)
    if target == long_side:
        return rgb
    scale = target / long_side
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.LANCZOS)


def _upscale(grid: npt.NDArray[np.float64], size: tuple[int, int]) -> npt.NDArray[np.float64]:
    small = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32))
    return np.asarray(small.resize(size, Image.Resampling.BILINEAR), dtype=np.float64)


def heatmap_overlay(image: Image.Image, tiles: npt.NDArray[np.float64]) -> Image.Image:
    """`image` (RGB) under the tile scores, smoothly upscaled, blue (0) → red (1).

    Tiles that are not finite (NaN) are left uncoloured.
    """
    grid = np.asarray(tiles, dtype=np.float64)
    if grid.ndim != 2:
        raise ValueError(f"tiles must be a [rows, columns] grid, got shape {grid.shape}")
    if grid.size == 0:
        return image
    known = np.isfinite(grid)
    weight = _upscale(known.astype(np.float64), image.size)
    total = _upscale(np.where(known, np.clip(grid, 0.0, 1.0), 0.0), image.size)
    score = np.clip(total / np.maximum(weight, 1e-9), 0.0, 1.0)[..., None]
    cold, hot = np.asarray(COLD, dtype=np.float64), np.asarray(HOT, dtype=np.float64)
    colour = cold + (hot - cold) * score
    alpha = HEATMAP_ALPHA * np.clip(weight, 0.0, 1.0)[..., None]
    pixels = np.asarray(image, dtype=np.float64)
    blended = pixels * (1 - alpha) + colour * alpha
    return Image.fromarray(np.rint(blended).astype(np.uint8))


def _box(box: Mapping[str, int], sx: float, sy: float) -> tuple[int, int, int, int] | None:
    try:
        x, y, w, h = (float(box[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return None
    if w <= 0 or h <= 0:
        return None
    return round(x * sx), round(y * sy), round((x + w) * sx), round((y + h) * sy)


def _tag(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, fill: RGB) -> None:
    """`text` on a filled tag whose bottom-left corner is `xy` (moved inside if it would clip)."""
    width = _text_width(draw, text) + 8
    x, y = xy[0], max(xy[1] - 18, 0)
    draw.rectangle([x, y, x + width, y + 17], fill=fill)
    draw.text((x + 4, y + 2), text, fill=PAPER, font=_font())


def image_png(
    image: Image.Image,
    tiles: npt.NDArray[np.float64],
    faces: Sequence[tuple[Mapping[str, int], float]],
    score: float,
    label: str,
) -> bytes:
    """The image under its tile heatmap, with scored face boxes and a caption bar.

    Face boxes are in the pixel coordinates of `image` as given; they are scaled with it.
    """
    fitted = _fit(image)
    sx, sy = fitted.width / image.width, fitted.height / image.height
    shown = heatmap_overlay(fitted, tiles)
    width = max(shown.width, MIN_IMAGE_SIDE)
    canvas = Image.new("RGB", (width, shown.height + CAPTION_HEIGHT), PAPER)
    canvas.paste(shown, ((width - shown.width) // 2, 0))
    draw = ImageDraw.Draw(canvas)
    offset = (width - shown.width) // 2
    for box, face_score in faces:
        corners = _box(box, sx, sy)
        if corners is None:
            continue
        left, top, right, bottom = corners
        colour = heat_colour(face_score)
        draw.rectangle([offset + left, top, offset + right, bottom], outline=PAPER, width=4)
        draw.rectangle([offset + left, top, offset + right, bottom], outline=colour, width=2)
        _tag(
            draw,
            (offset + left, top if top >= 18 else bottom + 20),
            f"face {face_score:.2f}",
            colour,
        )
    _caption(draw, shown.height, width, score, label)
    return _png(canvas)


def _caption(draw: ImageDraw.ImageDraw, top: int, width: int, score: float, label: str) -> None:
    draw.rectangle([0, top, width, top + CAPTION_HEIGHT], fill=label_colour(label))
    text = (
        f"{label.capitalize()}  score {score:.2f}   heatmap: blue = real-looking, red = generated"
    )
    draw.text((8, top + 8), text, fill=PAPER, font=_font())


# --- video ----------------------------------------------------------------------------------

Frame = tuple[float, Image.Image, float, str, Mapping[str, int] | None]


def subsample(count: int, most: int = MAX_FRAMES) -> list[int]:
    """Up to `most` indices into `count` items, evenly spread, first and last included."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _thumbnail(frame: Image.Image, box: Mapping[str, int] | None, label: str) -> Image.Image:
    scale = min(THUMB_WIDTH / frame.width, MAX_THUMB_HEIGHT / frame.height)
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    thumb = frame.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(thumb)
    corners = None if box is None else _box(box, scale, scale)
    if corners is not None:
        draw.rectangle(list(corners), outline=PAPER, width=3)
        draw.rectangle(list(corners), outline=label_colour(label), width=2)
    return thumb


def video_png(frames: Sequence[Frame]) -> bytes:
    """A grid of up to MAX_FRAMES evenly chosen frames, FRAMES_PER_ROW per row, in time order."""
    chosen = [frames[i] for i in subsample(len(frames))]
    thumbs = [_thumbnail(image, box, label) for _, image, _, label, box in chosen]
    columns = max(1, min(FRAMES_PER_ROW, len(chosen)))
    rows = max(1, math.ceil(len(chosen) / columns))
    thumb_height = max((t.height for t in thumbs), default=90)
    cell_w, cell_h = THUMB_WIDTH + 2 * BORDER + 8, thumb_height + 2 * BORDER + 26
    size = (max(columns * cell_w + 8, 360), rows * cell_h + 36)
    canvas = Image.new("RGB", size, PAPER)
    draw = ImageDraw.Draw(canvas)
    title = f"Video: {len(frames)} frames analysed, {len(chosen)} shown"
    draw.text((8, 8), title if frames else "Video: no frames analysed", fill=INK, font=_font())
    for n, ((timestamp, _, score, label, _), thumb) in enumerate(zip(chosen, thumbs, strict=True)):
        x = 8 + (n % columns) * cell_w
        y = 28 + (n // columns) * cell_h
        frame_w = THUMB_WIDTH + 2 * BORDER
        draw.rectangle(
            [x, y, x + frame_w - 1, y + thumb.height + 2 * BORDER - 1], fill=label_colour(label)
        )
        canvas.paste(thumb, (x + BORDER + (THUMB_WIDTH - thumb.width) // 2, y + BORDER))
        text = f"{timestamp:.1f}s {score:.2f}"
        draw.text((x + 2, y + thumb.height + 2 * BORDER + 4), text, fill=INK, font=_font())
    return _png(canvas)
