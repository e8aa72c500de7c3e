"""The wallet aggregate: pure `decide` and `evolve`, no I/O.

One wallet per team, one event stream per wallet. Money is integer micro-dollars.

    balance   = credited - debited - captured
    reserved  = what open reservations still hold
    available = balance - reserved          (what a new batch may reserve)

A batch reserves all of its files in one event or none (the 402 rule). Each file is then
settled once: captured (at most what it reserved, the rest released) or released. Which
lines are still open is kept beside the wallet, in a table the caller reads and hands to
`decide`, so a wallet's state stays a handful of numbers however many batches are open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts.events import Frozen, MediaType
from contracts.ids import Id, Micros
from services.common.eventstore import DomainEvent
from services.wallet.pricing import PricedFile, actual_cost

# --- events (stored in the wallet's own stream; contracts carry what others need) -----------


class WalletEvent(DomainEvent):
    team_id: Id


class Credited(WalletEvent):
    event_type: Literal["Credited"] = "Credited"
    amount_micros: Micros = Field(gt=0)
    reason: str


class Debited(WalletEvent):
    event_type: Literal["Debited"] = "Debited"
    amount_micros: Micros = Field(gt=0)
    reason: str


class ReservedLine(Frozen):
    detect_id: Id
    filename: str
    media_type: MediaType
    duration_seconds: float | None
    billed_seconds: int
    unit_micros: Micros
    addons_micros: Micros
    reserved_micros: Micros


class BatchReserved(WalletEvent):
    event_type: Literal["BatchReserved"] = "BatchReserved"
    batch_id: Id
    lines: tuple[ReservedLine, ...]
    total_micros: Micros


class BatchRejected(WalletEvent):
    event_type: Literal["BatchRejected"] = "BatchRejected"
    batch_id: Id
    lines: tuple[ReservedLine, ...]
    required_micros: Micros
    available_micros: Micros


class LineCaptured(WalletEvent):
    """A file finished: `amount_micros` charged, `released_micros` of its reservation freed."""

    event_type: Literal["LineCaptured"] = "LineCaptured"
    batch_id: Id
    detect_id: Id
    media_type: MediaType
    billed_seconds: int
    amount_micros: Micros
    released_micros: Micros


class LineReleased(WalletEvent):
    event_type: Literal["LineReleased"] = "LineReleased"
    batch_id: Id
    detect_id: Id
    amount_micros: Micros
    reason: str


class LineRefunded(WalletEvent):
    """A captured file was cancelled after all: its result reached the wallet before the
    cancel did, and the client sees it cancelled, so the charge goes back."""

    event_type: Literal["LineRefunded"] = "LineRefunded"
    batch_id: Id
    detect_id: Id
    amount_micros: Micros = Field(gt=0)
    reason: str


AnyWalletEvent = Annotated[
    Credited | Debited | BatchReserved | BatchRejected | LineCaptured | LineReleased | LineRefunded,
    Field(discriminator="event_type"),
]
WALLET_EVENTS: TypeAdapter[AnyWalletEvent] = TypeAdapter(AnyWalletEvent)


# --- state -------------------------------------------------------------------------------------


class Wallet(Frozen):
    """A wallet's figures. Open reservation lines live beside it (`store.open_lines`) and are
    handed to `decide` by the caller, so a wallet with many open batches stays small."""

    team_id: Id
    version: int = 0
    credited_micros: int = 0
    debited_micros: int = 0
    captured_micros: int = 0
    reserved_micros: int = 0

    @property
    def balance_micros(self) -> int:
        return self.credited_micros - self.debited_micros - self.captured_micros

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.reserved_micros


# --- commands ------------------------------------------------------------------------------


class Credit(Frozen):
    amount_micros: int = Field(gt=0)
    reason: str = Field(min_length=1)


class Debit(Frozen):
    amount_micros: int = Field(gt=0)
    reason: str = Field(min_length=1)


class Reserve(Frozen):
    batch_id: Id
    files: tuple[PricedFile, ...] = Field(min_length=1)


class Capture(Frozen):
    """A file's detect completed; `analysed_seconds` is what was really analysed."""

    batch_id: Id
    detect_id: Id
    analysed_seconds: float | None


class Release(Frozen):
    """Free what a batch still holds: for the files in `detect_ids`, or for all of them.

    `refund_captured` (a cancel): a listed file that was already captured is refunded too.
    """

    batch_id: Id
    detect_ids: tuple[Id, ...] | None = None
    reason: str
    refund_captured: bool = False


Command = Credit | Debit | Reserve | Capture | Release

OpenLines = Mapping[str, ReservedLine]
"""The still-unsettled lines of the command's batch, by detect id (empty for other commands)."""
Captured = Mapping[str, int]
"""What each captured file of the batch still stands charged at (a cancel's Release only)."""


class WalletError(Exception):
    """A command that cannot be carried out (shown to the operator as is)."""


def _line(file: PricedFile) -> ReservedLine:
    return ReservedLine(
        detect_id=file.detect_id,
        filename=file.filename,
        media_type=file.media_type,
        duration_seconds=file.duration_seconds,
        billed_seconds=file.billed_seconds,
        unit_micros=file.unit_micros,
        addons_micros=file.addons_micros,
        reserved_micros=file.cost_micros,
    )


def decide(
    wallet: Wallet, command: Command, open_lines: OpenLines, captured: Captured | None = None
) -> list[WalletEvent]:
    """What happens when `command` meets `wallet`. Settling twice, or late, changes nothing."""
    team = wallet.team_id
    match command:
        case Credit(amount_micros=amount, reason=reason):
            return [Credited(team_id=team, amount_micros=amount, reason=reason)]
        case Debit(amount_micros=amount, reason=reason):
            if amount > wallet.available_micros:
                raise WalletError(
                    f"cannot debit {amount} micros: only {wallet.available_micros} available"
                )
            return [Debited(team_id=team, amount_micros=amount, reason=reason)]
        case Reserve(batch_id=batch_id, files=files):
            if open_lines:
                return []  # already reserved
            lines = tuple(_line(f) for f in files)
            total = sum(line.reserved_micros for line in lines)
            if total <= wallet.available_micros:
                return [
                    BatchReserved(team_id=team, batch_id=batch_id, lines=lines, total_micros=total)
                ]
            return [
                BatchRejected(
                    team_id=team,
                    batch_id=batch_id,
                    lines=lines,
                    required_micros=total,
                    available_micros=max(0, wallet.available_micros),
                )
            ]
        case Capture(batch_id=batch_id, detect_id=detect_id, analysed_seconds=seconds):
            r = open_lines.get(detect_id)
            if r is None:
                return []  # settled already, or never reserved
            cost, billed = actual_cost(r.media_type, r.unit_micros, r.addons_micros, seconds)
            charged = min(cost, r.reserved_micros)
            return [
                LineCaptured(
                    team_id=team,
                    batch_id=batch_id,
                    detect_id=detect_id,
                    media_type=r.media_type,
                    billed_seconds=min(billed, r.billed_seconds),  # never bill past the reservation
                    amount_micros=charged,
                    released_micros=r.reserved_micros - charged,
                )
            ]
        case Release(batch_id=batch_id, detect_ids=detect_ids, reason=reason):
            released: list[WalletEvent] = [
                LineReleased(
                    team_id=team,
                    batch_id=batch_id,
                    detect_id=d,
                    amount_micros=line.reserved_micros,
                    reason=reason,
                )
                for d, line in open_lines.items()
                if detect_ids is None or d in detect_ids
            ]
            if command.refund_captured and detect_ids is not None and captured:
                released += [
                    LineRefunded(
                        team_id=team,
                        batch_id=batch_id,
                        detect_id=d,
                        amount_micros=captured[d],
                        reason=reason,
                    )
                    for d in detect_ids
                    if d not in open_lines and captured.get(d, 0) > 0
                ]
            return released
    raise AssertionError(f"unknown command {command!r}")  # pragma: no cover


def evolve(wallet: Wallet, event: WalletEvent) -> Wallet:
    """The wallet after `event`. Total over the events `decide` can produce."""
    w = wallet
    match event:
        case Credited(amount_micros=amount):
            update = {"credited_micros": w.credited_micros + amount}
        case Debited(amount_micros=amount):
            update = {"debited_micros": w.debited_micros + amount}
        case BatchReserved(total_micros=total):
            update = {"reserved_micros": w.reserved_micros + total}
        case BatchRejected():
            update = {}
        case LineCaptured(amount_micros=amount, released_micros=released):
            update = {
                "captured_micros": w.captured_micros + amount,
                "reserved_micros": w.reserved_micros - amount - released,
            }
        case LineReleased(amount_micros=amount):
            update = {"reserved_micros": w.reserved_micros - amount}
        case LineRefunded(amount_micros=amount):
            update = {"captured_micros": w.captured_micros - amount}
        case _:  # pragma: no cover
            raise AssertionError(f"unknown event {event!r}")
    return w.model_copy(update={**update, "version": w.version + 1})
