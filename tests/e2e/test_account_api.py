"""GET /account/wallet and /account/billing_usage: wallet -> Kafka -> intake -> HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from litestar.testing import AsyncTestClient

from contracts import events as ev
from contracts.ids import new_id
from contracts.topics import route
from services.common.db import Pool, create_pool
from services.common.runtime import Runtime
from services.intake.app import build_app
from services.intake.settings import IntakeSettings
from services.intake.store import tokens
from services.wallet.commands import execute
from services.wallet.domain import Credit
from services.wallet.pricing import PriceList
from tests.support.infra import Infra
from tests.support.resemble_spec import checked

pytestmark = pytest.mark.infra

PRICES = PriceList()


@pytest.fixture(scope="module")
async def client(infra: Infra, wallet: Runtime) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = IntakeSettings(
        database_url=infra.database_url, kafka_bootstrap=infra.kafka_bootstrap
    )
    async with AsyncTestClient(build_app(settings)) as c:
        yield checked(c)


@pytest.fixture(scope="module")
async def team_token(infra: Infra, client: AsyncTestClient[Any]) -> tuple[str, str]:
    pool = await create_pool(infra.database_url, "intake", max_size=1)
    try:
        async with pool.acquire() as conn:
            team_id = await tokens.create_team(conn, "account-test")
            issued = await tokens.issue_token(conn, team_id)
    finally:
        await pool.close()
    return team_id, issued.token


async def _get_until(
    client: AsyncTestClient[Any], path: str, token: str, done: Any
) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if done(body["item"]):
                return body
            await asyncio.sleep(0.1)


async def test_missing_malformed_and_unknown_tokens(client: AsyncTestClient[Any]) -> None:
    missing = await client.get("/api/v2/account/wallet")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    body = missing.json()
    assert body["success"] is False
    assert body["status"] == 401
    assert body["type"] == "/problems/unauthenticated"
    assert body["message"] == body["detail"]
    for malformed in ("Basic eDp5", "Bearer", "Bearer two words", "Token token=", "Tokenx"):
        refused = await client.get("/api/v2/account/wallet", headers={"Authorization": malformed})
        assert refused.status_code == 401, malformed
    for unknown in ("Bearer vrt_not-a-real-token", "Token token=vrt_nope", "Token vrt_nope"):
        refused = await client.get("/api/v2/account/wallet", headers={"Authorization": unknown})
        assert refused.status_code == 403, unknown
        assert refused.json()["type"] == "/problems/forbidden"


async def test_get_account_names_the_team_and_the_token(
    client: AsyncTestClient[Any], team_token: tuple[str, str]
) -> None:
    team, token = team_token
    response = await client.get("/api/v2/account", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    account = response.json()["item"]
    assert account["team"] == {"uuid": team, "name": "account-test"}
    assert account["teams"] == 1
    assert account["token"]["uuid"]
    assert "email" not in account  # a team has no email; absent rather than invented


async def test_every_accepted_spelling_of_the_token_authenticates(
    client: AsyncTestClient[Any], team_token: tuple[str, str]
) -> None:
    """Ours (`Bearer`) and what Resemble's SDKs send (`Token token=`), plus `Token <key>`."""
    _, token = team_token
    for header in (f"Bearer {token}", f"Token token={token}", f'Token token="{token}"',
                   f"Token {token}", f"bearer  {token} "):  # fmt: skip
        response = await client.get("/api/v2/account/wallet", headers={"Authorization": header})
        assert response.status_code == 200, header
    for prefix in ("/v2", ""):  # where an SDK pointed at the bare host, or a person, looks
        at = await client.get(f"{prefix}/account/wallet", headers={"Authorization": header})
        assert at.status_code == 200, prefix


async def test_wallet_and_usage_follow_the_wallet_service(
    infra: Infra, client: AsyncTestClient[Any], team_token: tuple[str, str]
) -> None:
    team, token = team_token
    fresh = await _get_until(client, "/api/v2/account/wallet", token, lambda i: True)
    assert fresh["item"]["balance_cents"] == 0

    wallet_pool: Pool = await create_pool(infra.database_url, "wallet", max_size=1)
    try:
        async with wallet_pool.acquire() as conn, conn.transaction():
            await execute(conn, team, Credit(amount_micros=12_345_678, reason="invoice 42"))
    finally:
        await wallet_pool.close()
    credited = await _get_until(
        client, "/account/wallet", token, lambda i: i["balance_micros"] == 12_345_678
    )  # also served at / (API.md)
    assert credited["success"] is True
    assert credited["item"]["balance_cents"] == 1234.5678
    assert credited["item"]["available_cents"] == 1234.5678
    [entry] = credited["item"]["recent_entries"]
    assert (entry["kind"], entry["reason"], entry["amount_micros"]) == ("credit", "invoice 42",
                                                                         12_345_678)  # fmt: skip
    assert entry["created_at"].endswith("Z")

    batch = new_id()
    audio = ev.FileSpec(
        detect_id=new_id(), filename="a.wav", media_type="audio", blob_key="k", size_bytes=1,
        sha256="0" * 64, duration_seconds=30, analysed_seconds=30,
    )  # fmt: skip
    inputs: list[ev.Event] = [
        ev.BatchRequested(team_id=team, correlation_id=batch, batch_id=batch, files=(audio,),
                          options=ev.DetectOptions()),
        ev.DetectCompleted(team_id=team, correlation_id=batch, batch_id=batch,
                           detect_id=audio.detect_id, media_type="audio", analysed_seconds=29.5,
                           result={}),
    ]  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in inputs:
            topic, key = route(event)
            await producer.send_and_wait(topic, ev.encode_event(event), key=key.encode())
    finally:
        await producer.stop()
    charged = 30 * PRICES.audio_per_second
    settled = await _get_until(
        client,
        "/api/v2/account/wallet",
        token,
        lambda i: i["balance_micros"] == 12_345_678 - charged and i["reserved_micros"] == 0,
    )
    kinds = [e["kind"] for e in settled["item"]["recent_entries"]]
    assert sorted(kinds) == ["capture", "credit", "reserve"]

    today = datetime.now(UTC).date()
    usage = await client.get(
        "/api/v2/account/billing_usage",
        params={"start_date": today.isoformat(), "end_date": today.isoformat()},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert usage.status_code == 200
    got = usage.json()["item"]
    assert got["seconds_analyzed"] == 30
    assert got["charged_micros"] == charged
    assert got["charged_cents"] == charged / 10_000
    assert got["by_media_type"]["audio"]["files"] == 1
    yesterday = (today - timedelta(days=1)).isoformat()
    empty = await client.get(
        "/api/v2/account/billing_usage",
        params={"start_date": yesterday, "end_date": yesterday},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert empty.json()["item"]["charged_micros"] == 0


async def test_usage_rejects_bad_dates(
    client: AsyncTestClient[Any], team_token: tuple[str, str]
) -> None:
    _, token = team_token
    auth = {"Authorization": f"Bearer {token}"}
    reversed_ = await client.get(
        "/api/v2/account/billing_usage",
        params={"start_date": "2026-02-02", "end_date": "2026-02-01"},
        headers=auth,
    )
    assert reversed_.status_code == 400
    assert reversed_.json()["errors"] == {"start_date": ["must be on or before end_date"]}
    garbage = await client.get(
        "/api/v2/account/billing_usage", params={"start_date": "yesterday"}, headers=auth
    )
    assert garbage.status_code == 400
    assert garbage.headers["content-type"].startswith("application/problem+json")
