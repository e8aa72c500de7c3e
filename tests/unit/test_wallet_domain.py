"""The wallet's rules, as pure decide/evolve: no database, no broker."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from contracts.events import DetectOptions, FileSpec, MediaType
from contracts.ids import new_id
from services.wallet.domain import (
    BatchRejected,
    BatchReserved,
    Capture,
    Command,
    Credit,
    Debit,
    LineCaptured,
    LineRefunded,
    LineReleased,
    Release,
    Reserve,
    ReservedLine,
    Wallet,
    WalletError,
    WalletEvent,
    decide,
    evolve,
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


@dataclass
class Book:
    """A wallet with its open lines, kept the way the store keeps them, in memory."""

    wallet: Wallet
    lines: dict[str, dict[str, ReservedLine]] = field(default_factory=dict)

    def decide(self, command: Command) -> list[WalletEvent]:
        batch_id = getattr(command, "batch_id", None)
        return decide(self.wallet, command, dict(self.lines.get(batch_id or "", {})))

    def apply(self, events: list[WalletEvent]) -> Book:
        for event in events:
            self.wallet = evolve(self.wallet, event)
            if isinstance(event, BatchReserved):
                self.lines[event.batch_id] = {line.detect_id: line for line in event.lines}
            if isinstance(event, LineCaptured | LineReleased):
                del self.lines[event.batch_id][event.detect_id]
        return self

    def run(self, *commands: Command) -> Book:
        for command in commands:
            self.apply(self.decide(command))
        return self


def _funded(micros: int) -> Book:
    return Book(Wallet(team_id=TEAM)).run(Credit(amount_micros=micros, reason="top-up"))


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
    [event] = exact.decide(reserve)
    assert isinstance(event, BatchReserved)
    assert event.total_micros == total
    after = exact.apply([event]).wallet
    assert (after.balance_micros, after.reserved_micros, after.available_micros) == (
        total,
        total,
        0,
    )

    short = _funded(total - 1)
    [rejected] = short.decide(reserve)
    assert isinstance(rejected, BatchRejected)
    assert (rejected.required_micros, rejected.available_micros) == (total, total - 1)
    assert short.apply([rejected]).wallet.available_micros == total - 1  # nothing held


def test_partially_failed_batch_charges_only_successes() -> None:
    ok, bad = _file("audio", 10), _file("audio", 20)
    reserve = _reserve(ok, bad)
    book = _funded(1_000_000).run(
        reserve,
        Capture(batch_id=reserve.batch_id, detect_id=ok.detect_id, analysed_seconds=10),
        Release(batch_id=reserve.batch_id, detect_ids=(bad.detect_id,), reason="failed"),
    )
    assert book.wallet.captured_micros == 10 * PRICES.audio_per_second
    assert book.wallet.balance_micros == 1_000_000 - 10 * PRICES.audio_per_second
    assert book.wallet.reserved_micros == 0  # a settled batch holds nothing
    assert book.lines[reserve.batch_id] == {}


def test_capture_never_exceeds_the_reservation_and_releases_the_rest() -> None:
    f = _file("audio", 10)
    reserve = _reserve(f)
    book = _funded(1_000_000).run(reserve)
    [longer] = book.decide(
        Capture(batch_id=reserve.batch_id, detect_id=f.detect_id, analysed_seconds=99)
    )
    assert isinstance(longer, LineCaptured)
    assert longer.amount_micros == 10 * PRICES.audio_per_second
    assert longer.billed_seconds == 10
    [shorter] = book.decide(
        Capture(batch_id=reserve.batch_id, detect_id=f.detect_id, analysed_seconds=4.2)
    )
    assert isinstance(shorter, LineCaptured)
    assert shorter.amount_micros == 5 * PRICES.audio_per_second
    assert shorter.released_micros == 5 * PRICES.audio_per_second
    after = book.apply([shorter]).wallet
    assert after.available_micros == 1_000_000 - 5 * PRICES.audio_per_second
    assert after.reserved_micros == 0


def test_settling_twice_or_late_changes_nothing() -> None:
    f = _file("image")
    reserve = _reserve(f)
    capture = Capture(batch_id=reserve.batch_id, detect_id=f.detect_id, analysed_seconds=None)
    book = _funded(100_000).run(reserve, capture)
    assert book.decide(capture) == []
    assert book.decide(Release(batch_id=reserve.batch_id, reason="cancelled")) == []
    unknown = Capture(batch_id=new_id(), detect_id=new_id(), analysed_seconds=1)
    assert book.decide(unknown) == []


def test_a_batch_with_open_lines_is_not_reserved_twice() -> None:
    reserve = _reserve(_file("image"), _file("image"))
    book = _funded(100_000).run(reserve)
    assert book.decide(reserve) == []


def test_release_all_frees_every_unsettled_line() -> None:
    a, b, c = _file("audio", 3), _file("video", 3), _file("image")
    reserve = _reserve(a, b, c)
    book = _funded(10_000_000).run(
        reserve, Capture(batch_id=reserve.batch_id, detect_id=a.detect_id, analysed_seconds=3)
    )
    events = book.decide(Release(batch_id=reserve.batch_id, reason="abandoned"))
    assert {e.detect_id for e in events if isinstance(e, LineReleased)} == {
        b.detect_id,
        c.detect_id,
    }
    after = book.apply(events).wallet
    assert after.reserved_micros == 0
    assert after.balance_micros == 10_000_000 - 3 * PRICES.audio_per_second


def test_debit_cannot_touch_reserved_money() -> None:
    book = _funded(50_000).run(_reserve(_file("image")))
    with pytest.raises(WalletError):
        book.decide(Debit(amount_micros=40_001, reason="x"))
    assert book.run(Debit(amount_micros=40_000, reason="x")).wallet.available_micros == 0


def test_versions_count_events() -> None:
    wallet = _funded(10).run(Credit(amount_micros=5, reason="again")).wallet
    assert wallet.version == 2
    assert wallet.balance_micros == 15


def test_a_cancel_refunds_a_file_captured_before_the_cancel_arrived() -> None:
    """The detector's result and intake's cancel travel on different topics: when the result
    wins, the capture is given back, because the client sees that detect cancelled."""
    done, stopped = _file("audio", 10), _file("audio", 10)
    reserve = _reserve(done, stopped)
    book = _funded(1_000_000).run(
        reserve,
        Capture(batch_id=reserve.batch_id, detect_id=done.detect_id, analysed_seconds=10),
        Capture(batch_id=reserve.batch_id, detect_id=stopped.detect_id, analysed_seconds=10),
    )
    charged = 10 * PRICES.audio_per_second
    assert book.wallet.captured_micros == 2 * charged
    cancel = Release(
        batch_id=reserve.batch_id, detect_ids=(stopped.detect_id,), reason="batch cancelled",
        refund_captured=True,
    )  # fmt: skip
    captured = {done.detect_id: charged, stopped.detect_id: charged}
    [refund] = decide(book.wallet, cancel, {}, captured)
    assert isinstance(refund, LineRefunded)
    assert (refund.detect_id, refund.amount_micros) == (stopped.detect_id, charged)
    after = evolve(book.wallet, refund)
    assert after.captured_micros == charged
    assert after.balance_micros == 1_000_000 - charged
    # a release that is not a cancel, or a file refunded already, refunds nothing
    plain = cancel.model_copy(update={"refund_captured": False})
    assert decide(after, plain, {}, captured) == []
    assert decide(after, cancel, {}, {done.detect_id: charged}) == []
