"""contracts/results.py against what the detector really writes, as the detect item shows it.

Each file goes the way a detect goes, minus Kafka and PostgreSQL: the real analysis
(`dispatch.analyze`, real models, real media), the detector's visualization bookkeeping, the
DetectCompleted event's JSON round trip, intake's `with_identity_matches` (over a stand-in
connection holding two real saved voiceprints) and `detect_item`. Every piece of the item is then
validated with `extra="forbid"`, so a key the models do not know fails here, and the whole item
with `Detection.checked`, as intake checks it before publishing it.
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from contracts import events as ev
from contracts import public
from contracts import results as r
from contracts.ids import new_id
from services.detector.analysis import dispatch, voiceprints
from services.intake.api.links import Links
from services.intake.api.views import detect_item
from services.intake.saga.consumers import with_identity_matches
from tests.support import media
from tests.support.chat_server import chat_server

SENTENCE = "The quick brown fox jumps over the lazy dog while the detector listens to every word."
LINKS = Links("https://verity.example", b"k" * 32, 600)
ALL = {"audio_source_tracing": True, "intelligence": True, "search_identity": True}
ALL |= {"use_llm": True, "detect_watermark": True, "visualize": True}
# each case: (file, media type, options); the files are made by `files`
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "fake": ("espeak.wav", "audio", ALL),
    "real": ("speech.wav", "audio", {**ALL, "use_llm": False, "visualize": False}),
    "perth": ("perth.wav", "audio", {"detect_watermark": True, "visualize": False}),
    "silence": ("silence.wav", "audio", ALL),
    "image": ("photo.jpg", "image", ALL),
    "video": ("talk.mp4", "video", ALL),
    "mute": ("mute.mp4", "video", {**ALL, "visualize": False}),
    "pictures": ("talk.mp4", "video", {**ALL, "modality": "video", "face_only": True}),
}
PIECES: dict[str, type[BaseModel]] = {
    "metrics": r.AudioMetrics,
    "image_metrics": r.VisualMetrics,
    "video_metrics": r.VisualMetrics,
    "watermark": r.Watermark,
    "audio_source_tracing": r.SourceTracing,
    "intelligence": r.Intelligence,
    "model": r.ModelInfo,
}
LISTS: dict[str, type[BaseModel]] = {"identity_matches": r.IdentityMatch, "segments": r.Segment}


M = TypeVar("M", bound=BaseModel)


def strict(model: type[M], value: Any) -> M:
    return model.model_validate(value, extra="forbid")


def espeak(path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: `apt-get install espeak-ng` (.ci/run installs it)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), SENTENCE], check=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("result-models")
    espeak(root / "espeak.wav")
    shutil.copy(media.SPEECH, root / "speech.wav")
    shutil.copy(media.DETECTOR_DATA / "speech_perth_16k.wav", root / "perth.wav")
    shutil.copy(media.PHOTO, root / "photo.jpg")
    with wave.open(str(root / "silence.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(bytes(2 * 16_000 * 3))
    (root / "talk.mp4").write_bytes(media.photo_video(4.0))
    (root / "mute.mp4").write_bytes(media.photo_video(2.0, speech=None))
    return root


class SavedIdentities:
    """Stands in for intake's connection: the one query `saved_voiceprints` makes."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def fetch(self, query: str, *args: object) -> list[dict[str, Any]]:
        assert "FROM identities" in query
        return self.rows


@pytest.fixture(scope="module")
def saved(files: Path) -> SavedIdentities:
    """Two real voiceprints, as identity enrolment saves them: Allison's other recording and
    the espeak voice."""
    rows = []
    for name, path in (("Allison", media.SPEECH2), ("espeak voice", files / "espeak.wav")):
        found = voiceprints.voiceprint(str(path), "audio")
        rows.append({"identity_id": new_id(), "name": name, "embedding": found["embedding"]})
    return SavedIdentities(rows)


@pytest.fixture(scope="module")
def llm() -> Iterator[str]:
    with chat_server(" The image looks like a camera photograph. ") as (url, _):
        yield url


async def detect(
    files: Path, saved: SavedIdentities, name: str, media_type: str, given: dict[str, Any]
) -> dict[str, Any]:
    """One detect's item, the way the detector and intake make it (services/detector/consumers.py
    `analyse`, services/intake/saga/consumers.py `on_result`, services/intake/api/views.py)."""
    options = ev.DetectOptions(**given)
    picture = files / f"{new_id()}.png" if options.visualize else None
    target = str(picture) if picture else None
    result = dispatch.analyze(
        str(files / name), media_type, options.model_dump(mode="json"), target
    )
    if result.pop("visualization", None) and picture:
        result["visualization"] = {"blob_key": f"visualizations/{picture.name}"}
    batch_id, detect_id = new_id(), new_id()
    completed = ev.DetectCompleted(
        team_id=new_id(), correlation_id=batch_id, batch_id=batch_id, detect_id=detect_id,
        media_type=media_type, analysed_seconds=2.0, result=result,
    )  # fmt: skip
    event = ev.decode_event(ev.encode_event(completed))  # as it crosses Kafka
    assert isinstance(event, ev.DetectCompleted)
    event = await with_identity_matches(saved, event)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    row = {
        "detect_id": detect_id, "batch_id": batch_id, "kind": "batch", "media_type": media_type,
        "status": "completed", "filename": name, "options": options.model_dump(mode="json"),
        "result": event.result, "duration_seconds": None if media_type == "image" else 2.0,
        "analysed_seconds": 2.0, "created_at": now, "updated_at": now, "error_message": None,
        "media_deleted": False, "file_deleted_at": None,
    }  # fmt: skip
    return detect_item(row, LINKS)


@pytest.fixture(scope="module")
async def items(files: Path, saved: SavedIdentities, llm: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as env:
        for case, (name, media_type, options) in CASES.items():
            env.delenv("VERITY_LLM_URL", raising=False)
            env.delenv("VERITY_LLM_MODEL", raising=False)
            if case == "image":  # the LLM answers for the image; unconfigured for the rest
                env.setenv("VERITY_LLM_URL", llm)
                env.setenv("VERITY_LLM_MODEL", "stand-in")
            found[case] = await detect(files, saved, name, media_type, options)
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_every_piece_of_a_real_item_fits_its_model_strictly(
    items: dict[str, Any], case: str
) -> None:
    item = items[case]
    for key, model in PIECES.items():
        if item.get(key) is not None:
            strict(model, item[key])
    for key, model in LISTS.items():
        for entry in item.get(key) or []:
            strict(model, entry)
    public.Detection.checked(item)  # the whole item, as intake checks it before publishing


def test_audio_with_tracing_intelligence_identities_and_watermark(items: dict[str, Any]) -> None:
    fake, real = items["fake"], items["real"]
    metrics = strict(r.AudioMetrics, fake["metrics"])
    assert metrics.label == "fake"
    assert metrics.image.startswith(LINKS.public_url)  # intake's visualization link
    assert len(metrics.score) == len(fake["segments"])
    tracing = strict(r.SourceTracing, fake["audio_source_tracing"])
    assert tracing.label in tracing.model.families
    assert real["audio_source_tracing"] is None  # traced only when judged fake
    report = strict(r.Intelligence, fake["intelligence"])
    assert report.transcript is not None
    assert report.transcript.text
    assert report.llm.available is False
    assert report.llm.reason
    assert report.format is None  # no image facts on audio
    assert report.model_fields_set >= {"speech_ratio", "loudness", "speakers", "unavailable"}
    assert strict(r.ModelInfo, fake["model"]).real_below is None  # one threshold for audio
    matches = [strict(r.IdentityMatch, m) for m in real["identity_matches"]]
    assert [m.name for m in matches] == ["Allison", "espeak voice"]
    assert [m["name"] for m in fake["identity_matches"]] == ["espeak voice", "Allison"]
    watermark = strict(r.Watermark, fake["watermark"])
    assert watermark.status == "completed"
    assert watermark.metrics.overall_status == "absent"
    present = strict(r.Watermark, items["perth"]["watermark"]).metrics
    assert (present.overall_status, present.detected_model_versions) == ("present", ["perth_v1"])
    assert [m.model_version for m in present.model_results] == ["perth_v1", "perth_v2"]


def test_silence_is_inconclusive_with_reasons(items: dict[str, Any]) -> None:
    silence = items["silence"]
    metrics = strict(r.AudioMetrics, silence["metrics"])
    assert (metrics.label, metrics.aggregated_score, metrics.consistency) == (
        "inconclusive", "", ""
    )  # fmt: skip
    assert set(metrics.score) == {""}
    assert silence["reasons"]
    assert all(isinstance(x, str) for x in silence["reasons"])
    assert {strict(r.Segment, s).score for s in silence["segments"]} == {None}
    report = strict(r.Intelligence, silence["intelligence"])
    assert report.transcript is None
    assert report.unavailable.transcript
    assert report.abnormalities == ["no_speech"]
    assert silence["identity_matches"] is None  # too little speech for a voiceprint
    watermark = strict(r.Watermark, silence["watermark"]).metrics
    assert (watermark.overall_status, watermark.confidence) == ("inconclusive", None)


def test_image_tree_facts_and_llm(items: dict[str, Any]) -> None:
    image = items["image"]
    metrics = strict(r.VisualMetrics, image["image_metrics"])
    assert metrics.type == "ImageAnalysis"
    assert metrics.image.startswith(LINKS.public_url)
    (face,) = metrics.children
    assert face.type == "FaceResult"
    assert face.box.width > 50
    assert metrics.treeview is None  # video only
    assert "certainty (%)" in metrics.model_dump()  # serialised under Resemble's name
    facts = strict(r.Intelligence, image["intelligence"])
    assert (facts.format, facts.faces, facts.speech_ratio) == ("JPEG", 1, None)
    assert facts.llm.available
    assert facts.llm.summary
    assert facts.llm.model == "stand-in"
    assert strict(r.ModelInfo, image["model"]).real_below is not None
    assert strict(r.Watermark, image["watermark"]).status == "failed"
    assert image["segments"] is None
    assert "metrics" not in image


def test_video_tree_both_tracks_and_no_sound(items: dict[str, Any]) -> None:
    video = items["video"]
    pictures = strict(r.VisualMetrics, video["video_metrics"])
    assert pictures.type is None
    assert pictures.frames_analysed == 4
    assert pictures.image.startswith(LINKS.public_url)
    (whole,) = pictures.children
    assert whole.type == "VideoResult"
    assert {f.type for f in whole.children} == {"ImageResult"}
    assert {s.kind for f in whole.children for s in f.children} <= {"face", "frame"}
    sound = strict(r.AudioMetrics, video["metrics"])
    assert sound.model.name != video["model"]["name"]  # the audio model, beside the image one
    assert sound.image is None  # the link goes to the pictures
    tracks = [strict(r.Segment, s).track for s in video["segments"]]
    assert set(tracks) == {"video", "audio"}
    assert tracks.index("audio") > 0
    assert strict(r.Intelligence, video["intelligence"]).speakers is not None
    assert strict(r.Watermark, video["watermark"]).status == "completed"
    assert video["identity_matches"]
    mute = items["mute"]
    assert "metrics" not in mute
    report = strict(r.Intelligence, mute["intelligence"])
    assert report.unavailable.audio == "the video has no audio track"
    assert strict(r.Watermark, mute["watermark"]).status == "failed"
    faces = strict(r.VisualMetrics, items["pictures"]["video_metrics"])
    assert faces.face_only is True
    assert faces.frames_analysed == faces.faces_found


def _renamed(value: Any, path: tuple[str | int, ...], new: str) -> Any:
    """A deep copy of `value` whose key at `path` is named `new` instead."""
    if not path:
        return value
    head, *rest = path
    if isinstance(value, list):
        assert isinstance(head, int)
        return [_renamed(v, tuple(rest), new) if i == head else v for i, v in enumerate(value)]
    assert isinstance(head, str)
    if not rest:
        return {(new if k == head else k): v for k, v in value.items()}
    return {k: (_renamed(v, tuple(rest), new) if k == head else v) for k, v in value.items()}


@pytest.mark.parametrize(
    ("case", "key", "path", "new"),
    [
        ("fake", "metrics", ("aggregated_score",), "aggregate_score"),
        ("fake", "audio_source_tracing", ("confidence",), "probability"),
        ("fake", "intelligence", ("transcript", "segments", 0, "text"), "words"),
        ("fake", "intelligence", ("llm", "reason"), "why"),
        ("fake", "watermark", ("metrics", "model_results", 0, "seconds_analysed"), "seconds"),
        ("image", "image_metrics", ("children", 0, "box", "width"), "w"),
        ("video", "video_metrics", ("children", 0, "children", 1, "certainty (%)"), "pct"),
        ("video", "video_metrics", ("frames_per_second",), "fps"),
        ("video", "model", ("real_below",), "lower"),
        ("real", "identity_matches", (0, "cosine_distance"), "cosine"),
        ("video", "segments", (0, "frames"), "frame_count"),
    ],
)  # fmt: skip
def test_a_renamed_key_anywhere_fails(
    items: dict[str, Any], case: str, key: str, path: tuple[str | int, ...], new: str
) -> None:
    models = {**PIECES, **LISTS}
    value = items[case][key]
    if key in LISTS:
        index, *rest = path
        assert isinstance(index, int)
        value, path = value[index], tuple(rest)
    strict(models[key], value)
    with pytest.raises(ValidationError):
        strict(models[key], _renamed(value, path, new))


def test_wrong_types_fail_and_consumers_ignore_what_is_new(items: dict[str, Any]) -> None:
    fake, image = items["fake"], items["image"]
    with pytest.raises(ValidationError):  # Resemble's audio scores are strings, never numbers
        strict(r.AudioMetrics, {**fake["metrics"], "score": [0.91]})
    with pytest.raises(ValidationError):  # visual labels are capitalised
        strict(r.VisualMetrics, {**image["image_metrics"], "label": "real"})
    with pytest.raises(ValidationError):  # absent is not null
        strict(r.Watermark, {**fake["watermark"], "error_message": None})
    newer = {**fake["metrics"], "calibration": "v2"}
    assert r.AudioMetrics.model_validate(newer).label == "fake"  # extra="ignore" for readers
    with pytest.raises(ValidationError):
        strict(r.AudioMetrics, newer)


def test_every_model_and_field_is_described() -> None:
    models = [m for m in vars(r).values() if inspect.isclass(m) and issubclass(m, r.Open)]
    assert r.IdentityMatch in models
    assert len(models) > 20
    for model in models:
        assert model.__doc__, model.__name__
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
