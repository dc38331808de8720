-- Who read personal data, and when: one row per read of a person's history
-- and per report read for a unit (CONTRACT.md "Access": inspectors read it).
-- A read whose row cannot be written is refused, so the log misses nothing
-- that was answered.
--
-- Rows are written one at a time under an advisory lock (see
-- docs/adr/0010-audit-trails-and-access-records.md), so `access_id` order is
-- commit order: a reader paging by `access_id` never skips a row that
-- commits late.
CREATE TABLE access_log (
    access_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_at       timestamptz NOT NULL,
    token_id      uuid        NOT NULL,
    token_name    text        NOT NULL,
    role          text        NOT NULL,
    -- The path and query as requested.
    path          text        NOT NULL,
    -- The person whose data was read (also for an enrollment's history).
    official_id   text,
    enrollment_id text,
    -- The unit a report was read for.
    unit_id       text,
    CHECK (official_id IS NOT NULL OR enrollment_id IS NOT NULL OR unit_id IS NOT NULL)
);

CREATE INDEX access_log_by_time ON access_log (read_at);
