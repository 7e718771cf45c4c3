-- The shard is picked once per statement. `WHERE shard = floor(random() * 16)` evaluated
-- random() again for every row it compared, so a write bumped no shard about a third of the
-- time (and several shards at others): list ETags then stayed put while the data changed.
CREATE OR REPLACE FUNCTION lshub_count_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    picked smallint := floor(random() * 16)::smallint;
BEGIN
    UPDATE change_counter SET value = value + 1 WHERE shard = picked;
    RETURN NULL;
END
$$;
