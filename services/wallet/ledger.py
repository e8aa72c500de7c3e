"""From wallet events to ledger entries and to the contract events other services read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts import events as ev
from contracts.events import LedgerKind, MediaType
from services.wallet.domain import (
    BatchRejected,
    BatchReserved,
    Credited,
    Debited,
    LineCaptured,
    LineRefunded,
    LineReleased,
    ReservedLine,
    Wallet,
    WalletEvent,
)

_RELEASE_PART = uuid.UUID("5f0c6a52-1d7e-4d3b-9a39-6f0a8f3c2b11")


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: str
    kind: LedgerKind
    amount_micros: int
    batch_id: str | None = None
    detect_id: str | None = None
    media_type: MediaType | None = None
    billed_seconds: int | None = None
    reason: str = ""


def ledger_entries(event: WalletEvent) -> list[LedgerEntry]:
    """The money movements one wallet event makes (a capture may also release a remainder)."""
    match event:
        case Credited(amount_micros=amount, reason=reason):
            return [LedgerEntry(event.event_id, "credit", amount, reason=reason)]
        case Debited(amount_micros=amount, reason=reason):
            return [LedgerEntry(event.event_id, "debit", amount, reason=reason)]
        case BatchReserved(batch_id=batch_id, total_micros=total):
            return [LedgerEntry(event.event_id, "reserve", total, batch_id=batch_id)]
        case LineCaptured():
            entries = [
                LedgerEntry(
                    event.event_id,
                    "capture",
                    event.amount_micros,
                    event.batch_id,
                    event.detect_id,
                    event.media_type,
                    event.billed_seconds,
                )
            ]
            if event.released_micros:
                entries.append(
                    LedgerEntry(
                        uuid.uuid5(_RELEASE_PART, event.event_id).hex,
                        "release",
                        event.released_micros,
                        event.batch_id,
                        event.detect_id,
                        reason="charged less than reserved",
                    )
                )
            return entries
        case LineReleased():
            return [
                LedgerEntry(
                    event.event_id,
                    "release",
                    event.amount_micros,
                    event.batch_id,
                    event.detect_id,
                    reason=event.reason,
                )
            ]
        case LineRefunded():
            return [
                LedgerEntry(
                    event.event_id,
                    "refund",
                    event.amount_micros,
                    event.batch_id,
                    event.detect_id,
                    reason=event.reason,
                )
            ]
    return []  # BatchRejected moves no money


def _cost_lines(lines: tuple[ReservedLine, ...]) -> tuple[ev.CostLine, ...]:
    return tuple(
        ev.CostLine(
            detect_id=line.detect_id,
            filename=line.filename,
            media_type=line.media_type,
            duration_seconds=line.duration_seconds,
            cost_micros=line.reserved_micros,
        )
        for line in lines
    )


def published_events(event: WalletEvent, after: Wallet, causation_id: str | None) -> list[ev.Event]:
    """What the rest of the system learns from one wallet event."""
    out: list[ev.Event] = []
    team = event.team_id
    if isinstance(event, BatchReserved):
        out.append(
            ev.FundsReserved(
                team_id=team,
                correlation_id=event.batch_id,
                causation_id=causation_id,
                batch_id=event.batch_id,
                reserved_micros=event.total_micros,
                lines=_cost_lines(event.lines),
            )
        )
    elif isinstance(event, BatchRejected):
        out.append(
            ev.FundsRejected(
                team_id=team,
                correlation_id=event.batch_id,
                causation_id=causation_id,
                batch_id=event.batch_id,
                required_micros=event.required_micros,
                available_micros=event.available_micros,
                shortfall_micros=event.required_micros - event.available_micros,
                lines=_cost_lines(event.lines),
            )
        )
    for entry in ledger_entries(event):
        out.append(
            ev.LedgerEntryRecorded(
                team_id=team,
                correlation_id=entry.batch_id or entry.entry_id,
                causation_id=causation_id or event.event_id,
                entry_id=entry.entry_id,
                wallet_version=after.version,
                kind=entry.kind,
                amount_micros=entry.amount_micros,
                balance_micros=after.balance_micros,
                reserved_micros=after.reserved_micros,
                available_micros=after.available_micros,
                batch_id=entry.batch_id,
                detect_id=entry.detect_id,
                media_type=entry.media_type,
                billed_seconds=entry.billed_seconds,
                reason=entry.reason,
            )
        )
    return out
