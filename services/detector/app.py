"""Composition root of the detector service: answers DetectRequested and VoiceprintRequested."""

from __future__ import annotations

import logging

from litestar import Litestar

from services.common.blobfactory import open_blob_store
from services.common.http import request_metrics, service_handlers
from services.common.runtime import Runtime
from services.detector import consumers
from services.detector.settings import DetectorSettings
from services.detector.worker import IsolatedWorker

log = logging.getLogger(__name__)
WARM_UP = "services.detector.models.loaded.warm_up"
MODEL_LOAD_SECONDS = 300.0


def build_runtime(settings: DetectorSettings) -> Runtime:
    blobs = open_blob_store(settings)
    workers = (IsolatedWorker(), IsolatedWorker())  # detects, voiceprints

    def wire(rt: Runtime) -> None:
        consumers.register(rt.broker, rt.pool, blobs, workers, settings.analysis_timeout_seconds)

    async def load_models(_rt: Runtime) -> None:
        # in the detect worker's process, where the analyses will find them loaded
        report = await workers[0].run(WARM_UP, (), seconds=MODEL_LOAD_SECONDS)
        log.info("models loaded", extra={"fields": report})

    groups = (consumers.GROUP, consumers.VOICEPRINT_GROUP, consumers.QUESTION_GROUP)
    return Runtime("detector", settings, consumer_groups=groups, wire=wire, warm_up=(load_models,))


def build_app(settings: DetectorSettings) -> Litestar:
    runtime = build_runtime(settings)
    return Litestar(
        service_handlers(runtime),
        lifespan=[runtime.lifespan],
        middleware=[request_metrics("detector")],
    )
