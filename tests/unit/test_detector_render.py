"""The PNG pictures decode, have the promised size, are deterministic and show the scores."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from services.detector.analysis import render


def decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def pixels(image: Image.Image, box: tuple[int, int, int, int]) -> npt.NDArray[np.int64]:
    """The RGB pixels of `box` (left, top, right, bottom) as an [N, 3] array."""
    return np.asarray(image.crop(box), dtype=np.int64).reshape(-1, 3)


def red_dominant(values: npt.NDArray[np.int64]) -> float:
    """Share of pixels clearly more red than green and blue."""
    r, g, b = values[:, 0], values[:, 1], values[:, 2]
    return float(np.mean((r > g + 60) & (r > b + 60)))


def green_dominant(values: npt.NDArray[np.int64]) -> float:
    r, g, b = values[:, 0], values[:, 1], values[:, 2]
    return float(np.mean((g > r + 40) & (g > b + 40)))


# --- audio ----------------------------------------------------------------------------------


def envelope(columns: int = 1500) -> npt.NDArray[np.float32]:
    amp = 0.5 + 0.4 * np.sin(np.linspace(0, 20, columns))
    return np.stack([-amp, amp], axis=1).astype(np.float32)


SEGMENTS: list[dict[str, Any]] = [
    {"start": 0.0, "end": 10.0, "score": 0.95, "label": "fake"},
    {"start": 10.0, "end": 20.0, "score": 0.9, "label": "real"},  # label, not score, colours
    {"start": 20.0, "end": 30.0, "score": None, "label": "inconclusive"},
]


def column_x(t: float, duration: float = 30.0) -> int:
    return round(render.AUDIO_LEFT + t / duration * (1200 - render.AUDIO_LEFT - render.AUDIO_RIGHT))


def bar_region(t0: float, t1: float) -> tuple[int, int, int, int]:
    """Inside the score panel between t0 and t1, from score 0.05 up to 0.85."""
    return (column_x(t0) + 5, render._score_y(0.85), column_x(t1) - 5, render._score_y(0.05))


def test_audio_png_size_and_determinism() -> None:
    png = render.audio_png(envelope(), 30.0, SEGMENTS, 0.5)
    assert png == render.audio_png(envelope(), 30.0, SEGMENTS, 0.5)
    image = decode(png)
    assert image.size == (1200, 400)


def test_audio_bars_are_coloured_by_label() -> None:
    image = decode(render.audio_png(envelope(), 30.0, SEGMENTS, 0.5))
    fake, real, unscored = (bar_region(0, 10), bar_region(10, 20), bar_region(20, 30))
    assert red_dominant(pixels(image, fake)) > 0.9
    assert green_dominant(pixels(image, real)) > 0.9
    grey = pixels(image, unscored)
    assert red_dominant(grey) == 0.0
    assert green_dominant(grey) == 0.0


def test_audio_bar_height_follows_the_score() -> None:
    segments = [
        {"start": 0.0, "end": 15.0, "score": 0.9, "label": "fake"},
        {"start": 15.0, "end": 30.0, "score": 0.2, "label": "fake"},
    ]
    image = decode(render.audio_png(envelope(), 30.0, segments, 0.5))
    between = render._score_y(0.8), render._score_y(0.4)  # above 0.2, below 0.9
    assert red_dominant(pixels(image, (column_x(1), between[0], column_x(14), between[1]))) > 0.9
    assert red_dominant(pixels(image, (column_x(16), between[0], column_x(29), between[1]))) == 0
    low = render._score_y(0.15), render._score_y(0.02)
    assert red_dominant(pixels(image, (column_x(16), low[0], column_x(29), low[1]))) > 0.9


def test_audio_threshold_line_is_drawn_where_the_threshold_is() -> None:
    blank = decode(render.audio_png(np.zeros((0, 2), np.float32), 30.0, [], 0.3))
    y = render._score_y(0.3)
    row = pixels(blank, (column_x(1), y, column_x(20), y + 1))
    dark = np.mean(row.sum(axis=1) < 200)
    assert 0.4 < dark < 0.9  # dashed: dark and light alternate
    elsewhere = pixels(blank, (column_x(1), y - 20, column_x(20), y - 19))
    assert np.mean(elsewhere.sum(axis=1) < 200) == 0.0


def test_audio_waveform_is_drawn() -> None:
    loud = decode(render.audio_png(envelope(), 30.0, [], 0.5))
    silent = decode(render.audio_png(np.zeros((1500, 2), np.float32), 30.0, [], 0.5))
    panel = (render.AUDIO_LEFT + 2, render.WAVE_TOP + 5, 1150, render.WAVE_BOTTOM - 5)
    assert np.mean(pixels(loud, panel).sum(axis=1) < 500) > 0.4
    assert np.mean(pixels(silent, panel).sum(axis=1) < 500) < 0.02


@pytest.mark.parametrize("duration", [0.0, 0.3, 7.5, 3600.0])
def test_audio_handles_any_duration(duration: float) -> None:
    assert decode(render.audio_png(envelope(10), duration, [], 0.5)).size == (1200, 400)


def test_tick_step_keeps_the_axis_readable() -> None:
    assert render.tick_step(30.0) == 5.0
    assert render.tick_step(1.0) == 0.1
    assert render.tick_step(3600.0) == 300.0
    assert 36_000 / render.tick_step(36_000) <= 12


# --- image ----------------------------------------------------------------------------------


def grey_image(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), (128, 128, 128))


def test_image_png_is_downscaled_and_deterministic() -> None:
    tiles = np.array([[0.1, 0.9], [0.5, 0.5]])
    png = render.image_png(grey_image(2048, 1024), tiles, [], 0.7, "Fake")
    assert png == render.image_png(grey_image(2048, 1024), tiles, [], 0.7, "Fake")
    image = decode(png)
    assert image.size == (1024, 512 + render.CAPTION_HEIGHT)


def test_small_image_is_enlarged_to_stay_readable() -> None:
    image = decode(render.image_png(grey_image(100, 50), np.zeros((1, 1)), [], 0.1, "real"))
    assert image.size == (320, 160 + render.CAPTION_HEIGHT)


def test_heatmap_hot_tile_is_redder_than_cold_tile() -> None:
    tiles = np.array([[0.0, 1.0]])
    image = decode(render.image_png(grey_image(800, 400), tiles, [], 0.5, "inconclusive"))
    cold = pixels(image, (20, 20, 200, 380)).mean(axis=0)
    hot = pixels(image, (600, 20, 780, 380)).mean(axis=0)
    assert hot[0] > cold[0] + 60
    assert cold[2] > hot[2] + 60
    assert red_dominant(pixels(image, (600, 20, 780, 380))) > 0.9


def test_heatmap_leaves_unscored_tiles_alone() -> None:
    overlay = render.heatmap_overlay(grey_image(200, 100), np.array([[np.nan, 1.0]]))
    assert overlay.getpixel((10, 50)) == (128, 128, 128)
    assert overlay.getpixel((190, 50)) != (128, 128, 128)


def test_heatmap_rejects_a_flat_list() -> None:
    with pytest.raises(ValueError, match="grid"):
        render.heatmap_overlay(grey_image(10, 10), np.zeros(4))


def test_face_box_is_scaled_with_the_image() -> None:
    original = grey_image(2048, 1024)  # shown at half size
    box = {"x": 400, "y": 400, "width": 400, "height": 400}
    image = decode(render.image_png(original, np.zeros((0, 0)), [(box, 0.95)], 0.9, "Fake"))
    # the box outline runs from (200, 200) to (400, 400) in the picture: a 2 px line in the
    # face score's colour (red at 0.95) on a white 4 px band
    assert red_dominant(pixels(image, (250, 200, 350, 202))) == 1.0
    assert np.all(pixels(image, (250, 202, 350, 204)) == 255)
    assert red_dominant(pixels(image, (200, 250, 202, 350))) == 1.0
    inside = pixels(image, (260, 260, 340, 340))
    assert np.all(inside == 128)
    where_unscaled = pixels(image, (450, 399, 750, 402))  # the box had it not been scaled
    assert np.all(where_unscaled == 128)


def test_caption_colour_follows_the_label_case_insensitively() -> None:
    height = 400 + render.CAPTION_HEIGHT
    caption = (0, height - render.CAPTION_HEIGHT + 1, 800, height)
    for label in ("Fake", "fake", "FAKE"):
        image = decode(render.image_png(grey_image(800, 400), np.zeros((0, 0)), [], 0.9, label))
        assert red_dominant(pixels(image, caption)) > 0.7
    image = decode(render.image_png(grey_image(800, 400), np.zeros((0, 0)), [], 0.1, "Real"))
    assert green_dominant(pixels(image, caption)) > 0.7


# --- video ----------------------------------------------------------------------------------


def frame_list(count: int, labels: tuple[str, ...] = ("Fake", "Real")) -> list[Any]:
    image = grey_image(320, 180)
    box = {"x": 100, "y": 40, "width": 60, "height": 80}
    return [
        (float(i), image, i / max(count, 1), labels[i % len(labels)], box if i % 2 else None)
        for i in range(count)
    ]


def test_video_png_grid_size_and_determinism() -> None:
    png = render.video_png(frame_list(5))
    assert png == render.video_png(frame_list(5))
    image = decode(png)
    cell = render.THUMB_WIDTH + 2 * render.BORDER + 8
    assert image.width == 5 * cell + 8
    assert 90 + 28 < image.height < 200


def test_video_shows_at_most_24_frames_8_per_row() -> None:
    many, full = decode(render.video_png(frame_list(100))), decode(render.video_png(frame_list(24)))
    assert many.size == full.size
    cell = render.THUMB_WIDTH + 2 * render.BORDER + 8
    assert many.width == 8 * cell + 8
    assert 3 * 90 < many.height < 3 * 160


def test_subsample_is_even_and_keeps_both_ends() -> None:
    picked = render.subsample(100)
    assert len(picked) == 24
    assert picked[0] == 0
    assert picked[-1] == 99
    gaps = np.diff(picked)
    assert gaps.max() - gaps.min() <= 1
    assert render.subsample(7) == list(range(7))


def test_video_border_colour_follows_the_label() -> None:
    image = decode(render.video_png(frame_list(2, labels=("fake", "REAL"))))
    cell = render.THUMB_WIDTH + 2 * render.BORDER + 8
    top = 28  # the first row of cells starts under the title
    first_border = pixels(image, (8, top, 8 + render.THUMB_WIDTH, top + 3))
    second_border = pixels(image, (8 + cell, top, 8 + cell + render.THUMB_WIDTH, top + 3))
    assert red_dominant(first_border) > 0.9
    assert green_dominant(second_border) > 0.9


def test_video_face_box_is_drawn_in_the_thumbnail() -> None:
    with_box = decode(render.video_png(frame_list(2)[1:]))  # frame 1 has a box
    x, y = 8 + render.BORDER, 28 + render.BORDER
    # box at (100, 40, 160, 120) in a 320-wide frame → (50, 20, 80, 60) in the thumbnail
    edge = pixels(with_box, (x + 55, y + 20, x + 75, y + 21))
    assert np.all(edge != 128)
    assert np.all(pixels(with_box, (x + 60, y + 30, x + 70, y + 50)) == 128)


def test_video_with_no_frames_still_renders() -> None:
    assert decode(render.video_png([])).width >= 300


def test_a_zero_score_window_is_drawn_not_refused() -> None:
    """A real recording scores 0.00 in places; the bar must still be drawable."""
    envelope = np.zeros((100, 2), dtype=np.float32)
    segments = [{"start": 0.0, "end": 2.0, "score": 0.0, "label": "real"}]
    png = render.audio_png(envelope, 2.0, segments, 0.5)
    assert Image.open(io.BytesIO(png)).size[0] > 0
