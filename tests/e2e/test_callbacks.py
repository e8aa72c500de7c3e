"""Signed, retried callbacks end to end: real Kafka, PostgreSQL, notifier process, receiver.

Every request these tests cause goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from contracts import events as ev
from contracts.ids import new_id
from contracts.topics import BATCHES
from services.common.db import Pool, create_pool
from services.intake.app import build_app
from services.intake.settings import IntakeSettings
from services.intake.store import tokens
from services.notifier import secrets
from services.notifier.domain import webhook_id_for
from tests.support.infra import REPO, Infra
from tests.support.kafka import publish, wait_caught_up
from tests.support.receiver import running_receiver
from tests.support.resemble_spec import checked

pytestmark = pytest.mark.infra


async def _start_notifier(
    infra: Infra, port: int, first_retry: float = 0.2
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_HTTP_PORT": str(port),
        "VERITY_CALLBACK_ALLOWLIST": "127.0.0.1/32",
        "VERITY_CALLBACK_FIRST_RETRY_SECONDS": str(first_retry),
        "VERITY_DISPATCHER_POLL_SECONDS": "0.05",
        "VERITY_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.notifier", cwd=REPO, env=env
    )
    import httpx

    async with httpx.AsyncClient() as client, asyncio.timeout(60):
        while True:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@pytest.fixture
async def notifier_pool(infra: Infra) -> AsyncIterator[Pool]:
    pool = await create_pool(infra.database_url, "notifier", max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def _terminal(team: str, url: str, batch: str | None = None) -> ev.BatchTerminal:
    batch = batch or new_id()
    item = {"uuid": batch, "status": "completed", "total_files": 1, "completed_count": 1,
            "failed_count": 0, "detect_uuids": [new_id()]}  # fmt: skip
    return ev.BatchTerminal(
        team_id=team, correlation_id=batch, batch_id=batch, status="completed", total_files=1,
        completed_count=1, failed_count=0, callback_url=url,
        callback_payload={"success": True, "item": item},
    )  # fmt: skip


async def _attempts(pool: Pool, webhook_id: str) -> list[tuple[int, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT attempt, outcome FROM delivery_attempts WHERE webhook_id = $1 ORDER BY attempt",
            webhook_id,
        )
    return [(r["attempt"], r["outcome"]) for r in rows]


async def _until(condition: Any, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_failing_receiver_gets_one_logical_delivery_signed_and_logged(
    infra: Infra, notifier_pool: Pool, producer: AIOKafkaProducer
) -> None:
    team = new_id()
    proc = await _start_notifier(infra, 18710)
    try:
        async with running_receiver(answers=[500, 503, 502]) as receiver:
            event = _terminal(team, receiver.url)
            again = event.model_copy(update={"event_id": new_id()})  # a re-emitted terminal
            await publish(producer, event, event, again)  # and a redelivered one
            wid = webhook_id_for(event.batch_id)
            await _until(lambda: _delivered(notifier_pool, wid))
            # every copy of the event has been consumed: no second delivery can follow
            await wait_caught_up(infra.kafka_bootstrap, "notifier", (BATCHES,))
            got = list(receiver.received)
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()

    assert len(got) == 4  # 3 failures + 1 success, one logical delivery
    assert {r.headers["webhook-id"] for r in got} == {wid}
    async with notifier_pool.acquire() as conn:
        secret = await secrets.current(conn, team)
    for request in got:
        verified = Webhook(secret).verify(request.body, request.headers)
        assert verified == event.callback_payload
    assert await _attempts(notifier_pool, wid) == [
        (1, "retrying"), (2, "retrying"), (3, "retrying"), (4, "delivered"),
    ]  # fmt: skip

    # the owning team reads the delivery log through intake; another team cannot
    settings = IntakeSettings(
        database_url=infra.database_url, kafka_bootstrap=infra.kafka_bootstrap
    )
    intake_pool = await create_pool(infra.database_url, "intake", max_size=1)
    async with AsyncTestClient(build_app(settings)) as client:
        checked(client)
        async with intake_pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO teams (id, name) VALUES ($1, 'cb') ON CONFLICT DO NOTHING", team
            )
            mine = (await tokens.issue_token(conn, team)).token
            other = (await tokens.issue_token(conn, await tokens.create_team(conn, "x"))).token
        await intake_pool.close()
        path = f"/api/v2/detect/batch/{event.batch_id}/callbacks"
        async with asyncio.timeout(30):
            while True:
                response = await client.get(path, headers={"Authorization": f"Bearer {mine}"})
                if response.status_code == 200 and len(response.json()["item"]["attempts"]) == 4:
                    break
                await asyncio.sleep(0.1)
        log = response.json()["item"]
        assert log["status"] == "delivered"
        assert log["webhook_id"] == wid
        assert [a["status_code"] for a in log["attempts"]] == [500, 503, 502, 200]
        hidden = await client.get(path, headers={"Authorization": f"Bearer {other}"})
        assert hidden.status_code == 404


async def _delivered(pool: Pool, webhook_id: str) -> bool:
    async with pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM deliveries WHERE webhook_id = $1", webhook_id
        )
    return bool(status == "delivered")


async def test_killing_the_notifier_between_attempts_loses_nothing(
    infra: Infra, notifier_pool: Pool, producer: AIOKafkaProducer
) -> None:
    team = new_id()
    async with running_receiver(answers=[500]) as receiver:
        # the retry comes 2-4 s after the first attempt: time to kill the notifier between
        proc = await _start_notifier(infra, 18711, first_retry=4)
        event = _terminal(team, receiver.url)
        wid = webhook_id_for(event.batch_id)
        try:
            await publish(producer, event)

            async def first_attempt_recorded() -> bool:
                return len(await _attempts(notifier_pool, wid)) == 1

            await _until(first_attempt_recorded)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            assert len(receiver.received) == 1
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        proc = await _start_notifier(infra, 18712, first_retry=4)
        try:
            await _until(lambda: _delivered(notifier_pool, wid))
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
        assert [r.headers["webhook-id"] for r in receiver.received] == [wid, wid]
    assert await _attempts(notifier_pool, wid) == [(1, "retrying"), (2, "delivered")]


async def test_a_target_outside_the_allowlist_is_refused_without_a_request(
    infra: Infra, notifier_pool: Pool, producer: AIOKafkaProducer
) -> None:
    proc = await _start_notifier(infra, 18713)
    try:
        async with running_receiver() as receiver:
            # 127.0.0.2 is loopback but not allowlisted (only 127.0.0.1/32 is)
            refused_url = receiver.url.replace("127.0.0.1", "127.0.0.2")
            event = _terminal(new_id(), refused_url)
            await publish(producer, event)
            wid = webhook_id_for(event.batch_id)

            async def abandoned() -> bool:
                return await _attempts(notifier_pool, wid) == [(1, "abandoned")]

            await _until(abandoned)
            assert receiver.received == []
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
