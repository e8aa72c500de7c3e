"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.blobstore import FilesystemBlobStore
from services.common.db import Pool, create_pool
from services.common.runtime import Runtime
from services.intake.store import tokens
from services.wallet.app import build_runtime
from services.wallet.commands import execute
from services.wallet.domain import Credit
from services.wallet.settings import WalletSettings
from tests.support import analyzer
from tests.support.infra import Infra
from tests.support.resemble_spec import checked
from tests.support.services import service_process

DOLLAR = 1_000_000  # micros
TeamFactory = Callable[..., Any]


@pytest.fixture(scope="module")
async def wallet(infra: Infra) -> AsyncIterator[Runtime]:
    """The real wallet service, in this process, for one test module."""
    runtime = build_runtime(
        WalletSettings(database_url=infra.database_url, kafka_bootstrap=infra.kafka_bootstrap)
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture(scope="module")
def blob_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("blobs")


@pytest.fixture(scope="module")
async def fake_detector(infra: Infra, blob_root: Path) -> AsyncIterator[analyzer.TestAnalyzer]:
    async with analyzer.running(infra.kafka_bootstrap, FilesystemBlobStore(blob_root)) as running:
        yield running


@pytest.fixture(scope="module")
async def pools(infra: Infra, client: httpx.AsyncClient) -> AsyncIterator[dict[str, Pool]]:
    """Intake's and the wallet's schemas; `client` is the module's intake (it has migrated)."""
    intake = await create_pool(infra.database_url, "intake", max_size=2)
    wallet = await create_pool(infra.database_url, "wallet", max_size=2)
    try:
        yield {"intake": intake, "wallet": wallet}
    finally:
        await intake.close()
        await wallet.close()


@pytest.fixture(scope="module")
def new_team(pools: dict[str, Pool], fake_detector: analyzer.TestAnalyzer) -> TeamFactory:
    """`await new_team()`: a credited team the fake detector answers, and its Bearer header."""

    async def create(credit_micros: int = 10 * DOLLAR) -> tuple[str, dict[str, str]]:
        async with pools["intake"].acquire() as conn:
            team_id = await tokens.create_team(conn, "batch-test")
            issued = await tokens.issue_token(conn, team_id)
        if credit_micros:
            async with pools["wallet"].acquire() as conn, conn.transaction():
                await execute(conn, team_id, Credit(amount_micros=credit_micros, reason="test"))
        fake_detector.teams.add(team_id)
        return team_id, {"Authorization": f"Bearer {issued.token}"}

    return create


async def credited_team(
    database_url: str, name: str, credit_micros: int = 10 * DOLLAR
) -> tuple[str, dict[str, str]]:
    """A team with a token and a credited wallet, written straight into intake's and the
    wallet's schemas (for modules that run their own services instead of `new_team`'s)."""
    pool = await create_pool(database_url, "intake", max_size=1)
    try:
        async with pool.acquire() as conn:
            team_id = await tokens.create_team(conn, name)
            issued = await tokens.issue_token(conn, team_id)
    finally:
        await pool.close()
    pool = await create_pool(database_url, "wallet", max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await execute(conn, team_id, Credit(amount_micros=credit_micros, reason="test"))
    finally:
        await pool.close()
    return team_id, {"Authorization": f"Bearer {issued.token}"}


@contextlib.asynccontextmanager
async def intake_client(
    infra: Infra, blob_root: Path, logs: Path, env: Mapping[str, str] | None = None,
    *, port: int | None = None, timeout: float = 120,
) -> AsyncIterator[httpx.AsyncClient]:  # fmt: skip
    """Intake as a real process behind uvicorn (uploads really stream over HTTP), on the
    module's blob store, and a client whose every response is checked against Resemble's
    published schema. `env` adds to or overrides the defaults."""
    settings = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(blob_root),
        "VERITY_PUBLIC_URL": "http://verity.test",
        **(env or {}),
    }
    async with (
        service_process("intake", settings, logs / "intake.log", port=port) as intake,
        httpx.AsyncClient(base_url=intake.url, timeout=timeout) as client,
    ):
        yield checked(client)
