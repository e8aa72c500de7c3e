"""The wallet's own tables: projections of its event stream, rebuildable by `rebuild`."""

from services.common.db import Migration

PROJECTION_TABLES = ("wallets", "ledger", "reservations", "reservation_lines")

MIGRATIONS = [
    Migration(
        100,
        "wallet projections",
        """
        -- Each team's wallet state after its latest event: the snapshot commands start from
        -- (so a decision never replays a long stream) and the figures clients read.
        CREATE TABLE wallets (
            team_id          text PRIMARY KEY,
            version          int         NOT NULL,
            state            jsonb       NOT NULL,
            balance_micros   bigint      NOT NULL,
            reserved_micros  bigint      NOT NULL,
            available_micros bigint      NOT NULL,
            updated_at       timestamptz NOT NULL
        );
        -- Every movement of money, with the figures right after it.
        CREATE TABLE ledger (
            entry_id         text PRIMARY KEY,
            team_id          text        NOT NULL,
            wallet_version   int         NOT NULL,
            kind             text        NOT NULL,
            amount_micros    bigint      NOT NULL,
            balance_micros   bigint      NOT NULL,
            reserved_micros  bigint      NOT NULL,
            available_micros bigint      NOT NULL,
            batch_id         text,
            detect_id        text,
            media_type       text,
            billed_seconds   int,
            reason           text        NOT NULL,
            recorded_at      timestamptz NOT NULL
        );
        CREATE INDEX ledger_team_time ON ledger (team_id, recorded_at);
        -- One row per batch the wallet decided on.
        CREATE TABLE reservations (
            batch_id         text PRIMARY KEY,
            team_id          text        NOT NULL,
            status           text        NOT NULL CHECK (status IN ('open', 'rejected', 'closed')),
            required_micros  bigint      NOT NULL,
            captured_micros  bigint      NOT NULL DEFAULT 0,
            released_micros  bigint      NOT NULL DEFAULT 0,
            files            int         NOT NULL,
            settled_files    int         NOT NULL DEFAULT 0,
            decided_at       timestamptz NOT NULL,
            updated_at       timestamptz NOT NULL
        );
        """,
    ),
    Migration(
        101,
        "open reservation lines beside the wallet state",
        """
        -- Each reserved file, kept out of the wallet snapshot so that a decision reads only
        -- the lines of its own batch, however many batches a team has open.
        CREATE TABLE reservation_lines (
            batch_id  text    NOT NULL,
            detect_id text    NOT NULL,
            team_id   text    NOT NULL,
            line      jsonb   NOT NULL,
            settled   boolean NOT NULL DEFAULT false,
            PRIMARY KEY (batch_id, detect_id)
        );
        """,
    ),
]
