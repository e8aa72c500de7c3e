"""Run a service as a real process (`python -m services.<name>`) for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.infra import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class RunningService:
    url: str
    pid: int


@contextlib.asynccontextmanager
async def service_process(
    name: str, env: Mapping[str, str], log_path: Path, *, port: int | None = None
) -> AsyncIterator[RunningService]:
    """Start the service, wait for /health to be ok, yield where it runs; SIGTERM it after.

    Its output goes to `log_path` (a pipe nobody reads could fill up and stall it).
    """
    port = port or free_port()
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{name}",
            cwd=REPO,
            env={**os.environ, **env, "VERITY_HTTP_PORT": str(port)},
            stdout=log,
            stderr=log,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            await _healthy(url, proc, log_path)
            yield RunningService(url, proc.pid)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(30):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _healthy(url: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(60):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"service exited: {log_path.read_text()[-2000:]}")
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
