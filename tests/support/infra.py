"""Find or start the real Kafka broker and PostgreSQL server that tests and benchmarks use.

Order (DESIGN.md): `VERITY_KAFKA_BOOTSTRAP` / `VERITY_DATABASE_URL` from the environment; else
the project's own deploy/local scripts (Kafka jars from Maven Central, PostgreSQL from Debian),
each caller on a run dir and ports of its own so that tests, benchmarks and a running
`./dev up` never meet; else testcontainers, where a Docker engine answers. Only what this
module started is stopped. The S3 blob-store tests also get an S3-compatible server the same
way (`VERITY_S3_ENDPOINT`, else deploy/local/s3.sh: moto's server).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from services.common.blobfactory import open_blob_store
from services.common.blobstore import BlobStore
from services.common.settings import CommonSettings

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Profile:
    """Where one kind of caller runs its own servers."""

    run_dir: Path
    kafka_port: int
    pg_port: int
    fresh_kafka: bool  # an empty cluster per session: no topic or group state leaks across runs
    s3_port: int = 0  # the moto S3 server of deploy/local/s3.sh, for the S3 blob-store tests


TESTS = Profile(REPO / ".run" / "test", 19192, 15532, fresh_kafka=True, s3_port=19392)
BENCH = Profile(REPO / ".run" / "bench", 19292, 15632, fresh_kafka=False, s3_port=19492)


@dataclass
class Infra:
    kafka_bootstrap: str
    database_url: str
    kafka_source: str = "VERITY_KAFKA_BOOTSTRAP"
    _stops: list[Callable[[], object]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()


def _run_script(profile: Profile, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VERITY_RUN_DIR": str(profile.run_dir),
        "VERITY_KAFKA_PORT": str(profile.kafka_port),
        "VERITY_PG_PORT": str(profile.pg_port),
        "VERITY_S3_PORT": str(profile.s3_port),
        "VERITY_KAFKA_FRESH": "1" if profile.fresh_kafka else "",
    }
    return subprocess.run(
        [str(REPO / "deploy" / "local" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _start_script(profile: Profile, script: str, stops: list[Callable[[], object]]) -> str:
    """Start a deploy/local server; returns the value of its last `NAME=value` line.

    A server that was already running under this profile (a previous run left it) is used
    but not stopped: it is not ours.
    """
    was_running = _run_script(profile, script, "status").returncode == 0
    proc = _run_script(profile, script, "start")
    if proc.returncode != 0:
        raise RuntimeError(f"{script} start failed:\n{proc.stdout}\n{proc.stderr}")
    if not was_running or profile.fresh_kafka:
        stops.append(functools.partial(_run_script, profile, script, "stop"))
    lines = [line for line in proc.stdout.splitlines() if "=" in line]
    if not lines:
        raise RuntimeError(f"{script} start printed no NAME=value line:\n{proc.stdout}")
    return lines[-1].split("=", 1)[1].strip()


def _docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def _start_kafka(profile: Profile, stops: list[Callable[[], object]]) -> str:
    if shutil.which("java") and shutil.which("mvn"):
        return _start_script(profile, "kafka.sh", stops)
    if _docker_engine_available():  # pragma: no cover - no Docker engine on our machines
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer("apache/kafka:4.1.1").with_kraft()
        container.start()
        stops.append(container.stop)
        return str(container.get_bootstrap_server())
    raise RuntimeError("no Kafka: set VERITY_KAFKA_BOOTSTRAP, install java+maven, or run Docker")


def _start_postgres(profile: Profile, stops: list[Callable[[], object]]) -> str:
    if shutil.which("pg_ctl") or Path("/usr/lib/postgresql").is_dir() or shutil.which("apt-get"):
        return _start_script(profile, "postgres.sh", stops)
    if _docker_engine_available():  # pragma: no cover - no Docker engine on our machines
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver=None)
        container.start()
        stops.append(container.stop)
        return str(container.get_connection_url())
    raise RuntimeError("no PostgreSQL: set VERITY_DATABASE_URL, install postgresql, or run Docker")


def kafka_version() -> str:
    pom = (REPO / "deploy" / "local" / "kafka" / "pom.xml").read_text()
    return pom.split("<kafka.version>", 1)[1].split("<", 1)[0]


def ensure_infra(profile: Profile = TESTS) -> Infra:
    stops: list[Callable[[], object]] = []
    try:
        database_url = os.environ.get("VERITY_DATABASE_URL") or _start_postgres(profile, stops)
        kafka_bootstrap = os.environ.get("VERITY_KAFKA_BOOTSTRAP")
        source = "VERITY_KAFKA_BOOTSTRAP"
        if not kafka_bootstrap:
            kafka_bootstrap = _start_kafka(profile, stops)
            source = f"Kafka {kafka_version()}, single KRaft node, deploy/local/kafka.sh"
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return Infra(kafka_bootstrap, database_url, source, stops)


@dataclass
class S3Server:
    """An S3-compatible endpoint (moto's server); any credentials are accepted."""

    endpoint: str
    _stops: list[Callable[[], object]] = field(default_factory=list)

    def settings(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The environment that points a service's blob store at `bucket` here."""
        return {
            "VERITY_BLOB_STORE": "s3",
            "VERITY_S3_BUCKET": bucket,
            "VERITY_S3_ENDPOINT": self.endpoint,
            "VERITY_S3_ACCESS_KEY_ID": "test",
            "VERITY_S3_SECRET_ACCESS_KEY": "test",
            "VERITY_S3_PREFIX": prefix,
        }

    def create_bucket(self, bucket: str) -> None:
        """A plain PUT: moto checks no signature (a real S3 would want a signed request)."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT"), timeout=10
        ).close()

    def keys(self, bucket: str, query: str = "list-type=2") -> list[str]:
        """The keys S3 itself lists, prefix included (`query="uploads"`: the unfinished
        multipart uploads')."""
        url = f"{self.endpoint}/{bucket}?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return re.findall(r"<Key>([^<]*)</Key>", response.read().decode())

    def new_store(self, prefix: str = "") -> tuple[str, BlobStore]:
        """A fresh bucket, and a blob store over it made as a service makes its own."""
        bucket = f"test-{uuid.uuid4().hex[:12]}"
        self.create_bucket(bucket)
        settings = CommonSettings(
            blob_store="s3", s3_bucket=bucket, s3_endpoint=self.endpoint, s3_prefix=prefix,
            s3_access_key_id="test", s3_secret_access_key=SecretStr("test"),
        )  # fmt: skip
        return bucket, open_blob_store(settings)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()


def ensure_s3(profile: Profile = TESTS) -> S3Server:
    """`VERITY_S3_ENDPOINT` from the environment, else deploy/local/s3.sh on the profile's port."""
    stops: list[Callable[[], object]] = []
    endpoint = os.environ.get("VERITY_S3_ENDPOINT") or _start_script(profile, "s3.sh", stops)
    return S3Server(endpoint, stops)
