"""manifest.csv (one row per clip) and manifest.json (counts, splits, seeds, provenance).

Both are deterministic for a given seed and inputs: rows are sorted, no timestamps or local
paths are written (timings go to build_info.json instead).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COLUMNS = (
    "path",
    "label",
    "split",
    "speaker_or_voice",
    "engine",
    "family",
    "language",
    "text_id",
    "duration_s",
    "sha256",
    "channel",
    "native_rate",
    "source",
)


@dataclass(frozen=True)
class ClipRecord:
    """One finished clip: a manifest row plus its shortcut features."""

    path: str
    label: str  # "real" | "fake"
    split: str
    speaker_or_voice: str
    engine: str  # "human" for real clips
    family: str  # "real" for real clips
    language: str
    text_id: str
    duration_s: float
    sha256: str
    channel: str  # "g722" | "g722+mulaw8k"
    native_rate: int
    source: str  # Debian package (real) or engine package (fake)
    features: Mapping[str, float]

    def row(self) -> dict[str, Any]:
        """The CSV row."""
        data = asdict(self)
        data["duration_s"] = f"{self.duration_s:.3f}"
        return {k: data[k] for k in COLUMNS}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_csv(path: Path, records: Sequence[ClipRecord]) -> None:
    """manifest.csv, sorted by split, label and path."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in sorted(records, key=lambda r: (r.split, r.label, r.path)):
        writer.writerow(record.row())
    _atomic_write(path, buffer.getvalue())


def _nested_counts(records: Sequence[ClipRecord], field: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for r in records:
        out[r.split][r.label][str(getattr(r, field))] += 1
    return {
        split: {label: dict(sorted(c.items())) for label, c in sorted(labels.items())}
        for split, labels in sorted(out.items())
    }


def summary(records: Sequence[ClipRecord], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest.json document: `extra` (settings, splits, provenance) plus counts."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    hours: dict[str, dict[str, float]] = defaultdict(dict)
    for split in sorted({r.split for r in records}):
        for label in ("real", "fake"):
            chosen = [r for r in records if r.split == split and r.label == label]
            counts[split][label] = len(chosen)
            hours[split][label] = round(sum(r.duration_s for r in chosen) / 3600, 3)
    return {
        **extra,
        "total_clips": len(records),
        "counts": dict(counts),
        "hours": dict(hours),
        "by_engine": _nested_counts(records, "engine"),
        "by_family": _nested_counts(records, "family"),
        "by_speaker_or_voice": _nested_counts(records, "speaker_or_voice"),
        "by_language": _nested_counts(records, "language"),
        "by_channel": _nested_counts(records, "channel"),
        "by_native_rate": _nested_counts(records, "native_rate"),
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Pretty, key-sorted JSON."""
    _atomic_write(path, json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
