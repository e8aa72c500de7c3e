"""Window features for the audio head: a speaker-embedding view plus spectral statistics.

CAM++ (192-d, L2-normalised) summarises how the voice sounds; the mean and standard deviation of
each of the 80 log-mel filterbank bands summarise the spectrum and its movement, where
vocoders and concatenation leave traces. The same function serves training and inference.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.detector.models.features import kaldi_fbank
from services.detector.models.onnx_models import CamPlusPlus

FEATURES = "campp192+fbank80mean+fbank80std"
DIMENSIONS = 192 + 80 + 80
MIN_SAMPLES = 16_000 // 2  # shorter windows are repeated up to 0.5 s before featurising


def window_features(wave: npt.NDArray[np.float32], campp: CamPlusPlus) -> npt.NDArray[np.float64]:
    if len(wave) < MIN_SAMPLES:
        wave = np.resize(wave, MIN_SAMPLES) if len(wave) else np.zeros(MIN_SAMPLES, np.float32)
    raw = kaldi_fbank(wave, subtract_mean=False)  # log energies: their level matters here
    embedding = campp.embed_features(raw - raw.mean(axis=0))  # CAM++ wants mean-normalised
    return np.concatenate([embedding, raw.mean(axis=0), raw.std(axis=0)]).astype(np.float64)
