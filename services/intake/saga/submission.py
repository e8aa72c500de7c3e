"""From stored uploads to an answered batch: unpack, probe, open the saga, wait for the wallet.

Everything here runs before a client has its answer. Until `submit` records BatchRequested,
the uploaded blobs belong to the request: any failure deletes them (`Staged.discard`). After
that, the saga owns them: a rejection or an abandonment deletes them (domain.blobs_to_delete).
"""

from __future__ import annotations

import asyncio
import math
import secrets
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePath
from typing import Literal

from contracts import problems as p
from contracts.events import DetectOptions, FileSpec
from contracts.ids import new_id
from services.common.blobstore import BlobStore
from services.common.db import Pool
from services.intake.domain.batch import Abandon, BatchKind, Open
from services.intake.errors import ApiError
from services.intake.saga.commands import Batches
from services.intake.saga.progress import Progress
from services.intake.store.batches import batch_key
from services.intake.uploads import probe, ziparchive
from services.intake.uploads.multipart import UploadedFile


@dataclass(frozen=True)
class Candidate:
    """A stored file that is still to be probed."""

    filename: str
    blob_key: str
    size_bytes: int
    sha256: str


@dataclass
class Staged:
    """The blobs a request has written so far, deleted unless the saga took them over."""

    blobs: BlobStore
    keys: list[str] = field(default_factory=list)

    async def discard(self) -> None:
        for key in self.keys:
            await self.blobs.delete(key)
        self.keys.clear()


def media_key(batch_id: str, n: int) -> str:
    return f"media/{batch_id}/{n:03d}"


async def unpack(
    files: list[UploadedFile],
    batch_id: str,
    staged: Staged,
    blobs: BlobStore,
    prober: Prober,
    *,
    max_files: int,
    max_bytes: int,
) -> list[Candidate]:
    """The media files of an upload: the files[] parts, or the media entries of one zip."""
    if len(files) != 1 or files[0].field != "file":
        return [Candidate(f.filename, f.blob_key, f.size_bytes, f.sha256) for f in files]
    archive = files[0]
    if PurePath(archive.filename).suffix.lower() != ".zip":
        raise ApiError(
            p.VALIDATION,
            f"`file` must be a .zip archive; got {archive.filename!r} (send media as files[])",
            errors={"file": ["must be a .zip archive"]},
        )
    limits = ziparchive.ZipLimits(max_media=max_files, max_total_bytes=max_bytes)
    try:
        async with blobs.local_copy(archive.blob_key) as path:  # zipfile needs to seek
            members = await asyncio.to_thread(ziparchive.plan, path, limits)
            extracted: list[Candidate] = []
            budget = max_bytes
            for n, member in enumerate(members):
                key = media_key(batch_id, n)
                staged.keys.append(key)
                info = await ziparchive.extract(path, member, blobs, key, max_bytes=budget)
                budget -= info.size
                extracted.append(Candidate(member.name, key, info.size, info.sha256))
                prober.start(key, member.name)
    except ziparchive.ZipRejectedError as exc:
        raise ApiError(
            p.VALIDATION, f"{archive.filename}: {exc}", errors={"file": [str(exc)]}
        ) from exc
    await blobs.delete(archive.blob_key)
    return extracted


class Prober:
    """Probes each file as soon as it is stored, so probing overlaps the rest of the upload.

    Probes run in threads (PyAV and Pillow release the GIL while they work), on a local copy
    of the blob (the file itself on the filesystem store, a download from S3); `result` awaits
    one, starting it first if nobody did.
    """

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self._running: dict[str, asyncio.Future[probe.Probed]] = {}

    def start(self, blob_key: str, filename: str) -> None:
        if blob_key in self._running:
            return
        running = asyncio.ensure_future(self._probe(blob_key, filename))
        # a request that fails early never asks for this result: do not warn about it then
        running.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._running[blob_key] = running

    async def _probe(self, blob_key: str, filename: str) -> probe.Probed:
        async with self._blobs.local_copy(blob_key) as path:
            return await asyncio.to_thread(probe.probe_file, path, filename)

    async def result(self, c: Candidate) -> probe.Probed:
        self.start(c.blob_key, c.filename)
        return await self._running[c.blob_key]


async def probe_all(
    candidates: list[Candidate], prober: Prober, options: DetectOptions
) -> list[FileSpec]:
    """Sniff and probe every file; a 400 names each file that is not what it claims."""
    errors: dict[str, list[str]] = {}
    found: list[probe.Probed | None] = []
    for c in candidates:
        try:
            found.append(await prober.result(c))
        except probe.MediaRejectedError as exc:
            errors.setdefault(c.filename, []).append(exc.reason)
            found.append(None)
    specs: list[FileSpec] = []
    for c, probed in zip(candidates, found, strict=True):
        if probed is None:
            continue
        analysed = analysed_seconds(probed, options)
        if analysed is not None and analysed <= 0:
            errors.setdefault(c.filename, []).append(
                f"start_region {options.start_region:g} s is beyond its end"
                f" ({probed.duration_seconds:g} s)"
            )
            continue
        name = redacted(c.filename) if options.zero_retention_mode else c.filename
        specs.append(
            FileSpec(
                detect_id=new_id(),
                filename=name,
                media_type=probed.media_type,
                blob_key=c.blob_key,
                size_bytes=c.size_bytes,
                sha256=c.sha256,
                duration_seconds=probed.duration_seconds,
                analysed_seconds=analysed,
            )
        )
    if errors:
        names = ", ".join(errors)
        raise ApiError(p.VALIDATION, f"unsupported or invalid media: {names}", errors=errors)
    return specs


def analysed_seconds(probed: probe.Probed, options: DetectOptions) -> float | None:
    """What will be analysed, and billed: the region asked for, within the file and the cap."""
    if probed.duration_seconds is None:
        return None
    start = options.start_region or 0.0
    end = min(probed.duration_seconds, options.end_region or math.inf)
    if probed.media_type == "video" and options.max_video_secs is not None:
        end = min(end, start + options.max_video_secs)
    return round(max(0.0, end - start), 3)


def redacted(filename: str) -> str:
    """Zero retention: the client's filename never reaches the event log."""
    return f"redacted_{secrets.token_hex(6)}{PurePath(filename).suffix.lower()}"


Answer = Literal["processing", "rejected", "abandoned"]


@dataclass(frozen=True)
class Submitter:
    pool: Pool
    batches: Batches
    progress: Progress
    wallet_timeout_seconds: float

    async def submit(
        self,
        team_id: str,
        batch_id: str,
        kind: BatchKind,
        files: list[FileSpec],
        options: DetectOptions,
        request_id: str,
        staged: Staged,
    ) -> Answer:
        """Record BatchRequested and wait for the wallet; abandon the batch if it stays silent.

        From the moment BatchRequested is recorded the saga owns the media: `staged` lets go.
        """
        command = Open(
            team_id=team_id,
            batch_id=batch_id,
            kind=kind,
            files=tuple(files),
            options=options,
            request_id=request_id,
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await self.batches.execute(conn, batch_id, command)
        staged.keys.clear()
        answer: Answer | None = await self.progress.wait_for(
            batch_key(batch_id), partial(self._answer, batch_id), self.wallet_timeout_seconds
        )
        if answer is not None:
            return answer
        reason = f"the wallet did not answer within {self.wallet_timeout_seconds:g} s"
        async with self.pool.acquire() as conn, conn.transaction():
            _, batch = await self.batches.execute(conn, batch_id, Abandon(reason=reason))
        # the wallet may have answered just before the abandonment: its answer stands
        if batch.status in ("processing", "rejected"):
            return "processing" if batch.status == "processing" else "rejected"
        return "abandoned"

    async def _answer(self, batch_id: str) -> Answer | None:
        async with self.pool.acquire() as conn:
            status: str = await conn.fetchval(
                "SELECT status FROM batches WHERE batch_id = $1", batch_id
            )
        answers: dict[str, Answer] = {
            "processing": "processing",
            "rejected": "rejected",
            "abandoned": "abandoned",
        }
        return answers.get(status)
