"""Train and evaluate audio source tracing on the dataset's synthetic clips.

    uv run python -m training.train_audio      # first: it caches the features
    uv run python -m training.train_tracing

One-vs-rest logistic heads (one per synthesizer family seen in `train`), L2 chosen on `dev`
accuracy; reported on `test`: accuracy over the families seen in training, and a confusion
matrix whose rows include the families held out of training entirely.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np

from services.detector.models.audio_features import FEATURES
from services.detector.models.logistic import LogisticHead
from services.detector.models.tracing import SourceTracer
from training.fitting import fit_logistic
from training.paths import MODELS

L2_GRID = (0.1, 1.0, 10.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path(".run/dataset"))
    parser.add_argument("--out", type=Path, default=MODELS / "tracing_head.json")
    args = parser.parse_args()
    rows = [r for r in csv.DictReader((args.dataset / "manifest.csv").open())
            if r["label"] == "fake"]  # fmt: skip
    cached = np.load(args.dataset / "features.npz")
    x = np.asarray([cached[r["sha256"]][:-1] for r in rows])  # drop the AASIST column
    family = np.asarray([r["family"] for r in rows])
    split = np.asarray([r["split"] for r in rows])
    train, dev, test = (split == s for s in ("train", "dev", "test"))
    families = sorted(set(family[train]))

    best: tuple[float, SourceTracer] | None = None
    for l2 in L2_GRID:
        heads = []
        for f in families:
            mean, scale, weights, bias = fit_logistic(
                x[train], (family[train] == f).astype(np.float64), l2=l2
            )
            heads.append(LogisticHead(f"trace-{f}", "1", FEATURES, mean.tolist(),
                                      scale.tolist(), weights.tolist(), bias, 0.5))  # fmt: skip
        tracer = SourceTracer("verity-tracing-lr", "1", families, heads)
        seen = dev & np.isin(family, families)
        predicted = np.asarray(families)[tracer.probabilities(x[seen]).argmax(axis=1)]
        accuracy = float(np.mean(predicted == family[seen]))
        print(f"l2={l2:g}: dev accuracy {accuracy:.3f}")
        if best is None or accuracy > best[0]:
            best = (accuracy, tracer)
    assert best is not None
    dev_accuracy, tracer = best

    predicted = np.asarray(families)[tracer.probabilities(x[test]).argmax(axis=1)]
    seen = np.isin(family[test], families)
    confusion: dict[str, dict[str, int]] = {}
    for true, guess in zip(family[test], predicted, strict=True):
        confusion.setdefault(str(true), dict.fromkeys(families, 0))[str(guess)] += 1
    metrics = {
        "dev_accuracy_seen_families": round(dev_accuracy, 4),
        "test_accuracy_seen_families": round(
            float(np.mean(predicted[seen] == family[test][seen])), 4
        ),
        "test_clips": dict(Counter(str(f) for f in family[test])),
        "families_held_out_of_training": sorted(set(family[test]) - set(families)),
        "test_confusion": confusion,
    }
    final = SourceTracer(tracer.name, tracer.version, families, tracer.heads, metrics)
    final.save(args.out)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
