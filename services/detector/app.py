"""Composition root of the detector service: consumes DetectRequested, answers with results."""

from __future__ import annotations

from litestar import Litestar

from services.common.blobstore import FilesystemBlobStore
from services.common.http import health_handler
from services.common.runtime import Runtime
from services.detector import consumers
from services.detector.settings import DetectorSettings
from services.detector.worker import IsolatedWorker


def build_runtime(settings: DetectorSettings) -> Runtime:
    blobs = FilesystemBlobStore(settings.blob_root)
    worker = IsolatedWorker()

    def wire(rt: Runtime) -> None:
        consumers.register(rt.broker, rt.pool, blobs, worker, settings.analysis_timeout_seconds)

    return Runtime("detector", settings, consumer_groups=(consumers.GROUP,), wire=wire)


def build_app(settings: DetectorSettings) -> Litestar:
    runtime = build_runtime(settings)
    return Litestar([health_handler(runtime)], lifespan=[runtime.lifespan])
