"""Synthetic speech: the engines, their voices, and batch synthesis into a raw-audio cache.

Every engine runs as a separate program: espeak-ng, flite and festival from Debian; Piper
(GPL-3, VITS) and hibari (Apache-2.0, Kokoro-82M distilled) inside the builder's own tool
virtualenv through `tool_worker.py`. Nothing here imports an engine, and the detector service
never imports this package.

Each raw file is keyed by engine, voice and text id, so a rerun only synthesises what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

Log = Callable[[str], None]

SPLITS = ("train", "dev", "test")
ALL_SPLITS = SPLITS
TEST_ONLY = ("test",)


@dataclass(frozen=True)
class VoiceSpec:
    """One synthetic voice: what it is, what it can read, where it may appear."""

    engine: str
    voice: str
    family: str  # formant / diphone / clustergen / hts / vits / kokoro
    accepts: tuple[str, ...]  # language tags of the texts it reads
    splits: tuple[str, ...]
    weight: float  # share of a split's synthetic budget (espeak voices share one group weight)
    group: str

    @property
    def key(self) -> str:
        """`engine:voice`, the manifest's speaker_or_voice for this voice."""
        return f"{self.engine}:{self.voice}"

    @property
    def held_out(self) -> bool:
        """Only ever in test: never seen in train or dev."""
        return self.splits == TEST_ONLY


ENGLISH = ("en", "en-US", "en-GB")

# Held out of train and dev entirely: festival HTS and hibari (Kokoro) are whole families the
# detector never sees in training; flite slt is an unseen voice of a seen engine.
ENGLISH_VOICES: tuple[VoiceSpec, ...] = (
    VoiceSpec("flite", "kal", "diphone", ENGLISH, ALL_SPLITS, 1.0, "flite:kal"),
    VoiceSpec("flite", "kal16", "diphone", ENGLISH, ALL_SPLITS, 1.0, "flite:kal16"),
    VoiceSpec("flite", "awb", "clustergen", ENGLISH, ALL_SPLITS, 1.0, "flite:awb"),
    VoiceSpec("flite", "rms", "clustergen", ENGLISH, ALL_SPLITS, 1.0, "flite:rms"),
    VoiceSpec("flite", "slt", "clustergen", ENGLISH, TEST_ONLY, 1.0, "flite:slt"),
    VoiceSpec("festival", "kal_diphone", "diphone", ENGLISH, ALL_SPLITS, 1.0, "festival:kal"),
    VoiceSpec("festival", "ked_diphone", "diphone", ENGLISH, ALL_SPLITS, 1.0, "festival:ked"),
    VoiceSpec("festival", "cmu_us_slt_arctic_hts", "hts", ENGLISH, TEST_ONLY, 3.0, "festival:hts"),
    VoiceSpec("piper", "en_US-joe-medium", "vits", ENGLISH, ALL_SPLITS, 2.0, "piper:joe"),
    VoiceSpec("hibari", "heart", "kokoro", ENGLISH, TEST_ONLY, 3.0, "hibari:heart"),
)  # fmt: skip

# espeak-ng is the only engine that reads the non-English texts, whose languages follow the real
# clips'; its share trades language balance (most real speech is not English) against variety.
ESPEAK_GROUP_WEIGHT = 6.0
# Pitch variants picked per clip (seeded) so the formant voice is not always the default male.
ESPEAK_VARIANTS = ("", "+m3", "+f2", "+f3", "+f4")

# Text language tag -> espeak-ng voice; tags not listed fall back to their base language.
_ESPEAK_SPECIAL = {
    "en": "en-us", "en-US": "en-us", "en-GB": "en-gb", "es-MX": "es-419", "fr": "fr-fr",
    "fr-CA": "fr-fr", "it-IT": "it", "ru-RU": "ru", "pt-BR": "pt-br",
}  # fmt: skip
_ESPEAK_LANGUAGES = (  # base languages of `espeak-ng --voices` (1.51) this builder may use
    "af am an ar as az ba be bg bn bs ca cs cv cy da de el eo es et eu fa fi ga gd gn gu he "
    "hi hr ht hu hy ia id is it ja ka kk kl kn ko ku ky la lb lt lv mi mk ml mr ms mt my nb "
    "ne nl om or pa pl pt qu ro ru sd si sk sl sq sr sv sw ta te th tk tn tr tt ug uk ur uz vi"
)
_ESPEAK_BASE = frozenset(_ESPEAK_LANGUAGES.split())


def espeak_voice_for(tag: str) -> str | None:
    """The espeak-ng voice that reads texts tagged `tag`, or None if espeak-ng has none."""
    if tag in _ESPEAK_SPECIAL:
        return _ESPEAK_SPECIAL[tag]
    base = tag.replace("@", "-").split("-", 1)[0]
    return base if base in _ESPEAK_BASE else None


def voice_catalogue(languages: Iterable[str]) -> list[VoiceSpec]:
    """The English voices plus one espeak-ng voice per espeak voice the texts need."""
    by_voice: dict[str, list[str]] = defaultdict(list)
    for tag in sorted(set(languages)):
        voice = espeak_voice_for(tag)
        if voice is not None:
            by_voice[voice].append(tag)
    espeak = [
        VoiceSpec("espeak-ng", v, "formant", tuple(tags), ALL_SPLITS, 1.0, "espeak-ng")
        for v, tags in sorted(by_voice.items())
    ]
    return [*espeak, *ENGLISH_VOICES]


@dataclass(frozen=True)
class SynthJob:
    """One synthetic clip to render."""

    clip_id: str
    voice: VoiceSpec
    variant: str  # espeak-ng pitch variant ("" elsewhere)
    language: str
    text_id: str
    text: str
    split: str

    @property
    def voice_name(self) -> str:
        """The voice as run, e.g. `fr-fr+f3` or `slt`."""
        return f"{self.voice.voice}{self.variant}"

    @property
    def speaker_or_voice(self) -> str:
        """`engine:voice` (with the espeak variant)."""
        return f"{self.voice.engine}:{self.voice_name}"


def raw_path(cache: Path, job: SynthJob) -> Path:
    """Where the engine's own output for this job is cached."""
    digest = hashlib.sha1(job.text_id.encode()).hexdigest()[:16]
    return cache / "synth" / job.voice.engine / job.voice_name / f"{digest}.wav"


def _done(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 44


def _tts_text(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- engines


def _guarded(run: Callable[[SynthJob, Path], None], job: SynthJob, out: Path) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):  # reported later as a failed clip
        run(job, out)


def _run_one(run: Callable[[SynthJob, Path], None], cache: Path, job: SynthJob) -> None:
    _guarded(run, job, raw_path(cache, job))


def _espeak(job: SynthJob, out: Path) -> None:
    tmp = out.with_suffix(".part.wav")
    subprocess.run(
        ["espeak-ng", "-v", job.voice_name, "-w", str(tmp), "--stdin"],
        input=_tts_text(job.text),
        text=True,
        check=True,
        capture_output=True,
    )
    tmp.replace(out)


def _flite(job: SynthJob, out: Path) -> None:
    tmp = out.with_suffix(".part.wav")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as handle:
        handle.write(_tts_text(job.text) + "\n")
        handle.flush()
        subprocess.run(
            ["flite", "-voice", job.voice.voice, "-f", handle.name, "-o", str(tmp)],
            check=True,
            capture_output=True,
        )
    tmp.replace(out)


def _scheme_string(text: str) -> str:
    return '"' + _tts_text(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_batch(voice: str, items: list[tuple[str, Path]]) -> None:
    lines = [f"(voice_{voice})"]
    parts: list[tuple[Path, Path]] = []
    for text, out in items:
        tmp = out.with_suffix(".part.wav")
        parts.append((tmp, out))
        lines.append(f'(utt.save.wave (SynthText {_scheme_string(text)}) "{tmp}" \'riff)')
    with tempfile.NamedTemporaryFile("w", suffix=".scm", encoding="utf-8") as script:
        script.write("\n".join(lines) + "\n")
        script.flush()
        # An utterance festival cannot say aborts the script; the rest is retried one by one.
        subprocess.run(["festival", "-b", script.name], check=False, capture_output=True)
    for tmp, out in parts:
        if _done(tmp):
            tmp.replace(out)
    missing = [(text, out) for text, out in items if not _done(out)]
    if len(items) > 1:
        for text, out in missing:
            _festival_batch(voice, [(text, out)])


def _worker_batch(
    engine: str, items: list[tuple[str, Path, int]], tool_python: Path, seed: int
) -> None:
    payload = {
        "engine": engine,
        "seed": seed,
        "jobs": [{"text": _tts_text(t), "out": str(p), "seed": s} for t, p, s in items],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as handle:
        json.dump(payload, handle)
        handle.flush()
        worker = Path(__file__).with_name("tool_worker.py")
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
        subprocess.run(
            [str(tool_python), str(worker), handle.name], check=True, capture_output=True, env=env
        )


def _job_seed(seed: int, job: SynthJob) -> int:
    digest = hashlib.sha256(f"{seed}:{job.clip_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def synthesize(
    jobs: list[SynthJob], cache: Path, tool_python: Path | None, seed: int, workers: int, log: Log
) -> list[str]:
    """Render every job that is not cached yet; returns the clip ids that failed."""
    todo = [j for j in jobs if not _done(raw_path(cache, j))]
    for job in todo:
        raw_path(cache, job).parent.mkdir(parents=True, exist_ok=True)
    by_engine: dict[str, list[SynthJob]] = defaultdict(list)
    for job in todo:
        by_engine[job.voice.engine].append(job)
    for engine, batch in sorted(by_engine.items()):
        log(f"synthesising {len(batch)} clips with {engine}")
        if engine in ("espeak-ng", "flite"):
            runner = _espeak if engine == "espeak-ng" else _flite
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(partial(_run_one, runner, cache), batch))
        elif engine == "festival":
            chunks: list[tuple[str, list[tuple[str, Path]]]] = []
            by_voice: dict[str, list[SynthJob]] = defaultdict(list)
            for job in batch:
                by_voice[job.voice.voice].append(job)
            for voice, voice_jobs in sorted(by_voice.items()):
                items = [(j.text, raw_path(cache, j)) for j in voice_jobs]
                chunks.extend((voice, items[i : i + 100]) for i in range(0, len(items), 100))
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda c: _festival_batch(*c), chunks))
        elif engine in ("piper", "hibari"):
            if tool_python is None:
                log(f"no tool environment: {engine} skipped")
                continue
            items3 = [(j.text, raw_path(cache, j), _job_seed(seed, j)) for j in batch]
            _worker_batch(engine, items3, tool_python, seed)
        else:
            raise ValueError(f"unknown engine {engine}")
    return [j.clip_id for j in jobs if not _done(raw_path(cache, j))]
