DROP INDEX audit_events_request_idx;
CREATE INDEX audit_events_request_idx ON audit_events (request_id);
DROP INDEX audit_events_at_idx;
DROP INDEX audit_events_action_idx;
DROP INDEX audit_events_entity_kind_idx;
