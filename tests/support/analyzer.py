"""A test-only stand-in for the detector: it plays the detector's part on Kafka, not its models.

It consumes DetectRequested, reads the file's blob from the store intake writes to (the
filesystem or S3) and checks its sha256 against the request (proof that intake stored the bytes
the client sent), then answers on the results topic:
- a file named `fail_*` -> DetectFailed;
- a file named `hold_*` -> no answer until the test calls `release()` (to test cancel);
- anything else -> DetectCompleted whose result reports the verified bytes. It carries no
  detection score: scores come only from the real detector (services/detector).
Only requests of the teams a test registered are answered; others are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import events as ev
from contracts.topics import DETECT_REQUESTS, route
from services.common.blobstore import BlobNotFoundError, BlobStore


@dataclass
class TestAnalyzer:
    bootstrap: str
    blobs: BlobStore
    teams: set[str] = field(default_factory=set)
    seen: list[ev.DetectRequested] = field(default_factory=list)
    _held: list[ev.DetectRequested] = field(default_factory=list)
    _producer: AIOKafkaProducer | None = None

    async def answer(self, request: ev.DetectRequested) -> ev.Event:
        try:
            data = b"".join([chunk async for chunk in self.blobs.read(request.file.blob_key)])
        except BlobNotFoundError:
            return self._failed(request, "blob_missing", "media is gone from the blob store")
        if request.file.filename.startswith("fail_"):
            return self._failed(request, "test_failure", "the test analyzer was told to fail")
        verified = hashlib.sha256(data).hexdigest() == request.file.sha256
        return ev.DetectCompleted(
            team_id=request.team_id,
            correlation_id=request.batch_id,
            causation_id=request.event_id,
            batch_id=request.batch_id,
            detect_id=request.detect_id,
            media_type=request.file.media_type,
            analysed_seconds=request.file.analysed_seconds,
            result={"test_analyzer": {"bytes_read": len(data), "sha256_verified": verified}},
        )

    def _failed(self, request: ev.DetectRequested, code: str, message: str) -> ev.DetectFailed:
        return ev.DetectFailed(
            team_id=request.team_id,
            correlation_id=request.batch_id,
            causation_id=request.event_id,
            batch_id=request.batch_id,
            detect_id=request.detect_id,
            error_code=code,
            error_message=message,
        )

    async def publish(self, event: ev.Event) -> None:
        assert self._producer is not None
        topic, key = route(event)
        await self._producer.send_and_wait(topic, ev.encode_event(event), key=key.encode())

    async def _handle(self, request: ev.Event) -> None:
        if not isinstance(request, ev.DetectRequested) or request.team_id not in self.teams:
            return
        self.seen.append(request)
        if request.file.filename.startswith("hold_"):
            self._held.append(request)
        else:
            await self.publish(await self.answer(request))

    async def release(self) -> None:
        """Answer every held request now (after a cancel, these answers arrive late)."""
        held, self._held = self._held, []
        for request in held:
            await self.publish(await self.answer(request))

    async def run(self, ready: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            DETECT_REQUESTS,
            bootstrap_servers=self.bootstrap,
            group_id="test-analyzer",
            auto_offset_reset="earliest",
            enable_auto_commit=True,
        )
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await consumer.start()
        await self._producer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                if consumer.assignment():
                    ready.set()
                for records in batches.values():
                    for record in records:
                        await self._handle(ev.decode_event(record.value or b""))
        finally:
            await consumer.stop()
            await self._producer.stop()


@contextlib.asynccontextmanager
async def running(bootstrap: str, blobs: BlobStore) -> AsyncIterator[TestAnalyzer]:
    analyzer = TestAnalyzer(bootstrap, blobs)
    ready = asyncio.Event()
    task = asyncio.create_task(analyzer.run(ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        yield analyzer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
