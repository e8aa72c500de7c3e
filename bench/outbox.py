"""What the transactional outbox costs compared with producing to Kafka directly.

    uv run python -m bench.outbox [--events 10000]

Everything runs against the real Kafka broker and PostgreSQL server (started by
`tests.support.infra` with its BENCH profile unless given), in one process and one event loop,
timed with `time.perf_counter()`, so all timestamps share one clock. Every scenario publishes
the same N `DetectRequested` events (encoded with `encode_event`, the same headers the outbox
writes) to a fresh topic of 6 partitions, keyed over 100 keys, read by a plain aiokafka consumer
(no group, `auto_offset_reset=earliest`) that is started, assigned and positioned before the
first message is sent.

Rows of the table:

  baseline raw aiokafka        `outbox.kafka_producer` (acks=all, idempotent) sends all N as
                               fast as it accepts them. Start = first `producer.send` call;
                               latency = consumer receive - the moment that message was handed
                               to `producer.send` (so it excludes handing over the messages
                               before it, but includes waiting behind them in the producer).
  outbox relay, streaming      An in-process `OutboxRelay.run` (own producer, NOTIFY wake-up)
                               runs while one writer enqueues the events in transactions of
                               100, back to back. Start = first transaction begins; latency =
                               consumer receive - commit of the transaction that enqueued the
                               event. The writer outruns the relay, so this latency is mostly
                               time spent queued in the outbox.
  outbox relay, backlog drain  All N enqueued first (timed separately as "enqueue"), then the
                               relay starts. Start = relay start; end = outbox empty and all
                               consumed. No latency: every event waited for the start.
  ..., paced R/s               The same two paths at a steady R events/s (`--rate`, default
                               1,000; 0 skips these rows), 100 events at a time: the writer
                               commits one 100-event transaction, the baseline sends 100
                               messages, every 100 ms at 1,000/s. Well below capacity, so
                               their latency is the path itself: for the relay, NOTIFY pickup
                               + SELECT + publish + consume. Their throughput is the pace.

Columns: "acked ev/s" = N / (start -> last broker ack; for the relay, the last row deleted,
which happens after its ack); "e2e ev/s" = N / (start -> last event consumed, and for the
relay outbox empty); "p50/p99/max ms" = publish-to-consume latency as defined above; "vs base"
= e2e ev/s divided by the (unpaced) baseline's. Below the table, per row: enqueue rates, the
relay's batches (rows per `relay_once` call and time per call) and the CPU used (this process,
and the whole machine: Kafka, PostgreSQL and this process share its cores, and other work on
the machine skews every number). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiokafka
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.shared import Topics, format_rows, percentile, started_producer
from contracts import events as ev
from contracts import headers as h
from contracts.ids import new_id
from services.common import outbox
from services.common.db import Pool, common_migrations, create_pool, migrate
from tests.support.infra import BENCH, Infra, ensure_infra

WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class Options:
    events: int
    keys: int
    partitions: int
    txn_size: int
    relay_batch_size: int
    rate: float
    warmup: int


@dataclass
class Result:
    name: str
    events: int
    acked_s: float
    e2e_s: float
    latencies: list[float] | None  # seconds, one per event; None where not meaningful
    notes: list[str] = field(default_factory=list)
    paced: bool = False  # its throughput is the pace: no ratio to the baseline


# --- events -----------------------------------------------------------------------------------


def make_events(n: int, keys: int) -> list[ev.DetectRequested]:
    """N representative events (one file to analyse each), spread over `keys` batch ids."""
    team = new_id()
    batches = [new_id() for _ in range(keys)]
    options = ev.DetectOptions(callback_url="https://client.example.com/hooks/verity/detect")
    out = []
    for i in range(n):
        batch = batches[i % keys]
        detect = new_id()
        file = ev.FileSpec(
            detect_id=detect,
            filename=f"interview-{i:06d}.mp4",
            media_type="video",
            blob_key=f"uploads/{team}/{batch}/{detect}",
            size_bytes=48_213_504,
            sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            duration_seconds=312.4,
            analysed_seconds=300.0,
        )
        out.append(
            ev.DetectRequested(
                team_id=team,
                correlation_id=batch,
                causation_id=new_id(),
                batch_id=batch,
                detect_id=detect,
                file=file,
                options=options,
            )
        )
    return out


def key_of(event: ev.Event) -> str:
    return event.correlation_id


def kafka_headers(event: ev.Event) -> list[tuple[str, bytes]]:
    """The headers `outbox.enqueue` stores (no trace context: no span is active here)."""
    return [
        (h.EVENT_ID, event.event_id.encode()),
        (h.EVENT_TYPE, event.event_type.encode()),
        (h.SCHEMA_VERSION, str(event.schema_version).encode()),
        (h.CONTENT_TYPE, h.JSON.encode()),
    ]


# --- measuring instruments --------------------------------------------------------------------


class Collector:
    """Reads a topic from the beginning, without a group; stamps each event id on receipt."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, expected: int) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self.expected = expected
        self.received: dict[str, float] = {}
        self.duplicates = 0
        self.last = 0.0
        self.done = asyncio.Event()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        tps = [TopicPartition(self._topic, p) for p in range(self._partitions)]
        self._consumer.assign(tps)
        for tp in tps:  # resolve the start offsets now, not when the first message is sent
            await self._consumer.position(tp)
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
        await self._consumer.stop()

    async def _pump(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            now = time.perf_counter()  # when the records reach the application
            for records in batches.values():
                for record in records:
                    event_id = next(v for k, v in record.headers if k == h.EVENT_ID).decode()
                    if event_id in self.received:
                        self.duplicates += 1
                    else:
                        self.received[event_id] = now
            if len(self.received) >= self.expected and not self.done.is_set():
                self.last = now
                self.done.set()

    async def wait(self) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), WAIT_SECONDS)
        except TimeoutError:
            raise RuntimeError(
                f"{self._topic}: consumed {len(self.received)} of {self.expected} events"
                f" in {WAIT_SECONDS:.0f} s"
            ) from None


class TimedRelay(outbox.OutboxRelay):
    """The real relay, with each `relay_once` call timed from outside (no behaviour change)."""

    def __init__(self, pool: Pool, schema: str, producer: Any, *, batch_size: int) -> None:
        super().__init__(pool, schema, producer, batch_size=batch_size)
        self.batches: list[tuple[float, int]] = []  # (seconds, rows) of calls that found rows
        self.first_call_done = asyncio.Event()
        self.target = 0
        self.drained = asyncio.Event()
        self.drained_at = 0.0

    async def relay_once(self) -> int:
        started = time.perf_counter()
        rows = await super().relay_once()
        now = time.perf_counter()
        self.first_call_done.set()
        if rows:
            self.batches.append((now - started, rows))
            if self.published >= self.target and not self.drained.is_set():
                self.drained_at = now
                self.drained.set()
        return rows


# --- helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    own: float  # CPU seconds of this process
    busy: int  # machine-wide busy jiffies (all cores)
    total: int  # machine-wide jiffies (all cores)

    @staticmethod
    def take() -> CpuSample:
        busy = total = 0
        with contextlib.suppress(OSError), open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
            total = sum(ticks)
            busy = total - ticks[3] - ticks[4]  # minus idle, iowait
        return CpuSample(time.process_time(), busy, total)

    def note(self, end: CpuSample, wall: float) -> str:
        """Where the CPU went between two samples: this process vs the whole machine."""
        own = (end.own - self.own) / wall if wall > 0 else 0.0
        text = f"CPU: this process {own:.0%} of one core"
        if end.total > self.total:
            busy = (end.busy - self.busy) / (end.total - self.total)
            text += f", machine {busy:.0%} of {os.cpu_count()} cores busy"
        return text


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "inf"


def batch_summary(relay: TimedRelay) -> str:
    if not relay.batches:
        return "no batches"
    calls = len(relay.batches)
    rows = sum(r for _, r in relay.batches)
    busy = sum(s for s, _ in relay.batches)
    return (
        f"{calls} relay_once calls with rows, {rows / calls:.0f} rows each on average,"
        f" {busy / calls * 1000:.1f} ms each ({rows / busy:,.0f} rows/s while busy)"
    )


# --- scenarios --------------------------------------------------------------------------------


async def pace(start: float, done: int, per_second: float) -> None:
    """Sleep until `done` events are due, when pacing at `per_second` (0: no pacing)."""
    if per_second > 0:
        ahead = start + done / per_second - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)


def paced_suffix(per_second: float) -> str:
    return f", paced {per_second:,.0f}/s" if per_second > 0 else ""


async def baseline(
    infra: Infra, topics: Topics, opts: Options, n: int, per_second: float = 0
) -> Result:
    """Raw aiokafka. Paced, it sends `txn_size` messages at a time, like the paced writer."""
    topic = await topics.new("baseline")
    messages = [
        (e.event_id, key_of(e).encode(), ev.encode_event(e), kafka_headers(e))
        for e in make_events(n, opts.keys)
    ]
    step = opts.txn_size if per_second > 0 else n
    sent: dict[str, float] = {}
    async with (
        started_producer(infra.kafka_bootstrap, topic) as producer,
        Collector(infra.kafka_bootstrap, topic, opts.partitions, n) as seen,
    ):
        cpu = CpuSample.take()
        start = time.perf_counter()
        pending = []
        for i in range(0, n, step):
            for event_id, key, value, headers in messages[i : i + step]:
                sent[event_id] = time.perf_counter()  # handed to the producer
                pending.append(await producer.send(topic, value=value, key=key, headers=headers))
            await pace(start, i + step, per_second)
        await asyncio.gather(*pending)
        acked = time.perf_counter()
        await seen.wait()
        cpu_note = cpu.note(CpuSample.take(), seen.last - start)
    latencies = [seen.received[i] - t for i, t in sent.items()]
    name = f"baseline raw aiokafka{paced_suffix(per_second)}"
    notes = [f"payload {len(messages[0][2])} bytes + 4 headers, {opts.keys} keys", cpu_note]
    return Result(name, n, acked - start, seen.last - start, latencies, notes, per_second > 0)


async def enqueue_all(
    pool: Pool,
    events: Sequence[ev.Event],
    topic: str,
    txn_size: int,
    per_second: float,
    committed: dict[str, float],
) -> float:
    """Enqueue in transactions of `txn_size`, as a service would; returns the seconds taken.

    Records, per event id, when its transaction's commit returned. `per_second` > 0 paces the
    writer to that many events a second.
    """

    def route(e: ev.Event) -> tuple[str, str]:
        return topic, key_of(e)

    async with pool.acquire() as conn:
        start = time.perf_counter()
        for i in range(0, len(events), txn_size):
            chunk = events[i : i + txn_size]
            async with conn.transaction():
                await outbox.enqueue(conn, chunk, route=route)
            now = time.perf_counter()
            for e in chunk:
                committed[e.event_id] = now
            await pace(start, i + len(chunk), per_second)
        return time.perf_counter() - start


async def outbox_scenario(
    infra: Infra,
    topics: Topics,
    opts: Options,
    n: int,
    *,
    backlog: bool = False,
    per_second: float = 0,
) -> Result:
    kind = "backlog" if backlog else "streaming"
    topic = await topics.new(kind)
    events = make_events(n, opts.keys)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    # lock connection + relay connection + the writer: all open before the clock starts
    pool = await create_pool(infra.database_url, schema, min_size=3, max_size=4)
    committed: dict[str, float] = {}
    try:
        await migrate(pool, schema, common_migrations())
        async with (
            started_producer(infra.kafka_bootstrap, topic) as producer,
            Collector(infra.kafka_bootstrap, topic, opts.partitions, n) as seen,
        ):
            relay = TimedRelay(pool, schema, producer, batch_size=opts.relay_batch_size)
            relay.target = n
            stop = asyncio.Event()
            if backlog:
                enqueue_s = await enqueue_all(pool, events, topic, opts.txn_size, 0, committed)
                cpu = CpuSample.take()
                start = time.perf_counter()
                task = asyncio.create_task(relay.run(stop))
            else:
                task = asyncio.create_task(relay.run(stop))
                await asyncio.wait_for(relay.first_call_done.wait(), 30)  # listening, idle
                cpu = CpuSample.take()
                start = time.perf_counter()
                enqueue_s = await enqueue_all(
                    pool, events, topic, opts.txn_size, per_second, committed
                )
            try:
                await seen.wait()
                await asyncio.wait_for(relay.drained.wait(), WAIT_SECONDS)
                cpu_note = cpu.note(CpuSample.take(), max(seen.last, relay.drained_at) - start)
            finally:
                stop.set()
                await task
        async with pool.acquire() as conn:
            left = await conn.fetchval("SELECT count(*) FROM outbox")
        if left or set(seen.received) != set(committed):
            raise RuntimeError(f"{kind}: {left} rows left, {len(seen.received)} of {n} consumed")
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()
    notes = [
        f"enqueue{' (alone, before the relay started)' if backlog else ' (relay running)'}:"
        f" {rate(n, enqueue_s)} events/s in transactions of {opts.txn_size}",
        f"relay: {batch_summary(relay)}",
        cpu_note,
    ]
    if seen.duplicates:
        notes.append(f"{seen.duplicates} duplicates consumed")
    latencies = None if backlog else [seen.received[i] - t for i, t in committed.items()]
    return Result(
        f"outbox relay, {'backlog drain' if backlog else 'streaming'}{paced_suffix(per_second)}",
        n,
        relay.drained_at - start,
        max(seen.last, relay.drained_at) - start,
        latencies,
        notes,
        per_second > 0,
    )


# --- report -----------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


async def machine_facts(infra: Infra) -> list[str]:
    cpu = cpu_model()
    pool = await create_pool(infra.database_url, "public", max_size=1)
    try:
        async with pool.acquire() as conn:
            pg = await conn.fetchval("SHOW server_version")
            fsync = await conn.fetchval("SHOW fsync")
            sync_commit = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await pool.close()
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; cores: {os.cpu_count()} ({cpu});"
        f" load average {os.getloadavg()[0]:.2f} (other work on the machine skews the numbers)",
        f"Kafka: {infra.kafka_bootstrap} ({infra.kafka_source})",
        f"PostgreSQL: {pg} (fsync={fsync}, synchronous_commit={sync_commit})",
        f"Python {platform.python_version()}, aiokafka {aiokafka.__version__},"
        " one process, one asyncio event loop",
    ]


def table(results: Sequence[Result]) -> str:
    base = results[0].events / results[0].e2e_s
    header = ("scenario", "events", "acked ev/s", "e2e ev/s", "p50 ms", "p99 ms", "max ms")
    rows: list[tuple[str, ...]] = [(*header, "vs base")]
    for r in results:
        if r.latencies:
            lat = sorted(r.latencies)
            ms = [f"{percentile(lat, p) * 1000:.1f}" for p in (50, 99, 100)]
        else:
            ms = ["-", "-", "-"]
        e2e = r.events / r.e2e_s
        rows.append(
            (
                r.name,
                str(r.events),
                rate(r.events, r.acked_s),
                f"{e2e:,.0f}",
                *ms,
                "-" if r.paced else f"{e2e / base:.2f}x",
            )
        )
    return format_rows(rows)


async def run(infra: Infra, opts: Options) -> None:
    print("\n".join(await machine_facts(infra)), flush=True)
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    topics = Topics(admin, opts.partitions, "outbox")
    try:
        if opts.warmup:  # JIT the broker, fill caches; not reported
            print(f"warm-up: {opts.warmup} events through each path ...", flush=True)
            await baseline(infra, topics, opts, opts.warmup)
            await outbox_scenario(infra, topics, opts, opts.warmup, backlog=True)
        n = opts.events
        scenarios: list[tuple[str, Callable[[], Awaitable[Result]]]] = [
            ("baseline", lambda: baseline(infra, topics, opts, n)),
            ("outbox relay, streaming", lambda: outbox_scenario(infra, topics, opts, n)),
            (
                "outbox relay, backlog",
                lambda: outbox_scenario(infra, topics, opts, n, backlog=True),
            ),
        ]
        if opts.rate > 0:
            scenarios += [
                ("baseline, paced", lambda: baseline(infra, topics, opts, n, opts.rate)),
                (
                    "outbox relay, streaming, paced",
                    lambda: outbox_scenario(infra, topics, opts, n, per_second=opts.rate),
                ),
            ]
        results = []
        for name, scenario in scenarios:
            print(f"{name}: {n} events ...", flush=True)
            results.append(await scenario())
    finally:
        try:
            await topics.delete_all()
        finally:
            await admin.close()
    print()
    print(table(results))
    print()
    for r in results:
        for note in r.notes:
            print(f"{r.name}: {note}")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Outbox relay vs raw aiokafka against real Kafka and PostgreSQL."
    )
    parser.add_argument("--events", type=int, default=10_000, help="events per scenario")
    parser.add_argument("--keys", type=int, default=100, help="distinct message keys")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of each topic")
    parser.add_argument("--txn-size", type=int, default=100, help="events per enqueue txn")
    parser.add_argument(
        "--relay-batch-size", type=int, default=500, help="OutboxRelay batch_size (its default)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1000,
        help="events/s of the paced rows (baseline and streaming); 0: no paced rows",
    )
    parser.add_argument("--warmup", type=int, default=5000, help="unreported warm-up events")
    a = parser.parse_args(argv)
    return Options(a.events, a.keys, a.partitions, a.txn_size, a.relay_batch_size, a.rate, a.warmup)


def main() -> None:
    opts = parse_args()
    infra = ensure_infra(BENCH)
    try:
        asyncio.run(run(infra, opts))
    finally:
        infra.stop()


if __name__ == "__main__":
    main()
