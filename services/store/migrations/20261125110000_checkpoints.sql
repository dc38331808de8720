-- Signed checkpoints (CONTRACT.md "Audit and inspection"): at `position`,
-- the chain hash and the RFC 9162 Merkle root of every event hash up to it,
-- signed with the ledger's ed25519 key. The public key is kept for display;
-- verification takes the key from outside the database.
CREATE TABLE checkpoints (
    position    bigint      PRIMARY KEY CHECK (position >= 1),
    chain_hash  bytea       NOT NULL,
    merkle_root bytea       NOT NULL,
    time        text        NOT NULL,
    key_id      text        NOT NULL,
    signature   bytea       NOT NULL,
    public_key  bytea       NOT NULL
);
