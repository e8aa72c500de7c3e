"""Delete uploads that no batch owns: what a request left when its process died mid-way.

A request stages media under `uploads/<batch id>/` and `media/<batch id>/` before it records
BatchRequested; a crash (or a kill) in between leaves those blobs with no event that would ever
delete them. Every `interval` the janitor removes such directories once nothing in them changed
for `grace` (longer than any upload can take), unless the batch id is in the read model.
Secure uploads (`secure/<upload id>/`) go when their token expired unused, or after `grace`
when no row records them (the process died between storing the file and recording it).
It works on any blob store, through `list` (a folder's newest change is its newest blob's) and
`delete_all`; on S3 a multipart upload cut off by a crash is not listed: the bucket's
AbortIncompleteMultipartUpload lifecycle rule removes those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from contracts.ids import ID_PATTERN
from services.common.blobstore import BlobStore
from services.common.db import Pool
from services.intake.store import secure_uploads

log = logging.getLogger(__name__)
STAGING = ("uploads", "media")
SECURE = "secure"


async def _stale_folders(
    blobs: BlobStore, grace_seconds: float, areas: tuple[str, ...] = STAGING
) -> dict[str, list[str]]:
    """Id -> its folders (`<area>/<id>`) in which nothing changed for `grace_seconds`."""
    latest: dict[str, datetime] = {}
    for area in areas:
        async for blob in blobs.list(area):
            parts = blob.key.split("/")
            if len(parts) >= 3 and ID_PATTERN.fullmatch(parts[1]):
                folder = f"{area}/{parts[1]}"
                latest[folder] = max(latest.get(folder, blob.last_modified), blob.last_modified)
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
    stale: dict[str, list[str]] = {}
    for folder, changed in latest.items():
        if changed < cutoff:
            stale.setdefault(folder.split("/")[1], []).append(folder)
    return stale


async def sweep(pool: Pool, blobs: BlobStore, grace_seconds: float) -> int:
    """Remove orphaned staging folders; returns how many batches' leftovers went."""
    stale = await _stale_folders(blobs, grace_seconds)
    if not stale:
        return 0
    async with pool.acquire() as conn:
        owned = {
            r["batch_id"]
            for r in await conn.fetch(
                "SELECT batch_id FROM batches WHERE batch_id = ANY($1::text[])", list(stale)
            )
        }
    orphans = {batch_id: folders for batch_id, folders in stale.items() if batch_id not in owned}
    for folders in orphans.values():
        for folder in folders:
            await blobs.delete_all(folder)
    if orphans:
        count = sum(len(folders) for folders in orphans.values())
        log.warning("deleted orphaned uploads", extra={"fields": {"directories": count}})
    return len(orphans)


async def sweep_secure_uploads(pool: Pool, blobs: BlobStore, grace_seconds: float) -> int:
    """Delete expired, unused secure uploads and unrecorded ones; returns how many went."""
    async with pool.acquire() as conn:
        expired = await secure_uploads.expired(conn)
    folders = {key.rpartition("/")[0] for key in expired}
    stale = await _stale_folders(blobs, grace_seconds, (SECURE,))
    if stale:
        async with pool.acquire() as conn:
            recorded = await secure_uploads.known(conn, list(stale))
        folders |= {f for upload_id, found in stale.items() if upload_id not in recorded
                    for f in found}  # fmt: skip
    for folder in folders:
        await blobs.delete_all(folder)
    return len(folders)


async def run(
    pool: Pool, blobs: BlobStore, stopping: asyncio.Event, *, interval: float, grace_seconds: float
) -> None:
    while not stopping.is_set():
        try:
            await sweep(pool, blobs, grace_seconds)
            await sweep_secure_uploads(pool, blobs, grace_seconds)
        except Exception:
            log.exception("janitor sweep failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
