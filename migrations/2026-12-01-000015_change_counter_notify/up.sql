-- Each counted change also announces itself on `lshub_changes`, so that every replica re-reads
-- the counter when (and only when) it moved, and answers matching polls from memory meanwhile.
-- NOTIFY is delivered at commit, and notifications of one transaction with one payload fold
-- into one: a transaction costs one re-read per replica, however many statements it ran.
CREATE OR REPLACE FUNCTION lshub_count_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    picked smallint := floor(random() * 16)::smallint;
BEGIN
    UPDATE change_counter SET value = value + 1 WHERE shard = picked;
    PERFORM pg_notify('lshub_changes', '');
    RETURN NULL;
END
$$;
