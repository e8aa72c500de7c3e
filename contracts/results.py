"""Typed pieces of a detect's result, as the public detect item shows them (docs/api.md).

The detector builds a result as plain JSON (services/detector/analysis/); intake copies its keys
onto the item (services/intake/api/views.py `RESULT_KEYS`), puts the visualization link in the
modality's metrics as `image`, and replaces the voiceprint with `identity_matches`. These models
describe that JSON for other teams, so they follow what the code writes, not what would be tidy:
Resemble's fields keep Resemble's types (audio scores are strings, `certainty (%)` is a string)
and a key that only some media or options produce is optional ("absent"), while null is allowed
only where the detector writes null. [ours] marks fields Resemble's API does not have.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id


class Open(BaseModel):
    """Base of every public shape: immutable, and open to fields added later."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def absent(description: str, **constraints: Any) -> Any:
    """A key that may be left out (it reads as None here): not required, and, unless its type
    says `| None`, never null either (contracts/schemas.py leaves the default out)."""
    return Field(default=None, description=description, **constraints)


AudioLabel = Literal["fake", "real", "inconclusive"]
VisualLabel = Literal["Fake", "Real", "Inconclusive"]
PerthVersion = Literal["perth_v1", "perth_v2"]
Abnormality = Literal["clipping", "very_quiet", "noisy", "no_speech", "long_silence"]


class ModelInfo(Open):
    """[ours] The model that produced a score, and the threshold its label was read at."""

    name: str = Field(description="e.g. verity-audio-lr, verity-image-lr")
    version: str = Field(description='The model\'s version, e.g. "1"')
    threshold: float = Field(description="A score at or above it is labelled fake")
    real_below: float = absent(
        "Visual models: a score at or below it is Real; between the two, Inconclusive"
    )


# --- audio ----------------------------------------------------------------------------------


class AudioMetrics(Open):
    """The audio verdict (`metrics`) of an audio file or a video's sound. Scores are strings,
    as Resemble types them; an inconclusive verdict (too little speech) comes with `reasons`."""

    label: AudioLabel = Field(
        description="fake when aggregated_score reaches the model's threshold, else real;"
        " inconclusive with less than 1 s of speech"
    )
    score: list[str] = Field(
        description="One per frame_length window, in order: its probability of synthetic speech"
        ' to 2 decimals ("0.91"), or "" for a window with too little speech to score'
    )
    consistency: str = Field(
        description="Share of the scored windows whose own label agrees with `label`, to 2"
        ' decimals; "" when inconclusive'
    )
    aggregated_score: str = Field(
        description="Mean score of the scored windows, to 2 decimals (higher = more likely"
        ' synthetic); "" when inconclusive'
    )
    model: ModelInfo = absent(
        "[ours] A video's sound only: the audio model (the item's `model` is the image model)"
    )
    image: str = absent("The visualization PNG, a signed expiring link (visualize=true)")


class TracerInfo(Open):
    """[ours] The source-tracing model, and the families it can name."""

    name: str = Field(description="e.g. verity-tracing-lr")
    version: str = Field(description="The model's version")
    families: list[str] = Field(description="What it can name: clustergen, diphone, formant, vits")


class SourceTracing(Open):
    """The synthesizer family that most likely made a voice judged fake
    (`audio_source_tracing`); a family the model never saw is named as the closest known one."""

    label: str | None = Field(
        description="One of `model.families`; null when no source-tracing model is installed"
    )
    confidence: float = absent("[ours] The family's mean probability over the windows", ge=0, le=1)
    error_message: str | None = Field(description="Why there is no label, else null")
    model: TracerInfo = absent("[ours] The model that traced it (absent with no label)")


class IdentityMatch(Open):
    """One of the team's saved voice identities, nearest first (`identity_matches`, with
    search_identity); every identity is ranked, `match` says which pass the threshold."""

    uuid: Id = Field(description="The saved identity")
    name: str = Field(description="The name it was saved with")
    confidence: float = Field(
        ge=0, le=1, description="[ours] Calibrated probability that it is the same speaker"
    )
    distance: float = Field(
        ge=0, le=100, description="Resemble's 0-100 match score, higher is closer: 100 x cosine"
    )
    score_type: Literal["cosine"] = Field(description="What `distance` is computed from")
    cosine_distance: float = Field(ge=0, le=2, description="[ours] 1 - cosine (0 = identical)")
    match: bool = Field(description="[ours] Whether the cosine reaches the calibrated threshold")


# --- image and video ------------------------------------------------------------------------


class Box(Open):
    """A face's box in the picture, in pixels from the top-left corner."""

    x: int = Field(description="Left edge")
    y: int = Field(description="Top edge")
    width: int = Field(ge=0, description="Pixels")
    height: int = Field(ge=0, description="Pixels")


class VisualNode(Open):
    """One node of Resemble's tree below a visual verdict: an image's face (FaceResult), or a
    video's VideoResult → ImageResult (one sampled frame) → Segment (what was scored in it)."""

    model_config = ConfigDict(serialize_by_alias=True)

    type: Literal["FaceResult", "VideoResult", "ImageResult", "Segment"] = Field(
        description="Which level of the tree this node is"
    )
    label: VisualLabel = Field(description="Inconclusive between the model's two thresholds")
    conclusion: VisualLabel = Field(description="The label, as Resemble also names it")
    score: float = Field(ge=0, le=1, description="Probability that the pixels were generated")
    certainty: float = Field(ge=0.5, le=1, description="max(score, 1 - score)")
    certainty_percent: str = Field(
        alias="certainty (%)", description='The certainty as a percentage string, e.g. "97.5%"'
    )
    box: Box = absent("FaceResult, and a Segment of kind face: the face")
    timestamp: float = absent("ImageResult: the frame's time in seconds", ge=0)
    faces: int = absent("ImageResult: faces found in the frame", ge=0)
    kind: Literal["face", "frame"] = absent(
        "Segment: whether the largest face or the whole frame was scored"
    )
    children: list[VisualNode] = absent(
        "VideoResult: its frames (ImageResult); ImageResult: its one Segment"
    )


class VisualMetrics(Open):
    """The verdict on an image (`image_metrics`) or on a video's pictures (`video_metrics`),
    with Resemble's tree of `children`; the video-only fields are absent for an image."""

    model_config = ConfigDict(serialize_by_alias=True)

    type: Literal["ImageAnalysis"] = absent("Image only (the video level carries no type)")
    label: VisualLabel = Field(description="Inconclusive between the model's two thresholds")
    conclusion: VisualLabel = Field(description="The label, as Resemble also names it")
    score: float = Field(
        ge=0, le=1, description="Probability that it was generated (a video: mean over frames)"
    )
    certainty: float = Field(ge=0.5, le=1, description="max(score, 1 - score)")
    certainty_percent: str = Field(
        alias="certainty (%)", description='The certainty as a percentage string, e.g. "97.5%"'
    )
    children: list[VisualNode] = Field(
        description="An image: one FaceResult per face found; a video: its one VideoResult"
    )
    image: str = absent("The visualization PNG, a signed expiring link (visualize=true)")
    treeview: str = absent("Video: a plain-text outline of the tree, one line per frame")
    frames_analysed: int = absent("Video: frames scored", ge=1)
    faces_found: int = absent("Video: scored frames in which a face was found", ge=0)
    frames_per_second: float = absent("[ours] Video: the sampling rate used", gt=0)
    face_only: bool = absent("[ours] Video: whether frames without a face were skipped")


class Segment(Open):
    """[ours] One time-aligned score: an audio window, or a video window's mean over its
    frames. A video's list holds both tracks, video first."""

    track: Literal["audio", "video"] = absent("Video only: which track; audio has no track")
    start: float = Field(ge=0, description="Seconds")
    end: float = Field(ge=0, description="Seconds")
    score: float | None = Field(
        ge=0, le=1, description="Probability of synthetic; null for an audio window without speech"
    )
    label: AudioLabel = Field(description="Lowercase on both tracks")
    frames: int = absent("Video track: the frames averaged", ge=1)


# --- watermark ------------------------------------------------------------------------------


class WatermarkSegment(Open):
    """[ours] Perth's confidence on one window of the audio."""

    start: float = Field(ge=0, description="Seconds")
    end: float = Field(ge=0, description="Seconds")
    confidence: float | None = Field(ge=0, le=1, description="null for digital silence")


class WatermarkModelResult(Open):
    """One watermark detector's reading (Resemble's WatermarkAudioModelResult)."""

    model_version: PerthVersion = Field(description="Only perth_v1 runs here; perth_v2 fails")
    status: Literal["succeeded", "failed"] = Field(description="Whether this detector read")
    detected: bool | None = Field(description="null when this detector could not read")
    error: str = absent("Failed only: why")
    has_watermark: dict[str, bool] = absent("Succeeded only: per channel (only `mono` here)")
    confidence: float = absent("Succeeded only: duration-weighted mean over windows", ge=0, le=1)
    package: str = absent("[ours] Succeeded only: the detector that ran")
    threshold: float = absent("[ours] Succeeded only: detected at or above it")
    seconds_analysed: float = absent("[ours] Succeeded only: seconds that got a reading", ge=0)
    segments: list[WatermarkSegment] = absent("[ours] Succeeded only: per window")


class WatermarkMetrics(Open):
    """Resemble's WatermarkAudioDetectionMetrics. `absent` means "not found by Perth v1",
    never "not watermarked" (`coverage_complete` is false)."""

    overall_status: Literal["present", "absent", "inconclusive"] = Field(
        description="inconclusive when there was too little audio signal to read"
    )
    detected_model_versions: list[PerthVersion] = Field(
        description="The detectors that found a watermark"
    )
    coverage_complete: bool = Field(description="Always false here: Perth v2 does not run")
    has_watermark: dict[str, bool] = Field(description="Per channel (`mono`); {} when inconclusive")
    confidence: float | None = Field(ge=0, le=1, description="null when inconclusive")
    model_results: list[WatermarkModelResult] = Field(description="Each detector's reading")


class Watermark(Open):
    """The `watermark` child (detect_watermark=true), Resemble's DetectWatermarkAnalysis: Perth's
    audio watermark for audio and a video's sound; it fails alone, never the detect."""

    status: Literal["completed", "failed"] = Field(
        description="failed for an image, a video without sound, or unreadable audio"
    )
    metrics: WatermarkMetrics = absent("Completed only")
    error_message: str = absent("Failed only: why")


# --- intelligence ---------------------------------------------------------------------------


class Loudness(Open):
    """Levels in dBFS (20·log10 of an RMS, floored at -120)."""

    rms_dbfs: float = Field(description="Of the whole audio")
    speech_rms_dbfs: float | None = Field(description="Of the speech; null without speech")
    peak_dbfs: float = Field(description="Of the loudest sample")


class Clipping(Open):
    """Samples at full scale."""

    clipped_sample_ratio: float = Field(ge=0, le=1, description="Share of samples at |x| >= 0.999")
    clipped: bool = Field(description="More than 0.1 % of the samples clipped")


class Noise(Open):
    """The noise floor (10th percentile of 50 ms frame levels) and the speech's SNR."""

    noise_floor_dbfs: float | None = Field(description="dBFS; null without audio")
    snr_db: float | None = Field(
        description="Speech RMS over the floor, in dB; null without speech"
    )


class Speakers(Open):
    """An estimated speaker count, from clustering the windows' speaker embeddings."""

    estimated_count: int | None = Field(ge=1, description="null with `reason`")
    method: str = Field(description="How the count was made")
    windows_used: int = Field(ge=0, description="Embeddings clustered")
    cluster_sizes: list[int] = Field(description="Windows per cluster, largest first")
    reason: str | None = Field(description="Why there is no count, else null")
    windows_with_embedding: int = Field(ge=0, description="Windows that gave an embedding")


class TranscriptSegment(Open):
    """A stretch of the transcript, in seconds of the file."""

    start: float = Field(ge=0, description="Seconds")
    end: float = Field(ge=0, description="Seconds")
    text: str = Field(description="What was said")


class Transcript(Open):
    """What was said in the first 2 minutes, by an English-only Whisper model."""

    text: str = Field(description="The whole transcript")
    segments: list[TranscriptSegment] = Field(description="The transcript, in time order")
    model: str = Field(description="The speech-recognition model")
    note: str = Field(description="The model's limits (English only)")


class Exif(Open):
    """Two EXIF facts; easy to forge or strip, they prove nothing."""

    camera: str | None = Field(description="Make and model; null when absent")
    software: str | None = Field(description="null when absent")


class Unavailable(Open):
    """What the report cannot tell here, each with the reason."""

    language: str = absent("Audio: no packaged model identifies the language")
    transcript: str = absent("Audio: why there is no transcript (no speech)")
    audio: str = absent("A video: why there is no audio report (no sound, or modality video)")


class LlmCommentary(Open):
    """[ours] The operator's LLM's reading of the numbers (use_llm=true): an opinion, which
    never changes a score or label."""

    available: bool = Field(description="Whether the LLM answered")
    model: str = absent("Available only: the LLM that answered")
    summary: str = absent("Available only: what it said")
    reason: str = absent("Unavailable only: why (unconfigured, failed, slow)")


class Intelligence(Open):
    """The `intelligence` report (intelligence=true): measured or read off the file, never
    guessed. Which fields it has depends on the media: audio and a video's sound the signal
    report (speech_ratio to transcript), an image the file's facts (format to note), a video
    without an audio report only `unavailable`; `llm` is added with use_llm=true."""

    speech_ratio: float = absent("Audio: share of the samples that are speech", ge=0, le=1)
    speech_seconds: float = absent("Audio: seconds of speech", ge=0)
    analysed_seconds: float = absent("Audio: seconds analysed", ge=0)
    loudness: Loudness = absent("Audio")
    clipping: Clipping = absent("Audio")
    noise: Noise = absent("Audio")
    longest_silence_seconds: float = absent("Audio: the longest run without speech", ge=0)
    speakers: Speakers = absent("Audio")
    abnormalities: list[Abnormality] = absent("Audio: what the documented rules found")
    language: str | None = absent("Audio: always null, see `unavailable`")
    transcript: Transcript | None = absent("Audio: null without speech, see `unavailable`")
    format: str | None = absent("Image: the file format (JPEG, PNG, ...)")
    width: int = absent("Image: pixels", ge=1)
    height: int = absent("Image: pixels", ge=1)
    faces: int = absent("Image: faces found", ge=0)
    exif: Exif = absent("Image")
    note: str = absent("Image: how far the facts can be trusted")
    unavailable: Unavailable = absent("Audio, or a video without an audio report")
    llm: LlmCommentary = absent("[ours] With use_llm=true")
