-- One-time set-password tokens: a user created without a password, or whose password an admin
-- resets, sets its own with one. At most one per user (a fresh token replaces the last, so
-- older ones stop working); only the SHA-256 digest of the 256-bit token is kept. The token
-- expires `LSHUB_SET_PASSWORD_TOKEN_TTL` seconds after `issued_at`, measured when it is used,
-- so a shorter setting also shortens tokens already handed out.
CREATE TABLE set_password_tokens (
    user_id    uuid PRIMARY KEY REFERENCES users (id),
    token_hash bytea NOT NULL,
    issued_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX set_password_tokens_hash_key ON set_password_tokens (token_hash);
