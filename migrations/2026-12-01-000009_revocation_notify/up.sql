-- Disabling a user or revoking an API client is announced on lshub_revocations when it
-- commits ("+<id>": refused from now on; "-<id>": admitted again), so every replica's
-- in-memory revocation set follows within its poll interval, without a query per request.
CREATE FUNCTION lshub_notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was timestamptz;
    now_ timestamptz;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        was := OLD.disabled_at;
        now_ := NEW.disabled_at;
    ELSE
        was := OLD.revoked_at;
        now_ := NEW.revoked_at;
    END IF;
    IF (was IS NULL) <> (now_ IS NULL) THEN
        PERFORM pg_notify('lshub_revocations',
                          CASE WHEN now_ IS NULL THEN '-' ELSE '+' END || NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify_revocation
    AFTER UPDATE OF disabled_at ON users
    FOR EACH ROW EXECUTE FUNCTION lshub_notify_revocation();
CREATE TRIGGER api_clients_notify_revocation
    AFTER UPDATE OF revoked_at ON api_clients
    FOR EACH ROW EXECUTE FUNCTION lshub_notify_revocation();
