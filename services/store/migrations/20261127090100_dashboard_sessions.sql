-- The dashboard's sessions. The browser's cookie holds a random session id
-- (32 bytes), never the token it was opened with; the ledger keeps only the
-- id's SHA-256, the token and when the session ends. A session of a revoked
-- token is no session (the lookup joins `tokens`); signing out deletes it.
CREATE TABLE dashboard_sessions (
    session_hash bytea       PRIMARY KEY,
    token_id     uuid        NOT NULL REFERENCES tokens (token_id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);

-- Sign-in removes the sessions that ended (expired or revoked).
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
CREATE INDEX dashboard_sessions_by_token ON dashboard_sessions (token_id);
