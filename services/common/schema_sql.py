"""DDL shared by every service schema (applied inside the schema by `db.migrate`)."""

COMMON_V1 = """
-- The event log. (stream_id, version) is the optimistic-concurrency key: two writers that
-- read the same version race to insert the same primary key and exactly one wins.
-- `position` orders all events of the schema for replay (projection rebuilds).
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    stream_id      text        NOT NULL,
    version        int         NOT NULL CHECK (version >= 1),
    event_id       text        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    schema_version int         NOT NULL,
    payload        jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);

-- Events waiting to be published to Kafka, written in the same transaction as `events`.
-- The relay deletes a row only after the broker acknowledged it (acks=all).
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    event_id   text        NOT NULL,
    event_type text        NOT NULL,
    payload    bytea       NOT NULL,
    headers    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Events a consumer group has processed. Inserted in the same transaction as the
-- consumer's effects, so a redelivered event finds its row and changes nothing.
CREATE TABLE inbox (
    consumer_group text        NOT NULL,
    event_id       text        NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
"""
