"""Dataset processing chain, transcripts and the shortcut report, on small synthetic signals."""

from __future__ import annotations

import math
import random
from array import array

import pytest

from training.dataset.process import (
    SAMPLE_RATE,
    ChainParams,
    energy,
    finish,
    g722_roundtrip,
    highpass,
    resample,
    telephone_roundtrip,
    to_db,
    trim,
)
from training.dataset.report import (
    FEATURES,
    category_auc,
    clip_features,
    rank_auc,
    shortcut_report,
)
from training.dataset.sources import (
    kde_language,
    ktuberling_text,
    parse_core_sounds,
    parse_sound_list,
)


def _tone(hz: float, seconds: float, amplitude: float = 0.3) -> array[float]:
    n = round(seconds * SAMPLE_RATE)
    return array("f", (amplitude * math.sin(2 * math.pi * hz * i / SAMPLE_RATE) for i in range(n)))


def _silence(seconds: float) -> array[float]:
    return array("f", bytes(4 * round(seconds * SAMPLE_RATE)))


def _hf_db(x: array[float]) -> float:
    high = highpass(x, 4000.0)
    return to_db(energy(high) * len(high) / (energy(x) * len(x)))


def test_trim_cuts_silence_at_the_speech_span() -> None:
    x = _silence(0.5) + _tone(440, 1.0) + _silence(0.7)
    y = trim(x, ChainParams())
    assert abs(len(y) / SAMPLE_RATE - 1.0) < 0.02
    assert len(trim(_silence(1.0), ChainParams())) == 0


def test_telephone_channel_removes_the_band_above_4k_and_g722_keeps_it() -> None:
    x = _tone(300, 1.0, 0.2) + array("f")
    mix = array("f", (a + b for a, b in zip(x, _tone(6000, 1.0, 0.2), strict=True)))
    assert _hf_db(mix) > -4
    assert _hf_db(g722_roundtrip(mix)) > -8
    assert _hf_db(telephone_roundtrip(mix)) < -40
    assert len(telephone_roundtrip(mix)) == len(mix)


def test_resample_keeps_duration() -> None:
    x = _tone(200, 1.0)
    assert abs(len(resample(x, SAMPLE_RATE, 8000)) - 8000) <= 32


def test_finish_is_seeded_and_level_is_in_range() -> None:
    params = ChainParams()
    x = _tone(220, 1.0)
    a = finish(x, narrowband=False, params=params, rng=random.Random("s:1"))
    b = finish(x, narrowband=False, params=params, rng=random.Random("s:1"))
    c = finish(x, narrowband=True, params=params, rng=random.Random("s:2"))
    assert a == b
    assert a != c
    for y in (a, c):
        level = to_db(energy(y))
        assert params.level_dbfs[0] - 0.5 <= level <= params.level_dbfs[1] + 0.5
        assert min(y) > -1.0
        assert max(y) < 1.0
        assert len(y) > len(x)  # fresh silence was padded around the speech
    # no digital silence survives: the pads carry the noise floor
    assert energy(a[:400]) > 0.0


def test_clip_features_measure_silence_and_bandwidth() -> None:
    x = _silence(0.3) + _tone(500, 1.0) + _silence(0.2)
    features = clip_features(x)
    assert set(features) == set(FEATURES)
    assert abs(features["duration_s"] - 1.5) < 0.01
    assert abs(features["lead_silence_s"] - 0.3) < 0.02
    assert abs(features["trail_silence_s"] - 0.2) < 0.02
    assert features["hf_above_4k_db"] < -40
    # a sine's crest factor is 3 dB; the clip's RMS also counts the 0.5 s of silence
    assert features["crest_db"] == pytest.approx(3.0 + 10 * math.log10(1.5), abs=0.2)


def test_rank_auc() -> None:
    assert rank_auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert rank_auc([0, 1], [2, 3]) == 0.0
    assert rank_auc([1, 1], [1, 1]) == 0.5
    assert rank_auc([], [1.0]) == 0.5
    assert rank_auc([2, 1], [1, 0]) == pytest.approx(0.875)


def test_category_auc() -> None:
    assert category_auc(["en"] * 30 + ["fr"] * 30, [False] * 30 + [True] * 30) == 1.0
    # a category shared evenly by both classes carries no label
    assert category_auc(["x"] * 10, [True, False] * 5) == 0.5
    # one clip per category is shrunk to the overall rate: weak evidence, not a separation
    assert category_auc(["a", "b", "c", "d"], [True, False, True, False]) < 0.75


def test_shortcut_report_flags_a_separating_feature() -> None:
    rows = []
    for i in range(40):
        for label, offset in (("real", 0.0), ("fake", 5.0)):
            row: dict[str, object] = {"split": "train" if i % 2 else "test", "label": label}
            row["language"] = "en" if label == "fake" else ("fr" if i % 3 else "en")
            row.update(dict.fromkeys(FEATURES, float(i % 7)))
            row["duration_s"] = i % 7 + offset  # the fake clips are all longer
            rows.append(row)
    report = shortcut_report(rows)
    assert "all:duration_s" in report["flagged"]
    assert "all:rms_dbfs" not in report["flagged"]
    assert report["splits"]["all"]["duration_s"]["auc"] < 0.25
    assert "all:language" in report["flagged"]
    assert report["categorical"]["all"]["language"]["auc"] > 0.75


def test_transcript_parsers() -> None:
    content = "; Core\n\nagent-pass: Please enter your password.\nbeep: [a beep]\ndigits/1: one\n"
    assert parse_core_sounds(content) == {
        "agent-pass": "Please enter your password.",
        "digits/1": "one",
    }
    xml = '<sound name="A" file="en/alpha/A.ogg" />\n<sound name="Q&amp;A" file="en/q.ogg"/>'
    assert parse_sound_list(xml) == [("A", "en/alpha/A.ogg"), ("Q&A", "en/q.ogg")]
    assert kde_language("en_GB") == ("en-GB", "en")
    assert kde_language("sr@latin") == ("sr@latin", "sr")
    assert ktuberling_text("fr", "egypt_bridge", "fr/egypte_pont.wav") == "pont"
    assert ktuberling_text("ru", "eyebrow", "ru/eyebrow.ogg") is None  # key, not a word
    assert ktuberling_text("en", "egypt_bridge", "en/egypt_bridge.ogg") == "bridge"
