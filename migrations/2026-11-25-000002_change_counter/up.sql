-- A counter of committed changes, for list ETags: a list's ETag derives from it, so a poll
-- answers 304 without running the list query, and never from hashing the result.
-- Every write commits with an audit event, so one statement-level trigger on audit_events
-- counts every change. A row (not a sequence) because it must move only when the change
-- commits: a sequence would hand a poll the new value while the write is still invisible.
CREATE TABLE change_counter (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    value bigint NOT NULL
);
INSERT INTO change_counter (id, value) VALUES (true, 0);

CREATE FUNCTION lshub_count_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counter SET value = value + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_events_count_change
    AFTER INSERT ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION lshub_count_change();
