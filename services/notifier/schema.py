"""The notifier's own tables."""

from services.common.db import Migration

PROJECTION_TABLES = ("deliveries", "delivery_attempts")

MIGRATIONS = [
    Migration(
        100,
        "deliveries, attempts, team webhook secrets",
        """
        -- Each delivery's state (projection of its stream), the durable retry schedule.
        -- `leased_until` is operational, not state: a dispatcher owns a due delivery while
        -- its lease runs, so two notifier replicas never send the same attempt at once.
        CREATE TABLE deliveries (
            webhook_id      text PRIMARY KEY,
            team_id         text        NOT NULL,
            batch_id        text        NOT NULL UNIQUE,
            url             text        NOT NULL,
            status          text        NOT NULL,
            attempts        int         NOT NULL,
            version         int         NOT NULL,
            state           jsonb       NOT NULL,
            next_attempt_at timestamptz NOT NULL,
            created_at      timestamptz NOT NULL,
            leased_until    timestamptz
        );
        CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
        CREATE TABLE delivery_attempts (
            webhook_id   text        NOT NULL,
            attempt      int         NOT NULL,
            outcome      text        NOT NULL,
            status_code  int,
            error        text,
            attempted_at timestamptz NOT NULL,
            PRIMARY KEY (webhook_id, attempt)
        );
        -- Per-team signing secrets (Standard Webhooks `whsec_...`). The previous secret keeps
        -- signing beside the new one for a while after a rotation, so receivers can switch.
        -- Operator configuration, like intake's tokens: not event-sourced.
        CREATE TABLE team_secrets (
            team_id          text PRIMARY KEY,
            secret           text        NOT NULL,
            previous_secret  text,
            previous_until   timestamptz,
            rotated_at       timestamptz NOT NULL
        );
        """,
    )
]
