-- The token endpoint's rate limits, shared by every replica: one GCRA bucket per client IP and
-- per account (a username's or a client id's digest, so guessed usernames are not kept).
-- `tat` is the theoretical arrival time: the bucket is full again at `tat`, and a request
-- conforms while `tat - emission_us * (burst - 1)` is not in the future. A row whose `tat` has
-- passed is a full bucket, the same as no row, and is deleted.
CREATE TABLE token_rate_limits (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL,
    -- The bucket's shape as of the last request (the settings may change between restarts).
    emission_us bigint NOT NULL CHECK (emission_us > 0),
    burst integer NOT NULL CHECK (burst > 0),
    -- The last request's decision, for RETURNING: the update keeps `tat` when it refuses.
    allowed boolean NOT NULL
);

CREATE INDEX token_rate_limits_tat ON token_rate_limits (tat);
