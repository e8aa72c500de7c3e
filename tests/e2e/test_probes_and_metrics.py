"""Probes and /metrics of real service processes, including a PostgreSQL outage.

Intake reaches PostgreSQL through a proxy the test can cut: during the outage `/readyz` must
say 503 (take the pod out of the Service) while `/livez` stays 200 (do not restart it), and
both recover without a restart once the database is back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.http import PROBES
from services.common.runtime import Runtime
from tests.e2e.conftest import TeamFactory, intake_client
from tests.support import analyzer, media
from tests.support.infra import Infra
from tests.support.otlp_collector import ExportedSpan, otlp_collector
from tests.support.services import service_process
from tests.support.tcp_proxy import TcpProxy, tcp_proxy

pytestmark = pytest.mark.infra

EXPORTED: list[list[ExportedSpan]] = []  # what intake sent the OTLP collector, set by `client`
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus exposition, keyed by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """The sample `name` whose labels include `labels` (0 when there is none yet)."""
    wanted = set(labels.items())
    matches = [v for (n, ls), v in found.items() if n == name and wanted <= ls]
    assert len(matches) <= 1, f"{name}{labels} is ambiguous: {matches}"
    return matches[0] if matches else 0.0


def via(proxy: TcpProxy, database_url: str) -> str:
    parts = urlsplit(database_url)
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
async def db_proxy(infra: Infra) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(infra.database_url)
    async with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy


@pytest.fixture(scope="module")
async def client(
    infra: Infra,
    blob_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    wallet: Runtime,
    fake_detector: analyzer.TestAnalyzer,
    db_proxy: TcpProxy,
) -> AsyncIterator[httpx.AsyncClient]:
    with otlp_collector() as (endpoint, spans):
        env = {
            "VERITY_DATABASE_URL": via(db_proxy, infra.database_url),
            # OpenTelemetry's own variables, as an operator's collector setup would set them
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "verity-intake-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        async with intake_client(infra, blob_root, tmp_path_factory.mktemp("logs"), env) as c:
            EXPORTED.append(spans)
            yield c


async def metrics_of(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_probes_answer_and_metrics_count_what_happened(
    client: httpx.AsyncClient, new_team: TeamFactory
) -> None:
    for probe in ("/livez", "/readyz", "/startupz"):
        response = await client.get(probe)
        assert response.status_code == 200, (probe, response.text)
    before = await metrics_of(client)

    _, rich = await new_team()
    _, poor = await new_team(credit_micros=0)
    wav = media.wav_bytes(1.0)
    files = [("files[]", ("clip.wav", wav, "audio/wav"))]
    accepted = await client.post("/api/v2/detect/batch", files=files, headers=rich)
    assert accepted.status_code == 202, accepted.text
    refused = await client.post("/api/v2/detect/batch", files=files, headers=poor)
    assert refused.status_code == 402, refused.text
    batch = accepted.json()["item"]["uuid"]
    async with asyncio.timeout(60):
        while (await client.get(f"/api/v2/detect/batch/{batch}", headers=rich)).json()["item"][
            "status"
        ] == "processing":
            await asyncio.sleep(0.1)

    after = await metrics_of(client)
    route = {"service": "intake", "method": "POST", "route": "/api/v2/detect/batch"}

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("verity_http_requests_total", **route, status="202") == 1
    assert grew("verity_http_requests_total", **route, status="402") == 1
    assert grew("verity_http_request_duration_seconds_count", **route) == 2
    assert grew("verity_batches_rejected_total", reason="insufficient_funds") == 1
    # the route template, never the raw path with its uuid, is the label
    routes = {dict(ls).get("route", "") for (name, ls) in after if name.startswith("verity_http")}
    assert "/api/v2/detect/batch/{batch_uuid}" in routes, routes
    assert not any(batch in r for r in routes)
    # state gauges: sampled at scrape time from the outbox table and the broker's offsets
    assert ("verity_outbox_backlog", frozenset({("service", "intake")})) in after
    results = {"service": "intake", "group": "intake-results", "topic": "verity.detect-results.v1"}
    assert ("verity_consumer_lag", frozenset(results.items())) in after
    assert any(name.startswith("faststream_received_messages_total") for name, _ in after)
    # probes and /metrics itself are not counted
    assert not routes & set(PROBES), routes


async def test_traces_go_where_the_otel_variables_say(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v2/account")).status_code == 401
    async with asyncio.timeout(20):
        while not any(s.service_name == "verity-intake-under-test" for s in EXPORTED[0]):
            await asyncio.sleep(0.1)
    assert all(s.service_name == "verity-intake-under-test" for s in EXPORTED[0])
    assert not any(probe in s.name for s in EXPORTED[0] for probe in PROBES)


async def test_database_outage_fails_readiness_not_liveness(
    client: httpx.AsyncClient, db_proxy: TcpProxy
) -> None:
    await db_proxy.cut()
    try:
        async with asyncio.timeout(20):
            while (ready := await client.get("/readyz")).status_code == 200:
                await asyncio.sleep(0.2)
        assert ready.status_code == 503
        report = ready.json()
        assert report["checks"]["database"].startswith("error"), report
        assert report["checks"]["kafka"] == "ok"
        assert (await client.get("/livez")).status_code == 200
        assert (await client.get("/health")).status_code == 503  # /health is /readyz
        # /metrics still answers (the outbox sample fails, the rest is there)
        assert (await client.get("/metrics")).status_code == 200
    finally:
        await db_proxy.restore()
    async with asyncio.timeout(30):
        while (await client.get("/readyz")).status_code != 200:
            await asyncio.sleep(0.2)
    assert (await client.get("/livez")).status_code == 200


async def test_detector_is_started_only_once_its_models_are_loaded(
    infra: Infra, tmp_path: Path
) -> None:
    env = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(tmp_path / "blobs"),
    }
    log = tmp_path / "detector.log"
    async with (
        service_process("detector", env, log) as detector,
        httpx.AsyncClient(base_url=detector.url) as client,
    ):
        # service_process waited for /health, which includes start-up: the models are in
        assert (await client.get("/startupz")).json() == {
            "status": "started",
            "service": "detector",
        }
        assert (await client.get("/livez")).status_code == 200
        found = samples((await client.get("/metrics")).text)
        requests = {"service": "detector", "group": "detector"}
        requests["topic"] = "verity.detect-requests.v1"
        assert ("verity_consumer_lag", frozenset(requests.items())) in found
    lines = [json.loads(raw) for raw in log.read_text().splitlines() if raw.startswith("{")]
    loaded = [line for line in lines if line.get("message") == "models loaded"]
    assert len(loaded) == 1, log.read_text()[-2000:]
    assert loaded[0]["audio"] == "loaded"
