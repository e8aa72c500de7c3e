"""How fast the real wallet service decides batches, next to a plain Kafka round trip.

    uv run python -m bench.wallet [--batches 2000]

The wallet runs as it does in production: `python -m services.wallet`, one or two OS processes
(replicas) in consumer group "wallet", against the real Kafka broker and PostgreSQL server
(started by `tests.support.infra` with its BENCH profile unless given). Each replica gets
VERITY_DATABASE_URL, VERITY_KAFKA_BOOTSTRAP, a free VERITY_HTTP_PORT and
VERITY_LOG_LEVEL=WARNING (its output goes to .run/bench/wallet-bench/replica-<i>.log);
measuring starts once its GET /health answers 200 and the group is stable with every replica
holding partitions; it is stopped with SIGTERM at the end.

The bench publishes `BatchRequested` events (one 10 s audio file each, `encode_event`, to
`route(event)` = verity.batches.v1 keyed by batch id, with the headers the outbox writes)
with `outbox.kafka_producer` (acks=all, idempotent), and reads the decisions
(FundsReserved / FundsRejected, which the wallet's outbox relay publishes to
verity.wallet.v1 keyed by batch id) with a plain aiokafka consumer: no group, assigned to
every partition and positioned at the end before the first send (the bench broker keeps
its topics across runs, so "earliest" would re-read old runs). Everything in the bench is one
asyncio event loop timed with `time.perf_counter()`.

Rows of the table:

  baseline Kafka echo           The same N BatchRequested messages produced to a fresh topic,
                                read by a trivial in-bench consumer that re-publishes each one
                                unchanged to a second topic, read by the decision reader. Two
                                Kafka hops, like publish -> wallet -> decision, but no
                                service work: how much of the cost is Kafka itself.
  100 wallets, R replica(s)     N batches round-robin over 100 teams, each credited enough.
  ..., paced X/s                100 wallets (and the echo baseline) at a steady X batches/s
                                (`--rate`, default 50) for `--paced-seconds` (10), below the
                                capacity of one replica: the latency of the path itself.
  hot wallet, R replica(s)      N batches for ONE team, credited with exactly enough for all N.
  hot wallet, money for K of M  M (`--race`, default 200) batches for one team with money for
                                K = M/2: exactly K must be accepted (the correctness check of
                                the race between replicas; kept small, see "hot wallet").

Every scenario uses fresh team ids (the "wallet" schema is shared and persists), waits until
the wallet's outbox is empty, and publishes its N batches as fast as the producer takes them:
a backlog, so the rate measures capacity. decisions/s = N / (first `producer.send` -> last
decision consumed); latency per batch = decision consumed - the moment that batch was handed
to `producer.send` (in the backlog rows mostly time queued behind other batches). "vs base" =
decisions/s divided by the unpaced echo baseline's rate. An unreported warm-up (`--warmup`
batches over 100 wallets) runs before each replica count. Below the table: the issue's target,
whether it was met, correctness (each batch decided exactly once, accepted counts, the
wallets' figures in PostgreSQL) and CPU per process. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiokafka
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.procs import cpu_seconds, machine_ticks
from bench.shared import Topics, format_rows, percentile, started_producer
from contracts import events as ev
from contracts import headers as h
from contracts.ids import new_id
from contracts.topics import ALL_TOPICS, BATCHES, WALLET, route
from services.common.db import Pool, common_migrations, create_pool, migrate
from services.common.topics_admin import ensure_topics
from services.wallet.commands import execute
from services.wallet.consumers import GROUP
from services.wallet.domain import Credit
from services.wallet.pricing import PriceList, price_file
from services.wallet.schema import MIGRATIONS
from services.wallet.settings import WalletSettings
from tests.support.infra import BENCH, REPO, Infra, ensure_infra

SCHEMA = "wallet"
WAIT_SECONDS = 600.0  # per scenario, for all decisions
TARGET = 500.0  # decisions/s across wallets, from the issue
LOG_DIR = BENCH.run_dir / "wallet-bench"
OPTIONS = ev.DetectOptions()


@dataclass(frozen=True)
class Options:
    batches: int
    wallets: int
    rate: float
    paced_seconds: float
    warmup: int
    race: int


@dataclass
class Result:
    name: str
    replicas: int  # 0: the baseline
    batches: int
    seconds: float  # first send -> last decision consumed (or the timeout)
    latencies: list[float]
    accepted: int
    rejected: int
    duplicates: int
    expected_accepted: int | None
    notes: list[str] = field(default_factory=list)
    paced: bool = False
    wallets: int = 0  # teams the batches were spread over (0: the baseline)

    @property
    def decided(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.decided / self.seconds if self.seconds > 0 else 0.0


# --- events -----------------------------------------------------------------------------------


def audio_file() -> ev.FileSpec:
    return ev.FileSpec(
        detect_id=new_id(), filename="call.wav", media_type="audio", blob_key="k",
        size_bytes=160_000, sha256="0" * 64, duration_seconds=10.0, analysed_seconds=10.0,
    )  # fmt: skip


def batch_cost(prices: PriceList) -> int:
    """What one bench batch (one 10 s audio file) reserves."""
    return price_file(prices, audio_file(), OPTIONS).cost_micros


def make_batches(teams: Sequence[str], n: int) -> list[ev.BatchRequested]:
    """N batches of one 10 s audio file each, round-robin over `teams`."""
    out = []
    for i in range(n):
        batch = new_id()
        out.append(
            ev.BatchRequested(
                team_id=teams[i % len(teams)],
                correlation_id=batch,
                causation_id=new_id(),
                batch_id=batch,
                files=(audio_file(),),
                options=OPTIONS,
            )
        )
    return out


@dataclass(frozen=True)
class Message:
    batch_id: str
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def message(event: ev.BatchRequested) -> Message:
    """What intake's outbox relay would publish for `event` (no trace context)."""
    topic, key = route(event)
    headers = [
        (h.EVENT_ID, event.event_id.encode()),
        (h.EVENT_TYPE, event.event_type.encode()),
        (h.SCHEMA_VERSION, str(event.schema_version).encode()),
        (h.CONTENT_TYPE, h.JSON.encode()),
    ]
    return Message(event.batch_id, topic, key.encode(), ev.encode_event(event), headers)


# --- measuring instruments --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def assigned_consumer(bootstrap: str, topic: str, partitions: int) -> AsyncIterator[Any]:
    """A plain consumer (no group) on every partition of `topic`, positioned at its end now.

    The bench broker keeps its topics across runs, so it starts at the end rather than at the
    earliest offset: it sees exactly what is produced after it was entered.
    """
    consumer: Any = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the start offsets now, not when the first message is sent
            await consumer.position(tp)
        yield consumer
    finally:
        await consumer.stop()


class Decisions:
    """Reads a topic from its current end, without a group; stamps each wanted key on receipt.

    Decisions are keyed by batch id, and so are the echo baseline's messages.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int, wanted: Sequence[str]) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self.wanted = set(wanted)
        self.received: dict[str, float] = {}
        self.kinds: dict[str, str] = {}
        self.duplicates = 0
        self.last = 0.0
        self.done = asyncio.Event()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Decisions:
        self._consumer = await self._stack.enter_async_context(
            assigned_consumer(self._bootstrap, self._topic, self._partitions)
        )
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stack.aclose()

    async def _pump(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            now = time.perf_counter()  # when the records reach the application
            for records in batches.values():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if key not in self.wanted:
                        continue
                    if key in self.received:
                        self.duplicates += 1
                        continue
                    self.received[key] = now
                    self.kinds[key] = next(
                        (v.decode() for k, v in record.headers if k == h.EVENT_TYPE), "?"
                    )
            if len(self.received) >= len(self.wanted) and not self.done.is_set():
                self.last = now
                self.done.set()

    async def wait(self, since: float) -> float:
        """The moment the last one arrived, or the timeout's end (then some are missing)."""
        try:
            await asyncio.wait_for(self.done.wait(), WAIT_SECONDS)
        except TimeoutError:
            return since + WAIT_SECONDS
        return self.last


async def publish(
    producer: Any, messages: Sequence[Message], per_second: float
) -> dict[str, float]:
    """Hand every message to `producer.send`, paced or at full speed; returns when each was."""
    sent: dict[str, float] = {}
    pending = []
    start = time.perf_counter()
    for i, m in enumerate(messages):
        if per_second > 0:
            ahead = start + i / per_second - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
        sent[m.batch_id] = time.perf_counter()
        pending.append(await producer.send(m.topic, value=m.value, key=m.key, headers=m.headers))
    await asyncio.gather(*pending)
    return sent


@dataclass(frozen=True)
class CpuSample:
    at: float
    own: float  # CPU seconds of this process
    replicas: tuple[float, ...]  # CPU seconds of each wallet replica
    busy: int  # machine-wide busy jiffies (all cores)
    total: int  # machine-wide jiffies (all cores)

    @staticmethod
    def take(replicas: Sequence[WalletReplica] = ()) -> CpuSample:
        busy, total = machine_ticks()
        return CpuSample(
            time.perf_counter(),
            time.process_time(),
            tuple(r.cpu_seconds() for r in replicas),
            busy,
            total,
        )

    def note(self, end: CpuSample) -> str:
        """Where the CPU went between two samples: this process, the replicas, the machine."""
        wall = end.at - self.at
        if wall <= 0:
            return "CPU: -"
        text = f"CPU: bench process {(end.own - self.own) / wall:.0%} of one core"
        for i, (a, b) in enumerate(zip(self.replicas, end.replicas, strict=True), start=1):
            text += f", wallet replica {i} {(b - a) / wall:.0%}"
        if end.total > self.total:
            machine = (end.busy - self.busy) / (end.total - self.total)
            text += f", machine {machine:.0%} of {os.cpu_count()} cores busy"
        return text


# --- the wallet service as OS processes -------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def http_status(port: int, path: str) -> int | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        parts = (await asyncio.wait_for(reader.readline(), 5)).split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def open_log(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


class WalletReplica:
    """`python -m services.wallet` in its own OS process, configured through the environment."""

    def __init__(self, infra: Infra, index: int) -> None:
        self.index = index
        self.port = free_port()
        self.log = LOG_DIR / f"replica-{index}.log"
        self._infra = infra
        self._proc: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "VERITY_DATABASE_URL": self._infra.database_url,
            "VERITY_KAFKA_BOOTSTRAP": self._infra.kafka_bootstrap,
            "VERITY_HTTP_PORT": str(self.port),
            "VERITY_LOG_LEVEL": "WARNING",
        }
        log = open_log(self.log)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.wallet",
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            os.close(log)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds until GET /health answered 200."""
        assert self._proc is not None
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self._proc.returncode is not None:
                raise RuntimeError(
                    f"wallet replica {self.index} exited with {self._proc.returncode};"
                    f" see {self.log}"
                )
            if await http_status(self.port, "/health") == 200:
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
        raise RuntimeError(f"wallet replica {self.index} not healthy in {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        """utime + stime of the replica process, from /proc."""
        return cpu_seconds(self._proc.pid) if self._proc is not None else 0.0

    async def stop(self) -> None:
        """SIGTERM, and a SIGKILL if it is not gone in 60 s (uvicorn then exits with -15)."""
        if self._proc is None or self._proc.returncode is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = await asyncio.wait_for(self._proc.wait(), 60)
        except TimeoutError:
            self._proc.kill()
            self.exit_code = await self._proc.wait()


async def wait_group_stable(admin: Any, replicas: int, timeout: float = 120.0) -> tuple[float, int]:
    """(seconds, members) once group "wallet" is Stable, every member holding partitions.

    At least one member per replica (a replica with several consumers has several members).
    """
    started = time.perf_counter()
    state, seen = "?", 0
    while time.perf_counter() - started < timeout:
        with contextlib.suppress(Exception):  # coordinator not ready yet: ask again
            (response,) = await admin.describe_consumer_groups([GROUP])
            group = response.groups[0]
            state, group_members = group[2], group[5]
            seen = len(group_members)
            assigned = all(len(m[4]) > 0 for m in group_members)
            if state == "Stable" and seen >= replicas and assigned:
                return time.perf_counter() - started, seen
        await asyncio.sleep(0.25)
    raise RuntimeError(f"group {GROUP}: {state} with {seen} members, {replicas} replica(s)")


async def group_lag(bootstrap: str, topic: str, partitions: int) -> int:
    """Messages on `topic` that group "wallet" has not committed yet."""
    consumer: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            lag += int(ends[tp]) - int((await consumer.committed(tp)) or 0)
        return lag
    finally:
        await consumer.stop()


async def wait_caught_up(bootstrap: str, partitions: int, timeout: float = 300.0) -> None:
    started = time.perf_counter()
    while (lag := await group_lag(bootstrap, BATCHES, partitions)) > 0:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"group {GROUP} still {lag} messages behind on {BATCHES}")
        await asyncio.sleep(0.2)


# --- helpers ----------------------------------------------------------------------------------


def paced_suffix(per_second: float) -> str:
    return f", paced {per_second:,.0f}/s" if per_second > 0 else ""


@dataclass
class Bench:
    infra: Infra
    opts: Options
    admin: Any
    pool: Pool
    partitions: int  # of verity.batches.v1 and verity.wallet.v1
    cost: int  # micros one bench batch reserves
    replicas: list[WalletReplica] = field(default_factory=list)

    async def credit(self, teams: Sequence[str], micros: int) -> None:
        async with self.pool.acquire() as conn:
            for team in teams:
                async with conn.transaction():
                    await execute(conn, team, Credit(amount_micros=micros, reason="bench top-up"))

    async def outbox_empty(self, timeout: float = 120.0) -> None:
        """Wait until the wallet's relay published everything queued so far (credits too)."""
        started = time.perf_counter()
        async with self.pool.acquire() as conn:
            while await conn.fetchval("SELECT count(*) FROM outbox"):
                if time.perf_counter() - started > timeout:
                    raise RuntimeError("the wallet's outbox did not drain")
                await asyncio.sleep(0.1)

    async def figures(self, teams: Sequence[str]) -> str:
        """What PostgreSQL says about these teams' wallets after the scenario."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'open') AS open,"
                " count(*) FILTER (WHERE status = 'rejected') AS rejected"
                " FROM reservations WHERE team_id = ANY($1::text[])",
                list(teams),
            )
            money = await conn.fetchrow(
                "SELECT min(available_micros) AS min_available,"
                " sum(reserved_micros)::bigint AS reserved, max(version) AS max_version"
                " FROM wallets WHERE team_id = ANY($1::text[])",
                list(teams),
            )
        assert row is not None
        assert money is not None
        return (
            f"PostgreSQL: {row['open']} reservations open, {row['rejected']} rejected;"
            f" reserved {money['reserved']:,} micros, lowest available {money['min_available']:,}"
            f" (never below 0), hottest wallet at version {money['max_version']}"
        )

    async def wallet_scenario(
        self,
        name: str,
        teams: Sequence[str],
        n: int,
        *,
        funded_batches: int | None = None,
        per_second: float = 0,
    ) -> Result:
        """N batches round-robin over `teams`, each team credited for its share (or less)."""
        per_team = math.ceil(n / len(teams))
        funded = per_team if funded_batches is None else funded_batches
        await self.credit(teams, funded * self.cost)
        await self.outbox_empty()
        messages = [message(e) for e in make_batches(teams, n)]
        async with (
            started_producer(self.infra.kafka_bootstrap, BATCHES) as producer,
            Decisions(
                self.infra.kafka_bootstrap, WALLET, self.partitions, [m.batch_id for m in messages]
            ) as seen,
        ):
            cpu = CpuSample.take(self.replicas)
            start = time.perf_counter()
            sent = await publish(producer, messages, per_second)
            end = await seen.wait(start)
            cpu_note = cpu.note(CpuSample.take(self.replicas))
            await asyncio.sleep(0.5)  # a late duplicate would arrive by now
        accepted = sum(1 for k in seen.kinds.values() if k == "FundsReserved")
        rejected = sum(1 for k in seen.kinds.values() if k == "FundsRejected")
        counts = [len(range(i, n, len(teams))) for i in range(len(teams))]  # batches per team
        expected = sum(min(funded, c) for c in counts)
        result = Result(
            name=f"{name}, {len(self.replicas)} replica{'s' if len(self.replicas) > 1 else ''}"
            f"{paced_suffix(per_second)}",
            replicas=len(self.replicas),
            batches=n,
            seconds=end - start,
            latencies=[seen.received[b] - t for b, t in sent.items() if b in seen.received],
            accepted=accepted,
            rejected=rejected,
            duplicates=seen.duplicates,
            expected_accepted=expected,
            paced=per_second > 0,
            wallets=len(teams),
        )
        result.notes += [await self.figures(teams), cpu_note]
        return result

    async def baseline(self, topics: Topics, n: int, per_second: float = 0) -> Result:
        """Produce -> trivial echo consumer re-publishes -> consume: two Kafka hops, no work."""
        source, sink = await topics.new("echo-in"), await topics.new("echo-out")
        messages = [
            Message(m.batch_id, source, m.key, m.value, m.headers)
            for m in (message(e) for e in make_batches([new_id()], n))
        ]
        async with (
            started_producer(self.infra.kafka_bootstrap, source, sink) as producer,
            assigned_consumer(self.infra.kafka_bootstrap, source, self.partitions) as echo,
            Decisions(
                self.infra.kafka_bootstrap, sink, self.partitions, [m.batch_id for m in messages]
            ) as seen,
        ):

            async def relay() -> None:
                while True:
                    got = await echo.getmany(timeout_ms=1000)
                    for records in got.values():
                        for r in records:
                            await producer.send(sink, r.value, key=r.key, headers=list(r.headers))

            task = asyncio.create_task(relay())
            try:
                cpu = CpuSample.take()
                start = time.perf_counter()
                sent = await publish(producer, messages, per_second)
                end = await seen.wait(start)
                cpu_note = cpu.note(CpuSample.take())
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return Result(
            name=f"baseline Kafka echo{paced_suffix(per_second)}",
            replicas=0,
            batches=n,
            seconds=end - start,
            latencies=[seen.received[b] - t for b, t in sent.items() if b in seen.received],
            accepted=0,
            rejected=0,
            duplicates=seen.duplicates,
            expected_accepted=None,
            notes=[
                f"payload {len(messages[0].value)} bytes + 4 headers, echoed unchanged;"
                " producer, echo and reader share this process",
                cpu_note,
            ],
            paced=per_second > 0,
        )

    async def add_replica(self) -> str:
        replica = WalletReplica(self.infra, len(self.replicas) + 1)
        await replica.start()
        self.replicas.append(replica)
        healthy = await replica.wait_healthy()
        stable, members = await wait_group_stable(self.admin, len(self.replicas))
        return (
            f"wallet replica {replica.index}: pid {replica.pid}, port {replica.port},"
            f" /health 200 after {healthy:.1f} s, group {GROUP} stable with"
            f" {members} member(s) {stable:.1f} s later; log {replica.log}"
        )

    async def warm_up(self, n: int) -> None:
        """Unreported: JIT the broker, warm the replicas' pools and caches, drain any backlog."""
        if n > 0:
            print(f"  warm-up: {n} batches over 100 wallets ...", flush=True)
            await self.wallet_scenario("warm-up", [new_id() for _ in range(100)], n)
        await wait_caught_up(self.infra.kafka_bootstrap, self.partitions)
        await self.outbox_empty()

    async def stop_replicas(self) -> str:
        for replica in reversed(self.replicas):
            await replica.stop()
        codes = ", ".join(f"{r.index}: {r.exit_code}" for r in self.replicas)
        return f"wallet replicas stopped with SIGTERM, exit codes {codes} (-15: uvicorn's way)"


# --- report -----------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def code_version() -> str:
    """The commit the replicas run, and whether services/ differs from it (edits mid-run skew)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "services", "contracts"],
                           capture_output=True, text=True)  # fmt: skip
    if head.returncode != 0:
        return "code: not a git checkout"
    edited = " (services/ or contracts/ edited since)" if dirty.stdout.strip() else ""
    return f"code: git {head.stdout.strip()}{edited}"


async def machine_facts(infra: Infra, pool: Pool, code: str) -> list[str]:
    async with pool.acquire() as conn:
        pg = await conn.fetchval("SHOW server_version")
        fsync = await conn.fetchval("SHOW fsync")
        sync_commit = await conn.fetchval("SHOW synchronous_commit")
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; cores: {os.cpu_count()} ({cpu_model()});"
        f" load average {os.getloadavg()[0]:.2f} (other work on the machine skews the numbers)",
        f"Kafka: {infra.kafka_bootstrap} ({infra.kafka_source})",
        f"PostgreSQL: {pg} (fsync={fsync}, synchronous_commit={sync_commit})",
        f"Python {platform.python_version()}, aiokafka {aiokafka.__version__}; the bench is one"
        " process, each wallet replica another; Kafka and PostgreSQL share the same cores",
        code,
    ]


def table(results: Sequence[Result]) -> str:
    base = results[0].per_second
    header = ("scenario", "batches", "decisions/s", "p50 ms", "p99 ms", "max ms", "vs base")
    rows: list[tuple[str, ...]] = [header]
    for r in results:
        lat = sorted(r.latencies)
        ms = [f"{percentile(lat, p) * 1000:.1f}" for p in (50, 99, 100)] if lat else ["-"] * 3
        rows.append(
            (
                r.name,
                f"{r.batches}" if r.decided == r.batches else f"{r.decided}/{r.batches}",
                f"{r.per_second:,.0f}",
                *ms,
                "-" if r.paced else f"{r.per_second / base:.2f}x",
            )
        )
    return format_rows(rows)


def target_lines(results: Sequence[Result]) -> list[str]:
    out = [f"target (issue): >= {TARGET:,.0f} decisions/s across wallets"]
    for r in results:
        if r.wallets > 1 and not r.paced:
            verdict = "met" if r.per_second >= TARGET else "NOT met"
            out.append(f"  {r.name}: {r.per_second:,.0f} decisions/s -> {verdict}")
    return out


def correctness(r: Result) -> str:
    missing = r.batches - r.decided
    ok = missing == 0 and r.duplicates == 0
    text = (
        f"{'ok' if ok else 'WRONG'}: {r.decided} of {r.batches} batches decided"
        f" ({missing} missing, {r.duplicates} duplicate decisions)"
    )
    if r.expected_accepted is not None:
        right = r.accepted == r.expected_accepted
        text += (
            f"; accepted {r.accepted}, rejected {r.rejected}, expected exactly"
            f" {r.expected_accepted} accepted -> {'ok' if right else 'WRONG'}"
        )
    return text


async def run(infra: Infra, opts: Options, code: str) -> None:
    pool = await create_pool(infra.database_url, SCHEMA, max_size=2)
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    bench: Bench | None = None
    topics = Topics(admin, 1, "wallet")
    results: list[Result] = []
    setup: list[str] = []
    try:
        print("\n".join(await machine_facts(infra, pool, code)), flush=True)
        # The service migrates the schema and creates its topics on start; doing the same here
        # first lets the bench credit teams and know the partition count before it starts.
        await migrate(pool, SCHEMA, [*common_migrations(), *MIGRATIONS])
        await ensure_topics(
            infra.kafka_bootstrap, ALL_TOPICS, partitions=WalletSettings().kafka_partitions
        )
        (described,) = await admin.describe_topics([WALLET])
        partitions = len(described["partitions"])
        topics = Topics(admin, partitions, "wallet")
        bench = Bench(infra, opts, admin, pool, partitions, batch_cost(PriceList()))
        n = opts.batches

        paced_n = min(n, max(1, round(opts.rate * opts.paced_seconds)))

        print(f"baseline: warm-up {opts.warmup}, then {n} messages ...", flush=True)
        await bench.baseline(topics, max(opts.warmup, 1))
        results.append(await bench.baseline(topics, n))
        if opts.rate > 0:
            print(f"baseline, paced {opts.rate:,.0f}/s: {paced_n} messages ...", flush=True)
            results.append(await bench.baseline(topics, paced_n, opts.rate))

        for replicas in (1, 2):
            print(f"starting wallet replica {replicas} ...", flush=True)
            setup.append(await bench.add_replica())
            await bench.warm_up(opts.warmup)
            # (name, wallets, batches, batches each wallet is funded for (None: all), rate)
            spread = f"{opts.wallets} wallets"
            scenarios: list[tuple[str, int, int, int | None, float]] = [
                (spread, opts.wallets, n, None, 0)
            ]
            if replicas == 1 and opts.rate > 0:
                scenarios.append((spread, opts.wallets, paced_n, None, opts.rate))
            scenarios.append(("hot wallet", 1, n, None, 0))
            if opts.race > 0:
                race = f"hot wallet, money for {opts.race // 2} of {opts.race}"
                scenarios.append((race, 1, opts.race, opts.race // 2, 0))
            for name, wallets, batches, funded, per_second in scenarios:
                print(f"  {name}{paced_suffix(per_second)}: {batches} batches ...", flush=True)
                teams = [new_id() for _ in range(wallets)]
                results.append(
                    await bench.wallet_scenario(
                        name, teams, batches, funded_batches=funded, per_second=per_second
                    )
                )
    finally:
        try:
            if bench is not None:
                setup.append(await bench.stop_replicas())
            await topics.delete_all()
        finally:
            await admin.close()
            await pool.close()
    print()
    print(table(results))
    print()
    print("\n".join(target_lines(results)))
    print()
    for line in setup:
        print(line)
    for r in results:
        if r.replicas:
            print(f"{r.name}: {correctness(r)}")
        for note in r.notes:
            print(f"{r.name}: {note}")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="The real wallet service (1 and 2 replicas) vs a raw Kafka round trip."
    )
    parser.add_argument("--batches", type=int, default=2_000, help="batches per scenario")
    parser.add_argument("--wallets", type=int, default=100, help="teams of the spread rows")
    parser.add_argument(
        "--rate", type=float, default=50, help="batches/s of the paced rows; 0: none"
    )
    parser.add_argument(
        "--paced-seconds", type=float, default=10, help="how long the paced rows publish"
    )
    parser.add_argument(
        "--warmup", type=int, default=300, help="unreported batches per replica count"
    )
    parser.add_argument(
        "--race",
        type=int,
        default=200,
        help="batches of the hot-wallet rows funded for half of them; 0: no such rows",
    )
    a = parser.parse_args(argv)
    return Options(a.batches, a.wallets, a.rate, a.paced_seconds, a.warmup, a.race)


def main() -> None:
    opts = parse_args()
    code = code_version()
    infra = ensure_infra(BENCH)
    try:
        asyncio.run(run(infra, opts, code))
    finally:
        infra.stop()


if __name__ == "__main__":
    main()
