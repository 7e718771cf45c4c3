DROP TRIGGER audit_events_count_change ON audit_events;
DROP FUNCTION lshub_count_change();
DROP TABLE change_counter;
