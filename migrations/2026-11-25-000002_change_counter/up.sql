-- A counter of committed changes, for list ETags: a list's ETag derives from it, so a poll
-- answers 304 without running the list query, and never from hashing the result.
-- Every write commits with an audit event, so one statement-level trigger on audit_events
-- counts every change. Rows (not a sequence) because the count must move only when the change
-- commits: a sequence would hand a poll the new value while the write is still invisible.
-- Sixteen shards, one picked at random per statement, so concurrent writers seldom wait on
-- each other's row lock; the counter is their sum.
CREATE TABLE change_counter (
    shard smallint PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    value bigint NOT NULL
);
INSERT INTO change_counter (shard, value) SELECT s, 0 FROM generate_series(0, 15) AS s;

CREATE FUNCTION lshub_count_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counter SET value = value + 1 WHERE shard = floor(random() * 16)::smallint;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_events_count_change
    AFTER INSERT ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION lshub_count_change();
