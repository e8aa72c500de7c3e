"""A 500 MB batch upload into the real intake service, next to dd and a bare loopback HTTP sink.

    uv run python -m bench.upload [--files 50] [--file-mb 10] [--runs 3] [--keep-infra]

Intake runs as in production: `python -m services.intake` (uvicorn) in its own OS process with
VERITY_DATABASE_URL, VERITY_KAFKA_BOOTSTRAP, VERITY_BLOB_ROOT and a free VERITY_HTTP_PORT, and
so does the wallet (`python -m services.wallet`), against the real Kafka broker and PostgreSQL
server (started by `tests.support.infra` with its BENCH profile unless given). Their output goes
to .run/bench/upload-bench/{intake,wallet}.log. The blob root is a fresh temporary directory
under .run/bench, deleted at the end (and emptied between runs); nobody answers DetectRequested
(no detector runs), which does not matter here: the 202 comes once the wallet has reserved.

Each run POSTs one batch of `--files` WAV files (16 kHz mono 16-bit PCM, a different tone per
file, `--file-mb` x 10^6 bytes each, valid audio since intake probes every file with PyAV) as
multipart `files[]` to POST /api/v2/detect/batch over loopback, on a warm keep-alive
connection. The body is built by hand (boundary, per-part headers, file bytes) and streamed
by an async generator in 1 MiB chunks, with an explicit Content-Length as real clients send;
httpx writes each chunk to the socket as it pulls it, so the generator knows when:

  first     the first body chunk is pulled (the request line and headers are already sent)
  sent      the generator is resumed after its last chunk: the last body byte has been
            written to the client socket (the kernel may still hold a few MB of it)
  read      the loopback TCP connection to the server's port has nothing queued any more
            (/proc/net/tcp: the client's unacknowledged bytes + the server's unread bytes,
            polled every ~1 ms from `sent` on): the server process has read the last byte
  answered  the response (202, or 200 from the sink) has been received

Columns: MB/s = body bytes / (first -> answered), as the issue defines upload throughput;
"vs dd" divides it by the mean of two `dd if=/dev/zero bs=1M conv=fsync` writes of the same
size into the blob root (before and after the runs, same filesystem); "vs sink" divides it by
the median of the sink runs. "sent->202" and "read->202" are the POST->202 overhead beyond the
upload: probing the files, BatchRequested, the wallet's decision, the 202. "RSS +MiB" is intake's
peak resident memory during the upload minus its VmRSS just before it: the larger of VmHWM
(reset through /proc/<pid>/clear_refs before the upload) and VmRSS sampled every 20 ms.

The second table splits "read->202" by the services' own timestamps (see PHASES): intake's
events.recorded_at of BatchRequested and of the decision it recorded, the wallet's
reservations.decided_at. "probe again" is the stored files probed once more afterwards in the
bench process, one after another as intake's probe_all does, for comparison.

The loopback sink is a bare asyncio HTTP/1.1 server in a process of its own (this module with
the hidden --sink-port option) that counts the body, discards it and answers 200: what pure
loopback HTTP costs on this machine with the same client. An unreported warm-up (a 2-file
batch and one sink request) comes first.

Before intake starts, its consumer groups are moved to the end of their topics: the bench
broker keeps the topics of earlier benches (bench.wallet leaves ~100k wallet decisions and
ledger entries), and a fresh intake would read them all first (auto_offset_reset=earliest)
while the uploads wait behind them for their decision. Measuring starts once every consumer
group of both services is Stable with partitions and has no lag. MB = 10^6 bytes,
MiB = 2^20 bytes. Nothing is asserted; the issue's targets and whether they were met are
printed under the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.procs import cpu_seconds, machine_ticks
from bench.shared import format_rows, percentile
from bench.wallet import code_version, cpu_model
from contracts import events as ev
from contracts.ids import new_id, normalize_id
from contracts.topics import CALLBACKS, DETECT_RESULTS, LEDGER, WALLET
from services.common.db import Pool, create_pool
from services.intake.saga import consumers
from services.intake.settings import IntakeSettings
from services.intake.store import deliveries, tokens, wallets
from services.intake.uploads import probe
from services.wallet import consumers as wallet_consumers
from services.wallet.commands import execute
from services.wallet.domain import Credit
from services.wallet.pricing import PriceList, price_file
from tests.support.infra import BENCH, REPO, Infra, ensure_infra

MB = 1_000_000
MIB = 1 << 20
CHUNK = MIB  # body chunk the client hands to httpx
RATE = 16_000  # WAV sample rate, mono 16-bit
WAV_HEADER = 44
DOLLAR = 1_000_000  # micros
LOG_DIR = BENCH.run_dir / "upload-bench"
ENDPOINT = "/api/v2/detect/batch"
RSS_EVERY = 0.02  # seconds between VmRSS samples
DRAIN_EVERY = 0.001  # seconds between /proc/net/tcp polls after the last byte was sent
TARGET_RATIO = 0.5  # upload MB/s vs dd
TARGET_RSS_MIB = 64.0
TARGET_P50_MS = 100.0
# (consumer group, topics) of intake (the first four) and the wallet: measuring waits until
# they have caught up (the bench broker keeps its topics across runs)
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (wallets.GROUP, (LEDGER,)),
    (deliveries.GROUP, (CALLBACKS,)),
    (consumers.FUNDS_GROUP, (WALLET,)),
    (consumers.RESULTS_GROUP, (DETECT_RESULTS,)),
    (wallet_consumers.GROUP, wallet_consumers.TOPICS),
)


@dataclass(frozen=True)
class Options:
    files: int
    file_mb: float
    runs: int
    keep_infra: bool


# --- the request body -------------------------------------------------------------------------


def wav_file(size: int, freq: float) -> bytes:
    """A valid WAV of exactly `size` bytes: a sine tone, one second computed and repeated."""
    frames = (size - WAV_HEADER) // 2
    block = array(
        "h", (int(12000 * math.sin(2 * math.pi * freq * n / RATE)) for n in range(RATE))
    ).tobytes()
    pcm = (block * (frames // RATE + 1))[: frames * 2]
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    data = out.getvalue()
    assert len(data) == WAV_HEADER + frames * 2
    return data


@dataclass(frozen=True)
class Body:
    """A multipart/form-data body of `files` WAVs under field files[], built once, kept whole."""

    data: bytearray
    boundary: str
    files: int
    file_bytes: int
    seconds_per_file: float

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @staticmethod
    def build(files: int, file_bytes: int) -> Body:
        boundary = f"verity-bench-{uuid.uuid4().hex}"
        data = bytearray()
        for i in range(files):
            data += (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="files[]"; filename="clip{i:02d}.wav"\r\n'
                "Content-Type: audio/wav\r\n\r\n"
            ).encode()
            data += wav_file(file_bytes, 220.0 + 10.0 * i)
            data += b"\r\n"
        data += f"--{boundary}--\r\n".encode()
        frames = (file_bytes - WAV_HEADER) // 2
        return Body(data, boundary, files, file_bytes, frames / RATE)


@dataclass
class Stamps:
    """perf_counter() moments of one request (0.0: not reached)."""

    first: float = 0.0
    sent: float = 0.0
    read: float = 0.0
    answered: float = 0.0
    wall: float = field(default_factory=lambda: time.time() - time.perf_counter())

    def epoch(self, moment: float) -> float:
        """`moment` (perf_counter) as seconds since the epoch, to compare with the services'."""
        return moment + self.wall


async def body_stream(body: Body, stamps: Stamps, port: int) -> AsyncIterator[bytes]:
    """The body in 1 MiB chunks; stamps `first` and `sent`, then starts watching for `read`."""
    view = memoryview(body.data)
    stamps.first = time.perf_counter()
    for start in range(0, len(view), CHUNK):
        yield bytes(view[start : start + CHUNK])
    stamps.sent = time.perf_counter()  # httpx wrote the last chunk and asks for more
    _watch(asyncio.create_task(wait_read(port, stamps)))


_WATCHED: set[asyncio.Task[None]] = set()


def _watch(task: asyncio.Task[None]) -> None:
    _WATCHED.add(task)
    task.add_done_callback(_WATCHED.discard)


def queued_bytes(port: int) -> int:
    """Bytes on established loopback connections to `port` that its server has not read yet:
    the clients' unacknowledged bytes plus the server sockets' unread ones (/proc/net/tcp)."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[3] != "01":  # ESTABLISHED
                continue
            tx, rx = (int(x, 16) for x in cols[4].split(":"))
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                total += rx
            elif int(cols[2].rsplit(":", 1)[1], 16) == port:
                total += tx
    return total


async def wait_read(port: int, stamps: Stamps) -> None:
    while queued_bytes(port) > 0 and not stamps.answered:
        await asyncio.sleep(DRAIN_EVERY)
    stamps.read = time.perf_counter()


async def post_body(
    client: httpx.AsyncClient, port: int, body: Body, headers: dict[str, str]
) -> tuple[httpx.Response, Stamps]:
    stamps = Stamps()
    response = await client.post(
        ENDPOINT,
        content=body_stream(body, stamps, port),
        headers={
            **headers,
            "Content-Type": body.content_type,
            "Content-Length": str(len(body.data)),  # else httpx would send it chunked
        },
    )
    stamps.answered = time.perf_counter()
    if not stamps.read:
        await asyncio.sleep(2 * DRAIN_EVERY)  # the watcher stops once `answered` is set
    stamps.read = min(stamps.read or stamps.answered, stamps.answered)
    return response, stamps


# --- processes: the services and the sink -----------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Process:
    """`python -m <module> [args]` as an OS process serving HTTP on a port of its own.

    The port goes into VERITY_HTTP_PORT and replaces `{port}` in `args`.
    """

    def __init__(self, name: str, module: str, env: dict[str, str], *args: str) -> None:
        self.name = name
        self.port = free_port()
        self.log = LOG_DIR / f"{name}.log"
        self._module = module
        self._args = tuple(a.format(port=self.port) for a in args)
        self._env = {**os.environ, **env, "VERITY_HTTP_PORT": str(self.port)}
        self._proc: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self._module, *self._args,
                cwd=REPO, env=self._env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            os.close(log)

    async def wait_healthy(self, path: str, timeout: float = 180.0) -> float:
        """Seconds until GET `path` answered 200."""
        assert self._proc is not None
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while time.perf_counter() - started < timeout:
                if self._proc.returncode is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self._proc.returncode}; see {self.log}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(path)).status_code == 200:
                        return time.perf_counter() - started
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not healthy in {timeout:.0f} s; see {self.log}")

    def cpu_seconds(self) -> float:
        """utime + stime, from /proc."""
        return cpu_seconds(self._proc.pid) if self._proc is not None else 0.0

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM in KiB."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line[:5]] = int(line.split()[1])
        return out

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (clear_refs 5); False where the kernel refuses."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return True

    async def stop(self) -> None:
        """SIGTERM, and a SIGKILL if it is not gone in 60 s."""
        if self._proc is None or self._proc.returncode is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = await asyncio.wait_for(self._proc.wait(), 60)
        except TimeoutError:
            self._proc.kill()
            self.exit_code = await self._proc.wait()


class _Sink(asyncio.Protocol):
    """HTTP/1.1 keep-alive: read the head, count Content-Length body bytes away, answer 200."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._remaining = -1  # body bytes still to come; -1: reading a head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        while data:
            if self._remaining < 0:
                self._head += data
                end = self._head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._head) > 65536:
                        self._transport.close()
                    return
                data = bytes(self._head[end + 4 :])
                found = re.search(rb"(?im)^content-length:\s*(\d+)", self._head[:end])
                self._head.clear()
                self._remaining = int(found.group(1)) if found else 0
            take = min(len(data), self._remaining)
            self._remaining -= take
            data = data[take:]
            if self._remaining == 0:
                self._transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                self._remaining = -1


async def serve_sink(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# --- measuring instruments --------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    at: float
    own: float  # CPU seconds of the bench process
    procs: tuple[float, ...]  # CPU seconds of each watched process
    busy: int  # machine-wide busy jiffies
    total: int

    @staticmethod
    def take(watched: Sequence[Process]) -> CpuSample:
        busy, total = machine_ticks()
        return CpuSample(
            time.perf_counter(),
            time.process_time(),
            tuple(p.cpu_seconds() for p in watched),
            busy,
            total,
        )

    def note(self, end: CpuSample, procs: Sequence[Process]) -> str:
        wall = end.at - self.at
        text = f"CPU: bench {(end.own - self.own) / wall:.0%}"
        for p, a, b in zip(procs, self.procs, end.procs, strict=True):
            text += f", {p.name} {(b - a) / wall:.0%}"
        text += " of one core"
        if end.total > self.total:
            machine = (end.busy - self.busy) / (end.total - self.total)
            text += f"; machine {machine:.0%} of {os.cpu_count()} cores busy"
        return text


class PeakRss:
    """Samples a process's VmRSS every 20 ms from start to stop; VmHWM is reset at start."""

    def __init__(self, proc: Process) -> None:
        self._proc = proc
        self.baseline_kib = 0
        self.sampled_kib = 0
        self.hwm_kib: int | None = None
        self._reset = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.baseline_kib = self._proc.memory_kib()["VmRSS"]
        self.sampled_kib = self.baseline_kib
        self._reset = self._proc.reset_peak()
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.sampled_kib = max(self.sampled_kib, self._proc.memory_kib()["VmRSS"])
            await asyncio.sleep(RSS_EVERY)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        memory = self._proc.memory_kib()
        self.sampled_kib = max(self.sampled_kib, memory["VmRSS"])
        self.hwm_kib = memory["VmHWM"] if self._reset else None

    @property
    def growth_mib(self) -> float:
        peak = max(self.sampled_kib, self.hwm_kib or 0)
        return (peak - self.baseline_kib) / 1024


async def group_lag(bootstrap: str, admin: Any, group: str, topics: Sequence[str]) -> int:
    """Messages on `topics` that `group` has not committed yet."""
    tps = [
        TopicPartition(t["topic"], p["partition"])
        for t in await admin.describe_topics(list(topics))
        for p in t["partitions"]
    ]
    if not tps:
        return 0
    consumer: Any = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        lag = 0
        for tp in tps:
            done = max(int((await consumer.committed(tp)) or 0), int(starts[tp]))
            lag += max(0, int(ends[tp]) - done)
        return lag
    finally:
        await consumer.stop()


async def skip_old_messages(bootstrap: str, groups: Sequence[tuple[str, Sequence[str]]]) -> str:
    """Commit the current end of `topics` for each (idle) group: what was on them before is
    another bench's traffic (bench.wallet leaves ~100k decisions and ledger entries on the
    bench broker), which intake would otherwise read for minutes while uploads are measured."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    skipped = 0
    try:
        for group, topics in groups:
            lag = await group_lag(bootstrap, admin, group, topics)
            if lag == 0:
                continue
            tps = [
                TopicPartition(t["topic"], p["partition"])
                for t in await admin.describe_topics(list(topics))
                for p in t["partitions"]
            ]
            consumer: Any = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            try:
                consumer.assign(tps)
                ends = await consumer.end_offsets(tps)
                await consumer.commit({tp: int(ends[tp]) for tp in tps})
            finally:
                await consumer.stop()
            skipped += lag
    finally:
        await admin.close()
    names = ", ".join(g for g, _ in groups)
    return f"skipped {skipped:,} old messages of groups {names} (committed their topics' ends)"


async def wait_caught_up(bootstrap: str, timeout: float = 900.0) -> str:
    """Wait until every consumer group of intake and the wallet has consumed its backlog."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    started = time.perf_counter()
    first: int | None = None
    try:
        while True:
            lags = {g: await group_lag(bootstrap, admin, g, t) for g, t in GROUPS}
            behind = sum(lags.values())
            first = behind if first is None else first
            if behind == 0:
                break
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"consumer groups still behind: {lags}")
            print(f"  waiting for the consumer groups to catch up: {lags}", flush=True)
            await asyncio.sleep(5)
    finally:
        await admin.close()
    return (
        f"consumer groups caught up ({first:,} old messages at the start)"
        f" after {time.perf_counter() - started:.1f} s"
    )


async def wait_groups_stable(bootstrap: str, timeout: float = 180.0) -> str:
    """Wait until every consumer group of intake and the wallet is Stable with members that
    hold partitions: until then a batch would wait for a rebalance, not for the wallet."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    started = time.perf_counter()
    states: dict[str, str] = {}
    try:
        while time.perf_counter() - started < timeout:
            for group, _ in GROUPS:
                with contextlib.suppress(Exception):  # coordinator not ready yet: ask again
                    (response,) = await admin.describe_consumer_groups([group])
                    state, members = response.groups[0][2], response.groups[0][5]
                    assigned = bool(members) and all(len(m[4]) > 0 for m in members)
                    states[group] = state if assigned or state != "Stable" else "no partitions"
            if len(states) == len(GROUPS) and set(states.values()) == {"Stable"}:
                return f"consumer groups stable after {time.perf_counter() - started:.1f} s"
            await asyncio.sleep(0.25)
    finally:
        await admin.close()
    raise RuntimeError(f"consumer groups not stable in {timeout:.0f} s: {states}")


@dataclass(frozen=True)
class DiskWrite:
    label: str
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds


def dd(directory: Path, mib: int, label: str) -> DiskWrite:
    """`dd if=/dev/zero bs=1M count=mib conv=fsync` into `directory`; its own timing if parsed."""
    target = directory / "dd.tmp"
    started = time.perf_counter()
    proc = subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fsync"],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
        check=True,
    )
    elapsed = time.perf_counter() - started
    target.unlink()
    found = re.search(r"^(\d+) bytes.*copied, ([\d.]+) s", proc.stderr, re.MULTILINE)
    if found:
        return DiskWrite(label, int(found.group(1)), float(found.group(2)))
    return DiskWrite(label, mib * MIB, elapsed)


def filesystem_of(path: Path) -> str:
    """'<device> <fstype> mounted on <mount point>' of the mount holding `path`."""
    best = ("?", "?", "/")
    resolved = str(path.resolve())
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            device, mount, fstype = line.split()[:3]
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best[2]):
                best = (device, fstype, mount)
    free = shutil.disk_usage(path).free / 1e9
    return f"{best[0]} ({best[1]}) mounted on {best[2]}, {free:.0f} GB free"


# --- the runs ---------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    bytes: int
    stamps: Stamps
    status: int
    rss_mib: float | None = None
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # ms, see PHASES

    @property
    def seconds(self) -> float:
        return self.stamps.answered - self.stamps.first

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds

    @property
    def send_seconds(self) -> float:
        return self.stamps.sent - self.stamps.first

    @property
    def after_sent_ms(self) -> float:
        return (self.stamps.answered - self.stamps.sent) * 1000

    @property
    def after_read_ms(self) -> float:
        return (self.stamps.answered - self.stamps.read) * 1000


def empty_dir(root: Path) -> None:
    for child in root.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


@dataclass
class Bench:
    opts: Options
    body: Body
    blob_root: Path
    intake: Process
    wallet: Process
    sink: Process
    auth: dict[str, str] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)

    async def sink_run(self, client: httpx.AsyncClient, name: str) -> Run:
        procs = [self.sink]
        cpu = CpuSample.take(procs)
        response, stamps = await post_body(client, self.sink.port, self.body, {})
        run = Run(name, len(self.body.data), stamps, response.status_code)
        run.notes.append(cpu.note(CpuSample.take(procs), procs))
        return run

    async def intake_run(self, client: httpx.AsyncClient, name: str, body: Body) -> Run:
        empty_dir(self.blob_root)  # the previous batch's blobs: nobody will read them
        procs = [self.intake, self.wallet]
        rss = PeakRss(self.intake)
        rss.start()
        cpu = CpuSample.take(procs)
        try:
            response, stamps = await post_body(client, self.intake.port, body, self.auth)
        finally:
            await rss.stop()
        run = Run(name, len(body.data), stamps, response.status_code, rss.growth_mib)
        run.notes.append(cpu.note(CpuSample.take(procs), procs))
        hwm = "VmHWM reset" if rss.hwm_kib is not None else "VmHWM not resettable, sampled only"
        run.notes.append(
            f"intake VmRSS {rss.baseline_kib / 1024:.1f} MiB before, peak"
            f" {max(rss.sampled_kib, rss.hwm_kib or 0) / 1024:.1f} MiB ({hwm})"
        )
        if response.status_code != 202:
            run.notes.append(f"answer {response.status_code}: {response.text[:500]}")
            return run
        item = response.json()["item"]
        run.notes.append(f"batch {item['uuid']}: {item['total_files']} files, 202")
        run.phases = await self.phases(str(normalize_id(item["uuid"])), stamps)
        run.phases["probe again"] = await asyncio.to_thread(probe_stored, self.blob_root)
        return run

    async def phases(self, batch_id: str, stamps: Stamps) -> dict[str, float]:
        """The POST->202 overhead split by the services' own timestamps (ms; see PHASES)."""
        async with self.pools["intake"].acquire() as conn:
            rows = await conn.fetch(
                "SELECT version, event_type, recorded_at FROM events WHERE stream_id = $1"
                " ORDER BY version",
                batch_id,
            )
        async with self.pools["wallet"].acquire() as conn:
            decided = await conn.fetchval(
                "SELECT decided_at FROM reservations WHERE batch_id = $1", batch_id
            )
        requested = next((r for r in rows if r["event_type"] == "BatchRequested"), None)
        later = [
            r["recorded_at"] for r in rows if requested and r["version"] > requested["version"]
        ]
        if requested is None or decided is None or not later:
            return {}
        moments = [
            stamps.epoch(stamps.read),
            requested["recorded_at"].timestamp(),
            decided.timestamp(),
            min(later).timestamp(),
            stamps.epoch(stamps.answered),
        ]
        return {
            name: (b - a) * 1000 for name, a, b in zip(PHASES, moments, moments[1:], strict=False)
        }


# Where the time from "intake read the last byte" to "202 received" goes, by the timestamps
# the services record: intake's events.recorded_at (now() of the transaction that appended
# them) and the wallet's reservations.decided_at (its event's occurred_at).
PHASES = (
    "read->opened",  # the last blob's write and fsync, probing every file, opening the batch
    "opened->wallet",  # intake's outbox relay -> Kafka -> the wallet decides
    "wallet->recorded",  # the wallet's outbox relay -> Kafka -> intake records the decision
    "recorded->202",  # intake's waiting request wakes (NOTIFY), reads the batch, answers
    "probe again",  # the stored files probed again afterwards, in the bench, one by one
)


def probe_stored(root: Path) -> float:
    """ms to probe every blob under `root` in turn, as intake's probe_all does (page cache
    warm, as it is for intake right after the upload)."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    started = time.perf_counter()
    for path in paths:
        probe.probe_file(path, "clip.wav")
    return (time.perf_counter() - started) * 1000


async def new_team(pools: dict[str, Pool], credit_micros: int) -> dict[str, str]:
    async with pools["intake"].acquire() as conn:
        team_id = await tokens.create_team(conn, "upload-bench")
        issued = await tokens.issue_token(conn, team_id, "bench.upload")
    async with pools["wallet"].acquire() as conn, conn.transaction():
        await execute(conn, team_id, Credit(amount_micros=credit_micros, reason="bench"))
    return {"Authorization": f"Bearer {issued.token}"}


def batch_cost(body: Body) -> int:
    """What the wallet reserves for one batch of `body` (micros)."""
    spec = ev.FileSpec(
        detect_id=new_id(), filename="clip.wav", media_type="audio", blob_key="k",
        size_bytes=body.file_bytes, sha256="0" * 64, duration_seconds=body.seconds_per_file,
        analysed_seconds=round(body.seconds_per_file, 3),
    )  # fmt: skip
    return body.files * price_file(PriceList(), spec, ev.DetectOptions()).cost_micros


def log_problems(path: Path) -> list[str]:
    """Distinct warning/error lines of a service log (timestamps cut), with their counts."""
    if not path.exists():
        return []
    pattern = re.compile(r'"level": "(?:warning|error|critical)"|WARNING|ERROR|CRITICAL|Traceback')
    stamp = re.compile(r'"ts": "[^"]*", |^\S+ \S+ |\d{4}-\d\d-\d\d[ T][\d:.,+]+')
    counts: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        if pattern.search(line):
            key = stamp.sub("", re.sub(r"\x1b\[[\d;]*m", "", line), count=1)[:300]
            counts[key] = counts.get(key, 0) + 1
    return [f"{n} x {line}" for line, n in counts.items()]


async def run(infra: Infra, opts: Options, facts: list[str]) -> None:
    file_bytes = round(opts.file_mb * MB)
    print(f"building the body: {opts.files} WAV files of {file_bytes:,} bytes ...", flush=True)
    body = Body.build(opts.files, file_bytes)
    warm = Body.build(2, 1 * MB)
    limit = IntakeSettings().max_batch_bytes
    if len(body.data) > limit:
        print(f"WARNING: the body ({len(body.data):,} bytes) exceeds intake's max_batch_bytes"
              f" ({limit:,}): expect 413", flush=True)  # fmt: skip
    cost = batch_cost(body)
    credit = max(1000 * DOLLAR, 2 * (opts.runs + 1) * cost)
    BENCH.run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="upload-", dir=BENCH.run_dir))
    blob_root = tmp / "blobs"
    blob_root.mkdir()
    mib = math.ceil(len(body.data) / MIB)
    disk: list[DiskWrite] = []
    setup: list[str] = [
        f"blob root: {blob_root} on {filesystem_of(blob_root)}; deleted at the end",
        f"body: {len(body.data):,} bytes = {opts.files} x {file_bytes:,}-byte WAV"
        f" ({body.seconds_per_file:.1f} s of 16 kHz mono 16-bit PCM each) + multipart framing;"
        f" intake's max_batch_bytes {limit:,}",
        f"wallet: one batch reserves ${cost / DOLLAR:,.2f}; the bench team was credited"
        f" ${credit / DOLLAR:,.2f}",
    ]
    env = {
        "VERITY_DATABASE_URL": infra.database_url,
        "VERITY_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
    }
    intake = Process("intake", "services.intake", {**env, "VERITY_BLOB_ROOT": str(blob_root)})
    wallet = Process("wallet", "services.wallet", {**env, "VERITY_LOG_LEVEL": "WARNING"})
    sink = Process("sink", "bench.upload", {}, "--sink-port", "{port}")
    bench = Bench(opts, body, blob_root, intake, wallet, sink)
    sink_runs: list[Run] = []
    intake_runs: list[Run] = []
    try:
        print(f"dd: {mib} MiB into {blob_root} ...", flush=True)
        disk.append(dd(blob_root, mib, "dd before the runs"))

        await sink.start()
        await sink.wait_healthy("/")
        async with httpx.AsyncClient(base_url=sink.url, timeout=300) as client:
            await bench.sink_run(client, "warm-up")
            for i in range(opts.runs):
                print(f"loopback sink, run {i + 1} ...", flush=True)
                sink_runs.append(await bench.sink_run(client, f"loopback sink, run {i + 1}"))
        await sink.stop()

        setup.append(await skip_old_messages(infra.kafka_bootstrap, GROUPS[:4]))
        print("starting intake and the wallet ...", flush=True)
        await asyncio.gather(intake.start(), wallet.start())
        seconds = await asyncio.gather(
            intake.wait_healthy("/health"), wallet.wait_healthy("/health")
        )
        setup.append(
            f"intake: pid {intake.pid}, port {intake.port}, /health 200 after {seconds[0]:.1f} s;"
            f" wallet: pid {wallet.pid}, /health 200 after {seconds[1]:.1f} s;"
            f" logs in {LOG_DIR}"
        )
        for schema in ("intake", "wallet"):
            bench.pools[schema] = await create_pool(infra.database_url, schema, max_size=1)
        bench.auth = await new_team(bench.pools, credit)
        setup.append(await wait_groups_stable(infra.kafka_bootstrap))
        setup.append(await wait_caught_up(infra.kafka_bootstrap))
        async with httpx.AsyncClient(base_url=intake.url, timeout=300) as client:
            warm_run = await bench.intake_run(client, "warm-up", warm)
            if warm_run.status != 202:
                raise RuntimeError(f"warm-up batch: {warm_run.notes[-1]}")
            for i in range(opts.runs):
                print(f"intake, run {i + 1} ...", flush=True)
                intake_runs.append(await bench.intake_run(client, f"intake, run {i + 1}", body))
        empty_dir(blob_root)
        disk.append(dd(blob_root, mib, "dd after the runs"))
    finally:
        for pool in bench.pools.values():
            await pool.close()
        for proc in (sink, intake, wallet):
            await proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    setup.append(
        f"stopped with SIGTERM: intake {intake.exit_code}, wallet {wallet.exit_code}"
        " (-15: uvicorn's way)"
    )
    print()
    print("\n".join(facts))
    print()
    print(table(disk, sink_runs, intake_runs))
    print()
    print("\n".join(target_lines(disk, intake_runs)))
    print()
    print(phase_table(intake_runs))
    print()
    print("\n".join(setup))
    for r in [*sink_runs, *intake_runs]:
        for note in r.notes:
            print(f"{r.name}: {note}")
    for proc in (intake, wallet):
        problems = log_problems(proc.log)
        print(
            f"{proc.name} log: {len(problems)} distinct warning/error lines" + ":" * bool(problems)
        )
        for line in problems[:10]:
            print(f"  {line}")


# --- report -----------------------------------------------------------------------------------


def median_rate(runs: Sequence[Run]) -> float:
    return statistics.median(r.mb_per_s for r in runs) if runs else 0.0


def table(disk: Sequence[DiskWrite], sink_runs: Sequence[Run], runs: Sequence[Run]) -> str:
    dd_rate = statistics.mean(d.mb_per_s for d in disk) if disk else 0.0
    sink_rate = median_rate(sink_runs)
    header = ("row", "MB", "send s", "to answer s", "MB/s", "vs dd", "vs sink",
              "sent->202 ms", "read->202 ms", "RSS +MiB")  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    for d in disk:
        rows.append(
            (d.label, f"{d.bytes / MB:.1f}", "-", f"{d.seconds:.2f}", f"{d.mb_per_s:,.0f}",
             "-", "-", "-", "-", "-")
        )  # fmt: skip
    for r in [*sink_runs, *runs]:
        ok = r.status in (200, 202)
        rows.append(
            (
                r.name if ok else f"{r.name} ({r.status}!)",
                f"{r.bytes / MB:.1f}",
                f"{r.send_seconds:.2f}",
                f"{r.seconds:.2f}",
                f"{r.mb_per_s:,.0f}",
                f"{r.mb_per_s / dd_rate:.0%}" if dd_rate else "-",
                f"{r.mb_per_s / sink_rate:.0%}" if sink_rate else "-",
                f"{r.after_sent_ms:.1f}",
                f"{r.after_read_ms:.1f}",
                "-" if r.rss_mib is None else f"{r.rss_mib:.1f}",
            )
        )
    return format_rows(rows)


def phase_table(runs: Sequence[Run]) -> str:
    """The overhead of each run split into PHASES (ms)."""
    header = ("POST->202 overhead, ms", *PHASES)
    rows: list[tuple[str, ...]] = [header]
    for r in runs:
        rows.append((r.name, *(f"{r.phases[p]:.1f}" if p in r.phases else "-" for p in PHASES)))
    return format_rows(rows)


def target_lines(disk: Sequence[DiskWrite], runs: Sequence[Run]) -> list[str]:
    ok = [r for r in runs if r.status == 202]
    if not ok:
        return ["targets: no run got its 202"]
    dd_rate = statistics.mean(d.mb_per_s for d in disk)
    rate = statistics.median(r.mb_per_s for r in ok)
    rss = max(r.rss_mib or 0.0 for r in ok)
    sent = sorted(r.after_sent_ms for r in ok)
    read = sorted(r.after_read_ms for r in ok)

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    return [
        f"targets (issue), over {len(ok)} run(s) with a 202:",
        f"  upload throughput: median {rate:,.0f} MB/s = {rate / dd_rate:.0%} of dd's"
        f" {dd_rate:,.0f} MB/s (target >= {TARGET_RATIO:.0%})"
        f" -> {verdict(rate >= TARGET_RATIO * dd_rate)}",
        f"  intake peak RSS growth: max {rss:.1f} MiB (target <= {TARGET_RSS_MIB:.0f} MB)"
        f" -> {verdict(rss <= TARGET_RSS_MIB)}",
        f"  POST->202 after the last byte was sent: p50 {percentile(sent, 50):.1f} ms,"
        f" p95 {percentile(sent, 95):.1f} ms (target p50 <= {TARGET_P50_MS:.0f} ms)"
        f" -> {verdict(percentile(sent, 50) <= TARGET_P50_MS)}",
        f"  (after intake had read the last byte: p50 {percentile(read, 50):.1f} ms,"
        f" p95 {percentile(read, 95):.1f} ms)",
    ]


def machine_facts(infra: Infra) -> list[str]:
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; cores: {os.cpu_count()} ({cpu_model()});"
        f" load average {os.getloadavg()[0]:.2f}",
        f"Kafka: {infra.kafka_bootstrap} ({infra.kafka_source}); PostgreSQL: deploy/local or"
        " VERITY_DATABASE_URL",
        f"Python {platform.python_version()}, httpx {httpx.__version__} (client);"
        f" intake serves with uvicorn, {http_impl()}; client, intake, wallet, Kafka and"
        " PostgreSQL share the same cores",
        code_version(),
    ]


def http_impl() -> str:
    """What uvicorn's "auto" picks in this environment."""
    protocol = "httptools" if importlib.util.find_spec("httptools") else "h11 (no httptools)"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio loop (no uvloop)"
    return f"{protocol}, {loop}"


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, int | None]:
    parser = argparse.ArgumentParser(
        description="A multi-file batch upload into the real intake service, next to dd and a"
        " bare loopback HTTP sink."
    )
    parser.add_argument("--files", type=int, default=50, help="files per batch")
    parser.add_argument(
        "--file-mb", type=float, default=10, help="size of each WAV file in MB (10^6 bytes)"
    )
    parser.add_argument("--runs", type=int, default=3, help="measured batches (and sink runs)")
    parser.add_argument(
        "--keep-infra",
        action="store_true",
        help="leave the Kafka and PostgreSQL this bench started running",
    )
    parser.add_argument("--sink-port", type=int, default=None, help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    return Options(a.files, a.file_mb, a.runs, a.keep_infra), a.sink_port


def main() -> None:
    opts, sink_port = parse_args()
    if sink_port is not None:  # the loopback sink's own process
        asyncio.run(serve_sink(sink_port))
        return
    infra = ensure_infra(BENCH)
    try:
        asyncio.run(run(infra, opts, machine_facts(infra)))
    finally:
        if not opts.keep_infra:
            infra.stop()


if __name__ == "__main__":
    main()
