"""The wallet's rules, as pure decide/evolve: no database, no broker."""

from __future__ import annotations

import pytest

from contracts.events import DetectOptions, FileSpec, MediaType
from contracts.ids import new_id
from services.wallet.domain import (
    BatchRejected,
    BatchReserved,
    Capture,
    Credit,
    Debit,
    LineCaptured,
    LineReleased,
    Release,
    Reserve,
    Wallet,
    WalletError,
    decide,
    fold,
)
from services.wallet.pricing import PriceList, PricingError, billable_seconds, price_file

PRICES = PriceList()
TEAM = new_id()


def _file(media_type: MediaType, seconds: float | None = None) -> FileSpec:
    return FileSpec(
        detect_id=new_id(), filename=f"f.{media_type}", media_type=media_type,
        blob_key="k", size_bytes=1, sha256="0" * 64,
        duration_seconds=seconds, analysed_seconds=seconds,
    )  # fmt: skip


def _run(wallet: Wallet, *commands: object) -> Wallet:
    for command in commands:
        wallet = fold(wallet, decide(wallet, command))  # type: ignore[arg-type]
    return wallet


def _funded(micros: int) -> Wallet:
    return _run(Wallet(team_id=TEAM), Credit(amount_micros=micros, reason="top-up"))


def _reserve(*files: FileSpec, options: DetectOptions | None = None) -> Reserve:
    opts = options or DetectOptions()
    return Reserve(batch_id=new_id(), files=tuple(price_file(PRICES, f, opts) for f in files))


def test_pricing_rounds_every_started_second_up_and_adds_options() -> None:
    assert billable_seconds(12.0) == 12
    assert billable_seconds(12.01) == 13
    assert billable_seconds(0.0) == 0
    audio = price_file(PRICES, _file("audio", 12.5), DetectOptions())
    assert (audio.billed_seconds, audio.cost_micros) == (13, 13 * PRICES.audio_per_second)
    video = price_file(
        PRICES,
        _file("video", 2.0),
        DetectOptions(intelligence=True, audio_source_tracing=True, search_identity=True),
    )
    expected = (
        2 * PRICES.video_per_second
        + PRICES.intelligence_per_file
        + PRICES.source_tracing_per_file
        + PRICES.identity_search_per_file
    )
    assert video.cost_micros == expected
    image = price_file(PRICES, _file("image"), DetectOptions(audio_source_tracing=True))
    assert image.cost_micros == PRICES.image_per_file  # tracing is an audio option
    with pytest.raises(PricingError):
        price_file(PRICES, _file("audio", None), DetectOptions())


def test_exact_balance_is_accepted_and_one_micro_short_is_rejected() -> None:
    reserve = _reserve(_file("audio", 10), _file("image"))
    total = sum(f.cost_micros for f in reserve.files)

    exact = _funded(total)
    [event] = decide(exact, reserve)
    assert isinstance(event, BatchReserved)
    assert event.total_micros == total
    after = fold(exact, [event])
    assert (after.balance_micros, after.reserved_micros, after.available_micros) == (
        total,
        total,
        0,
    )

    short = _funded(total - 1)
    [rejected] = decide(short, reserve)
    assert isinstance(rejected, BatchRejected)
    assert (rejected.required_micros, rejected.available_micros) == (total, total - 1)
    assert fold(short, [rejected]).available_micros == total - 1  # nothing held


def test_partially_failed_batch_charges_only_successes() -> None:
    ok, bad = _file("audio", 10), _file("audio", 20)
    reserve = _reserve(ok, bad)
    wallet = _run(
        _funded(1_000_000),
        reserve,
        Capture(batch_id=reserve.batch_id, detect_id=ok.detect_id, analysed_seconds=10),
        Release(batch_id=reserve.batch_id, detect_ids=(bad.detect_id,), reason="failed"),
    )
    assert wallet.captured_micros == 10 * PRICES.audio_per_second
    assert wallet.balance_micros == 1_000_000 - 10 * PRICES.audio_per_second
    assert wallet.reserved_micros == 0
    assert wallet.open == {}  # a settled batch leaves no open reservation


def test_capture_never_exceeds_the_reservation_and_releases_the_rest() -> None:
    f = _file("audio", 10)
    reserve = _reserve(f)
    wallet = _run(_funded(1_000_000), reserve)
    [longer] = decide(wallet, Capture(batch_id=reserve.batch_id, detect_id=f.detect_id,
                                      analysed_seconds=99))  # fmt: skip
    assert isinstance(longer, LineCaptured)
    assert longer.amount_micros == 10 * PRICES.audio_per_second
    assert longer.billed_seconds == 10
    [shorter] = decide(wallet, Capture(batch_id=reserve.batch_id, detect_id=f.detect_id,
                                       analysed_seconds=4.2))  # fmt: skip
    assert isinstance(shorter, LineCaptured)
    assert shorter.amount_micros == 5 * PRICES.audio_per_second
    assert shorter.released_micros == 5 * PRICES.audio_per_second
    assert fold(wallet, [shorter]).available_micros == 1_000_000 - 5 * PRICES.audio_per_second


def test_settling_twice_or_late_changes_nothing() -> None:
    f = _file("image")
    reserve = _reserve(f)
    capture = Capture(batch_id=reserve.batch_id, detect_id=f.detect_id, analysed_seconds=None)
    release = Release(batch_id=reserve.batch_id, reason="cancelled")
    wallet = _run(_funded(100_000), reserve, capture)
    assert decide(wallet, capture) == []
    assert decide(wallet, release) == []
    unknown = Capture(batch_id=new_id(), detect_id=new_id(), analysed_seconds=1)
    assert decide(wallet, unknown) == []


def test_release_all_frees_every_unsettled_line() -> None:
    a, b, c = _file("audio", 3), _file("video", 3), _file("image")
    reserve = _reserve(a, b, c)
    wallet = _run(
        _funded(10_000_000),
        reserve,
        Capture(batch_id=reserve.batch_id, detect_id=a.detect_id, analysed_seconds=3),
    )
    events = decide(wallet, Release(batch_id=reserve.batch_id, reason="abandoned"))
    assert {e.detect_id for e in events if isinstance(e, LineReleased)} == {
        b.detect_id,
        c.detect_id,
    }
    after = fold(wallet, events)
    assert after.reserved_micros == 0
    assert after.balance_micros == 10_000_000 - 3 * PRICES.audio_per_second


def test_debit_cannot_touch_reserved_money() -> None:
    wallet = _run(_funded(50_000), _reserve(_file("image")))
    with pytest.raises(WalletError):
        decide(wallet, Debit(amount_micros=40_001, reason="x"))
    assert _run(wallet, Debit(amount_micros=40_000, reason="x")).available_micros == 0


def test_versions_count_events() -> None:
    wallet = _run(_funded(10), Credit(amount_micros=5, reason="again"))
    assert wallet.version == 2
    assert wallet.balance_micros == 15
