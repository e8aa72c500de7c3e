"""Build the dataset: `uv run python -m training.dataset.build [--out .run/dataset]`.

Steps, each resumable (its outputs are cached and reused on the next run):

1. fetch the Debian speech packages and unpack them (sources.py);
2. place speakers and texts in train/dev/test (splits.py);
3. stage A (decode, 16 kHz mono, trim, cap) for real candidates until `--cap` usable per split;
4. install the engines if missing, build the Piper/hibari tool venv (tools.py), allocate and
   synthesise as many fakes per split as real clips were kept (synth.py), stage A for them;
5. choose the narrow-band clips (same fraction per class), stage B (channel, loudness), write
   16 kHz mono 16-bit WAVs and measure the shortcut features (process.py, report.py);
6. write manifest.csv, manifest.json, shortcut_report.{json,txt}, build_info.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.dataset import process, report, sources, splits, synth, tools
from training.dataset.manifest import ClipRecord, summary, write_csv, write_json
from training.dataset.synth import SPLITS

DEFAULT_SEED = 6
Log = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """A clip that passed stage A, with everything the manifest needs about where it came from."""

    clip_id: str
    label: str
    split: str
    speaker_or_voice: str
    engine: str
    family: str
    language: str
    text_id: str
    source: str
    native_rate: int
    codec: str
    duration_s: float


# ---------------------------------------------------------------- stage A / B workers


def _stage_a(task: tuple[str, str, str | None, str, process.ChainParams]) -> dict[str, Any] | None:
    """Decode, trim, cap one source file into the stage-A cache; None if unusable."""
    clip_id, src, fmt, stage_dir, params = task
    meta_path = Path(stage_dir) / f"{clip_id}.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        return meta if meta.get("ok") else None
    try:
        x, rate, codec = process.prepare(Path(src), fmt, params)
    except Exception as error:  # a broken source file is skipped and counted
        meta = {"ok": False, "reason": f"decode: {error}"}
    else:
        seconds = len(x) / process.SAMPLE_RATE
        if seconds < params.min_s:
            meta = {"ok": False, "reason": "too short", "native_rate": rate, "codec": codec}
        else:
            process.write_f32(Path(stage_dir) / f"{clip_id}.f32", x)
            meta = {"ok": True, "native_rate": rate, "codec": codec, "seconds": seconds}
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(meta_path)
    return meta if meta["ok"] else None


def _stage_b(task: tuple[str, str, str, bool, int, process.ChainParams]) -> dict[str, Any]:
    """Channel + loudness for one clip, the WAV written under `out`, its features measured."""
    clip_id, stage_dir, wav_path, narrowband, seed, params = task
    channel = "g722+mulaw8k" if narrowband else "g722"
    side = Path(stage_dir) / f"{clip_id}.b.json"
    wav = Path(wav_path)
    if side.exists() and wav.exists():
        done: dict[str, Any] = json.loads(side.read_text())
        same = done.get("channel") == channel and done.get("seed") == seed
        if same and done.get("sha256") == sources.sha256_file(wav):
            return done
    x = process.read_f32(Path(stage_dir) / f"{clip_id}.f32")
    rng = random.Random(f"{seed}:{clip_id}")
    y = process.finish(x, narrowband=narrowband, params=params, rng=rng)
    data = process.wav_bytes(y)
    wav.parent.mkdir(parents=True, exist_ok=True)
    tmp = wav.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(wav)
    result = {
        "channel": channel,
        "seed": seed,
        "sha256": hashlib.sha256(data).hexdigest(),
        "features": report.clip_features(process.read_wav(wav)),
    }
    side.write_text(json.dumps(result))
    return result


# ---------------------------------------------------------------- helpers


def _logger(started: float) -> Log:
    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    return log


def _parallel_map(function: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> list[Any]:
    if workers <= 1 or len(tasks) < 4:
        return [function(t) for t in tasks]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, tasks, chunksize=8))


def _prepare_until(
    items: Sequence[tuple[str, str, str | None]],
    want: int,
    stage_dir: Path,
    params: process.ChainParams,
    workers: int,
) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Stage A over `items` (clip id, path, fmt) in order until `want` pass; (kept, dropped)."""
    kept: list[tuple[str, dict[str, Any]]] = []
    dropped = 0
    pos = 0
    while len(kept) < want and pos < len(items):
        size = max(16, math.ceil((want - len(kept)) * 1.15))
        chunk = items[pos : pos + size]
        pos += len(chunk)
        tasks = [(cid, src, fmt, str(stage_dir), params) for cid, src, fmt in chunk]
        for (cid, _, _), meta in zip(chunk, _parallel_map(_stage_a, tasks, workers), strict=True):
            if meta is None:
                dropped += 1
            elif len(kept) < want:
                kept.append((cid, meta))
    return kept, dropped


def _engine_source(engine: str, voice: str, installed: dict[str, str]) -> str:
    package = {
        "espeak-ng": "espeak-ng",
        "flite": "flite",
        "festival": {
            "kal_diphone": "festvox-kallpc16k",
            "ked_diphone": "festvox-kdlpc16k",
            "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
        }.get(voice, "festival"),
    }.get(engine)
    if package is not None:
        return f"{package}={installed.get(package, '?')}"
    pins = {"piper": "piper-tts", "hibari": "hibari-tts"}
    name = pins.get(engine, engine)
    return f"{name}=={tools.TOOL_WHEELS.get(name, '?')}"


def _remove_stale(audio_dir: Path, keep: Iterable[Path]) -> int:
    wanted = {p.resolve() for p in keep}
    removed = 0
    for path in audio_dir.rglob("*.wav"):
        if path.resolve() not in wanted:
            path.unlink()
            removed += 1
    return removed


# ---------------------------------------------------------------- the build


def build(args: argparse.Namespace) -> int:
    """Run every step; returns the process exit code."""
    started = time.monotonic()
    log = _logger(started)
    out: Path = args.out.resolve()
    cache: Path = (args.cache or out / "cache").resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    params = process.ChainParams()
    stage_dir = cache / "stage" / params.key()
    stage_dir.mkdir(parents=True, exist_ok=True)
    seed: int = args.seed
    timings: dict[str, float] = {}
    dropped: Counter[str] = Counter()

    # 1. sources
    sources.ensure_apt_lists(log)
    debs: list[sources.DebPackage] = []
    missing: list[str] = []
    roots: dict[str, Path] = {}
    for name in sources.all_packages():
        deb = sources.fetch_deb(name, cache / "debs", log)
        if deb is None:
            missing.append(name)
            continue
        debs.append(deb)
        roots[name] = sources.extract_deb(cache / "debs" / deb.filename, cache / "root")
    transcripts = sources.read_transcripts(roots)
    ast_clips, ast_texts = sources.asterisk_catalogue(roots, transcripts)
    kde_clips, kde_texts = sources.kde_catalogue(roots)
    clips = [*ast_clips, *kde_clips]
    texts = {**ast_texts, **kde_texts}
    log(f"sources: {len(clips)} real recordings, {len(texts)} known transcripts")
    timings["sources"] = time.monotonic() - started

    # 2. splits
    speaker_split = splits.assign_speakers(Counter(c.speaker for c in clips), seed)
    text_split = splits.assign_texts(clips, speaker_split, seed)
    candidates = splits.real_candidates(clips, speaker_split, text_split, seed)
    by_real_id = {c.clip_id: c for c in clips}

    # 3. stage A, real
    prepared: list[Prepared] = []
    for split in SPLITS:
        items = [(c.clip_id, str(c.path), c.fmt) for c in candidates[split]]
        kept, n_drop = _prepare_until(items, args.cap, stage_dir, params, args.workers)
        dropped["real_unusable"] += n_drop
        for clip_id, meta in kept:
            clip = by_real_id[clip_id]
            prepared.append(
                Prepared(
                    clip_id,
                    "real",
                    split,
                    clip.speaker,
                    "human",
                    "real",
                    clip.language,
                    clip.text_id,
                    clip.package,
                    meta["native_rate"],
                    meta["codec"],
                    meta["seconds"],
                )
            )
        log(f"{split}: {len(kept)} real clips kept of {len(items)} candidates ({n_drop} unusable)")
    timings["real_stage_a"] = time.monotonic() - started

    # 4. engines, synthesis, stage A fakes
    installed = tools.ensure_engines(not args.no_install, log)
    installed_versions = {p.name: p.version for p in installed}
    tool_env = None if args.no_neural else tools.ensure_tool_env(cache, log)
    voices = synth.voice_catalogue(t.language for t in texts.values())
    if tool_env is None:
        voices = [v for v in voices if v.engine not in ("piper", "hibari")]
    timings["tools"] = time.monotonic() - started
    plans: dict[str, list[synth.SynthJob]] = {}
    for split in SPLITS:
        real_here = [p for p in prepared if p.split == split]
        offer = splits.SplitTexts(
            split=split,
            texts=[texts[t] for t in sorted(texts) if text_split.get(t) == split],
            matched=frozenset(p.text_id for p in real_here),
            real_languages=Counter(p.language for p in real_here),
            real_corpora=Counter(splits.corpus_of(p.text_id) for p in real_here),
        )
        want = math.ceil(len(real_here) * args.oversample)
        plans[split] = splits.allocate_fakes(voices, offer, want, seed, args.espeak_weight)
    all_jobs = [job for jobs in plans.values() for job in jobs]
    failed = set(
        synth.synthesize(
            all_jobs, cache, tool_env.python if tool_env else None, seed, args.workers, log
        )
    )
    dropped["synthesis_failed"] += len(failed)
    timings["synthesis"] = time.monotonic() - started
    for split in SPLITS:
        target = sum(1 for p in prepared if p.split == split and p.label == "real")
        jobs = [j for j in plans[split] if j.clip_id not in failed]
        by_fake_id = {j.clip_id: j for j in jobs}
        items = [(j.clip_id, str(synth.raw_path(cache, j)), None) for j in jobs]
        kept, n_drop = _prepare_until(items, target, stage_dir, params, args.workers)
        dropped["fake_unusable"] += n_drop
        for clip_id, meta in kept:
            job = by_fake_id[clip_id]
            prepared.append(
                Prepared(
                    clip_id,
                    "fake",
                    split,
                    job.speaker_or_voice,
                    job.voice.engine,
                    job.voice.family,
                    job.language,
                    job.text_id,
                    _engine_source(job.voice.engine, job.voice.voice, installed_versions),
                    meta["native_rate"],
                    meta["codec"],
                    meta["seconds"],
                )
            )
        log(f"{split}: {len(kept)} fake clips kept for {target} real ({n_drop} unusable)")
    timings["fake_stage_a"] = time.monotonic() - started

    # 5. channel plan, stage B
    narrow: set[str] = set()
    fractions: dict[str, float] = {}
    for split in SPLITS:
        groups = {
            label: [
                (p.clip_id, p.native_rate <= process.NARROW_RATE)
                for p in prepared
                if p.split == split and p.label == label
            ]
            for label in ("real", "fake")
        }
        chosen, fractions[split] = splits.narrowband_plan(groups, args.narrowband, seed)
        narrow |= chosen
    wav_paths = {
        p.clip_id: out / "audio" / p.split / p.label / f"{p.clip_id}.wav" for p in prepared
    }
    tasks = [
        (
            p.clip_id,
            str(stage_dir),
            str(wav_paths[p.clip_id]),
            p.clip_id in narrow,
            seed,
            params,
        )
        for p in prepared
    ]
    log(f"stage B for {len(tasks)} clips")
    results = _parallel_map(_stage_b, tasks, args.workers)
    removed = _remove_stale(out / "audio", wav_paths.values())
    if removed:
        log(f"removed {removed} stale WAVs from an earlier build")
    timings["stage_b"] = time.monotonic() - started

    # 6. manifest and report
    records = [
        ClipRecord(
            path=wav_paths[p.clip_id].relative_to(out).as_posix(),
            label=p.label,
            split=p.split,
            speaker_or_voice=p.speaker_or_voice,
            engine=p.engine,
            family=p.family,
            language=p.language,
            text_id=p.text_id,
            duration_s=round(r["features"]["duration_s"], 3),
            sha256=r["sha256"],
            channel=r["channel"],
            native_rate=p.native_rate,
            source=p.source,
            features=r["features"],
        )
        for p, r in zip(prepared, results, strict=True)
    ]
    rows = [
        {
            "split": r.split,
            "label": r.label,
            "language": r.language,
            "english": str(splits.is_english(r.language)),
            "corpus": splits.corpus_of(r.text_id),
            **r.features,
        }
        for r in records
    ]
    shortcuts = report.shortcut_report(rows)
    document = summary(
        records,
        {
            "seed": seed,
            "settings": {
                "cap_per_class_per_split": args.cap,
                "oversample": args.oversample,
                "narrowband_target": args.narrowband,
                "espeak_weight": args.espeak_weight,
                "chain": asdict(params),
                "neural_engines": tool_env is not None,
            },
            "narrowband_fraction": fractions,
            "splits": {
                "speakers": dict(sorted(speaker_split.items())),
                "fixed_speakers": splits.FIXED_SPEAKER_SPLITS,
                "kde_target": splits.KDE_TARGET,
                "pool_overrides": splits.POOL_OVERRIDES,
                "english_real_share": splits.ENGLISH_REAL_SHARE,
                "texts_per_split": dict(Counter(text_split.values())),
                "voices": {
                    v.key: {
                        "family": v.family,
                        "splits": list(v.splits),
                        "weight": v.weight,
                        "held_out": v.held_out,
                        "accepts": list(v.accepts),
                    }
                    for v in voices
                },
            },
            "dropped": dict(dropped),
            "provenance": {
                "debian_packages": [asdict(d) for d in debs],
                "missing_packages": missing,
                "engines": [asdict(p) for p in installed],
                "wheels": [asdict(w) for w in tool_env.wheels] if tool_env else [],
                "tool_env": tool_env.frozen if tool_env else [],
            },
            "shortcut_flagged": shortcuts["flagged"],
        },
    )
    write_csv(out / "manifest.csv", records)
    write_json(out / "manifest.json", document)
    write_json(out / "shortcut_report.json", shortcuts)
    text = report.format_report(shortcuts)
    (out / "shortcut_report.txt").write_text(text, encoding="utf-8")
    timings["total"] = time.monotonic() - started
    write_json(out / "build_info.json", {"seconds": {k: round(v, 1) for k, v in timings.items()}})
    print(text)
    counts = document["counts"]
    for split in SPLITS:
        c = counts.get(split, {})
        print(f"{split}: real {c.get('real', 0)}  fake {c.get('fake', 0)}")
    print(f"manifest: {out / 'manifest.csv'}  ({len(records)} clips, {timings['total']:.0f} s)")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m training.dataset.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path(".run/dataset"), help="output directory")
    parser.add_argument("--cache", type=Path, default=None, help="cache (default OUT/cache)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--cap", type=int, default=600, help="max clips per class per split")
    parser.add_argument("--oversample", type=float, default=1.5, help="fake jobs per needed fake")
    parser.add_argument("--narrowband", type=float, default=0.5, help="8 kHz channel fraction")
    parser.add_argument(
        "--espeak-weight",
        type=float,
        default=synth.ESPEAK_GROUP_WEIGHT,
        help="espeak-ng's share of the synthetic budget, in voices (the others weigh 1-3)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-install", action="store_true", help="never apt-get install")
    parser.add_argument("--no-neural", action="store_true", help="skip Piper and hibari")
    parser.add_argument("--nice", type=int, default=10, help="niceness increment (0: none)")
    parser.add_argument(
        "--images", type=Path, default=None,
        help="also build the image evaluation set there (dataset/images.py, ~950 MB download)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    status = build(args)
    if status == 0 and args.images is not None:
        from training.dataset import images

        rows = images.build(args.images)
        print(f"images: {len(rows)} -> {args.images / 'manifest.csv'}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
