"""The janitor deletes staged uploads that no batch owns, and nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from contracts.ids import new_id
from services.common.db import Pool, migrate
from services.intake.store.schema import MIGRATIONS
from services.intake.uploads import janitor

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

    assert await janitor.sweep(pool, tmp_path, grace_seconds=3600) == 1
    assert all(d.is_dir() for d in [*kept, other])
    assert not any(d.exists() for d in gone)
    assert await janitor.sweep(pool, tmp_path, grace_seconds=3600) == 0
