"""Detector speed: real-time factor of each audio stage, per core, and peak memory.

    uv run python -m bench.detector               # 60 s of test speech, 2 s windows
    uv run python -m bench.detector --seconds 300 --frame-length 4

RTF = seconds of compute per second of media, one thread (OPENBLAS/OMP threads = 1, ONNX
Runtime intra-op threads = 1); "x real time" is its inverse. The baseline row is decoding and
resampling alone (the media pipeline), in the same process, so the other rows read as "what the
model adds". The input is the packaged test prompt (tests/data/detector/speech_16k.wav, an
Asterisk recording) repeated to the requested length and stored as 44.1 kHz WAV, so the
resampler does real work.

Images and video (wall time and CPU time, since the video decoder may use both cores): a real
photograph (tests/data/detector/astronaut.jpg) scaled to 1280x720 JPEG, scored whole and per
face, per image; and a 60 s 1280x720 25 fps H.264 video panning over it with the test speech
under it, through the whole video analyzer (frames at 1 fps + faces + the audio track). The
baseline rows decode only.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import resource
import shutil
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from services.detector import media
from services.detector.analysis import dispatch
from services.detector.models.audio_features import window_features
from services.detector.models.features import aasist_windows
from services.detector.models.onnx_models import Aasist, CamPlusPlus, SileroVad

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


def clocked(work: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def images_and_video(directory: Path, images: int = 10) -> None:
    from PIL import Image

    from tests.support.media import PHOTO, photo_video

    photo = directory / "photo.jpg"
    Image.open(PHOTO).convert("RGB").resize((1280, 720)).save(photo, quality=90)
    video = directory / "video.mp4"
    video.write_bytes(photo_video(60.0, size=(1280, 720), fps=25))
    dispatch.analyze(str(photo), "image", {})  # load the model outside the timing

    def decode_images() -> None:
        for _ in range(images):
            Image.open(photo).convert("RGB")

    rows = [
        ("decode 1280x720 JPEG (baseline)", *clocked(decode_images), images),
        ("image analyzer (faces + CLIP probe)",
         *clocked(lambda: [dispatch.analyze(str(photo), "image", {}) for _ in range(images)]),
         images),
        ("image analyzer + visualization (heatmap)",
         *clocked(lambda: [dispatch.analyze(str(photo), "image", {}, str(directory / "p.png"))
                           for _ in range(images)]),
         images),
        ("decode 60 s 720p video at 1 fps (baseline)",
         *clocked(lambda: list(media.video_frames(video))), 1),
        ("video analyzer (60 frames + faces + audio)",
         *clocked(lambda: dispatch.analyze(str(video), "video", {"frame_length": 2})), 1),
        ("video analyzer + visualization (frame strip)",
         *clocked(lambda: dispatch.analyze(str(video), "video", {"frame_length": 2},
                                            str(directory / "v.png"))), 1),
    ]  # fmt: skip
    print()
    print(f"{'images and video':42} {'wall s':>8} {'CPU s':>8} {'per item':>9} {'vs baseline':>12}")
    for index, (name, wall, cpu, count) in enumerate(rows):
        base = rows[0 if index < 3 else 3][1]  # each kind against its decode-only baseline
        print(f"{name:42} {wall:8.2f} {cpu:8.2f} {wall / count:8.3f}s {wall / base:11.1f}x")
    print(
        f"targets: image <= 0.300 s each ({images / rows[1][1]:.1f} images/s measured); "
        f"60 s 720p video <= 20 s"
    )


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
    images_and_video(Path(tmp_dir := tempfile.mkdtemp()))
    shutil.rmtree(tmp_dir)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB (models loaded, {seconds:g} s decoded)")


if __name__ == "__main__":
    main()
