"""Delete uploads that no batch owns: what a request left when its process died mid-way.

A request stages media under `uploads/<batch id>/` and `media/<batch id>/` before it records
BatchRequested; a crash (or a kill) in between leaves those blobs with no event that would ever
delete them. Every `interval` the janitor removes such directories once nothing in them changed
for `grace` (longer than any upload can take), unless the batch id is in the read model.
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

log = logging.getLogger(__name__)
STAGING = ("uploads", "media")


def _last_change(directory: Path) -> float:
    times = [directory.stat().st_mtime]
    times += [p.stat().st_mtime for p in directory.iterdir()]
    return max(times)


def _stale_dirs(root: Path, grace_seconds: float) -> dict[str, list[Path]]:
    cutoff = time.time() - grace_seconds
    stale: dict[str, list[Path]] = {}
    for area in STAGING:
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


async def run(
    pool: Pool, root: Path, stopping: asyncio.Event, *, interval: float, grace_seconds: float
) -> None:
    while not stopping.is_set():
        try:
            await sweep(pool, root, grace_seconds)
        except Exception:
            log.exception("janitor sweep failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
