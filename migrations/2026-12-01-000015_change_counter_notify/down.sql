CREATE OR REPLACE FUNCTION lshub_count_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    picked smallint := floor(random() * 16)::smallint;
BEGIN
    UPDATE change_counter SET value = value + 1 WHERE shard = picked;
    RETURN NULL;
END
$$;
