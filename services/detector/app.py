"""Composition root of the detector service: answers DetectRequested and VoiceprintRequested."""

from __future__ import annotations

from litestar import Litestar

from services.common.blobfactory import open_blob_store
from services.common.http import health_handler
from services.common.runtime import Runtime
from services.detector import consumers
from services.detector.settings import DetectorSettings
from services.detector.worker import IsolatedWorker


def build_runtime(settings: DetectorSettings) -> Runtime:
    blobs = open_blob_store(settings)
    workers = (IsolatedWorker(), IsolatedWorker())  # detects, voiceprints

    def wire(rt: Runtime) -> None:
        consumers.register(rt.broker, rt.pool, blobs, workers, settings.analysis_timeout_seconds)

    groups = (consumers.GROUP, consumers.VOICEPRINT_GROUP, consumers.QUESTION_GROUP)
    return Runtime("detector", settings, consumer_groups=groups, wire=wire)


def build_app(settings: DetectorSettings) -> Litestar:
    runtime = build_runtime(settings)
    return Litestar([health_handler(runtime)], lifespan=[runtime.lifespan])
