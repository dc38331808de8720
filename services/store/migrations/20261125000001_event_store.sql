-- The event store: one row per fact, the one source of truth.
--
-- Writers insert events unsequenced (position, recorded_at and hash NULL),
-- stamped with their transaction id, and commit in parallel. The sequencer
-- alone assigns the dense global position, a never-decreasing recorded_at
-- and the chain hash, taking only rows whose transaction has ended
-- (xid below the snapshot's xmin), so no late commit is ever skipped.
CREATE TABLE events (
    event_id        uuid        PRIMARY KEY,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    version         bigint      NOT NULL CHECK (version >= 1),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    effective_date  date        NOT NULL,
    publisher       text        NOT NULL,
    actor           text        NOT NULL,
    command_id      text,
    correlation_id  text,
    xid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
    insert_order    bigint      GENERATED ALWAYS AS IDENTITY,
    position        bigint      UNIQUE,
    recorded_at     timestamptz,
    hash            bytea,
    UNIQUE (aggregate_type, aggregate_id, version),
    CHECK ((position IS NULL) = (recorded_at IS NULL)),
    CHECK ((position IS NULL) = (hash IS NULL))
);

CREATE INDEX events_unsequenced ON events (xid, insert_order) WHERE position IS NULL;
CREATE INDEX events_by_effective_date ON events (effective_date);

-- The sequencer's head: one row, locked by the sequencer for the length of
-- a batch (so two sequencers never interleave) and updated with it.
CREATE TABLE ledger_head (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    position    bigint      NOT NULL,
    recorded_at timestamptz,
    hash        bytea       NOT NULL
);
INSERT INTO ledger_head (position, recorded_at, hash) VALUES (0, NULL, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Commands already answered, per token and idempotency key: a retry gets the
-- first answer (rebuilt from the events it recorded) and records nothing.
CREATE TABLE command_requests (
    token_id        uuid        NOT NULL,
    idempotency_key text        NOT NULL,
    command         text        NOT NULL,
    request_hash    bytea       NOT NULL,
    event_ids       uuid[]      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, idempotency_key)
);

-- Access tokens, stored as SHA-256 of the secret.
CREATE TABLE tokens (
    token_id     uuid        PRIMARY KEY,
    name         text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('admin', 'unit_officer', 'inspector', 'publisher')),
    unit_id      text,
    publisher_id text,
    secret_hash  bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK ((role = 'unit_officer') = (unit_id IS NOT NULL)),
    CHECK ((role = 'publisher') = (publisher_id IS NOT NULL))
);

-- Where each in-process reader of the ledger (policies) has got to; written
-- in the same transaction as the reader's effects.
CREATE TABLE reader_checkpoints (
    reader   text   PRIMARY KEY,
    position bigint NOT NULL
);
