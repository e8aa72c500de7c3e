"""All four services start against real Kafka + PostgreSQL, report healthy, and stop cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.common.db import create_pool
from services.intake.store import tokens
from tests.support.infra import REPO, Infra

pytestmark = pytest.mark.infra

SERVICES = ("intake", "wallet", "detector", "notifier")
BASE_PORT = 18600


@pytest.fixture
async def running_services(
    infra: Infra, tmp_path: Path
) -> AsyncIterator[dict[str, asyncio.subprocess.Process]]:
    env = {
        **os.environ,
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "VERITY_BLOB_ROOT": str(tmp_path / "blobs"),
    }
    procs: dict[str, asyncio.subprocess.Process] = {}
    for i, name in enumerate(SERVICES):
        procs[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{name}",
            cwd=REPO,
            env={**env, "VERITY_HTTP_PORT": str(BASE_PORT + i)},
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _json_lines(output: bytes) -> list[dict[str, object]]:
    lines = []
    for raw in output.decode(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def _healthy(client: httpx.AsyncClient, port: int) -> dict[str, object]:
    async with asyncio.timeout(60):
        while True:
            try:
                response = await client.get(f"http://127.0.0.1:{port}/health")
                if response.status_code == 200:
                    body: dict[str, object] = response.json()
                    return body
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def test_every_service_starts_reports_health_and_stops_on_sigterm(
    running_services: dict[str, asyncio.subprocess.Process],
) -> None:
    async with httpx.AsyncClient() as client:
        for i, name in enumerate(SERVICES):
            report = await _healthy(client, BASE_PORT + i)
            assert report["service"] == name
            checks = report["checks"]
            assert isinstance(checks, dict)
            # the detector may be answering requests earlier tests left on the shared broker
            assert isinstance(checks.pop("outbox_pending"), int)
            assert checks == {
                "database": "ok",
                "kafka": "ok",
                "outbox_relay": "ok",
                "started": "ok",
            }
            base = f"http://127.0.0.1:{BASE_PORT + i}"
            for probe in ("/livez", "/readyz", "/startupz"):
                assert (await client.get(base + probe)).status_code == 200, (name, probe)
            exposition = (await client.get(f"{base}/metrics")).text
            assert f'verity_outbox_backlog{{service="{name}"}}' in exposition, name
        docs = await client.get(f"http://127.0.0.1:{BASE_PORT}/docs/openapi.json")
        assert docs.status_code == 200
    for proc in running_services.values():
        proc.send_signal(signal.SIGTERM)
    for name, proc in running_services.items():
        async with asyncio.timeout(40):
            _, stderr = await proc.communicate()
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown has finished
        assert proc.returncode in (0, -signal.SIGTERM), f"{name} exited with {proc.returncode}"
        assert b"Application shutdown complete" in stderr, f"{name} did not shut down cleanly"
        errors = [line for line in _json_lines(stderr) if line.get("level") == "error"]
        # aiokafka logs the broker's transient "coordinator not available yet" as errors
        ours = [e for e in errors if not str(e.get("logger", "")).startswith("aiokafka")]
        assert ours == [], f"{name} logged errors: {ours}"


async def test_admin_cli_issues_a_token_that_resolves_to_its_team(infra: Infra) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.intake.admin", "demo", "--name", "cli-test",
        cwd=REPO,
        env={**os.environ, "VERITY_DATABASE_URL": infra.database_url},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    values = dict(line.split("=", 1) for line in out.decode().splitlines())
    pool = await create_pool(infra.database_url, "intake", max_size=1)
    try:
        async with pool.acquire() as conn:
            found = await tokens.team_for_token(conn, values["token"])
            assert found is not None
            assert found[0] == values["team_id"]
            stored = await conn.fetchval(
                "SELECT token_hash FROM api_tokens WHERE team_id = $1", values["team_id"]
            )
            assert stored == tokens.hash_token(values["token"])  # never the token itself
            assert await tokens.team_for_token(conn, values["token"] + "x") is None
            token_id = await conn.fetchval(
                "SELECT id FROM api_tokens WHERE team_id = $1", values["team_id"]
            )
            assert found[1] == token_id
            assert await tokens.revoke_token(conn, token_id) is True
            assert await tokens.team_for_token(conn, values["token"]) is None
    finally:
        await pool.close()
