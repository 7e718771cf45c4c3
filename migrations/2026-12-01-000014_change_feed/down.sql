DROP INDEX audit_events_feed_entity_idx;
DROP INDEX audit_events_feed_idx;
DROP INDEX audit_events_seq_idx;
ALTER TABLE audit_events DROP COLUMN version, DROP COLUMN txid, DROP COLUMN seq;
