"""The detector service against real Kafka + PostgreSQL: one clear result per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts import events as ev
from contracts.events import DetectOptions, FileSpec
from contracts.ids import new_id
from contracts.topics import DETECT_RESULTS
from services.common.runtime import Runtime
from services.detector.app import build_runtime
from services.detector.settings import DetectorSettings
from tests.support import media
from tests.support.infra import REPO, Infra
from tests.support.kafka import collect, publish, wait_until

pytestmark = pytest.mark.infra
SPEECH = REPO / "tests" / "data" / "detector" / "speech_16k.wav"


@pytest.fixture(scope="module")
def blob_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("detector-blobs")


@pytest.fixture(scope="module")
async def detector(infra: Infra, blob_root: Path) -> AsyncIterator[Runtime]:
    runtime = build_runtime(
        DetectorSettings(
            database_url=infra.database_url,
            kafka_bootstrap=infra.kafka_bootstrap,
            blob_root=blob_root,
        )
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def request(blob_root: Path, name: str, data: bytes | None) -> ev.DetectRequested:
    batch_id, detect_id = new_id(), new_id()
    key = f"media/{batch_id}/000"
    if data is not None:
        (blob_root / key).parent.mkdir(parents=True)
        (blob_root / key).write_bytes(data)
    spec = FileSpec(
        detect_id=detect_id, filename=name, media_type="audio", blob_key=key,
        size_bytes=len(data or b""), sha256="0" * 64, duration_seconds=1.0, analysed_seconds=1.0,
    )  # fmt: skip
    return ev.DetectRequested(
        team_id=new_id(), correlation_id=batch_id, batch_id=batch_id, detect_id=detect_id,
        file=spec, options=DetectOptions(),
    )  # fmt: skip


async def test_every_request_gets_exactly_one_clear_result(
    infra: Infra, detector: Runtime, producer: AIOKafkaProducer, blob_root: Path
) -> None:
    corrupt = request(blob_root, "corrupt.wav", b"RIFF" + bytes(500))
    missing = request(blob_root, "gone.wav", None)
    tone = request(blob_root, "tone.wav", media.wav_bytes(2.0))
    speech = request(blob_root, "prompt.wav", SPEECH.read_bytes())
    mine = {r.detect_id: r for r in (corrupt, missing, tone, speech)}
    async with collect(infra.kafka_bootstrap, DETECT_RESULTS) as results:
        await publish(producer, corrupt, missing, tone, speech, speech)  # `speech` twice

        def answers() -> list[ev.Event]:
            decoded = [ev.decode_event(r.value) for r in results.records]
            return [e for e in decoded if getattr(e, "detect_id", None) in mine]

        await wait_until(lambda: len(answers()) >= 4, what="four results")
        await asyncio.sleep(2)  # room for a wrong second answer to the repeated request
        found = answers()
    assert len(found) == 4  # one per detect, though `speech` came twice
    by_detect = {e.detect_id: e for e in found}  # type: ignore[attr-defined]
    failed = {d: (e.error_code, e.error_message) for d, e in by_detect.items()
              if isinstance(e, ev.DetectFailed)}  # fmt: skip
    assert failed[corrupt.detect_id][0] == "unsupported_media"
    assert "cannot open media" in failed[corrupt.detect_id][1]
    assert failed[missing.detect_id][0] == "media_missing"
    # a tone is not speech: no verdict, and the reason says why
    silent = by_detect[tone.detect_id]
    assert isinstance(silent, ev.DetectCompleted)
    assert silent.result["metrics"]["label"] == "inconclusive"  # type: ignore[call-overload,index]
    assert "speech" in str(silent.result["reasons"])
    spoken = by_detect[speech.detect_id]
    assert isinstance(spoken, ev.DetectCompleted)
    metrics: Any = spoken.result["metrics"]
    assert metrics["label"] in ("real", "fake")
    assert 0.0 <= float(metrics["aggregated_score"]) <= 1.0
    assert len(metrics["score"]) == 2  # 2.4 s in 2 s windows
    assert spoken.result["model"]["name"] == "verity-audio-lr"  # type: ignore[call-overload,index]
    for event in by_detect.values():
        assert event.causation_id == mine[event.detect_id].event_id  # type: ignore[attr-defined]
