"""Find or start the real Kafka broker and PostgreSQL server the tests talk to.

Order (DESIGN.md): `VERITY_KAFKA_BOOTSTRAP` / `VERITY_DATABASE_URL` from the environment; else
the project's own deploy/local scripts (Kafka jars from Maven Central, PostgreSQL from Debian),
on ports of their own so a running `./dev up` is left alone; else testcontainers, where a
Docker engine answers. Only what this module started is stopped at the end.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_RUN_DIR = REPO / ".run" / "test"
TEST_KAFKA_PORT = "19192"
TEST_PG_PORT = "15532"


@dataclass
class Infra:
    kafka_bootstrap: str
    database_url: str
    _stops: list[Callable[[], object]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()


def _script_env() -> dict[str, str]:
    return {
        **os.environ,
        "VERITY_RUN_DIR": str(TEST_RUN_DIR),
        "VERITY_KAFKA_PORT": TEST_KAFKA_PORT,
        "VERITY_PG_PORT": TEST_PG_PORT,
        # a throwaway cluster per test session: no topic or group state leaks between runs
        "VERITY_KAFKA_FRESH": "1",
    }


def _run_script(script: str, *args: str) -> str:
    """Run a deploy/local script; returns the value of its last `NAME=value` line."""
    proc = subprocess.run(
        [str(REPO / "deploy" / "local" / script), *args],
        env=_script_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if "=" in line]
    return lines[-1].split("=", 1)[1].strip() if lines else ""


def _docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def _start_kafka(infra_stops: list[Callable[[], object]]) -> str:
    if shutil.which("java") and shutil.which("mvn"):
        bootstrap = _run_script("kafka.sh", "start")
        infra_stops.append(functools.partial(_run_script, "kafka.sh", "stop"))
        return bootstrap
    if _docker_engine_available():  # pragma: no cover - no Docker engine on our machines
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer("apache/kafka:4.1.1").with_kraft()
        container.start()
        infra_stops.append(container.stop)
        return str(container.get_bootstrap_server())
    raise RuntimeError("no Kafka: set VERITY_KAFKA_BOOTSTRAP, install java+maven, or run Docker")


def _start_postgres(infra_stops: list[Callable[[], object]]) -> str:
    pg_available = shutil.which("pg_ctl") or Path("/usr/lib/postgresql").is_dir()
    if pg_available or shutil.which("apt-get"):
        url = _run_script("postgres.sh", "start")
        infra_stops.append(functools.partial(_run_script, "postgres.sh", "stop"))
        return url
    if _docker_engine_available():  # pragma: no cover - no Docker engine on our machines
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver=None)
        container.start()
        infra_stops.append(container.stop)
        return str(container.get_connection_url())
    raise RuntimeError("no PostgreSQL: set VERITY_DATABASE_URL, install postgresql, or run Docker")


def ensure_infra() -> Infra:
    stops: list[Callable[[], object]] = []
    try:
        database_url = os.environ.get("VERITY_DATABASE_URL") or _start_postgres(stops)
        kafka_bootstrap = os.environ.get("VERITY_KAFKA_BOOTSTRAP") or _start_kafka(stops)
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return Infra(kafka_bootstrap, database_url, stops)
