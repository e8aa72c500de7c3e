"""Speaker-, text- and engine-disjoint splits, clip ordering, synthetic budgets, channels.

Rules (docs/dataset.md has the resulting table):

1. Every real speaker unit lives in exactly one split (`FIXED_SPEAKER_SPLITS`, then the KDE
   language units greedily, largest first, towards `KDE_TARGET`).
2. Every text id lives in exactly one split. A text pool (asterisk language, or KDE corpus and
   language) is spread over the splits of the speakers who read it, equally unless
   `POOL_OVERRIDES` says otherwise; each text id is placed by a seeded hash. A real clip is kept
   only when its speaker's split and its text's split agree. Synthetic clips of a text go to that
   text's split, so real and fake share wording inside a split and never across.
3. Voices whose `splits` is ("test",) are held out: never in train or dev.
4. Narrow-band (8 kHz mu-law) channel: the same fraction in both classes of every split.
5. Real clips are capped per split in seeded order, English first up to `ENGLISH_REAL_SHARE`;
   synthetic clips follow the split's real mix of corpora (sentences, letters, words).

All choices are pure functions of the seed and the inputs' ids, never of listing order.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from training.dataset.sources import RealClip, Text
from training.dataset.synth import (
    ESPEAK_GROUP_WEIGHT,
    ESPEAK_VARIANTS,
    SPLITS,
    SynthJob,
    VoiceSpec,
)

# Allison (en + es) trains; the other named voice talents and the KDE English speakers are
# held for dev/test. Carlo and Menardi both read the Italian prompts, so those are shared out.
FIXED_SPEAKER_SPLITS: dict[str, str] = {
    "ast:allison": "train",
    "ast:carlo": "train",
    "ast:ivrvoice-ru": "dev",
    "ast:june": "test",
    "ast:menardi": "test",
    "kde:en": "test",
}
KDE_TARGET: dict[str, float] = {"train": 0.6, "dev": 0.2, "test": 0.2}
# English prompts are the only sentences the English-only engines can read: a quarter goes to
# test and some to dev (synthetic only there, since Allison is in train), the rest stays with her.
POOL_OVERRIDES: dict[str, dict[str, float]] = {"ast:en": {"train": 0.6, "dev": 0.15, "test": 0.25}}
# Most synthetic voices read English only, while most real speech is not English: where a split
# has English real speech, at least this share of its real clips is English (language balance
# against speaker diversity: Allison would otherwise be a tenth of train, or nine tenths).
ENGLISH_REAL_SHARE = 0.3


def unit_float(seed: int, *parts: str) -> float:
    """A deterministic number in [0, 1) from the seed and some ids."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def seeded_order(seed: int, ids: Iterable[str], salt: str = "") -> list[str]:
    """The ids sorted by their seeded hash: a shuffle that ignores the input order."""
    return sorted(set(ids), key=lambda i: (unit_float(seed, salt, i), i))


def pick_weighted(u: float, weights: Mapping[str, float]) -> str:
    """The split at position `u` of the cumulative weights, in train/dev/test order."""
    names = [s for s in SPLITS if weights.get(s, 0.0) > 0]
    total = sum(weights[s] for s in names)
    acc = 0.0
    for name in names:
        acc += weights[name] / total
        if u < acc:
            return name
    return names[-1]


# ---------------------------------------------------------------- speakers and texts


def assign_speakers(clip_counts: Mapping[str, int], seed: int) -> dict[str, str]:
    """Speaker unit -> split: the fixed table, then the other units largest first."""
    out = {unit: FIXED_SPEAKER_SPLITS[unit] for unit in clip_counts if unit in FIXED_SPEAKER_SPLITS}
    flexible = [u for u in clip_counts if u not in out]
    have: Counter[str] = Counter()
    for unit, split in out.items():
        if unit.startswith("kde:"):
            have[split] += clip_counts[unit]
    total = sum(have.values()) + sum(clip_counts[u] for u in flexible)
    for unit in sorted(flexible, key=lambda u: (-clip_counts[u], unit_float(seed, "unit", u))):
        split = max(SPLITS, key=lambda s: KDE_TARGET[s] * total - have[s])
        out[unit] = split
        have[split] += clip_counts[unit]
    return out


def text_pool(text_id: str) -> str:
    """`ast:en:vm-intro` -> `ast:en`; `kl:en_GB:A` -> `kl:en_GB`."""
    return text_id.rsplit(":", 1)[0] if text_id.count(":") >= 2 else text_id


def assign_texts(
    clips: Sequence[RealClip], speaker_split: Mapping[str, str], seed: int
) -> dict[str, str]:
    """Text id -> split, for every text id some real clip reads."""
    pool_splits: dict[str, set[str]] = defaultdict(set)
    for clip in clips:
        pool_splits[text_pool(clip.text_id)].add(speaker_split[clip.speaker])
    out: dict[str, str] = {}
    for text_id in sorted({c.text_id for c in clips}):
        pool = text_pool(text_id)
        weights = POOL_OVERRIDES.get(pool) or dict.fromkeys(pool_splits[pool], 1.0)
        out[text_id] = pick_weighted(unit_float(seed, "text", text_id), weights)
    return out


def is_english(language: str) -> bool:
    """English is the only language most engines read."""
    return language.split("-", 1)[0] == "en"


def merge_by_share(
    first: Sequence[RealClip], rest: Sequence[RealClip], share: float
) -> list[RealClip]:
    """Interleave two ordered lists so every prefix holds at least `share` of `first` (while it
    lasts): a cap applied to any prefix keeps that share."""
    out: list[RealClip] = []
    i = j = 0
    while i < len(first) or j < len(rest):
        take_first = j >= len(rest) or (i < len(first) and i < share * (len(out) + 1))
        if take_first:
            out.append(first[i])
            i += 1
        else:
            out.append(rest[j])
            j += 1
    return out


def real_candidates(
    clips: Sequence[RealClip],
    speaker_split: Mapping[str, str],
    text_split: Mapping[str, str],
    seed: int,
    english_share: float = ENGLISH_REAL_SHARE,
) -> dict[str, list[RealClip]]:
    """Per split, the usable real clips (speaker and text split agree) in seeded order, with at
    least `english_share` English ones in every prefix where the split has them."""
    by_id = {c.clip_id: c for c in clips}
    english: dict[str, list[RealClip]] = {s: [] for s in SPLITS}
    other: dict[str, list[RealClip]] = {s: [] for s in SPLITS}
    for clip_id in seeded_order(seed, by_id, "real"):
        clip = by_id[clip_id]
        split = speaker_split[clip.speaker]
        if text_split[clip.text_id] == split:
            (english if is_english(clip.language) else other)[split].append(clip)
    return {s: merge_by_share(english[s], other[s], english_share) for s in SPLITS}


# ---------------------------------------------------------------- synthetic budget


def water_fill(weights: Mapping[str, float], caps: Mapping[str, int], total: int) -> dict[str, int]:
    """Split `total` in proportion to `weights` without exceeding `caps`; integers summing to
    min(total, sum(caps)), leftovers of capped entries redistributed to the others."""
    share = dict.fromkeys(weights, 0.0)
    active = {k for k, w in weights.items() if w > 0 and caps.get(k, 0) > 0}
    left = float(total)
    while active and left > 1e-9:
        wsum = sum(weights[k] for k in active)
        give = {k: left * weights[k] / wsum for k in active}
        full = {k for k in active if share[k] + give[k] >= caps[k]}
        if not full:
            for k in active:
                share[k] += give[k]
            break
        for k in sorted(full):
            left -= caps[k] - share[k]
            share[k] = float(caps[k])
            active.discard(k)
    out = {k: min(math.floor(v + 1e-9), caps.get(k, 0)) for k, v in share.items()}
    want = min(total, sum(caps.get(k, 0) for k in weights if weights[k] > 0))
    order = sorted(share, key=lambda k: (-(share[k] - out[k]), k))
    while sum(out.values()) < want:
        grew = False
        for k in order:
            if sum(out.values()) >= want:
                break
            if out[k] < caps.get(k, 0) and weights[k] > 0:
                out[k] += 1
                grew = True
        if not grew:
            break
    return out


@dataclass(frozen=True)
class SplitTexts:
    """What a split offers the synthesisers."""

    split: str
    texts: Sequence[Text]  # every text id placed in this split
    matched: frozenset[str]  # text ids a kept real clip reads (preferred)
    real_languages: Mapping[str, int]  # kept real clips per language tag
    real_corpora: Mapping[str, int]  # kept real clips per corpus (`ast`, `kl`, `kt`)


def corpus_of(text_id: str) -> str:
    """`ast:en:vm-intro` -> `ast` (prompt sentences); `kl` letters/syllables; `kt` words."""
    return text_id.split(":", 1)[0]


def pick_texts(
    candidates: Sequence[Text], offer: SplitTexts, quota: int, seed: int, salt: str
) -> list[Text]:
    """`quota` texts for one voice: corpora in the proportions of the split's real clips (so
    sentence and single-word lengths match), texts read by a kept real clip first, each group in
    seeded order; returned in seeded order so any prefix keeps those proportions."""
    by_corpus: dict[str, list[Text]] = defaultdict(list)
    for text in candidates:
        by_corpus[corpus_of(text.text_id)].append(text)
    weights = {c: float(offer.real_corpora.get(c, 0)) for c in by_corpus}
    if not any(weights.values()):
        weights = dict.fromkeys(by_corpus, 1.0)
    counts = water_fill(weights, {c: len(t) for c, t in by_corpus.items()}, quota)
    chosen: list[Text] = []
    for corpus, texts in sorted(by_corpus.items()):
        by_id = {t.text_id: t for t in texts}
        order = seeded_order(seed, by_id, salt)
        ranked = [i for i in order if i in offer.matched] + [
            i for i in order if i not in offer.matched
        ]
        chosen.extend(by_id[i] for i in ranked[: counts.get(corpus, 0)])
    if len(chosen) < quota:  # corpora the real clips lack: only if nothing else is left
        taken = {t.text_id for t in chosen}
        rest = {t.text_id: t for t in candidates if t.text_id not in taken}
        chosen.extend(rest[i] for i in seeded_order(seed, rest, salt)[: quota - len(chosen)])
    ids = {t.text_id: t for t in chosen}
    return [ids[i] for i in seeded_order(seed, ids, salt + ":order")]


def allocate_fakes(
    voices: Sequence[VoiceSpec],
    offer: SplitTexts,
    target: int,
    seed: int,
    espeak_weight: float = ESPEAK_GROUP_WEIGHT,
) -> list[SynthJob]:
    """About `target` synthetic jobs for one split, spread over the voices allowed there and
    interleaved so that cutting the list's tail removes every voice evenly."""
    candidates: dict[str, list[Text]] = {}
    specs: dict[str, VoiceSpec] = {}
    for voice in voices:
        if offer.split not in voice.splits:
            continue
        texts = [t for t in offer.texts if t.language in voice.accepts]
        if texts:
            candidates[voice.key] = texts
            specs[voice.key] = voice
    espeak_real = {
        k: sum(offer.real_languages.get(tag, 0) for tag in specs[k].accepts)
        for k in specs
        if specs[k].group == "espeak-ng"
    }
    espeak_total = sum(espeak_real.values())
    weights: dict[str, float] = {}
    for key, voice in specs.items():
        if voice.group == "espeak-ng":
            share = espeak_real[key] / espeak_total if espeak_total else 1 / len(espeak_real)
            weights[key] = espeak_weight * share
        else:
            weights[key] = voice.weight
    quotas = water_fill(weights, {k: len(v) for k, v in candidates.items()}, target)
    placed: list[tuple[float, str, SynthJob]] = []
    for key, quota in sorted(quotas.items()):
        voice = specs[key]
        for n, text in enumerate(pick_texts(candidates[key], offer, quota, seed, key)):
            text_id = text.text_id
            variant = ""
            if voice.engine == "espeak-ng":
                pick = unit_float(seed, "variant", key, text_id)
                variant = ESPEAK_VARIANTS[int(pick * len(ESPEAK_VARIANTS))]
            clip_id = "fake-" + hashlib.sha1(f"{key}\x1f{text_id}".encode()).hexdigest()[:12]
            job = SynthJob(clip_id, voice, variant, text.language, text_id, text.text, offer.split)
            placed.append(((n + 0.5) / quota, key, job))
    placed.sort(key=lambda item: (item[0], item[1]))
    return [job for _, _, job in placed]


# ---------------------------------------------------------------- channel plan


def narrowband_plan(
    groups: Mapping[str, Sequence[tuple[str, bool]]], target: float, seed: int
) -> tuple[set[str], float]:
    """Choose the clips that get the 8 kHz channel, per class of one split.

    `groups` maps a label to (clip id, natively narrow-band) pairs. Natively narrow-band clips
    always count as narrow-band; wide-band ones are added in seeded order until every label
    reaches the same fraction: `target`, or more if one class is already more narrow-band.
    Returns (clip ids, the fraction used).
    """
    fraction = target
    for items in groups.values():
        if items:
            fraction = max(fraction, sum(1 for _, nb in items if nb) / len(items))
    chosen: set[str] = set()
    for label, items in groups.items():
        natives = {cid for cid, nb in items if nb}
        need = max(0, round(fraction * len(items)) - len(natives))
        wide = seeded_order(seed, (c for c, nb in items if not nb), label)
        chosen |= natives | set(wide[:need])
    return chosen, fraction
