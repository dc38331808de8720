-- A row the relay writes, with a synchronous commit, when what it is about
-- to publish may not yet be flushed to disk: the sequencer commits
-- asynchronously (docs/adr/0008-asynchronous-sequencer-commit.md), and a
-- synchronous commit flushes the write-ahead log up to and including every
-- commit before it.
CREATE TABLE durability_barrier (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    flushed_at timestamptz NOT NULL
);
