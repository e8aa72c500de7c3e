"""ONNX Runtime wrappers reproduce the torch models, and refuse model files that are not pinned."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from services.detector.models.features import aasist_windows
from services.detector.models.onnx_models import (
    DEFAULT_MODEL_DIR,
    Aasist,
    CamPlusPlus,
    ModelIntegrityError,
    SileroVad,
    read_sha256sums,
    speech_segments,
)
from training.reference import (
    REFERENCE_JSON,
    SPEECH_WAV,
    read_wav,
    synthetic_signal,
)

TOLERANCE = 1e-4
SIGNALS = ["synthetic", "speech"]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REFERENCE_JSON.read_text())
    return loaded


@pytest.fixture(scope="module")
def aasist() -> Aasist:
    return Aasist()


@pytest.fixture(scope="module")
def campplus() -> CamPlusPlus:
    return CamPlusPlus()


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def _signal(name: str) -> npt.NDArray[np.float32]:
    return synthetic_signal() if name == "synthetic" else read_wav(SPEECH_WAV)


def test_committed_models_match_sha256sums() -> None:
    sums = read_sha256sums(DEFAULT_MODEL_DIR)

    assert set(sums) == {"aasist.onnx", "campplus.onnx", "silero_vad.onnx", "perth_decoder.onnx"}
    for name, digest in sums.items():
        assert hashlib.sha256((DEFAULT_MODEL_DIR / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", SIGNALS)
def test_aasist_matches_torch(reference: dict[str, Any], aasist: Aasist, name: str) -> None:
    expected = reference[name]["aasist"]
    logits = np.array(expected["logits"])
    result = aasist.run(aasist_windows(_signal(name)))

    assert result.bonafide_margin.shape == (len(logits),)
    assert result.embedding.shape == (len(logits), 160)
    margin_diff = float(np.abs(result.bonafide_margin - (logits[:, 1] - logits[:, 0])).max())
    head_diff = float(np.abs(result.embedding[:, :8] - np.array(expected["embedding_head"])).max())
    norm_diff = float(
        np.abs(
            np.linalg.norm(result.embedding, axis=1) - np.array(expected["embedding_norm"])
        ).max()
    )
    print(f"{name}: AASIST max |diff| margin {margin_diff:.2e}, embedding {head_diff:.2e}")
    assert margin_diff < TOLERANCE
    assert head_diff < TOLERANCE
    assert norm_diff < TOLERANCE


def test_aasist_batches_do_not_change_results(aasist: Aasist) -> None:
    windows = aasist_windows(np.tile(synthetic_signal(), 3))
    together = aasist.run(windows, batch_size=8)
    one_by_one = aasist.run(windows, batch_size=1)

    np.testing.assert_allclose(together.bonafide_margin, one_by_one.bonafide_margin, atol=1e-4)


def test_aasist_rejects_wrong_window_length(aasist: Aasist) -> None:
    with pytest.raises(ValueError, match="64600"):
        aasist.run(np.zeros((1, 16000), np.float32))


@pytest.mark.parametrize("name", SIGNALS)
def test_campplus_matches_torch(
    reference: dict[str, Any], campplus: CamPlusPlus, name: str
) -> None:
    expected = np.array(reference[name]["campplus"]["normalised_embedding"])
    embedding = campplus.embed(_signal(name))

    assert embedding.shape == (192,)
    assert embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(embedding)) - 1.0) < 1e-5
    diff = float(np.abs(embedding - expected).max())
    print(f"{name}: CAM++ max |diff| {diff:.2e}, cosine {float(embedding @ expected):.8f}")
    assert diff < TOLERANCE


def test_campplus_refuses_too_short_input(campplus: CamPlusPlus) -> None:
    with pytest.raises(ValueError, match="at least"):
        campplus.embed(np.zeros(800, np.float32))


@pytest.mark.parametrize("name", SIGNALS)
def test_vad_matches_silero_reference(reference: dict[str, Any], vad: SileroVad, name: str) -> None:
    expected = reference[name]["vad"]
    signal = _signal(name)
    probabilities = vad.speech_probabilities(signal)

    assert probabilities.shape == (len(expected["probabilities"]),)
    diff = float(np.abs(probabilities - np.array(expected["probabilities"])).max())
    print(f"{name}: VAD max |diff| {diff:.2e}")
    assert diff < TOLERANCE
    segments = speech_segments(probabilities, signal.size)
    assert [list(s) for s in segments] == expected["segments"]


def test_vad_separates_silence_from_speech(vad: SileroVad) -> None:
    silence = vad.speech_probabilities(np.zeros(32000, np.float32))
    speech = vad.speech_probabilities(read_wav(SPEECH_WAV))

    assert silence.max() < 0.1
    assert speech.max() > 0.9
    assert float(np.mean(speech > 0.5)) > 0.5
    assert speech_segments(silence, 32000) == []


def test_speech_segments_match_silero_postprocessing(reference: dict[str, Any]) -> None:
    track = reference["segments_track"]
    segments = speech_segments(np.array(track["probabilities"], np.float32), track["num_samples"])

    assert [list(s) for s in segments] == track["segments"]


def _copy_vad_model(tmp_path: Path) -> Path:
    shutil.copyfile(DEFAULT_MODEL_DIR / "silero_vad.onnx", tmp_path / "silero_vad.onnx")
    shutil.copyfile(DEFAULT_MODEL_DIR / "SHA256SUMS", tmp_path / "SHA256SUMS")
    return tmp_path


def test_intact_copy_loads(tmp_path: Path) -> None:
    model = SileroVad(_copy_vad_model(tmp_path))
    assert model.speech_probabilities(np.zeros(1024, np.float32)).shape == (2,)


def test_corrupted_model_is_refused(tmp_path: Path) -> None:
    model_dir = _copy_vad_model(tmp_path)
    path = model_dir / "silero_vad.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    model = SileroVad(model_dir)  # lazy: constructing does not read the file
    with pytest.raises(ModelIntegrityError, match="refusing"):
        model.speech_probabilities(np.zeros(512, np.float32))
    with pytest.raises(ModelIntegrityError):
        model.load()


def test_unlisted_model_is_refused(tmp_path: Path) -> None:
    model_dir = _copy_vad_model(tmp_path)
    (model_dir / "SHA256SUMS").write_text("")
    with pytest.raises(ModelIntegrityError, match="not listed"):
        SileroVad(model_dir).load()


def test_missing_sha256sums_is_refused(tmp_path: Path) -> None:
    model_dir = _copy_vad_model(tmp_path)
    (model_dir / "SHA256SUMS").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        SileroVad(model_dir).load()
