-- A revoked token must stop working in every serving process within a
-- second, not when their caches of verified tokens expire: each change to a
-- token row (a revocation, or a row deleted by hand) is announced on the
-- channel `tledger_token_changed` with the token's id, at commit, and each
-- process drops that token from its cache (services/tledger/src/access.rs).
CREATE FUNCTION announce_token_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tledger_token_changed', OLD.token_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_announce_change
    AFTER UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION announce_token_change();
