"""The services' Kafka clients over SASL/SCRAM + TLS, against a real broker.

One broker of our own for the module: deploy/local/kafka.sh in secure mode (VERITY_KAFKA_SECURE=1)
in a temporary run dir, on ports of its own (never the test profile's), with a SASL_SSL listener
(SCRAM-SHA-512, broker certificate from a CA made for the run) and a mutual-TLS listener. Every
client is built from a `KafkaConnection`, as the services build theirs: the outbox producer,
plain consumers and the admin client (`options()`), FastStream's broker (`faststream_security()`),
`ensure_topics`, and finally the wallet service as a process configured by environment only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from contracts import events as ev
from contracts.ids import new_id
from contracts.topics import ALL_TOPICS, dead_letter_topic
from services.common.consumer import RetryPolicy, make_broker, subscribe
from services.common.kafka_client import KafkaConnection
from services.common.outbox import kafka_producer
from services.common.topics_admin import MissingTopicsError, ensure_topics
from tests.support.infra import REPO
from tests.support.services import service_process

pytestmark = [
    pytest.mark.infra,
    pytest.mark.skipif(shutil.which("java") is None, reason="needs Java for the Kafka broker"),
]

# Away from the test profile (19192/15532), the bench profile and ./dev up. The first free block
# from here is taken, so parallel runs of this module do not collide.
KAFKA_PORT_BASE = int(os.environ.get("VERITY_TEST_SECURE_KAFKA_PORT", "39092"))
PG_PORT_BASE = int(os.environ.get("VERITY_TEST_SECURE_PG_PORT", "35432"))
WAIT = 30  # seconds: any single step here takes 1-2 s on a 2-core machine


@dataclasses.dataclass(frozen=True)
class SecureKafka:
    """What `kafka.sh start` printed in secure mode."""

    plain: str
    sasl_ssl: str
    mtls: str
    username: str
    password: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    def sasl(self, **changes: Any) -> KafkaConnection:
        connection = KafkaConnection(
            self.sasl_ssl,
            "SASL_SSL",
            username=self.username,
            password=self.password,
            ca_file=self.ca_file,
        )
        connection = dataclasses.replace(connection, **changes)
        connection.check()
        return connection

    def mutual_tls(self) -> KafkaConnection:
        connection = KafkaConnection(
            self.mtls, "SSL", ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file
        )
        connection.check()
        return connection


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_block(base: int, count: int) -> int:
    for start in range(base, base + 400, 10):
        if all(_port_free(p) for p in range(start, start + count)):
            return start
    raise RuntimeError(f"no {count} free consecutive ports from {base}")


def _script(script: str, command: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("VERITY_KAFKA_", "VERITY_PG_"))
    }
    return subprocess.run(
        [str(REPO / "deploy" / "local" / script), command],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _result_lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return {name: value.strip() for name, value in pairs}


@pytest.fixture(scope="module")
def run_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: that is 0700, and PostgreSQL runs as another user when we are root.
    path = Path(tempfile.mkdtemp(prefix="verity-kafka-security-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def secure_kafka(run_dir: Path) -> Iterator[SecureKafka]:
    port = _free_block(KAFKA_PORT_BASE, 4)  # plain, controller, SASL_SSL, mutual TLS
    env = {
        "VERITY_RUN_DIR": str(run_dir),
        "VERITY_KAFKA_PORT": str(port),
        "VERITY_KAFKA_SECURE": "1",
        "VERITY_KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m",
    }
    proc = _script("kafka.sh", "start", env)
    try:
        assert proc.returncode == 0, f"kafka.sh start failed:\n{proc.stdout}\n{proc.stderr}"
        last = proc.stdout.splitlines()[-1]
        assert last == f"VERITY_KAFKA_BOOTSTRAP=127.0.0.1:{port}", "callers read the last line"
        out = _result_lines(proc)
        yield SecureKafka(
            plain=out["VERITY_KAFKA_BOOTSTRAP"],
            sasl_ssl=out["VERITY_KAFKA_SECURE_BOOTSTRAP"],
            mtls=out["VERITY_KAFKA_MTLS_BOOTSTRAP"],
            username=out["VERITY_KAFKA_SECURE_USERNAME"],
            password=Path(out["VERITY_KAFKA_SECURE_PASSWORD_FILE"]).read_text().strip(),
            ca_file=Path(out["VERITY_KAFKA_SECURE_CA_FILE"]),
            cert_file=Path(out["VERITY_KAFKA_MTLS_CERT_FILE"]),
            key_file=Path(out["VERITY_KAFKA_MTLS_KEY_FILE"]),
        )
    finally:
        _script("kafka.sh", "stop", env)


@pytest.fixture(scope="module")
def database_url(run_dir: Path) -> Iterator[str]:
    """A PostgreSQL of our own: the session's `infra` would also start the test profile's Kafka,
    and a wallet sharing another database's `wallet` schema would relay its outbox here."""
    env = {"VERITY_RUN_DIR": str(run_dir), "VERITY_PG_PORT": str(_free_block(PG_PORT_BASE, 1))}
    proc = _script("postgres.sh", "start", env)
    try:
        assert proc.returncode == 0, f"postgres.sh start failed:\n{proc.stdout}\n{proc.stderr}"
        yield _result_lines(proc)["VERITY_DATABASE_URL"]
    finally:
        _script("postgres.sh", "stop", env)


def _topic(prefix: str) -> str:
    return f"test.security.{prefix}.{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def consumer_of() -> AsyncIterator[Any]:
    """`await consumer_of(connection, topic)`: a started group consumer, stopped afterwards."""
    started: list[AIOKafkaConsumer] = []

    async def make(connection: KafkaConnection, *topics: str) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *topics,
            **connection.options(),
            group_id=f"g-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        started.append(consumer)
        return consumer

    try:
        yield make
    finally:
        for consumer in started:
            await consumer.stop()


async def test_outbox_producer_and_consumer_round_trip_over_sasl_ssl(
    secure_kafka: SecureKafka, consumer_of: Any
) -> None:
    connection = secure_kafka.sasl()
    topic = _topic("roundtrip")
    await ensure_topics(connection, (topic,), partitions=1)
    producer = kafka_producer(connection)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over sasl_ssl", key=b"k")
        # the metadata the client follows names the SASL_SSL listener, not the plain one
        ports = {broker.port for broker in producer.client.cluster.brokers()}
        assert ports == {int(secure_kafka.sasl_ssl.rsplit(":", 1)[1])}
    finally:
        await producer.stop()
    consumer = await consumer_of(connection, topic)
    record = await asyncio.wait_for(consumer.getone(), WAIT)
    assert (record.key, record.value) == (b"k", b"over sasl_ssl")


async def test_mutual_tls_round_trip(secure_kafka: SecureKafka, consumer_of: Any) -> None:
    connection = secure_kafka.mutual_tls()
    topic = _topic("mtls")
    await ensure_topics(connection, (topic,), partitions=1)
    producer = kafka_producer(connection)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"with a client certificate")
    finally:
        await producer.stop()
    consumer = await consumer_of(connection, topic)
    record = await asyncio.wait_for(consumer.getone(), WAIT)
    assert record.value == b"with a client certificate"


async def test_faststream_broker_consumes_and_dead_letters_over_sasl_ssl(
    secure_kafka: SecureKafka, consumer_of: Any
) -> None:
    """The services' consumer path: make_broker + subscribe; a poison event is dead-lettered
    by FastStream's own producer, so both its consumer and its producer speak SASL_SSL."""
    connection = secure_kafka.sasl()
    topic, group = _topic("faststream"), f"g-{uuid.uuid4().hex[:8]}"
    dlq = dead_letter_topic(group)
    await ensure_topics(connection, (topic, dlq), partitions=1)
    good, poison = (
        ev.BatchAbandoned(team_id=new_id(), correlation_id=b, batch_id=b, reason=reason)
        for b, reason in ((new_id(), "good"), (new_id(), "poison"))
    )
    seen: list[str] = []
    handled = asyncio.Event()

    async def handler(event: ev.Event) -> None:
        assert isinstance(event, ev.BatchAbandoned)
        seen.append(event.reason)
        if event.reason == "poison":
            raise RuntimeError("poison")
        handled.set()

    broker = make_broker(connection, client_id="test-security")
    subscribe(broker, (topic,), group, handler, retry=RetryPolicy(attempts=1))
    producer = kafka_producer(connection)
    await producer.start()
    try:
        for event in (poison, good):
            await producer.send_and_wait(topic, ev.encode_event(event), key=b"k")
        await broker.start()
        await asyncio.wait_for(handled.wait(), WAIT)
        dead = await consumer_of(connection, dlq)
        record = await asyncio.wait_for(dead.getone(), WAIT)
    finally:
        await broker.stop()
        await producer.stop()
    assert seen == ["poison", "good"]
    assert ev.decode_event(record.value).event_id == poison.event_id


async def test_ensure_topics_creates_and_checks_over_sasl_ssl(secure_kafka: SecureKafka) -> None:
    connection = secure_kafka.sasl()
    wanted = (_topic("a"), _topic("b"))
    await ensure_topics(connection, wanted, partitions=3, create=True)
    await ensure_topics(connection, wanted, partitions=3, create=True)  # idempotent
    await ensure_topics(connection, wanted, partitions=3, create=False)  # all there: passes
    admin = AIOKafkaAdminClient(**connection.options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(wanted))
        assert sorted(t["topic"] for t in described) == sorted(wanted)
        assert all(len(t["partitions"]) == 3 for t in described)
        missing = _topic("missing")
        with pytest.raises(MissingTopicsError) as raised:
            await ensure_topics(connection, (*wanted, missing), partitions=3, create=False)
        assert raised.value.missing == [missing]
        assert missing not in await admin.list_topics()  # checking created nothing
    finally:
        await admin.close()


async def test_wrong_password_fails_to_connect(
    secure_kafka: SecureKafka, caplog: pytest.LogCaptureFixture
) -> None:
    connection = secure_kafka.sasl(password="not-the-password")
    caplog.set_level(logging.ERROR, logger="aiokafka")
    producer = AIOKafkaProducer(**connection.options())
    try:
        async with asyncio.timeout(WAIT):
            with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
                await producer.start()
    finally:
        await producer.stop()
    # the reason is the credential, not TLS or the network
    assert "SaslAuthenticationFailed" in caplog.text
    async with asyncio.timeout(WAIT):
        with pytest.raises(KafkaConnectionError):
            await ensure_topics(connection, (_topic("never"),), partitions=1)


async def test_broker_certificate_is_verified(
    secure_kafka: SecureKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """Without our CA (the system's CAs instead) the broker's certificate is refused."""
    connection = secure_kafka.sasl(ca_file=None)
    caplog.set_level(logging.ERROR, logger="aiokafka")
    producer = AIOKafkaProducer(**connection.options())
    try:
        async with asyncio.timeout(WAIT):
            with pytest.raises(KafkaConnectionError):
                await producer.start()
    finally:
        await producer.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def _service_env(kafka: SecureKafka, database_url: str, run_dir: Path) -> dict[str, str]:
    return {
        "VERITY_DATABASE_URL": database_url,
        "VERITY_KAFKA_BOOTSTRAP": kafka.sasl_ssl,
        "VERITY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VERITY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "VERITY_KAFKA_USERNAME": kafka.username,
        "VERITY_KAFKA_PASSWORD": kafka.password,
        "VERITY_KAFKA_CA_FILE": str(kafka.ca_file),
        "VERITY_KAFKA_PARTITIONS": "1",
        "VERITY_BLOB_STORE": "filesystem",
        "VERITY_BLOB_ROOT": str(run_dir / "blobs"),
    }


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service process inherits our environment: none of the caller's VERITY_* settings
    (another bootstrap, a client certificate, ...) may leak into it."""
    for name in [n for n in os.environ if n.startswith("VERITY_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_environment")
async def test_wallet_service_runs_over_sasl_ssl(
    secure_kafka: SecureKafka, database_url: str, run_dir: Path
) -> None:
    env = _service_env(secure_kafka, database_url, run_dir)
    async with (
        service_process("wallet", env, run_dir / "wallet.log") as wallet,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(f"{wallet.url}/health", timeout=WAIT)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "ok"
    assert report["checks"]["kafka"] == "ok"
    # it created its topics through the SASL_SSL listener
    admin = AIOKafkaAdminClient(**secure_kafka.sasl().options())
    await admin.start()
    try:
        assert set(ALL_TOPICS) <= set(await admin.list_topics())
    finally:
        await admin.close()


@pytest.mark.usefixtures("clean_environment")
async def test_wallet_service_refuses_to_start_with_a_wrong_password(
    secure_kafka: SecureKafka, database_url: str, run_dir: Path
) -> None:
    env = {
        **_service_env(secure_kafka, database_url, run_dir),
        "VERITY_KAFKA_PASSWORD": "not-the-password",
    }
    with pytest.raises(RuntimeError, match="service exited") as raised:
        async with service_process("wallet", env, run_dir / "wallet-bad.log"):
            pass
    assert "SaslAuthenticationFailed" in (run_dir / "wallet-bad.log").read_text(), raised.value
