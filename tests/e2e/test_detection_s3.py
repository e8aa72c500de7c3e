"""The real detector on S3: one short recording through intake and the detector, both real
processes with VERITY_BLOB_STORE=s3 on moto's server (deploy/local/s3.sh).

The detector reads the media through a local copy of the object, draws the visualization into
a local file that the store uploads, and computes a voiceprint the same way; intake serves the
picture out of the bucket and deletes it with its detect. The scores themselves are
tests/e2e/test_detection.py's subject.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.common.blobstore import BlobStore
from services.common.runtime import Runtime
from tests.e2e.conftest import credited_team
from tests.support import media
from tests.support.infra import Infra, S3Server
from tests.support.resemble_spec import checked
from tests.support.services import service_process

pytestmark = pytest.mark.infra
PREFIX = "verity-detector"
System = tuple[httpx.AsyncClient, dict[str, str], BlobStore]


@pytest.fixture(scope="module")
async def system(
    infra: Infra, s3: S3Server, wallet: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    """Intake and the detector sharing a bucket; a team with $10; the store as they see it."""
    bucket, blobs = s3.new_store(prefix=PREFIX)
    logs = tmp_path_factory.mktemp("logs")
    env = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(tmp_path_factory.mktemp("unused-blobs")),
        "VERITY_PUBLIC_URL": "http://verity.test",
        **s3.settings(bucket, PREFIX),
    }
    async with (
        service_process("detector", env, logs / "detector.log"),
        service_process("intake", env, logs / "intake.log") as intake,
        httpx.AsyncClient(base_url=intake.url, timeout=120) as client,
    ):
        _, auth = await credited_team(infra.database_url, "detection-s3-test")
        yield checked(client), auth, blobs


async def keys(blobs: BlobStore, folder: str) -> list[str]:
    return sorted([blob.key async for blob in blobs.list(folder)])


async def test_a_recording_is_scored_pictured_and_enrolled_from_s3(system: System) -> None:
    client, auth, blobs = system
    speech = media.SPEECH.read_bytes()
    async with asyncio.timeout(240):  # the detector may first answer older tests' requests
        response = await client.post(
            "/api/v2/detect", headers={**auth, "Prefer": "wait"},
            files={"file": ("call.wav", speech, "audio/wav")},
        )  # fmt: skip
    assert response.status_code == 200, response.text
    detect: dict[str, Any] = response.json()["item"]
    assert detect["status"] == "completed", detect
    assert 0.0 <= float(detect["metrics"]["aggregated_score"]) <= 1.0  # the model read it

    pictures = await keys(blobs, "visualizations")
    assert len(pictures) == 1
    assert pictures[0].endswith(f"/{detect['uuid']}.png")  # drawn locally, stored in S3
    link = detect["metrics"]["image"].removeprefix("http://verity.test")
    picture = await client.get(link)
    assert picture.status_code == 200, picture.text
    assert picture.content.startswith(b"\x89PNG")

    saved = await client.post(
        "/api/v2/identity", headers=auth, data={"name": "Allison"},
        files={"file": ("allison.wav", speech, "audio/wav")},
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert saved.json()["item"]["status"] == "ready"  # the voiceprint came from the object

    deleted = await client.delete(f"/api/v2/detect/{detect['uuid']}", headers=auth)
    assert deleted.status_code == 200, deleted.text
    assert await keys(blobs, "visualizations") == []
