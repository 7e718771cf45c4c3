-- API clients: partners' and tools' machine integrations (OAuth2 client_credentials). The
-- secret is stored as an Argon2 hash and shown once; after a rotation the previous one keeps
-- working until previous_valid_until. A partner client acts for exactly one organisation.
CREATE TABLE api_clients (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL CHECK (length(name) BETWEEN 2 AND 200),
    role                  text NOT NULL CHECK (role IN ('viewer', 'partner', 'editor', 'admin')),
    organisation_id       uuid REFERENCES organisations (id),
    secret_hash           text NOT NULL,
    previous_secret_hash  text,
    previous_valid_until  timestamptz,
    revoked_at            timestamptz,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               bigint NOT NULL DEFAULT 1,
    CONSTRAINT api_clients_partner_has_organisation
        CHECK ((role = 'partner') = (organisation_id IS NOT NULL))
);
CREATE INDEX api_clients_organisation_idx ON api_clients (organisation_id);
