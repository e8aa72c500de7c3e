"""Two replicas of intake and of the detector, as a Deployment with `replicas: 2` would run them.

Two intake processes behind no load balancer (each client picks one) and two real detector
processes in one consumer group share Kafka, PostgreSQL and the blob store. A batch posted to
one intake is read back from the other; the detects spread over both detectors, which give the
same file the same score; the wallet charges every file exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.db import create_pool
from services.common.runtime import Runtime
from tests.e2e.conftest import credited_team
from tests.e2e.test_detection import espeak
from tests.support.infra import Infra
from tests.support.resemble_spec import checked
from tests.support.services import service_process

pytestmark = pytest.mark.infra
FILES_PER_BATCH = 8  # 16 detects over 6 partitions: both detectors get some (1 - 2^-15)
CREDIT = 10_000_000
DETECTOR_URLS: list[str] = []  # set by `replicas`


@contextlib.asynccontextmanager
async def replicas(
    infra: Infra, blob_root: Path, logs: Path
) -> AsyncIterator[list[httpx.AsyncClient]]:
    env = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(blob_root),
        "VERITY_PUBLIC_URL": "http://verity.test",
        "VERITY_URL_SIGNING_KEY": secrets.token_hex(32),  # one key for all intake replicas
    }
    async with contextlib.AsyncExitStack() as stack:
        names = ["detector-1", "detector-2", "intake-1", "intake-2"]
        started = await asyncio.gather(
            *(
                stack.enter_async_context(
                    service_process(name.split("-")[0], env, logs / f"{name}.log")
                )
                for name in names
            ),
            return_exceptions=True,  # every process that started is on the stack to stop
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        clients = []
        for detector in started[:2]:
            assert not isinstance(detector, BaseException)
            DETECTOR_URLS.append(detector.url)
        for intake in started[2:]:
            assert not isinstance(intake, BaseException)
            client = httpx.AsyncClient(base_url=intake.url, timeout=120)
            clients.append(checked(await stack.enter_async_context(client)))
        yield clients


async def terminal(client: httpx.AsyncClient, auth: dict[str, str], batch: str) -> Any:
    async with asyncio.timeout(300):  # the detectors may first answer older tests' requests
        while True:
            response = await client.get(f"/api/v2/detect/batch/{batch}", headers=auth)
            assert response.status_code == 200, response.text
            item = response.json()["item"]
            if item["status"] != "processing":
                return item
            await asyncio.sleep(0.25)


async def wallet_figures(infra: Infra, team_id: str) -> tuple[int, int]:
    pool = await create_pool(infra.database_url, "wallet", max_size=1)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT balance_micros, reserved_micros FROM wallets WHERE team_id = $1", team_id
        )
    await pool.close()
    assert row is not None
    return row["balance_micros"], row["reserved_micros"]


async def analyses_counted(url: str) -> float:
    """verity_analysis_seconds_count of audio files by the audio model, from /metrics."""
    async with httpx.AsyncClient(base_url=url) as client:
        text = (await client.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "verity_analysis_seconds_count"
        and sample.labels["modality"] == "audio"
        and sample.labels["model"].startswith("verity-audio")
    )


def analysed_by(log: Path) -> set[str]:
    lines = [json.loads(raw) for raw in log.read_text().splitlines() if raw.startswith("{")]
    return {line["detect_id"] for line in lines if line.get("message") == "analysis started"}


async def test_two_intakes_and_two_detectors_process_batches_correctly(
    infra: Infra, wallet: Runtime, tmp_path: Path
) -> None:
    speech = espeak(tmp_path / "speech.wav")
    logs = tmp_path / "logs"
    logs.mkdir()
    async with replicas(infra, tmp_path / "blobs", logs) as (first, second):
        team_id, auth = await credited_team(infra.database_url, "replicas-test", CREDIT)
        batches = []
        for client, name in ((first, "a"), (second, "b")):
            files = [
                ("files[]", (f"{name}{i}.wav", speech, "audio/wav")) for i in range(FILES_PER_BATCH)
            ]
            response = await client.post("/api/v2/detect/batch", files=files, headers=auth)
            assert response.status_code == 202, response.text
            batches.append(response.json()["item"]["uuid"])
        # each batch read back from the intake that did not take it
        done = [
            await terminal(second, auth, batches[0]),
            await terminal(first, auth, batches[1]),
        ]
        counts = [(b["status"], b["completed_count"], b["failed_count"]) for b in done]
        assert counts == [("completed", FILES_PER_BATCH, 0)] * 2, done
        listed = await first.get("/api/v2/detect?page_size=100", headers=auth)
        detects = listed.json()["items"]
        analysed = [await analyses_counted(url) for url in DETECTOR_URLS]

    assert len(detects) == 2 * FILES_PER_BATCH
    assert {d["batch_uuid"] for d in detects} == set(batches)
    assert {d["status"] for d in detects} == {"completed"}
    # the same audio gets the same verdict whichever detector analysed it
    verdicts = {(d["metrics"]["label"], tuple(d["metrics"]["score"])) for d in detects}
    assert len(verdicts) == 1, verdicts
    ids = {d["uuid"] for d in detects}
    by_first, by_second = (analysed_by(logs / f"detector-{n}.log") & ids for n in (1, 2))
    assert by_first, "the second detector did all the work"
    assert by_second, "the first detector did all the work"
    assert by_first | by_second == ids
    assert not by_first & by_second, "a file was analysed twice"
    # each detector's /metrics counted what it did (and maybe older tests' requests too)
    assert analysed[0] >= len(by_first)
    assert analysed[1] >= len(by_second)
    # every file charged once, at the same price; nothing left reserved
    async with asyncio.timeout(30):
        while (figures := await wallet_figures(infra, team_id))[1] != 0:
            await asyncio.sleep(0.1)
    spent = CREDIT - figures[0]
    assert spent > 0
    assert spent % len(detects) == 0, spent
