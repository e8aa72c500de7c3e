"""Delete uploads that no batch owns: what a request left when its process died mid-way.

A request stages media under `uploads/<batch id>/` and `media/<batch id>/` before it records
BatchRequested; a crash (or a kill) in between leaves those blobs with no event that would ever
delete them. Every `interval` the janitor removes such directories once nothing in them changed
for `grace` (longer than any upload can take), unless the batch id is in the read model.
Secure uploads (`secure/<upload id>/`) go when their token expired unused, or after `grace`
when no row records them (the process died between storing the file and recording it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path

from contracts.ids import ID_PATTERN
from services.common.db import Pool
from services.intake.store import secure_uploads

log = logging.getLogger(__name__)
STAGING = ("uploads", "media")
SECURE = "secure"


def _last_change(directory: Path) -> float:
    times = [directory.stat().st_mtime]
    times += [p.stat().st_mtime for p in directory.iterdir()]
    return max(times)


def _stale_dirs(
    root: Path, grace_seconds: float, areas: tuple[str, ...] = STAGING
) -> dict[str, list[Path]]:
    cutoff = time.time() - grace_seconds
    stale: dict[str, list[Path]] = {}
    for area in areas:
        if not (root / area).is_dir():
            continue
        for directory in (root / area).iterdir():
            with contextlib.suppress(FileNotFoundError):
                if ID_PATTERN.fullmatch(directory.name) and _last_change(directory) < cutoff:
                    stale.setdefault(directory.name, []).append(directory)
    return stale


async def sweep(pool: Pool, root: Path, grace_seconds: float) -> int:
    """Remove orphaned staging directories; returns how many batches' leftovers went."""
    stale = await asyncio.to_thread(_stale_dirs, root, grace_seconds)
    if not stale:
        return 0
    async with pool.acquire() as conn:
        owned = {
            r["batch_id"]
            for r in await conn.fetch(
                "SELECT batch_id FROM batches WHERE batch_id = ANY($1::text[])", list(stale)
            )
        }
    orphans = [d for batch_id, dirs in stale.items() if batch_id not in owned for d in dirs]
    for directory in orphans:
        await asyncio.to_thread(shutil.rmtree, directory, True)
    if orphans:
        log.warning("deleted orphaned uploads", extra={"fields": {"directories": len(orphans)}})
    return len({d.name for d in orphans})


async def sweep_secure_uploads(pool: Pool, root: Path, grace_seconds: float) -> int:
    """Delete expired, unused secure uploads and unrecorded ones; returns how many went."""
    async with pool.acquire() as conn:
        expired = await secure_uploads.expired(conn)
    directories = {(root / key).parent for key in expired}
    stale = await asyncio.to_thread(_stale_dirs, root, grace_seconds, (SECURE,))
    if stale:
        async with pool.acquire() as conn:
            recorded = await secure_uploads.known(conn, list(stale))
        directories |= {d for upload_id, dirs in stale.items() if upload_id not in recorded
                        for d in dirs}  # fmt: skip
    for directory in directories:
        await asyncio.to_thread(shutil.rmtree, directory, True)
    return len(directories)


async def run(
    pool: Pool, root: Path, stopping: asyncio.Event, *, interval: float, grace_seconds: float
) -> None:
    while not stopping.is_set():
        try:
            await sweep(pool, root, grace_seconds)
            await sweep_secure_uploads(pool, root, grace_seconds)
        except Exception:
            log.exception("janitor sweep failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
