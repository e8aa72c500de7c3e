"""Detector speed: real-time factor of each audio stage, per core, and peak memory.

    uv run python -m bench.detector               # 60 s of test speech, 2 s windows
    uv run python -m bench.detector --seconds 300 --frame-length 4

RTF = seconds of compute per second of media, one thread (OPENBLAS/OMP threads = 1, ONNX
Runtime intra-op threads = 1); "x real time" is its inverse. The baseline row is decoding and
resampling alone (the media pipeline), in the same process, so the other rows read as "what the
model adds". The input is the packaged test prompt (tests/data/detector/speech_16k.wav, an
Asterisk recording) repeated to the requested length and stored as 44.1 kHz WAV, so the
resampler does real work. Image and video rows are absent: no image model is installed yet.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import resource
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from services.detector import media
from services.detector.audio_features import window_features
from services.detector.features import aasist_windows
from services.detector.onnx_models import Aasist, CamPlusPlus, SileroVad

SPEECH = Path(__file__).parents[1] / "tests" / "data" / "detector" / "speech_16k.wav"


def make_input(seconds: float, directory: Path) -> Path:
    """The test prompt repeated to `seconds`, resampled to 44.1 kHz stereo WAV by PyAV."""
    with wave.open(str(SPEECH), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    pcm = np.resize(pcm, int(seconds * 16_000))
    path = directory / "input.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=44_100, layout="stereo")
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=44_100)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = 16_000
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return path


def timed(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--frame-length", type=float, default=2.0)
    args = parser.parse_args()
    vad, campp, aasist = SileroVad(), CamPlusPlus(), Aasist()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_input(args.seconds, Path(tmp))
        windows = list(media.audio_windows(path, args.frame_length))
        # warm every session once so that loading is not timed
        vad.speech_probabilities(windows[0].samples)
        window_features(windows[0].samples, campp)
        aasist.run(aasist_windows(windows[0].samples))
        rows = [
            ("decode + resample to 16 kHz (baseline)",
             timed(lambda: list(media.audio_windows(path, args.frame_length)))),
            ("Silero VAD", timed(lambda: [vad.speech_probabilities(w.samples) for w in windows])),
            ("window features (fbank + CAM++)",
             timed(lambda: [window_features(w.samples, campp) for w in windows])),
            ("AASIST as shipped (4.04 s windows)",
             timed(lambda: [aasist.run(aasist_windows(w.samples)) for w in windows])),
        ]  # fmt: skip
    seconds = args.seconds
    print(f"{seconds:g} s of audio in {len(windows)} windows of {args.frame_length:g} s; one core")
    print(f"{'stage':42} {'CPU s':>7} {'RTF':>7} {'x real time':>12} {'vs baseline':>12}")
    base = rows[0][1]
    for name, cpu in rows:
        print(f"{name:42} {cpu:7.2f} {cpu / seconds:7.4f} {seconds / cpu:12.1f} "
              f"{cpu / base:11.1f}x")  # fmt: skip
    audio = rows[0][1] + rows[1][1] + rows[2][1]
    print(f"{'audio analyzer (decode + VAD + features)':42} {audio:7.2f} {audio / seconds:7.4f} "
          f"{seconds / audio:12.1f}   target >= 20x real time per core")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB (models loaded, {seconds:g} s decoded)")


if __name__ == "__main__":
    main()
