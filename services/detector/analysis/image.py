"""Image analysis: the packaged CLIP probe (models/image_model.py) on pixels and faces.

The whole image and each face the Haar cascade finds are scored; with a picture to draw, the
four quadrants are scored too, as the heatmap (which region looks most generated).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from pydantic import JsonValue

from services.detector import media
from services.detector.analysis import pictures, visual_verdict
from services.detector.models import loaded

TILES = 2  # heatmap resolution: TILES x TILES regions, one probe pass each


def open_image(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # an animation is judged by its first frame
                oriented = ImageOps.exif_transpose(image)
                return oriented.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise media.MediaError(f"image cannot be decoded: {exc}") from exc


def _tiles(image: Image.Image, probe: Any) -> Any:
    w, h = image.size
    crops = [
        image.crop((c * w // TILES, r * h // TILES, (c + 1) * w // TILES, (r + 1) * h // TILES))
        for r in range(TILES)
        for c in range(TILES)
    ]
    return np.asarray(probe.score(crops), dtype=np.float64).reshape(TILES, TILES)


def _image_facts(image: Image.Image, path: Path, faces: int) -> dict[str, JsonValue]:
    """The `intelligence` of an image: what can be read off the file, no model involved."""
    with Image.open(path) as original:
        exif = original.getexif()
        kind = original.format
    software = exif.get(0x0131)  # EXIF Software
    camera = " ".join(str(exif.get(tag, "")).strip() for tag in (0x010F, 0x0110)).strip()
    return {
        "format": kind,
        "width": image.width,
        "height": image.height,
        "faces": faces,
        "exif": {"camera": camera or None, "software": str(software) if software else None},
        "note": "facts read from the file; EXIF is easy to forge or strip and proves nothing",
    }


def analyze_image(
    path: Path, options: dict[str, Any], picture: Path | None = None
) -> dict[str, JsonValue]:
    from services.detector.models.image_model import crop_face, find_faces

    image = open_image(path)
    probe = loaded.image_model()
    boxes = find_faces(np.asarray(image))
    scores = probe.score([image, *(crop_face(image, box) for box in boxes)])
    faces = [
        visual_verdict.Region(s, box.as_json()) for s, box in zip(scores[1:], boxes, strict=True)
    ]
    metrics = visual_verdict.image_metrics(scores[0], faces, probe.thresholds)
    result: dict[str, JsonValue] = {
        "image_metrics": metrics,
        "model": probe.model_json(),
        "reasons": None,
    }
    if options.get("intelligence"):
        result["intelligence"] = _image_facts(image, path, len(boxes))
    if picture is not None:
        from services.detector.analysis import render

        face_scores = [(f.box or {}, f.score) for f in faces]
        label = probe.thresholds.label(scores[0])
        png = render.image_png(image, _tiles(image, probe), face_scores, scores[0], label)
        pictures.write_png(picture, png)
        result["visualization"] = True
    return result
