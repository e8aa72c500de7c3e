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
    ),
    Migration(
        101,
        "account projection of the wallet's ledger",
        """
        -- Copies of the wallet's LedgerEntryRecorded events, append-only: the source from
        -- which account_wallets is rebuilt (services/intake/store/wallets.py).
        CREATE TABLE account_ledger (
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
        CREATE INDEX account_ledger_team_time ON account_ledger (team_id, recorded_at);
        -- The figures of each team's latest wallet version seen.
        CREATE TABLE account_wallets (
            team_id          text PRIMARY KEY,
            wallet_version   int         NOT NULL,
            balance_micros   bigint      NOT NULL,
            reserved_micros  bigint      NOT NULL,
            available_micros bigint      NOT NULL,
            updated_at       timestamptz NOT NULL
        );
        """,
    ),
    Migration(
        102,
        "callback delivery log",
        """
        -- The notifier's CallbackAttempted events, for GET /detect/batch/{uuid}/callbacks.
        CREATE TABLE callback_attempts (
            webhook_id      text        NOT NULL,
            attempt         int         NOT NULL,
            team_id         text        NOT NULL,
            batch_id        text        NOT NULL,
            url             text        NOT NULL,
            outcome         text        NOT NULL,
            status_code     int,
            error           text,
            next_attempt_at timestamptz,
            attempted_at    timestamptz NOT NULL,
            PRIMARY KEY (webhook_id, attempt)
        );
        CREATE INDEX callback_attempts_batch ON callback_attempts (team_id, batch_id);
        """,
    ),
    Migration(
        103,
        "batches and detects read models; idempotency keys",
        """
        -- Projections of the batch streams (services/intake/store/batches.py BatchProjection), the
        -- only source of GET /detect*. Rebuilt from `events` by `verity-admin rebuild`.
        CREATE TABLE batches (
            batch_id        text PRIMARY KEY,
            team_id         text        NOT NULL,
            kind            text        NOT NULL,
            status          text        NOT NULL,
            total_files     int         NOT NULL DEFAULT 0,
            completed_count int         NOT NULL DEFAULT 0,
            failed_count    int         NOT NULL DEFAULT 0,
            detect_ids      text[]      NOT NULL DEFAULT '{}',
            options         jsonb       NOT NULL DEFAULT '{}',
            reserved_micros bigint,
            rejection       jsonb,
            created_at      timestamptz NOT NULL,
            updated_at      timestamptz NOT NULL,
            finished_at     timestamptz
        );
        CREATE INDEX batches_team_list ON batches (team_id, kind, created_at DESC, batch_id);
        CREATE TABLE detects (
            detect_id        text PRIMARY KEY,
            team_id          text        NOT NULL,
            batch_id         text        NOT NULL,
            kind             text        NOT NULL,
            position         int         NOT NULL,
            filename         text        NOT NULL,
            media_type       text        NOT NULL,
            duration_seconds double precision,
            analysed_seconds double precision,
            size_bytes       bigint      NOT NULL,
            blob_key         text        NOT NULL,
            options          jsonb       NOT NULL,
            status           text        NOT NULL,
            error_code       text,
            error_message    text,
            result           jsonb,
            media_deleted    boolean     NOT NULL DEFAULT false,
            file_deleted_at  timestamptz,
            created_at       timestamptz NOT NULL,
            updated_at       timestamptz NOT NULL
        );
        CREATE INDEX detects_team_list ON detects (team_id, created_at DESC, detect_id);
        CREATE INDEX detects_batch ON detects (batch_id, position);
        -- Idempotency-Key (API.md): the first successful response to (team, key), replayed for
        -- 24 h to a retry with the same request fingerprint. A row without a response is a
        -- request still in flight.
        CREATE TABLE idempotency_keys (
            team_id      text        NOT NULL,
            key          text        NOT NULL,
            fingerprint  text        NOT NULL,
            status_code  int,
            body         jsonb,
            headers      jsonb,
            created_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (team_id, key)
        );
        """,
    ),
    Migration(
        104,
        "ledger lookups by batch",
        """
        -- A batch item's charged/refunded cents sum its ledger entries (api/views.py); without this
        -- every listed batch would scan the team's whole ledger.
        CREATE INDEX account_ledger_batch ON account_ledger (batch_id, kind)
            WHERE batch_id IS NOT NULL;
        """,
    ),
    Migration(
        105,
        "saved identities and voiceprint search answers",
        """
        -- Read model of the identity streams (identities.py); rebuilt with the others.
        CREATE TABLE identities (
            identity_id    text PRIMARY KEY,
            team_id        text        NOT NULL,
            name           text        NOT NULL,
            status         text        NOT NULL,
            embedding      float8[],
            speech_seconds double precision,
            same_speaker   jsonb,
            error_code     text,
            error_message  text,
            created_at     timestamptz NOT NULL,
            updated_at     timestamptz NOT NULL
        );
        CREATE INDEX identities_team_list ON identities (team_id, created_at DESC, identity_id);
        -- The voiceprint of a POST /identity/search query, until the waiting request reads it.
        CREATE TABLE voiceprint_answers (
            request_id    text PRIMARY KEY,
            team_id       text        NOT NULL,
            embedding     float8[],
            same_speaker  jsonb,
            error_message text,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    Migration(
        106,
        "why a search got no voiceprint",
        """
        -- The sample's fault (422) or the detector's (503): identity_api tells them apart.
        ALTER TABLE voiceprint_answers ADD COLUMN error_code text;
        """,
    ),
    Migration(
        107,
        "secure uploads (media tokens)",
        """
        -- POST /secure_uploads: a stored file waiting for the /detect that names its token.
        -- Used once (used_at, used_by = the batch); its blob is deleted when it expires unused.
        CREATE TABLE secure_uploads (
            upload_id  text PRIMARY KEY,
            team_id    text        NOT NULL,
            blob_key   text        NOT NULL,
            filename   text        NOT NULL,
            size_bytes bigint      NOT NULL,
            sha256     text        NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            used_at    timestamptz,
            used_by    text
        );
        CREATE INDEX secure_uploads_expiry ON secure_uploads (expires_at) WHERE used_at IS NULL;
        """,
    ),
    Migration(
        108,
        "feedback on detects",
        """
        -- Read model of the feedback streams (store/feedback.py); rebuilt with the others.
        CREATE TABLE detect_feedback (
            detect_id  text        NOT NULL,
            token_id   text        NOT NULL,
            team_id    text        NOT NULL,
            type       text        NOT NULL,
            vote       text        NOT NULL,
            verdict    text,
            score      double precision,
            media_type text        NOT NULL,
            metrics    jsonb       NOT NULL,
            comment    text,
            source     text        NOT NULL,
            credit     integer     NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (detect_id, token_id)
        );
        CREATE INDEX detect_feedback_team ON detect_feedback (team_id, updated_at DESC);
        """,
    ),
    Migration(
        109,
        "questions about detects",
        """
        -- Read model of the question streams (store/questions.py); rebuilt with the others.
        CREATE TABLE detect_questions (
            question_id   text PRIMARY KEY,
            team_id       text        NOT NULL,
            detect_id     text        NOT NULL,
            query         text        NOT NULL,
            status        text        NOT NULL,
            answer        text,
            model         text,
            error_code    text,
            error_message text,
            created_at    timestamptz NOT NULL,
            updated_at    timestamptz NOT NULL
        );
        """,
    ),
]
