"""POST /detect/batch end to end with the blobs in S3 (VERITY_BLOB_STORE=s3).

As tests/e2e/test_batches.py: real Kafka and PostgreSQL, the real wallet, intake as a real
process, the test analyzer playing the detector's part (it reads each blob back from the same
bucket and checks its sha256). The bucket is on moto's S3 server (deploy/local/s3.sh); intake's
keys live below a prefix. What is S3-specific on intake's side: uploads streamed into objects,
probing (PyAV) and unzipping on local copies, secure uploads moved by copy + delete, media served
and deleted from the bucket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.blobstore import BlobStore
from services.common.db import Pool
from services.common.runtime import Runtime
from tests.e2e.conftest import TeamFactory, intake_client
from tests.e2e.test_batches import WAV, finished, problem, wavs
from tests.support import analyzer, media
from tests.support.infra import Infra, S3Server

pytestmark = pytest.mark.infra

Client = httpx.AsyncClient
PREFIX = "verity-e2e"


@pytest.fixture(scope="module")
def bucket(s3: S3Server) -> tuple[str, BlobStore]:
    """The bucket, and a blob store over it with intake's prefix (what intake sees)."""
    return s3.new_store(prefix=PREFIX)


@pytest.fixture(scope="module")
async def fake_detector(
    infra: Infra, bucket: tuple[str, BlobStore]
) -> AsyncIterator[analyzer.TestAnalyzer]:
    """The conftest's test analyzer, reading from the bucket instead of a directory."""
    async with analyzer.running(infra.kafka_bootstrap, bucket[1]) as running:
        yield running


@pytest.fixture(scope="module")
async def client(
    infra: Infra,
    s3: S3Server,
    bucket: tuple[str, BlobStore],
    blob_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    wallet: Runtime,
    fake_detector: analyzer.TestAnalyzer,
) -> AsyncIterator[Client]:
    """Intake as a real process on S3 (`blob_root` stays empty: nothing may land there)."""
    env = s3.settings(bucket[0], PREFIX)
    async with intake_client(infra, blob_root, tmp_path_factory.mktemp("logs"), env) as c:
        yield c


async def keys(blobs: BlobStore, *folders: str) -> list[str]:
    return sorted([blob.key for folder in folders async for blob in blobs.list(folder)])


async def analyzer_results(pools: dict[str, Pool], batch_id: str) -> list[Any]:
    """What the test analyzer found in each blob it read back from the bucket."""
    async with pools["intake"].acquire() as conn:
        rows = await conn.fetch(
            "SELECT result FROM detects WHERE batch_id = $1 ORDER BY position", batch_id
        )
    return [r["result"]["test_analyzer"] for r in rows]  # the pool decodes jsonb


async def test_a_batch_on_s3_completes_with_the_bytes_sent(
    client: Client,
    new_team: TeamFactory,
    pools: dict[str, Pool],
    s3: S3Server,
    bucket: tuple[str, BlobStore],
    blob_root: Path,
) -> None:
    _, auth = await new_team()
    mp3 = media.mp3_bytes(2.0)
    files = [*wavs(3), ("files[]", ("song.mp3", mp3, "audio/mpeg"))]
    response = await client.post("/api/v2/detect/batch", files=files, headers=auth)
    assert response.status_code == 202, response.text
    batch_id = response.json()["item"]["uuid"]
    done = await finished(client, auth, f"/api/v2/detect/batch/{batch_id}")
    assert (done["status"], done["completed_count"], done["failed_count"]) == ("completed", 4, 0)
    assert await analyzer_results(pools, batch_id) == [
        {"bytes_read": len(data), "sha256_verified": True} for data in (WAV, WAV, WAV, mp3)
    ]
    for detect_id in done["detect_uuids"]:  # the probe (PyAV, on a local copy) measured them
        detect = (await client.get(f"/api/v2/detect/{detect_id}", headers=auth)).json()["item"]
        expected = 2.0 if detect["filename"] == "song.mp3" else 1.0
        assert detect["duration"] == pytest.approx(expected, abs=0.1)
    served = await client.get(f"/api/v2/detect/{done['detect_uuids'][0]}/media", headers=auth)
    assert served.content == WAV  # streamed back out of the bucket

    stored = await keys(bucket[1], f"uploads/{batch_id}")
    assert stored == [f"uploads/{batch_id}/{n:03d}" for n in range(4)]
    assert set(s3.keys(bucket[0])) >= {f"{PREFIX}/{key}" for key in stored}
    assert not list(blob_root.rglob("*"))  # nothing went to the filesystem


async def test_a_zip_on_s3_is_unpacked_into_the_bucket(
    client: Client, new_team: TeamFactory, pools: dict[str, Pool], bucket: tuple[str, BlobStore]
) -> None:
    _, auth = await new_team()
    archive = media.zip_bytes([("calls/a.wav", WAV), ("notes.txt", b"hi"), ("calls/b.wav", WAV)])
    response = await client.post(
        "/api/v2/detect/batch", files={"file": ("calls.zip", archive, "application/zip")},
        headers=auth,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    batch_id = response.json()["item"]["uuid"]
    done = await finished(client, auth, f"/api/v2/detect/batch/{batch_id}")
    assert (done["status"], done["completed_count"]) == ("completed", 2)
    assert (
        await analyzer_results(pools, batch_id)
        == [{"bytes_read": len(WAV), "sha256_verified": True}] * 2
    )
    # the members became objects of their own; the archive itself is gone
    assert await keys(bucket[1], f"uploads/{batch_id}", f"media/{batch_id}") == [
        f"media/{batch_id}/000", f"media/{batch_id}/001"
    ]  # fmt: skip


async def test_refused_uploads_leave_nothing_in_the_bucket(
    client: Client, new_team: TeamFactory, bucket: tuple[str, BlobStore]
) -> None:
    _, auth = await new_team()
    before = await keys(bucket[1], "uploads", "media")
    files = [*wavs(1), ("files[]", ("voice.wav", media.png_bytes(), "audio/wav"))]
    body = problem(await client.post("/api/v2/detect/batch", files=files, headers=auth), 400)
    assert "PNG" in " ".join(body["errors"]["voice.wav"])  # PyAV and Pillow read the object
    bad_zip = [("file", ("x.zip", media.zip_bytes([("../evil.wav", WAV)]), "application/zip"))]
    problem(await client.post("/api/v2/detect/batch", files=bad_zip, headers=auth), 400)
    assert await keys(bucket[1], "uploads", "media") == before


async def test_secure_upload_moves_within_the_bucket(
    client: Client, new_team: TeamFactory, bucket: tuple[str, BlobStore]
) -> None:
    _, auth = await new_team()
    uploaded = await client.post(
        "/api/v2/secure_uploads", files={"file": ("call.wav", WAV)}, headers=auth
    )
    assert uploaded.status_code == 200, uploaded.text
    assert len(await keys(bucket[1], "secure")) == 1
    detect = await client.post(
        "/api/v2/detect", json={"media_token": uploaded.json()["token"]},
        headers={**auth, "Prefer": "wait"},
    )  # fmt: skip
    assert detect.status_code == 200, detect.text
    item = detect.json()["item"]
    assert item["status"] == "completed"
    assert await keys(bucket[1], "secure") == []  # copied to the detect's key, then deleted
    served = await client.get(f"/api/v2/detect/{item['uuid']}/media", headers=auth)
    assert served.content == WAV

    deleted = await client.delete(f"/api/v2/detect/{item['uuid']}", headers=auth)
    assert deleted.status_code == 200, deleted.text
    assert (await client.get(f"/api/v2/detect/{item['uuid']}/media", headers=auth)).is_error
