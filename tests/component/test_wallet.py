"""The wallet service against real Kafka + PostgreSQL: decisions, races, settlement, replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaProducer

from contracts import events as ev
from contracts.ids import new_id
from contracts.topics import LEDGER, WALLET
from services.common.consumer import with_inbox
from services.common.db import Pool, create_pool
from services.common.projections import rebuild
from services.common.runtime import Runtime
from services.wallet import consumers, store
from services.wallet.app import build_runtime
from services.wallet.commands import execute
from services.wallet.domain import Credit
from services.wallet.pricing import PriceList
from services.wallet.settings import WalletSettings
from tests.support.infra import Infra
from tests.support.kafka import Collected, collect, publish, wait_caught_up, wait_until

pytestmark = pytest.mark.infra

PRICES = PriceList()
AUDIO_10S = 10 * PRICES.audio_per_second


@pytest.fixture(scope="module")
async def wallet_services(infra: Infra) -> AsyncIterator[list[Runtime]]:
    """Two wallet replicas in one consumer group: batches of one team race across them."""
    settings = WalletSettings(
        database_url=infra.database_url, kafka_bootstrap=infra.kafka_bootstrap
    )
    replicas = [build_runtime(settings), build_runtime(settings)]
    for replica in replicas:
        await replica.start()
    try:
        yield replicas
    finally:
        for replica in replicas:
            await replica.stop()


@pytest.fixture(scope="module")
async def pool(infra: Infra, wallet_services: list[Runtime]) -> AsyncIterator[Pool]:
    p = await create_pool(infra.database_url, "wallet", max_size=25)
    try:
        yield p
    finally:
        await p.close()


async def _credit(pool: Pool, team: str, micros: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await execute(conn, team, Credit(amount_micros=micros, reason="test top-up"))


def _audio(seconds: float = 10) -> ev.FileSpec:
    return ev.FileSpec(
        detect_id=new_id(), filename="call.wav", media_type="audio", blob_key="k",
        size_bytes=1, sha256="0" * 64, duration_seconds=seconds, analysed_seconds=seconds,
    )  # fmt: skip


def _batch(team: str, *files: ev.FileSpec) -> ev.BatchRequested:
    batch = new_id()
    return ev.BatchRequested(
        team_id=team, correlation_id=batch, batch_id=batch, files=files,
        options=ev.DetectOptions(),
    )  # fmt: skip


def _decisions(seen: Collected, batch_ids: Sequence[str]) -> dict[str, ev.Event]:
    wanted = set(batch_ids)
    found: dict[str, ev.Event] = {}
    for record in seen.records:
        event = ev.decode_event(record.value)
        if isinstance(event, ev.FundsReserved | ev.FundsRejected) and event.batch_id in wanted:
            found[event.batch_id] = event
    return found


async def _figures(pool: Pool, team: str) -> tuple[int, int, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT balance_micros, reserved_micros, available_micros FROM wallets"
            " WHERE team_id = $1",
            team,
        )
    assert row is not None
    return row["balance_micros"], row["reserved_micros"], row["available_micros"]


async def test_exact_balance_is_reserved_and_one_micro_short_is_rejected(
    infra: Infra, pool: Pool, producer: AIOKafkaProducer
) -> None:
    exact_team, short_team = new_id(), new_id()
    await _credit(pool, exact_team, 2 * AUDIO_10S)
    await _credit(pool, short_team, 2 * AUDIO_10S - 1)
    exact = _batch(exact_team, _audio(), _audio())
    short = _batch(short_team, _audio(), _audio())
    async with collect(infra.kafka_bootstrap, WALLET) as seen:
        await publish(producer, exact, short)
        await wait_until(lambda: len(_decisions(seen, [exact.batch_id, short.batch_id])) == 2)
        decided = _decisions(seen, [exact.batch_id, short.batch_id])

    reserved = decided[exact.batch_id]
    assert isinstance(reserved, ev.FundsReserved)
    assert reserved.reserved_micros == 2 * AUDIO_10S
    assert reserved.causation_id == exact.event_id
    assert [line.cost_micros for line in reserved.lines] == [AUDIO_10S, AUDIO_10S]
    assert await _figures(pool, exact_team) == (2 * AUDIO_10S, 2 * AUDIO_10S, 0)

    rejected = decided[short.batch_id]
    assert isinstance(rejected, ev.FundsRejected)
    assert rejected.required_micros == 2 * AUDIO_10S
    assert rejected.available_micros == 2 * AUDIO_10S - 1
    assert rejected.shortfall_micros == 1
    assert [line.detect_id for line in rejected.lines] == [f.detect_id for f in short.files]
    assert await _figures(pool, short_team) == (2 * AUDIO_10S - 1, 0, 2 * AUDIO_10S - 1)


async def test_twenty_racing_batches_for_seven_batches_of_money(
    infra: Infra, pool: Pool, producer: AIOKafkaProducer
) -> None:
    team = new_id()
    await _credit(pool, team, 7 * AUDIO_10S)
    batches = [_batch(team, _audio()) for _ in range(20)]
    async with collect(infra.kafka_bootstrap, WALLET) as seen:
        await asyncio.gather(*(publish(producer, b) for b in batches))
        ids = [b.batch_id for b in batches]
        await wait_until(lambda: len(_decisions(seen, ids)) == 20, what="20 decisions")
        decided = _decisions(seen, ids)
    accepted = [d for d in decided.values() if isinstance(d, ev.FundsReserved)]
    assert len(accepted) == 7
    assert await _figures(pool, team) == (7 * AUDIO_10S, 7 * AUDIO_10S, 0)
    await _assert_ledger_consistent(pool, team)


async def test_direct_race_on_one_wallet_never_overdraws(pool: Pool) -> None:
    """The same race without Kafka in between: 20 transactions hit one wallet at once."""
    team = new_id()
    await _credit(pool, team, 7 * AUDIO_10S)
    on_event = with_inbox(pool, "race-test", consumers.handler(PRICES))
    await asyncio.gather(*(on_event(_batch(team, _audio())) for _ in range(20)))
    async with pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT status, count(*) AS n FROM reservations WHERE team_id = $1 GROUP BY status",
            team,
        )
    assert {r["status"]: r["n"] for r in statuses} == {"open": 7, "rejected": 13}
    await _assert_ledger_consistent(pool, team)


async def _assert_ledger_consistent(pool: Pool, team: str) -> None:
    async with pool.acquire() as conn:
        entries = await conn.fetch(
            "SELECT * FROM ledger WHERE team_id = $1 ORDER BY wallet_version", team
        )
    total = dict.fromkeys(("credit", "debit", "reserve", "capture", "release"), 0)
    for entry in entries:
        total[entry["kind"]] += entry["amount_micros"]
        assert entry["available_micros"] >= 0, "available went negative"
        assert entry["balance_micros"] >= 0
    balance, reserved, available = await _figures(pool, team)
    assert balance == total["credit"] - total["debit"] - total["capture"]
    assert reserved == total["reserve"] - total["capture"] - total["release"]
    assert available == balance - reserved


async def test_partially_failed_batch_charges_only_successes_and_closes(
    infra: Infra, pool: Pool, producer: AIOKafkaProducer
) -> None:
    team = new_id()
    await _credit(pool, team, 1_000_000)
    ok1, ok2, bad = _audio(10), _audio(10), _audio(30)
    batch = _batch(team, ok1, ok2, bad)
    async with collect(infra.kafka_bootstrap, LEDGER) as ledger:
        await publish(producer, batch)
        await wait_until(lambda: _reservation_status(ledger, batch.batch_id) == 1)
        results: list[ev.Event] = [
            _completed(batch, ok1, 10),
            _completed(batch, ok2, 7.5),  # shorter than reserved: charged 8 s, 2 s released
            ev.DetectFailed(
                team_id=team,
                correlation_id=batch.batch_id,
                batch_id=batch.batch_id,
                detect_id=bad.detect_id,
                error_code="corrupt",
                error_message="bad header",
            ),
        ]
        await publish(producer, *results)
        await wait_until(lambda: _entries(ledger, batch.batch_id) >= 5)
    charged = AUDIO_10S + 8 * PRICES.audio_per_second
    assert await _figures(pool, team) == (1_000_000 - charged, 0, 1_000_000 - charged)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM reservations WHERE batch_id = $1", batch.batch_id)
    assert row is not None
    assert row["status"] == "closed"
    assert row["captured_micros"] == charged
    assert row["released_micros"] == row["required_micros"] - charged
    await _assert_ledger_consistent(pool, team)


def _completed(batch: ev.BatchRequested, f: ev.FileSpec, seconds: float) -> ev.DetectCompleted:
    return ev.DetectCompleted(
        team_id=batch.team_id, correlation_id=batch.batch_id, batch_id=batch.batch_id,
        detect_id=f.detect_id, media_type=f.media_type, analysed_seconds=seconds, result={},
    )  # fmt: skip


def _ledger_events(seen: Collected, batch_id: str) -> list[ev.LedgerEntryRecorded]:
    out = []
    for record in seen.records:
        event = ev.decode_event(record.value)
        if isinstance(event, ev.LedgerEntryRecorded) and event.batch_id == batch_id:
            out.append(event)
    return out


def _reservation_status(seen: Collected, batch_id: str) -> int:
    return sum(e.kind == "reserve" for e in _ledger_events(seen, batch_id))


def _entries(seen: Collected, batch_id: str) -> int:
    return len(_ledger_events(seen, batch_id))


async def _ledger_rows(pool: Pool, team: str) -> list[tuple[object, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT entry_id, kind, amount_micros, balance_micros FROM ledger"
            " WHERE team_id = $1 ORDER BY entry_id",
            team,
        )
    return [tuple(r.values()) for r in rows]


async def test_redelivering_every_event_type_changes_nothing(
    infra: Infra, pool: Pool, producer: AIOKafkaProducer
) -> None:
    team = new_id()
    await _credit(pool, team, 1_000_000)
    done, failed, cancelled = _audio(10), _audio(10), _audio(10)
    batch = _batch(team, done, failed, cancelled)
    abandoned = _batch(team, _audio(5))
    inputs: list[ev.Event] = [
        batch,
        abandoned,
        _completed(batch, done, 10),
        ev.DetectFailed(
            team_id=team, correlation_id=batch.batch_id, batch_id=batch.batch_id,
            detect_id=failed.detect_id, error_code="timeout", error_message="took too long",
        ),
        ev.BatchTerminal(
            team_id=team, correlation_id=batch.batch_id, batch_id=batch.batch_id,
            status="cancelled", total_files=3, completed_count=1, failed_count=1,
            cancelled_detect_ids=(cancelled.detect_id,),
        ),
        ev.BatchAbandoned(
            team_id=team, correlation_id=abandoned.batch_id, batch_id=abandoned.batch_id,
            reason="wallet timeout",
        ),
    ]  # fmt: skip
    async with collect(infra.kafka_bootstrap, LEDGER) as ledger:
        for event in inputs:  # one at a time: each settles before the next arrives
            before = len(ledger.records)
            await publish(producer, event)
            await wait_until(lambda before=before: len(ledger.records) > before)  # type: ignore[misc]
        once = await _ledger_rows(pool, team)
        figures = await _figures(pool, team)
        # every event again, same ids, plus the batch re-requested under a new event id
        again = batch.model_copy(update={"event_id": new_id()})
        await publish(producer, *inputs, again)
        marker = _batch(team, _audio(1))  # a real change, to show the consumers were running
        await publish(producer, marker)
        await wait_caught_up(infra.kafka_bootstrap, consumers.GROUP, consumers.TOPICS)
    new_rows = [r for r in await _ledger_rows(pool, team) if r not in once]
    assert len(new_rows) == 1  # only the marker's reservation is new
    assert figures[0] == 1_000_000 - AUDIO_10S
    assert figures[1] == 0
    balance, reserved, _ = await _figures(pool, team)
    assert balance == figures[0]
    assert reserved == PRICES.audio_per_second  # the marker's open reservation
    await _assert_ledger_consistent(pool, team)


async def test_projections_rebuilt_from_events_equal_the_live_ones(pool: Pool) -> None:
    async def snapshot() -> dict[str, list[tuple[object, ...]]]:
        out = {}
        async with pool.acquire() as conn:
            for table in store.PROJECTION.tables:
                rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")
                out[table] = [tuple(r.values()) for r in rows]
        return out

    live = await snapshot()
    assert live["ledger"], "earlier tests must have produced wallet activity"
    replayed = await rebuild(pool, store.EVENTS, store.PROJECTION)
    assert replayed >= len(live["wallets"])
    assert await snapshot() == live
