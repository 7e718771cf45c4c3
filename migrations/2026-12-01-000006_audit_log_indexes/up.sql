-- The audit log (GET /api/v1/audit-events) lists newest first by id and filters on actor,
-- entity, record, action, time and request: an index for each, ending in id so that a
-- filtered page is a range read in the list's order. (actor_id, id) and (entity_id, id) exist.
CREATE INDEX audit_events_entity_kind_idx ON audit_events (entity, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, id);
CREATE INDEX audit_events_at_idx ON audit_events (at, id);
DROP INDEX audit_events_request_idx;
CREATE INDEX audit_events_request_idx ON audit_events (request_id, id);
