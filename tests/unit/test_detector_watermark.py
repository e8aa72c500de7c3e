"""Perth watermark detection: the numpy front end + ONNX decoder reproduce the wheel's own
`get_watermark` (tests/data/detector/perth_reference.json, training/reference_perth.py), find the
watermark in a Perth-watermarked clip and not in clean ones, and the detect's `watermark` child
has Resemble's shape for every kind of input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from services.detector import media
from services.detector.analysis import dispatch
from services.detector.analysis import watermark as child
from services.detector.models import loaded, onnx_models
from services.detector.models.onnx_models import ModelIntegrityError, read_sha256sums
from services.detector.models.watermark import (
    THRESHOLD,
    PerthDecoder,
    log_magnitude,
    upsample_16k_to_32k,
)
from tests.support import media as generate
from tests.support.resemble_spec import _validator
from training.reference import read_wav, synthetic_signal
from training.reference_perth import REFERENCE_JSON, WATERMARKED_WAV, write_wav

DATA = REFERENCE_JSON.parent
CONFIDENCE_TOLERANCE = 1e-5
"""|ONNX path - torch| on the confidence; measured up to 2.3e-6 (float32 STFT in torch vs float64
here, and ONNX Runtime's float32 convolutions)."""
CLIPS = ["speech", "speech2", "speech_watermarked", "synthetic"]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    clips: dict[str, Any] = json.loads(REFERENCE_JSON.read_text())["clips"]
    return clips


@pytest.fixture(scope="module")
def decoder() -> PerthDecoder:
    return PerthDecoder()


def _samples(name: str, reference: dict[str, Any]) -> npt.NDArray[np.float32]:
    return synthetic_signal() if name == "synthetic" else read_wav(DATA / reference[name]["source"])


def _check_shape(result: dict[str, Any]) -> None:
    """Resemble's published DetectWatermarkAnalysis schema accepts it (our extras allowed)."""
    errors = list(_validator("#/components/schemas/DetectWatermarkAnalysis").iter_errors(result))
    assert errors == []


def test_the_decoder_file_is_pinned() -> None:
    path = onnx_models.DEFAULT_MODEL_DIR / PerthDecoder.filename
    expected = read_sha256sums(onnx_models.DEFAULT_MODEL_DIR)[PerthDecoder.filename]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected


@pytest.mark.parametrize("name", CLIPS)
def test_upsampling_is_librosas_polyphase(reference: dict[str, Any], name: str) -> None:
    expected = reference[name]["resampled"]
    got = upsample_16k_to_32k(_samples(name, reference))
    middle = expected["middle_start"]
    assert got.size == expected["num_samples"]
    np.testing.assert_allclose(got[:64], expected["head"], atol=1e-6)
    np.testing.assert_allclose(got[middle : middle + 64], expected["middle"], atol=1e-6)


@pytest.mark.parametrize("name", CLIPS)
def test_spectrogram_is_torchaudios(reference: dict[str, Any], name: str) -> None:
    """The decoder's 128 sub-band bins agree to 1e-4; each frame's sum over all 1025 bins (the
    decoder's frame mask) within 3 %: above the 8 kHz of our input the 32 kHz spectrum is empty,
    and torch's float32 STFT puts its rounding noise there where float64 reaches the floor."""
    expected = reference[name]["magspec"]
    magspec = log_magnitude(upsample_16k_to_32k(_samples(name, reference)))
    assert magspec.shape == (1025, expected["frames"])
    np.testing.assert_allclose(magspec[:128, expected["frame_indices"]].T, expected["subband"],
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(magspec.sum(axis=0), expected["frame_sums"], rtol=0.03)


@pytest.mark.parametrize("name", CLIPS)
def test_confidence_is_the_wheels(
    reference: dict[str, Any], decoder: PerthDecoder, name: str
) -> None:
    expected = reference[name]
    samples = _samples(name, reference)
    raw = decoder.decode(log_magnitude(upsample_16k_to_32k(samples)))
    confidence = decoder.confidence(samples)
    print(f"{name}: confidence {confidence} vs torch {expected['confidence']}")
    assert confidence is not None
    assert abs(raw - expected["decoder_raw"]) < CONFIDENCE_TOLERANCE
    assert abs(confidence - expected["confidence"]) < CONFIDENCE_TOLERANCE


def test_the_watermarked_clip_is_found_and_the_clean_ones_are_not(
    reference: dict[str, Any], decoder: PerthDecoder
) -> None:
    found = {name: (decoder.confidence(_samples(name, reference)) or 0) >= THRESHOLD
             for name in CLIPS}  # fmt: skip
    assert found == {"speech": False, "speech2": False, "speech_watermarked": True,
                     "synthetic": False}  # fmt: skip
    # the wheel's own round() says the same
    assert {n: reference[n]["rounded"] == 1.0 for n in CLIPS} == found


def test_silence_and_tiny_clips_get_no_confidence(decoder: PerthDecoder) -> None:
    assert decoder.confidence(np.zeros(32000, dtype=np.float32)) is None
    assert decoder.confidence(synthetic_signal()[:100]) is None


def test_an_altered_decoder_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / PerthDecoder.filename).write_bytes(b"not the model")
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  {PerthDecoder.filename}\n")
    with pytest.raises(ModelIntegrityError, match="refusing"):
        PerthDecoder(tmp_path).load()


def test_a_watermarked_file_is_present_and_a_clean_one_absent() -> None:
    marked: Any = child.analyze_watermark(WATERMARKED_WAV, "audio", {})
    clean: Any = child.analyze_watermark(generate.SPEECH, "audio", {})
    for result in (marked, clean):
        _check_shape(result)
        assert result["status"] == "completed"
        assert result["metrics"]["coverage_complete"] is False
        v1, v2 = result["metrics"]["model_results"]
        assert (v1["model_version"], v1["status"]) == ("perth_v1", "succeeded")
        assert (v2["model_version"], v2["status"], v2["detected"]) == ("perth_v2", "failed", None)
    metrics = marked["metrics"]
    assert metrics["overall_status"] == "present"
    assert metrics["detected_model_versions"] == ["perth_v1"]
    assert metrics["has_watermark"] == {"mono": True}
    assert metrics["confidence"] >= THRESHOLD
    assert clean["metrics"]["overall_status"] == "absent"
    assert clean["metrics"]["detected_model_versions"] == []
    assert clean["metrics"]["has_watermark"] == {"mono": False}


def test_the_region_is_what_is_read() -> None:
    result: Any = child.analyze_watermark(
        WATERMARKED_WAV, "audio", {"start_region": 0.5, "end_region": 1.75}
    )
    (v1, _) = result["metrics"]["model_results"]
    assert [(s["start"], s["end"]) for s in v1["segments"]] == [(0.5, 1.75)]
    assert v1["seconds_analysed"] == pytest.approx(1.25)


def test_a_long_file_is_read_window_by_window(tmp_path: Path, decoder: PerthDecoder) -> None:
    """10 s windows; a last window under 1 s joins the one before; the file's confidence is
    the duration-weighted mean of the windows'."""
    marked = read_wav(WATERMARKED_WAV)
    clean = read_wav(generate.SPEECH)
    samples = np.concatenate([np.tile(marked, 5), np.tile(clean, 4)])  # 11.9 s + 9.6 s
    samples = samples[: round(20.5 * 16000)]
    path = tmp_path / "long.wav"
    write_wav(path, samples)
    reading = child.read_watermark(path, media.Region(), decoder)
    assert [(w.start, w.end) for w in reading.windows] == [(0.0, 10.0), (10.0, 20.5)]
    first, second = (w.confidence for w in reading.windows)
    assert first is not None
    assert second is not None
    assert first > THRESHOLD
    assert reading.confidence == pytest.approx((10 * first + 10.5 * second) / 20.5)


def test_silence_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros(3 * 16000, dtype=np.float32))
    result: Any = child.analyze_watermark(path, "audio", {})
    _check_shape(result)
    metrics = result["metrics"]
    assert (metrics["overall_status"], metrics["has_watermark"]) == ("inconclusive", {})
    assert metrics["confidence"] is None
    assert metrics["model_results"][0]["status"] == "failed"


def test_image_and_silent_video_fail_only_the_child(tmp_path: Path) -> None:
    video = tmp_path / "silent.mp4"
    video.write_bytes(generate.mp4_bytes(2.0, with_audio=False))
    image: Any = child.analyze_watermark(generate.PHOTO, "image", {})
    silent: Any = child.analyze_watermark(video, "video", {})
    assert image == {"status": "failed", "error_message": child.NO_IMAGE_DETECTOR}
    assert silent == {"status": "failed", "error_message": child.NO_AUDIO_TRACK}
    _check_shape(image)


def test_a_videos_audio_track_is_read(tmp_path: Path) -> None:
    video = tmp_path / "talk.mp4"
    video.write_bytes(generate.photo_video(3.0, speech=WATERMARKED_WAV))
    result: Any = child.analyze_watermark(video, "video", {"max_video_secs": 2})
    _check_shape(result)
    assert result["metrics"]["overall_status"] == "present"  # through AAC
    (v1, _) = result["metrics"]["model_results"]
    assert [(s["start"], s["end"]) for s in v1["segments"]] == [(0.0, 2.0)]


def test_a_missing_model_fails_the_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(onnx_models, "DEFAULT_MODEL_DIR", tmp_path)
    loaded.watermark_decoder.cache_clear()
    try:
        result: Any = child.analyze_watermark(generate.SPEECH, "audio", {})
    finally:
        loaded.watermark_decoder.cache_clear()
    assert result["status"] == "failed"
    assert "not installed" in result["error_message"]


def test_an_undecodable_file_fails_the_child(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp3"
    path.write_bytes(b"ID3 not really an mp3")
    result: Any = child.analyze_watermark(path, "audio", {})
    assert result["status"] == "failed"
    assert str(tmp_path) not in result["error_message"]


def test_dispatch_adds_the_child_only_when_asked() -> None:
    asked: Any = dispatch.analyze(str(WATERMARKED_WAV), "audio", {"detect_watermark": True})
    plain: Any = dispatch.analyze(str(WATERMARKED_WAV), "audio", {})
    assert asked["watermark"]["metrics"]["overall_status"] == "present"
    assert "watermark" not in plain
    assert asked["metrics"] == plain["metrics"]  # the deepfake verdict is untouched
