DROP INDEX audit_events_related_idx;
ALTER TABLE audit_events DROP COLUMN related;
