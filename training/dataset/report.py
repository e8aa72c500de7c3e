"""The shortcut report: can one trivial scalar tell real from synthetic?

For every finished clip a few nuisance features are measured (duration, RMS, peak, leading and
trailing silence, energy above 4 kHz, noise floor). Per split, each feature's distribution per
class is summarised and its rank AUC against the label computed (the AUC of a one-feature,
one-threshold classifier). A separability max(AUC, 1 - AUC) above `FLAG_AT` means that feature
alone gives the label away: a shortcut remains, and a detector's score must be read with it.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from training.dataset.process import (
    SAMPLE_RATE,
    energy,
    frame_levels,
    highpass,
    peak,
    speech_span,
    to_db,
)

FLAG_AT = 0.75
FEATURES = (
    "duration_s",
    "rms_dbfs",
    "peak_dbfs",
    "crest_db",
    "lead_silence_s",
    "trail_silence_s",
    "hf_above_4k_db",
    "noise_floor_db",
)
CATEGORIES = ("language", "english", "corpus")  # categorical nuisances, checked the same way
SPEECH_REL_DB = 30.0  # "speech" for the silence measurements: within 30 dB of the loudest frame


def clip_features(samples: array[float]) -> dict[str, float]:
    """The nuisance features of one finished 16 kHz clip."""
    levels = frame_levels(samples)
    rms = to_db(energy(samples))
    span = speech_span(levels, SPEECH_REL_DB, -90.0)
    frame_s = len(samples) / SAMPLE_RATE / max(1, len(levels))
    lead = span[0] * frame_s if span else 0.0
    trail = (len(levels) - span[1]) * frame_s if span else 0.0
    total = energy(samples) * len(samples)
    high = highpass(samples, 4000.0)
    high_total = energy(high) * len(high)
    ordered = sorted(levels)
    floor = ordered[len(ordered) // 10] if ordered else -120.0
    top = peak(samples)
    return {
        "duration_s": len(samples) / SAMPLE_RATE,
        "rms_dbfs": rms,
        "peak_dbfs": 20 * math.log10(top) if top > 0 else -120.0,
        "crest_db": (20 * math.log10(top) if top > 0 else -120.0) - rms,
        "lead_silence_s": lead,
        "trail_silence_s": trail,
        "hf_above_4k_db": to_db(high_total / total) if total > 0 else -120.0,
        "noise_floor_db": floor - rms,
    }


def rank_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(positive > negative) + P(tie) / 2 (Mann-Whitney with mid-ranks); 0.5 if a side is empty."""
    if not positives or not negatives:
        return 0.5
    tagged = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum = 0.0
    i = 0
    while i < len(tagged):
        j = i
        while j + 1 < len(tagged) and tagged[j + 1][0] == tagged[i][0]:
            j += 1
        mid = (i + j) / 2 + 1
        rank_sum += mid * sum(1 for k in range(i, j + 1) if tagged[k][1] == 1)
        i = j + 1
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def category_auc(
    categories: Sequence[str], is_real: Sequence[bool], folds: int = 5, prior: float = 10.0
) -> float:
    """Cross-validated AUC of "P(real | category)" used as a score.

    Each clip is scored with rates counted on the other folds (clip i is in fold i % folds),
    shrunk towards the overall real rate by `prior` pseudo-clips, so neither a clip's own label
    nor a category seen a handful of times can fake a separation. High means the category alone
    gives the label away.
    """
    overall = sum(is_real) / max(1, len(is_real))
    total: dict[tuple[int, str], int] = {}
    real: dict[tuple[int, str], int] = {}
    for i, (category, label) in enumerate(zip(categories, is_real, strict=True)):
        key = (i % folds, category)
        total[key] = total.get(key, 0) + 1
        real[key] = real.get(key, 0) + int(label)
    pos: list[float] = []
    neg: list[float] = []
    for i, (category, label) in enumerate(zip(categories, is_real, strict=True)):
        others = [(f, category) for f in range(folds) if f != i % folds]
        n = sum(total.get(k, 0) for k in others)
        r = sum(real.get(k, 0) for k in others)
        (pos if label else neg).append((r + prior * overall) / (n + prior))
    return rank_auc(pos, neg)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _summary(values: Sequence[float]) -> dict[str, float]:
    mean = sum(values) / len(values) if values else math.nan
    return {
        "n": len(values),
        "mean": round(mean, 4),
        "p10": round(_quantile(values, 0.1), 4),
        "p50": round(_quantile(values, 0.5), 4),
        "p90": round(_quantile(values, 0.9), 4),
    }


def shortcut_report(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per split (and all together): per-feature class summaries, AUC, separability, flag.

    `rows` carry `split`, `label` ("real"/"fake") and every name in FEATURES, and may carry
    the CATEGORIES (checked through cross-validated category rates, see `category_auc`).
    """
    report: dict[str, Any] = {"flag_at": FLAG_AT, "auc_is": "P(real > fake)", "splits": {}}
    flagged: list[str] = []
    for split in ("all", "train", "dev", "test"):
        chosen = [r for r in rows if split == "all" or r["split"] == split]
        if not chosen:
            continue
        per_feature: dict[str, Any] = {}
        for name in FEATURES:
            real = [float(r[name]) for r in chosen if r["label"] == "real"]
            fake = [float(r[name]) for r in chosen if r["label"] == "fake"]
            auc = rank_auc(real, fake)
            separability = max(auc, 1 - auc)
            flag = separability > FLAG_AT
            if flag:
                flagged.append(f"{split}:{name}")
            per_feature[name] = {
                "real": _summary(real),
                "fake": _summary(fake),
                "auc": round(auc, 4),
                "separability": round(separability, 4),
                "shortcut": flag,
            }
        report["splits"][split] = per_feature
        categorical: dict[str, Any] = {}
        for name in CATEGORIES:
            if not all(name in r for r in chosen):
                continue
            auc = category_auc(
                [str(r[name]) for r in chosen], [r["label"] == "real" for r in chosen]
            )
            separability = max(auc, 1 - auc)
            flag = separability > FLAG_AT
            if flag:
                flagged.append(f"{split}:{name}")
            categorical[name] = {
                "auc": round(auc, 4),
                "separability": round(separability, 4),
                "shortcut": flag,
            }
        report.setdefault("categorical", {})[split] = categorical
    report["flagged"] = flagged
    return report


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a plain-text table."""
    lines = [
        "Shortcut report: can one nuisance feature separate real from fake?",
        f"AUC = P(real > fake); separability = max(AUC, 1-AUC); flagged above {FLAG_AT}.",
    ]
    for split, features in report["splits"].items():
        lines.append("")
        lines.append(f"[{split}]")
        lines.append(
            f"{'feature':<16} {'real mean':>9} {'p10':>8} {'p50':>8} {'p90':>8}   "
            f"{'fake mean':>9} {'p10':>8} {'p50':>8} {'p90':>8}   {'AUC':>5} {'sep':>5}"
        )
        for name, row in features.items():
            r, f = row["real"], row["fake"]
            mark = "  <-- SHORTCUT" if row["shortcut"] else ""
            real = " ".join(f"{r[k]:>8.3f}" for k in ("p10", "p50", "p90"))
            fake = " ".join(f"{f[k]:>8.3f}" for k in ("p10", "p50", "p90"))
            lines.append(
                f"{name:<16} {r['mean']:>9.3f} {real}   {f['mean']:>9.3f} {fake}   "
                f"{row['auc']:>5.3f} {row['separability']:>5.3f}{mark}"
            )
        for name, row in report.get("categorical", {}).get(split, {}).items():
            mark = "  <-- SHORTCUT" if row["shortcut"] else ""
            label = f"{name} (category)"
            lines.append(f"{label:<24}{'':>88}{row['auc']:>5.3f} {row['separability']:>5.3f}{mark}")
    lines.append("")
    flagged = report["flagged"]
    lines.append("flagged: " + (", ".join(flagged) if flagged else "none"))
    return "\n".join(lines) + "\n"
