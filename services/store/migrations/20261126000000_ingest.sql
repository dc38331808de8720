-- Publishing bodies and what they sent (CONTRACT.md "Publishing facts").
--
-- An accepted `(source, id)` is deduplicated for ever through
-- `command_requests`, written in the same statement as the fact's events
-- (token_id = the publisher's dedup id, idempotency_key = the CloudEvent
-- id, request_hash = SHA-256 of the fact's canonical content). The tables
-- here keep what does not become a fact: receipts, quarantine and parked
-- facts, so that nothing a publisher sent is dropped without a record.

CREATE TABLE publishers (
    publisher_id text        PRIMARY KEY,
    source       text        NOT NULL UNIQUE,
    -- The root of the publisher's unit subtree; NULL: every unit.
    unit_id      text,
    -- The fact types it may publish; NULL: every type.
    types        text[],
    -- ed25519 public key (32 bytes) checking `tlsignature`; NULL: unsigned.
    public_key   bytea       CHECK (public_key IS NULL OR length(public_key) = 32),
    -- The `command_requests.token_id` its facts are deduplicated under.
    dedup_id     uuid        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

-- The latest receipt for each `(source, id)`.
CREATE TABLE ingest_receipts (
    source       text        NOT NULL,
    id           text        NOT NULL,
    publisher_id text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('accepted', 'duplicate', 'parked', 'rejected')),
    reason       text,
    field        text,
    position     bigint,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

-- Rejected messages, as received, until someone resubmits or discards them.
CREATE TABLE quarantine (
    item_id        uuid        PRIMARY KEY,
    publisher_id   text        NOT NULL,
    -- From the message when it parsed that far.
    source         text,
    id             text,
    received_at    timestamptz NOT NULL,
    reason         text        NOT NULL,
    field          text,
    status         text        NOT NULL DEFAULT 'quarantined'
                   CHECK (status IN ('quarantined', 'resubmitted', 'discarded')),
    message        bytea       NOT NULL,
    resolved_by    text,
    resolved_note  text,
    resolved_at    timestamptz
);
CREATE INDEX quarantine_by_publisher ON quarantine (publisher_id, received_at);

-- Facts waiting for a stream they refer to (`official-…`, `enrollment-…`,
-- `unit-…`); retried when it appears, rejected after the parking time.
CREATE TABLE parked_facts (
    source       text        NOT NULL,
    id           text        NOT NULL,
    publisher_id text        NOT NULL,
    message      bytea       NOT NULL,
    waiting_for  text[]      NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

-- How far `tledger import` got through a file (by its SHA-256): a re-run
-- starts after the last line whose outcome was recorded.
CREATE TABLE import_progress (
    file_sha256 bytea       PRIMARY KEY,
    lines_done  bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
