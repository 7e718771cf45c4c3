-- Idempotency-Key: the first answer to a POST, per principal (a user's or a client's id) and
-- key, so that a retry on any replica, or after a restart, gets it again instead of writing
-- twice. A row is claimed (`completed_at` null) before the handler runs and completed with the
-- answer after; `claim` names the attempt that holds it, so an attempt whose row was taken over
-- (abandoned past the request timeout) cannot overwrite or delete its successor's.
CREATE TABLE idempotency_keys (
    principal_id  uuid NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the method, the path with its query and the body.
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    claim         uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    status        smallint,
    -- [[name, value], ...]: the headers a replay repeats (Content-Type, Location, ETag, ...).
    headers       jsonb,
    body          bytea,
    -- The answer showed a secret once (a new client's, a rotated one): only this marker and
    -- the status are kept, never the body.
    shown_once    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (principal_id, key),
    CONSTRAINT idempotency_keys_completed_has_status
        CHECK (completed_at IS NULL OR status IS NOT NULL),
    CONSTRAINT idempotency_keys_secret_never_stored
        CHECK (NOT shown_once OR body IS NULL)
);
-- The expiry sweep deletes by age.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
