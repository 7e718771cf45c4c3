CREATE OR REPLACE FUNCTION lshub_count_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counter SET value = value + 1 WHERE shard = floor(random() * 16)::smallint;
    RETURN NULL;
END
$$;
