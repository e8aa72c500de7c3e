"""Print the real-time factor of each ONNX model on one thread (numpy + ONNX Runtime only).

Real-time factor = seconds of compute per second of audio, on one core (one intra-op thread); its
inverse is "x real time". CPU time (`process_time`) is printed beside wall time because the
machines we measure on are shared; the per-core figure is the CPU one. Run it with
OPENBLAS_NUM_THREADS=1 (as worker processes should be): otherwise numpy's BLAS threads spin after
the fbank's matrix product and bill CPU time that does no work. This is a quick check of the
models in isolation; `bench/detector.py` measures the whole analyzer.

    OPENBLAS_NUM_THREADS=1 uv run python -m training.speed
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from services.detector.models.features import (
    AASIST_SAMPLES,
    SAMPLE_RATE,
    aasist_windows,
    kaldi_fbank,
)
from services.detector.models.onnx_models import Aasist, CamPlusPlus, SileroVad
from training.reference import synthetic_signal


def _measure(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Mean (wall, cpu) seconds per call after one warm-up call."""
    run()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def _report(label: str, audio_seconds: float, wall: float, cpu: float) -> None:
    print(
        f"{label:<34} {audio_seconds:6.2f} s audio: wall {wall * 1000:8.1f} ms, "
        f"cpu {cpu * 1000:8.1f} ms -> RTF {cpu / audio_seconds:.4f} "
        f"({audio_seconds / cpu:6.1f}x real time per core)"
    )


def main() -> None:
    ten_seconds = np.tile(synthetic_signal(5.0), 2)
    window_seconds = AASIST_SAMPLES / SAMPLE_RATE

    aasist = Aasist()
    aasist.load()
    one = aasist_windows(ten_seconds)[:1]
    eight = np.repeat(one, 8, axis=0)
    _report("AASIST, 1 window", window_seconds, *_measure(lambda: aasist.run(one), 5))
    wall, cpu = _measure(lambda: aasist.run(eight, batch_size=8), 2)
    _report("AASIST, batch of 8 (per window)", window_seconds, wall / 8, cpu / 8)

    campplus = CamPlusPlus()
    campplus.load()
    _report("Kaldi fbank (numpy)", 10.0, *_measure(lambda: kaldi_fbank(ten_seconds), 20))
    _report("CAM++ incl. fbank", 10.0, *_measure(lambda: campplus.embed(ten_seconds), 10))

    vad = SileroVad()
    vad.load()
    _report("Silero VAD", 10.0, *_measure(lambda: vad.speech_probabilities(ten_seconds), 10))


if __name__ == "__main__":
    main()
