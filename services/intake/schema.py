"""Intake's own tables (beside the common events/outbox/inbox)."""

from services.common.db import Migration

MIGRATIONS = [
    Migration(
        100,
        "teams and api tokens",
        """
        -- Operator-managed configuration, not domain state: created by the admin CLI only.
        CREATE TABLE teams (
            id         text PRIMARY KEY,
            name       text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        -- Tokens are stored only as SHA-256 hashes: they are 256-bit random secrets, so a
        -- fast hash is enough and a leaked table reveals no usable token.
        CREATE TABLE api_tokens (
            id         text PRIMARY KEY,
            team_id    text NOT NULL REFERENCES teams (id),
            token_hash text NOT NULL UNIQUE,
            label      text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        """,
    )
]
