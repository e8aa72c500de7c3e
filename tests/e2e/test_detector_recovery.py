"""A detector process killed mid-file: the request is redelivered and gets exactly one result."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from contracts import events as ev
from contracts.events import DetectOptions, FileSpec
from contracts.ids import new_id
from contracts.topics import DETECT_RESULTS
from tests.support import media
from tests.support.infra import Infra
from tests.support.kafka import collect, publish, wait_until
from tests.support.services import free_port, service_process

pytestmark = pytest.mark.infra


async def test_killed_worker_is_redelivered_and_answers_once(
    infra: Infra, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    blob_root = tmp_path / "blobs"
    batch_id, detect_id = new_id(), new_id()
    key = f"media/{batch_id}/000"
    (blob_root / key).parent.mkdir(parents=True)
    (blob_root / key).write_bytes(media.looped_speech(600.0))  # long enough to be killed mid-file
    request = ev.DetectRequested(
        team_id=new_id(), correlation_id=batch_id, batch_id=batch_id, detect_id=detect_id,
        file=FileSpec(detect_id=detect_id, filename="long.wav", media_type="audio",
                      blob_key=key, size_bytes=(blob_root / key).stat().st_size,
                      sha256="0" * 64, duration_seconds=600.0, analysed_seconds=600.0),
        options=DetectOptions(frame_length=2),
    )  # fmt: skip
    env = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(blob_root),
    }
    async with collect(infra.kafka_bootstrap, DETECT_RESULTS) as results:

        def answers() -> list[ev.Event]:
            found = [ev.decode_event(r.value) for r in results.records]
            return [e for e in found if getattr(e, "detect_id", None) == detect_id]

        first = tmp_path / "first.log"
        async with service_process("detector", env, first, port=free_port()) as detector:
            await publish(producer, request)
            await wait_until(lambda: "analysis started" in first.read_text(), timeout=60)
            os.kill(detector.pid, signal.SIGKILL)  # mid-file: its worker child dies with the pipe
        assert not answers()  # it died before answering
        second = tmp_path / "second.log"
        async with service_process("detector", env, second, port=free_port()):
            await wait_until(lambda: len(answers()) >= 1, timeout=120, what="a result")
            await asyncio.sleep(2)
    [answer] = answers()
    assert isinstance(answer, ev.DetectCompleted), answer
    metrics = answer.result["metrics"]
    assert isinstance(metrics, dict)
    assert len(metrics["score"]) == 300  # type: ignore[arg-type]
