"""The janitor deletes staged uploads that no batch owns, expired secure uploads, nothing else.

On the filesystem store (ages set with utime) and on an S3 bucket (moto's server), where the
ages are the server's: there a negative grace stands for "long after all of them were written".
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.ids import new_id
from services.common.blobstore import BlobStore, FilesystemBlobStore
from services.common.db import Pool, migrate
from services.intake.store import secure_uploads
from services.intake.store.schema import MIGRATIONS
from services.intake.uploads import janitor
from tests.support.infra import S3Server

pytestmark = pytest.mark.infra


def stage(root: Path, area: str, batch_id: str, age_seconds: float) -> Path:
    directory = root / area / batch_id
    directory.mkdir(parents=True)
    (directory / "000").write_bytes(b"media")
    then = time.time() - age_seconds
    for path in (directory / "000", directory):
        os.utime(path, (then, then))
    return directory


async def test_only_old_unowned_staging_directories_go(
    schema_pool: tuple[str, Pool], tmp_path: Path
) -> None:
    schema, pool = schema_pool
    await migrate(pool, schema, MIGRATIONS)
    owned, orphan, fresh = new_id(), new_id(), new_id()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO batches (batch_id, team_id, kind, status, created_at, updated_at)"
            " VALUES ($1, $2, 'batch', 'processing', now(), now())",
            owned,
            new_id(),
        )
    kept = [stage(tmp_path, "uploads", owned, 7200), stage(tmp_path, "uploads", fresh, 10)]
    gone = [stage(tmp_path, "uploads", orphan, 7200), stage(tmp_path, "media", orphan, 7200)]
    other = tmp_path / "uploads" / "not-a-batch"
    other.mkdir()

    blobs = FilesystemBlobStore(tmp_path)
    assert await janitor.sweep(pool, blobs, grace_seconds=3600) == 1
    assert all(d.is_dir() for d in [*kept, other])
    assert not any(d.exists() for d in gone)
    assert await janitor.sweep(pool, blobs, grace_seconds=3600) == 0


async def test_a_crashed_writers_leftovers_go_too(
    schema_pool: tuple[str, Pool], tmp_path: Path
) -> None:
    """A process killed while it wrote the first file leaves only the temporary file."""
    schema, pool = schema_pool
    await migrate(pool, schema, MIGRATIONS)
    directory = stage(tmp_path, "uploads", new_id(), 7200)
    (directory / "000").rename(directory / ".000.0123abcd.part")
    assert await janitor.sweep(pool, FilesystemBlobStore(tmp_path), grace_seconds=3600) == 1
    assert not directory.exists()


async def test_secure_uploads_go_when_expired_unused_or_never_recorded(
    schema_pool: tuple[str, Pool], tmp_path: Path
) -> None:
    schema, pool = schema_pool
    await migrate(pool, schema, MIGRATIONS)
    team = new_id()
    live, expired, claimed, unrecorded, fresh = (new_id() for _ in range(5))
    for upload_id, expires_in in ((live, 3600), (expired, -60), (claimed, -60)):
        stage(tmp_path, "secure", upload_id, 7200)
        async with pool.acquire() as conn:
            await secure_uploads.record(conn, team, secure_uploads.Upload(
                upload_id, f"secure/{upload_id}/000", "a.wav", 5, "0" * 64,
                datetime.now(UTC) + timedelta(seconds=expires_in),
            ))  # fmt: skip
    async with pool.acquire() as conn:  # claimed before it expired: its detect owns the file
        await conn.execute(
            "UPDATE secure_uploads SET used_at = now(), used_by = $2 WHERE upload_id = $1",
            claimed, new_id(),
        )  # fmt: skip
    stage(tmp_path, "secure", unrecorded, 7200)
    stage(tmp_path, "secure", fresh, 10)  # being recorded right now

    blobs = FilesystemBlobStore(tmp_path)
    assert await janitor.sweep_secure_uploads(pool, blobs, grace_seconds=3600) == 2
    remaining = {d.name for d in (tmp_path / "secure").iterdir()}
    assert remaining == {live, claimed, fresh}
    async with pool.acquire() as conn:
        rows = {r["upload_id"] for r in await conn.fetch("SELECT upload_id FROM secure_uploads")}
        assert await secure_uploads.claim(conn, team, expired, new_id()) == "unknown"
        assert await secure_uploads.claim(conn, team, claimed, new_id()) == "used"
        assert await secure_uploads.claim(conn, new_id(), live, new_id()) == "unknown"
        won = await secure_uploads.claim(conn, team, live, new_id())
    assert rows == {live, claimed}
    assert isinstance(won, secure_uploads.Upload)
    assert won.blob_key == f"secure/{live}/000"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _keys(blobs: BlobStore, *areas: str) -> set[str]:
    return {blob.key for area in areas async for blob in blobs.list(area)}


async def test_orphans_go_from_an_s3_bucket(schema_pool: tuple[str, Pool], s3: S3Server) -> None:
    schema, pool = schema_pool
    await migrate(pool, schema, MIGRATIONS)
    _, blobs = s3.new_store(prefix="verity")
    owned, orphan = new_id(), new_id()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO batches (batch_id, team_id, kind, status, created_at, updated_at)"
            " VALUES ($1, $2, 'batch', 'processing', now(), now())",
            owned,
            new_id(),
        )
    kept = {f"uploads/{owned}/000", f"media/{owned}/000", "uploads/not-a-batch/000"}
    gone = {f"uploads/{orphan}/000", f"uploads/{orphan}/001", f"media/{orphan}/000"}
    for key in kept | gone:
        await blobs.write(key, _chunks(b"media"))

    assert await janitor.sweep(pool, blobs, grace_seconds=3600) == 0  # all of them are fresh
    assert await _keys(blobs, "uploads", "media") == kept | gone
    assert await janitor.sweep(pool, blobs, grace_seconds=-3600) == 1
    assert await _keys(blobs, "uploads", "media") == kept


async def test_secure_uploads_go_from_an_s3_bucket(
    schema_pool: tuple[str, Pool], s3: S3Server
) -> None:
    schema, pool = schema_pool
    await migrate(pool, schema, MIGRATIONS)
    _, blobs = s3.new_store()
    team, live, expired, unrecorded = new_id(), new_id(), new_id(), new_id()
    for upload_id, expires_in in ((live, 3600), (expired, -60)):
        async with pool.acquire() as conn:
            await secure_uploads.record(conn, team, secure_uploads.Upload(
                upload_id, f"secure/{upload_id}/000", "a.wav", 5, "0" * 64,
                datetime.now(UTC) + timedelta(seconds=expires_in),
            ))  # fmt: skip
    for upload_id in (live, expired, unrecorded):
        await blobs.write(f"secure/{upload_id}/000", _chunks(b"media"))

    assert await janitor.sweep_secure_uploads(pool, blobs, grace_seconds=3600) == 1
    assert await _keys(blobs, "secure") == {f"secure/{live}/000", f"secure/{unrecorded}/000"}
    assert await janitor.sweep_secure_uploads(pool, blobs, grace_seconds=-3600) == 1
    assert await _keys(blobs, "secure") == {f"secure/{live}/000"}
