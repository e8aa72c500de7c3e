"""The detector's Kafka edge: DetectRequested in, DetectCompleted or DetectFailed out.

(And likewise VoiceprintRequested -> VoiceprintComputed / Failed, and DetectQuestionAsked ->
DetectQuestionAnswered / Failed, each in a group of its own.)

Exactly one result per detect, however often a request is delivered: the result is appended
to the detector's event store as version 1 of the detect's stream, in the transaction that
queues it in the outbox. A second worker (a redelivery after a crash, a rebalance) loses that
race and publishes nothing. A request already answered is skipped before any analysis.

The analysis itself runs in an isolated child process (worker.py) while the event loop keeps
the consumer's heartbeats going; a per-file timeout bounds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from contracts import events as ev
from contracts.topics import DETECT_REQUESTS, QUESTIONS, VOICEPRINTS
from services.common import metrics, outbox
from services.common.blobstore import BlobNotFoundError, BlobStore
from services.common.consumer import Handler, RetryPolicy, subscribe
from services.common.db import Pool
from services.common.eventstore import ConcurrencyError, EventStore
from services.detector.analysis import dispatch, llm, voiceprints
from services.detector.errors import AnalysisError
from services.detector.worker import IsolatedWorker

log = logging.getLogger(__name__)
GROUP = "detector"
VOICEPRINT_GROUP = "detector-voiceprints"
QUESTION_GROUP = "detector-questions"
Result = (
    ev.DetectCompleted
    | ev.DetectFailed
    | ev.VoiceprintComputed
    | ev.VoiceprintFailed
    | ev.DetectQuestionAnswered
    | ev.DetectQuestionFailed
)


def _decode(payload: Mapping[str, Any]) -> Result:
    event = ev.decode_event_dict(payload)
    assert isinstance(event, Result)
    return event


RESULTS: EventStore[Result] = EventStore(_decode)


def stream_id(detect_id: str) -> str:
    return f"detect-{detect_id}"


def visualization_key(request: ev.DetectRequested) -> str:
    return f"visualizations/{request.batch_id}/{request.detect_id}.png"


def voiceprint_stream_id(request_id: str) -> str:
    return f"voiceprint-{request_id}"


def question_stream_id(question_id: str) -> str:
    return f"question-{question_id}"


def _failed(request: ev.DetectRequested, code: str, message: str) -> ev.DetectFailed:
    return ev.DetectFailed(
        team_id=request.team_id,
        correlation_id=request.batch_id,
        causation_id=request.event_id,
        batch_id=request.batch_id,
        detect_id=request.detect_id,
        error_code=code,
        error_message=message,
    )


async def analyse(
    request: ev.DetectRequested,
    blobs: BlobStore,
    worker: IsolatedWorker,
    timeout_seconds: float,
) -> Result:
    options = request.options.model_dump(mode="json")
    # every visualization shows the media: none is kept for a zero-retention detect
    draw = request.options.visualize and not request.options.zero_retention_mode
    picture = visualization_key(request) if draw else None
    log.info("analysis started", extra={"fields": {"detect_id": request.detect_id}})
    try:
        # the worker reads a local file and draws into one; the store keeps the picture only
        # if the analysis succeeded
        async with (
            blobs.local_copy(request.file.blob_key) as path,
            _local_target(blobs, picture) as target,
        ):
            result = await worker.run(
                dispatch.FUNCTION,
                (str(path), request.file.media_type, options, str(target) if target else None),
                seconds=timeout_seconds,
            )
    except BlobNotFoundError:
        return _failed(request, "media_missing", "the media was deleted before it was analysed")
    except AnalysisError as exc:
        return _failed(request, exc.code, exc.message)
    if result.pop("visualization", None) and picture:
        result["visualization"] = {"blob_key": picture}
    return ev.DetectCompleted(
        team_id=request.team_id,
        correlation_id=request.batch_id,
        causation_id=request.event_id,
        batch_id=request.batch_id,
        detect_id=request.detect_id,
        media_type=request.file.media_type,
        analysed_seconds=request.file.analysed_seconds,
        result=result,
    )


@contextlib.asynccontextmanager
async def _local_target(blobs: BlobStore, key: str | None) -> AsyncIterator[Path | None]:
    if key is None:
        yield None
        return
    async with blobs.local_target(key) as path:
        yield path


async def voiceprint(
    request: ev.VoiceprintRequested,
    blobs: BlobStore,
    worker: IsolatedWorker,
    timeout_seconds: float,
) -> Result:
    common = {
        "team_id": request.team_id,
        "correlation_id": request.correlation_id,
        "causation_id": request.event_id,
        "request_id": request.request_id,
        "purpose": request.purpose,
    }
    try:
        async with blobs.local_copy(request.blob_key) as path:
            found = await worker.run(
                voiceprints.FUNCTION, (str(path), request.media_type), seconds=timeout_seconds
            )
    except BlobNotFoundError:
        return ev.VoiceprintFailed(
            **common, error_code="media_missing", error_message="the sample was deleted"
        )
    except AnalysisError as exc:
        return ev.VoiceprintFailed(**common, error_code=exc.code, error_message=exc.message)
    return ev.VoiceprintComputed(**common, **found)


async def answer(question: ev.DetectQuestionAsked) -> Result:
    """The operator's LLM answers from the detect's result; an HTTP call, so no worker."""
    common = {
        "team_id": question.team_id,
        "correlation_id": question.correlation_id,
        "causation_id": question.event_id,
        "question_id": question.question_id,
        "detect_id": question.detect_id,
    }
    try:
        text, model = await asyncio.to_thread(llm.answer, question.query, question.result)
    except llm.LlmUnavailable as exc:
        return ev.DetectQuestionFailed(**common, error_code=exc.code, error_message=exc.message)
    return ev.DetectQuestionAnswered(**common, answer=text, model=model)


def handler(
    pool: Pool, blobs: BlobStore, worker: IsolatedWorker, timeout_seconds: float
) -> Handler:
    async def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.DetectRequested):
            stream = stream_id(event.detect_id)
        elif isinstance(event, ev.VoiceprintRequested):
            stream = voiceprint_stream_id(event.request_id)
        elif isinstance(event, ev.DetectQuestionAsked):
            stream = question_stream_id(event.question_id)
        else:
            return  # e.g. the voiceprints and answers intake reads back from the same topics
        async with pool.acquire() as conn:
            if await conn.fetchval("SELECT 1 FROM events WHERE stream_id = $1", stream):
                return  # answered before (a redelivery): do not analyse again
        if isinstance(event, ev.DetectRequested):
            started = time.perf_counter()
            result = await analyse(event, blobs, worker, timeout_seconds)
            observe(event, result, time.perf_counter() - started)
        elif isinstance(event, ev.VoiceprintRequested):
            result = await voiceprint(event, blobs, worker, timeout_seconds)
        else:
            result = await answer(event)
        async with pool.acquire() as conn, conn.transaction():
            try:
                await RESULTS.append(conn, stream, 0, [result])
            except ConcurrencyError:
                log.info("answered by another worker", extra={"fields": {"stream": stream}})
                return
            await outbox.enqueue(conn, [result])

    return on_event


def observe(request: ev.DetectRequested, result: Result, seconds: float) -> None:
    """verity_detects_total and verity_analysis_seconds (services/common/metrics.py)."""
    modality = request.file.media_type
    if not isinstance(result, ev.DetectCompleted):
        metrics.DETECTS.labels(modality, "failed").inc()
        return
    found = result.result
    verdict = next(
        (found[key] for key in ("video_metrics", "image_metrics", "metrics")
         if isinstance(found.get(key), dict)),
        {},
    )  # fmt: skip
    model = found.get("model")
    name = model.get("name") if isinstance(model, dict) else None
    label = verdict.get("label") if isinstance(verdict, dict) else None
    metrics.DETECTS.labels(modality, str(label or "none").lower()).inc()
    metrics.ANALYSIS_SECONDS.labels(modality, str(name or "none")).observe(seconds)


def register(
    broker: Any,
    pool: Pool,
    blobs: BlobStore,
    workers: tuple[IsolatedWorker, IsolatedWorker],
    timeout: float,
) -> None:
    """Detects and voiceprints each get their own group and worker process, so that saving an
    identity (a request waits on it) never queues behind a long file's analysis."""
    detects, voiceprints_worker = workers
    # an analysis is slow and not worth repeating in-process: one retry, then the DLQ
    for topic, group, worker in (
        (DETECT_REQUESTS, GROUP, detects),
        (VOICEPRINTS, VOICEPRINT_GROUP, voiceprints_worker),
        (QUESTIONS, QUESTION_GROUP, voiceprints_worker),  # questions never use a worker
    ):
        subscribe(
            broker, (topic,), group, handler(pool, blobs, worker, timeout),
            retry=RetryPolicy(attempts=2),
        )  # fmt: skip
