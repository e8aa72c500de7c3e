"""The one processing chain every clip goes through, real or synthetic.

Stage A (`prepare`): decode with PyAV, downmix to mono, resample to 16 kHz, cut leading and
trailing silence exactly at the speech span (one relative energy threshold), cap the length.

Stage B (`finish`), with per-clip values drawn from the same seeded distributions for both
classes: pad fresh silence before and after (random length), add a white-noise floor (random
SNR) so that no clip keeps digital silence, pass the channel (a single G.722 pass for every
clip, plus an 8 kHz G.711 mu-law round trip for the clips chosen as narrow-band), and normalise
the RMS to a random level under a peak ceiling. Sources differ in how much silence and noise
they came with; after this chain those carry no label information.

Samples are float32 `array.array`s in [-1, 1]; codecs and resampling run inside FFmpeg (PyAV),
the per-sample arithmetic is plain Python, so nothing beyond the project's dependencies is
needed.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import wave
from array import array
from dataclasses import dataclass
from fractions import Fraction
from operator import mul
from pathlib import Path

import av
import av.error
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame

SAMPLE_RATE = 16_000
NARROW_RATE = 8_000
FRAME = 160  # 10 ms at 16 kHz: the unit of every level measurement

Samples = array  # array("f"), mono float32 in [-1, 1]


@dataclass(frozen=True)
class ChainParams:
    """Every knob of the chain; its repr is hashed into cache names, so change means recompute."""

    trim_rel_db: float = 40.0  # a frame is speech if within this many dB of the loudest frame
    trim_floor_dbfs: float = -70.0  # ...and above this absolute level
    min_s: float = 0.4  # shorter speech spans are dropped, whatever their class
    max_s: float = 6.0  # longer ones are cut here (with a 10 ms fade), whatever their class
    pad_s: tuple[float, float] = (0.05, 0.30)  # fresh silence before and after, uniform
    snr_db: tuple[float, float] = (30.0, 50.0)  # white-noise floor below the speech RMS, uniform
    level_dbfs: tuple[float, float] = (-32.0, -20.0)  # final RMS, uniform
    work_dbfs: float = -26.0  # RMS before the codecs
    peak_dbfs: float = -1.0  # ceiling; the gain is lowered when a peak would exceed it

    def key(self) -> str:
        """A short stable name for this parameter set."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- frames <-> samples


def _frame_samples(frame: AudioFrame) -> array[float]:
    out = array("f")
    out.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
    return out


def _make_frame(x: array[float], rate: int, fmt: str = "flt") -> AudioFrame:
    if fmt != "flt":
        raise ValueError("only float32 frames are built here")
    frame = AudioFrame(format="flt", layout="mono", samples=len(x))
    frame.planes[0].update(x.tobytes())
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = Fraction(1, rate)
    return frame


def _resample_frames(frames: list[AudioFrame], fmt: str, rate: int) -> list[AudioFrame]:
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
    out: list[AudioFrame] = []
    for frame in frames:
        out.extend(resampler.resample(frame))
    out.extend(resampler.resample(None))
    return out


def resample(x: array[float], src_rate: int, dst_rate: int) -> array[float]:
    """Resample mono float samples with FFmpeg's swresample."""
    if src_rate == dst_rate or not x:
        return array("f", x)
    out = array("f")
    for frame in _resample_frames([_make_frame(x, src_rate)], "flt", dst_rate):
        out.extend(_frame_samples(frame))
    return out


def decode(path: Path, fmt: str | None = None) -> tuple[array[float], int, str]:
    """Decode the first audio stream to mono float32 at its native rate.

    Returns (samples, native sample rate, codec name). `fmt` forces a demuxer (raw "g722").
    """
    with av.open(str(path), format=fmt) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        codec = stream.codec_context.name
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        out = array("f")
        for frame in container.decode(stream):
            for converted in resampler.resample(frame):
                out.extend(_frame_samples(converted))
        for converted in resampler.resample(None):
            out.extend(_frame_samples(converted))
    return out, rate, codec


# ---------------------------------------------------------------- levels, trimming, gain


def energy(x: array[float]) -> float:
    """Mean square of the samples (0 for an empty array)."""
    return sum(map(mul, x, x)) / len(x) if x else 0.0


def to_db(value: float) -> float:
    """Power ratio to dB, floored at -120."""
    return 10.0 * math.log10(value) if value > 1e-12 else -120.0


def frame_levels(x: array[float], frame: int = FRAME) -> list[float]:
    """Level in dBFS of each whole frame (power relative to a full-scale square wave)."""
    return [to_db(energy(x[i : i + frame])) for i in range(0, len(x) - frame + 1, frame)]


def speech_span(levels: list[float], rel_db: float, floor_dbfs: float) -> tuple[int, int] | None:
    """First and one-past-last frame index above the threshold, or None if all is silence."""
    if not levels:
        return None
    threshold = max(max(levels) - rel_db, floor_dbfs)
    loud = [i for i, level in enumerate(levels) if level > threshold]
    if not loud:
        return None
    return loud[0], loud[-1] + 1


def trim(x: array[float], params: ChainParams) -> array[float]:
    """Cut leading/trailing silence at the speech span; empty if nothing is loud."""
    span = speech_span(frame_levels(x), params.trim_rel_db, params.trim_floor_dbfs)
    if span is None:
        return array("f")
    return x[span[0] * FRAME : span[1] * FRAME]


def pad(x: array[float], lead_s: float, trail_s: float) -> array[float]:
    """Digital silence before and after (the noise floor is added afterwards)."""
    lead = array("f", bytes(4 * round(lead_s * SAMPLE_RATE)))
    trail = array("f", bytes(4 * round(trail_s * SAMPLE_RATE)))
    return lead + x + trail


def add_noise(x: array[float], noise_dbfs: float, rng: random.Random) -> array[float]:
    """White Gaussian noise of RMS `noise_dbfs`."""
    sigma = 10 ** (noise_dbfs / 20)
    gauss = rng.gauss
    return array("f", (v + gauss(0.0, sigma) for v in x))


def cap_length(x: array[float], max_s: float) -> array[float]:
    """Cut to `max_s` seconds with a 10 ms linear fade-out at the cut."""
    limit = round(max_s * SAMPLE_RATE)
    if len(x) <= limit:
        return x
    out = x[:limit]
    fade = FRAME
    for i in range(fade):
        out[limit - fade + i] *= (fade - i - 1) / fade
    return out


def scale(x: array[float], gain: float) -> array[float]:
    """Multiply every sample by `gain`."""
    return array("f", map(gain.__mul__, x))


def peak(x: array[float]) -> float:
    """Largest absolute sample value."""
    return max(max(x, default=0.0), -min(x, default=0.0))


def normalise(x: array[float], target_dbfs: float, params: ChainParams) -> array[float]:
    """RMS to `target_dbfs`, lowered if needed so no peak exceeds `peak_dbfs`."""
    level = energy(x)
    if level <= 0.0:
        return x
    gain = 10 ** (target_dbfs / 20) / math.sqrt(level)
    top = peak(x) * gain
    ceiling = 10 ** (params.peak_dbfs / 20)
    if top > ceiling:
        gain *= ceiling / top
    return scale(x, gain)


# ---------------------------------------------------------------- codecs


def _codec_roundtrip(x: array[float], codec: str, rate: int) -> array[float]:
    """Encode 16-bit mono at `rate` with `codec`, decode, return float samples at `rate`."""
    encoder = av.CodecContext.create(codec, "w")
    if not isinstance(encoder, AudioCodecContext):
        raise TypeError(f"{codec} is not an audio codec")
    encoder.sample_rate = rate
    encoder.format = "s16"
    encoder.layout = "mono"
    encoder.open()
    frame_size = encoder.frame_size or 1024
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate, frame_size=frame_size)
    packets = []
    pts = 0
    for frame in [*resampler.resample(_make_frame(x, rate)), *resampler.resample(None)]:
        frame.pts = pts
        pts += frame.samples
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    decoder = av.CodecContext.create(codec, "r")
    if not isinstance(decoder, AudioCodecContext):
        raise TypeError(f"{codec} is not an audio codec")
    decoder.sample_rate = rate
    decoder.layout = "mono"
    decoded: list[AudioFrame] = []
    for packet in packets:
        decoded.extend(decoder.decode(packet))
    decoded.extend(decoder.decode(None))
    out = array("f")
    for frame in _resample_frames(decoded, "flt", rate):
        out.extend(_frame_samples(frame))
    return out[: len(x)]


def g722_roundtrip(x: array[float]) -> array[float]:
    """One pass through ITU-T G.722 (64 kbit/s sub-band ADPCM, 16 kHz, ~7 kHz band)."""
    return _codec_roundtrip(x, "adpcm_g722", SAMPLE_RATE)


def telephone_roundtrip(x: array[float]) -> array[float]:
    """16 kHz -> 8 kHz -> G.711 mu-law -> 8 kHz -> 16 kHz: a narrow-band telephone channel."""
    narrow = resample(x, SAMPLE_RATE, NARROW_RATE)
    coded = _codec_roundtrip(narrow, "pcm_mulaw", NARROW_RATE)
    return resample(coded, NARROW_RATE, SAMPLE_RATE)[: len(x)]


# ---------------------------------------------------------------- filtering, output


def highpass(x: array[float], cutoff_hz: float, rate: int = SAMPLE_RATE) -> array[float]:
    """Sharp linear-phase high-pass (FFmpeg `firequalizer`, ~30 Hz transition, -200 dB stop).

    A brick wall on purpose: the narrow-band channel leaves real energy just below 4 kHz that a
    gentle IIR high-pass would count as "above 4 kHz". The output carries the FIR delay padding.
    """
    if not x:
        return array("f")
    graph = av.filter.Graph()
    source = graph.add_abuffer(
        sample_rate=rate, format="flt", layout="mono", time_base=Fraction(1, rate)
    )
    fir = graph.add(
        "firequalizer", f"gain='if(gte(f,{cutoff_hz:g}),0,-200)':delay=0.032:accuracy=1"
    )
    sink = graph.add("abuffersink")
    source.link_to(fir)
    fir.link_to(sink)
    graph.configure()
    graph.push(_make_frame(x, rate))
    graph.push(None)
    frames: list[AudioFrame] = []
    while True:
        try:
            pulled = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            break
        if isinstance(pulled, AudioFrame):
            frames.append(pulled)
    out = array("f")
    for frame in _resample_frames(frames, "flt", rate):
        out.extend(_frame_samples(frame))
    return out


def wav_bytes(x: array[float]) -> bytes:
    """16 kHz mono 16-bit PCM WAV (rounded and clipped by swresample)."""
    pcm = bytearray()
    for frame in _resample_frames([_make_frame(x, SAMPLE_RATE)], "s16", SAMPLE_RATE):
        pcm += bytes(frame.planes[0])[: frame.samples * 2]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(pcm))
    return buffer.getvalue()


def read_wav(path: Path) -> array[float]:
    """Read a 16-bit mono WAV written by `wav_bytes` back to floats."""
    with wave.open(str(path), "rb") as handle:
        raw = handle.readframes(handle.getnframes())
    ints = array("h")
    ints.frombytes(raw)
    return array("f", (v / 32768.0 for v in ints))


def write_f32(path: Path, x: array[float]) -> None:
    """Store intermediate samples losslessly (raw little-endian float32), atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(x.tobytes())
    tmp.replace(path)


def read_f32(path: Path) -> array[float]:
    """Read samples stored by `write_f32`."""
    out = array("f")
    out.frombytes(path.read_bytes())
    return out


# ---------------------------------------------------------------- the two stages


def prepare(path: Path, fmt: str | None, params: ChainParams) -> tuple[array[float], int, str]:
    """Stage A: decode, mono, 16 kHz, trim, cap. Returns (samples, native rate, codec)."""
    samples, rate, codec = decode(path, fmt)
    x = resample(samples, rate, SAMPLE_RATE)
    x = cap_length(trim(x, params), params.max_s)
    return x, rate, codec


@dataclass(frozen=True)
class Draw:
    """The per-clip random values of stage B."""

    lead_s: float
    trail_s: float
    snr_db: float
    level_dbfs: float

    @classmethod
    def sample(cls, rng: random.Random, params: ChainParams) -> Draw:
        """Draw from the chain's ranges (identical for both classes)."""
        return cls(
            lead_s=rng.uniform(*params.pad_s),
            trail_s=rng.uniform(*params.pad_s),
            snr_db=rng.uniform(*params.snr_db),
            level_dbfs=rng.uniform(*params.level_dbfs),
        )


def finish(
    x: array[float], *, narrowband: bool, params: ChainParams, rng: random.Random
) -> array[float]:
    """Stage B: padding, noise floor, channel, loudness. Identical for both classes.

    Every clip gets one G.722 pass here, after the noise floor, so pads and pauses are coded
    like the speech. (The asterisk recordings were shipped as G.722 and so have been through it
    once before; re-coding them was preferred to leaving their pads uncoded.)
    """
    draw = Draw.sample(rng, params)
    y = normalise(x, params.work_dbfs, params)  # a known level before noise and codecs
    y = pad(y, draw.lead_s, draw.trail_s)
    y = add_noise(y, params.work_dbfs - draw.snr_db, rng)
    y = g722_roundtrip(y)
    if narrowband:
        y = telephone_roundtrip(y)
    return normalise(y, draw.level_dbfs, params)
