"""The public HTTP API's handlers (served under /api/v2 and at /)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from contracts import problems as p
from services.common.db import Pool
from services.intake.api import openapi as doc
from services.intake.api.auth import Team
from services.intake.api.posting import canonical_id
from services.intake.api.wire import cents, item, timestamp
from services.intake.errors import ApiError
from services.intake.store import deliveries, wallets


def _money(prefix: str, micros: int) -> dict[str, Any]:
    return {f"{prefix}_cents": cents(micros), f"{prefix}_micros": micros}


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["entry_id"],
        "kind": row["kind"],
        **_money("amount", row["amount_micros"]),
        **_money("balance", row["balance_micros"]),
        **_money("available", row["available_micros"]),
        "batch_uuid": row["batch_id"],
        "detect_uuid": row["detect_id"],
        "media_type": row["media_type"],
        "billed_seconds": row["billed_seconds"],
        "reason": row["reason"],
        "created_at": timestamp(row["recorded_at"]),
    }


class AccountController(Controller):
    path = "/account"
    tags = ["account"]

    @get(
        "/",
        summary="Your account: the team and the token this request authenticated with",
        operation_id="account_getAccount",
        responses=doc.answers({200: (doc.AccountResponse, "The team and the token")}),
        operation_class=doc.DOCUMENTED,
    )
    async def account(self, team: NamedDependency[Team], pool: NamedDependency[Pool]) -> Any:
        """Resemble's GET /account describes a person; Verity has teams and their tokens, so
        `email`, `first_name` and `last_name` are absent (docs/api.md)."""
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT t.name, t.created_at, k.label, k.created_at AS token_created_at"
                " FROM teams t JOIN api_tokens k ON k.team_id = t.id WHERE k.id = $1",
                team.token_id,
            )
        assert row is not None, "an authenticated token has its row"
        return item({
            "created_at": timestamp(row["created_at"]),
            "teams": 1,
            "team": {"uuid": team.team_id, "name": row["name"]},
            "token": {"uuid": team.token_id, "label": row["label"],
                      "created_at": timestamp(row["token_created_at"])},
        })  # fmt: skip

    @get(
        "/wallet",
        summary="Balance, reservations and recent ledger entries of your team [ours]",
        operation_id="getAccountWallet",
        responses=doc.answers({200: (doc.WalletResponse, "The wallet")}, errors=(400,)),
        operation_class=doc.DOCUMENTED,
    )
    async def wallet(
        self,
        team: NamedDependency[Team],
        pool: NamedDependency[Pool],
        entries: Annotated[int, Parameter(ge=0, le=100, description="recent entries")] = 20,
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            figures = await wallets.wallet_figures(conn, team.team_id)
            recent = await wallets.recent_entries(conn, team.team_id, entries)
        return item(
            {
                "currency": "USD",
                **_money("balance", figures.balance_micros),
                **_money("reserved", figures.reserved_micros),
                **_money("available", figures.available_micros),
                "updated_at": timestamp(figures.updated_at),
                "recent_entries": [_entry(r) for r in recent],
            }
        )

    @get(
        "/billing_usage",
        summary="Media analysed and money charged between two dates (UTC)",
        operation_id="account_getBillingUsage",
        responses=doc.answers({200: (doc.BillingUsageResponse, "The usage")}, errors=(400,)),
        operation_class=doc.DOCUMENTED,
    )
    async def billing_usage(
        self,
        team: NamedDependency[Team],
        pool: NamedDependency[Pool],
        start_date: Annotated[date | None, Parameter(description="YYYY-MM-DD, inclusive")] = None,
        end_date: Annotated[date | None, Parameter(description="YYYY-MM-DD, inclusive")] = None,
    ) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        start = start_date or today.replace(day=1)
        end = end_date or today
        if start > end:
            raise ApiError(
                p.VALIDATION,
                "start_date must not be after end_date",
                errors={"start_date": ["must be on or before end_date"]},
            )
        async with pool.acquire() as conn:
            lines = await wallets.usage(conn, team.team_id, start, end)
        charged = sum(line.charged_micros for line in lines)
        return item(
            {
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "seconds_analyzed": sum(line.seconds for line in lines),
                "files_analyzed": sum(line.files for line in lines),
                **_money("charged", charged),
                "by_media_type": {
                    line.media_type: {
                        "files": line.files,
                        "seconds": line.seconds,
                        **_money("charged", line.charged_micros),
                    }
                    for line in lines
                },
            }
        )


class CallbacksController(Controller):
    path = "/detect/batch"
    tags = ["batches"]

    @get(
        "/{batch_uuid:str}/callbacks",
        summary="Delivery log of a batch's callback [ours]",
        operation_id="listDetectBatchCallbacks",
        responses=doc.answers({200: (doc.CallbackLogResponse, "The deliveries")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def callbacks(
        self, team: NamedDependency[Team], pool: NamedDependency[Pool], batch_uuid: FromPath[str]
    ) -> dict[str, Any]:
        batch_id = canonical_id(batch_uuid, "batch")  # a malformed id: 404 (NUL would be a 500)
        async with pool.acquire() as conn:
            rows = await deliveries.attempts(conn, team.team_id, batch_id)
        if not rows:  # unknown, another team's, or no callback attempted yet: all look alike
            raise ApiError(p.NOT_FOUND, f"no callback deliveries for batch {batch_uuid}")
        last = rows[-1]
        return item(
            {
                "batch_uuid": batch_id,
                "webhook_id": last["webhook_id"],
                "url": last["url"],
                "status": last["outcome"],
                "next_attempt_at": timestamp(last["next_attempt_at"]),
                "attempts": [
                    {
                        "attempt": r["attempt"],
                        "outcome": r["outcome"],
                        "status_code": r["status_code"],
                        "error": r["error"],
                        "attempted_at": timestamp(r["attempted_at"]),
                        "next_attempt_at": timestamp(r["next_attempt_at"]),
                    }
                    for r in rows
                ],
            }
        )
