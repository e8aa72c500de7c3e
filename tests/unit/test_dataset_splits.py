"""Dataset splits: speakers, texts and held-out voices never cross; choices follow the seed only."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from training.dataset.sources import RealClip, Text
from training.dataset.splits import (
    SplitTexts,
    allocate_fakes,
    assign_speakers,
    assign_texts,
    narrowband_plan,
    pick_weighted,
    real_candidates,
    water_fill,
)
from training.dataset.synth import SPLITS, voice_catalogue


def _clip(speaker: str, text_id: str, language: str = "en-US") -> RealClip:
    return RealClip(
        clip_id=f"real-{speaker}-{text_id}",
        path=Path("/nowhere.wav"),
        fmt=None,
        speaker=speaker,
        language=language,
        text_id=text_id,
        package="pkg",
    )


def _corpus() -> list[RealClip]:
    clips = [_clip("ast:allison", f"ast:en:p{i}") for i in range(200)]
    clips += [_clip("ast:allison", f"ast:es:p{i}", "es-MX") for i in range(100)]
    clips += [_clip("ast:carlo", f"ast:it:p{i}", "it-IT") for i in range(100)]
    clips += [_clip("ast:menardi", f"ast:it:p{i}", "it-IT") for i in range(100)]
    clips += [_clip("ast:june", f"ast:fr:p{i}", "fr-CA") for i in range(100)]
    for lang, n in {"de": 60, "fr": 50, "ml": 120, "uk": 40, "en": 30, "da": 20}.items():
        clips += [_clip(f"kde:{lang}", f"kl:{lang}:w{i}", lang) for i in range(n)]
    return clips


def test_speakers_are_placed_whole_and_allison_is_one_person() -> None:
    clips = _corpus()
    placed = assign_speakers(Counter(c.speaker for c in clips), seed=1)
    assert placed["ast:allison"] == "train"
    assert placed["ast:june"] == "test"
    assert placed["kde:en"] == "test"
    assert set(placed.values()) <= set(SPLITS)
    # every speaker lands in exactly one split, so the en and es Allison clips go together
    kept = real_candidates(clips, placed, assign_texts(clips, placed, 1), seed=1)
    where = {(c.speaker, split) for split, group in kept.items() for c in group}
    assert len({speaker for speaker, _ in where}) == len(where)


def test_text_ids_never_cross_splits_and_real_clips_follow_their_text() -> None:
    clips = _corpus()
    placed = assign_speakers(Counter(c.speaker for c in clips), seed=3)
    texts = assign_texts(clips, placed, seed=3)
    kept = real_candidates(clips, placed, texts, seed=3)
    for split, group in kept.items():
        for clip in group:
            assert texts[clip.text_id] == split == placed[clip.speaker]
    # shared Italian prompts are divided between Carlo (train) and Menardi (test)
    italian = Counter(texts[f"ast:it:p{i}"] for i in range(100))
    assert set(italian) == {"train", "test"}
    # English prompts are spread so English-only engines have texts everywhere
    english = Counter(texts[f"ast:en:p{i}"] for i in range(200))
    assert set(english) == set(SPLITS)
    assert english["train"] > english["test"] > english["dev"]


def test_assignment_ignores_input_order_and_depends_on_seed() -> None:
    clips = _corpus()
    counts = Counter(c.speaker for c in clips)
    placed = assign_speakers(counts, seed=5)
    forward = assign_texts(clips, placed, seed=5)
    backward = assign_texts(list(reversed(clips)), placed, seed=5)
    assert forward == backward
    assert assign_texts(clips, placed, seed=6) != forward


def test_real_candidates_put_english_first_up_to_the_share() -> None:
    clips = _corpus()
    placed = assign_speakers(Counter(c.speaker for c in clips), seed=2)
    kept = real_candidates(clips, placed, assign_texts(clips, placed, 2), seed=2, english_share=0.3)
    train = kept["train"]
    for n in (10, 50, 100):
        english = sum(1 for c in train[:n] if c.language.startswith("en"))
        assert english >= 0.3 * n - 1
    assert sum(1 for c in train[:100] if c.language.startswith("en")) <= 31
    assert not any(c.language.startswith("en") for c in kept["dev"])


def test_pick_weighted_respects_weights() -> None:
    weights = {"train": 0.5, "test": 0.5}
    assert pick_weighted(0.1, weights) == "train"
    assert pick_weighted(0.9, weights) == "test"
    assert pick_weighted(0.99999, {"dev": 1.0}) == "dev"


@pytest.mark.parametrize(
    ("weights", "caps", "total", "expected"),
    [
        ({"a": 1.0, "b": 1.0}, {"a": 10, "b": 10}, 10, {"a": 5, "b": 5}),
        ({"a": 1.0, "b": 1.0}, {"a": 2, "b": 10}, 10, {"a": 2, "b": 8}),
        ({"a": 3.0, "b": 1.0}, {"a": 100, "b": 100}, 8, {"a": 6, "b": 2}),
        ({"a": 1.0, "b": 0.0}, {"a": 3, "b": 100}, 10, {"a": 3, "b": 0}),
    ],
)
def test_water_fill(
    weights: dict[str, float], caps: dict[str, int], total: int, expected: dict[str, int]
) -> None:
    assert water_fill(weights, caps, total) == expected


def _offer(split: str) -> SplitTexts:
    texts = [Text(f"ast:en:p{i}", "en-US", f"prompt {i}") for i in range(50)]
    texts += [Text(f"ast:fr:p{i}", "fr-CA", f"phrase {i}") for i in range(50)]
    texts += [Text(f"kl:en:w{i}", "en", f"w{i}") for i in range(50)]
    return SplitTexts(
        split=split,
        texts=texts,
        matched=frozenset(f"ast:fr:p{i}" for i in range(30)),
        real_languages={"fr-CA": 30, "en": 10},
        real_corpora={"ast": 30, "kl": 10},
    )


def test_held_out_voices_appear_only_in_test() -> None:
    voices = voice_catalogue(["en-US", "fr-CA", "en"])
    held_out = {v.key for v in voices if v.held_out}
    assert held_out == {"festival:cmu_us_slt_arctic_hts", "hibari:heart", "flite:slt"}
    for split in SPLITS:
        jobs = allocate_fakes(voices, _offer(split), 120, seed=2)
        assert len(jobs) == 120
        keys = {j.voice.key for j in jobs}
        assert keys & held_out if split == "test" else not keys & held_out
        assert all(j.split == split for j in jobs)
        assert len({j.clip_id for j in jobs}) == len(jobs)


def test_fakes_follow_the_real_mix_of_corpora_and_are_deterministic() -> None:
    voices = voice_catalogue(["en-US", "fr-CA", "en"])
    jobs = allocate_fakes(voices, _offer("train"), 200, seed=4)
    assert jobs == allocate_fakes(voices, _offer("train"), 200, seed=4)
    corpora = Counter(j.text_id.split(":", 1)[0] for j in jobs)
    assert 0.6 < corpora["ast"] / len(jobs) < 0.9  # the real clips are 3/4 sentences
    french = [j for j in jobs if j.language == "fr-CA"]
    assert french
    assert all(j.voice.engine == "espeak-ng" for j in french)
    # a prefix keeps every voice: cutting the tail is fair
    assert len({j.voice.key for j in jobs[:60]}) == len({j.voice.key for j in jobs})


def test_narrowband_plan_gives_both_classes_the_same_fraction() -> None:
    groups = {
        "real": [(f"r{i}", i < 30) for i in range(100)],  # 30 % natively 8 kHz
        "fake": [(f"f{i}", i < 5) for i in range(80)],
    }
    chosen, fraction = narrowband_plan(groups, 0.5, seed=9)
    assert fraction == 0.5
    assert sum(1 for cid, _ in groups["real"] if cid in chosen) == 50
    assert sum(1 for cid, _ in groups["fake"] if cid in chosen) == 40
    assert {f"r{i}" for i in range(30)} <= chosen  # natively narrow-band stays narrow-band
    heavy, fraction = narrowband_plan(
        {"real": [("a", True), ("b", True)], "fake": [("c", False)]}, 0.5, 1
    )
    assert fraction == 1.0
    assert heavy == {"a", "b", "c"}
