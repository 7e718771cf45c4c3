-- Foundation: search helpers, the organisation identity with its company detail table,
-- users and refresh tokens, and the audit trail.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- unaccent() is STABLE (it reads a dictionary chosen by search_path), so it cannot back an
-- index or a generated column; naming the dictionary explicitly makes this wrapper safe to
-- declare IMMUTABLE.
CREATE FUNCTION lshub_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN public.unaccent('public.unaccent'::regdictionary, $1);

-- The folded form used for uniqueness and search: case, accents, dash variants and runs of
-- white space do not distinguish two names.
CREATE FUNCTION lshub_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN btrim(regexp_replace(
        translate(lower(public.lshub_unaccent($1)), E'\u2010\u2011\u2012\u2013\u2014\u2015\u2212', '-------'),
        '\s+', ' ', 'g'));

-- Class-table inheritance: one identity for every kind, so links can point at any organisation
-- with one foreign key; kind-specific fields live in one detail table per kind.
CREATE TABLE organisations (
    id                  uuid PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('company', 'irccs', 'university', 'partner')),
    name                text NOT NULL CHECK (char_length(name) BETWEEN 2 AND 200),
    name_key            text NOT NULL GENERATED ALWAYS AS (lshub_fold(name)) STORED,
    legal_name          text,
    search_key          text NOT NULL GENERATED ALWAYS AS (lshub_fold(name || coalesce(' ' || legal_name, ''))) STORED,
    description         text,
    website             text,
    email               text,
    phone               text,
    address_street      text,
    address_city        text,
    address_postal_code text,
    address_province    text,
    address_country     text NOT NULL DEFAULT 'IT',
    tags                text[] NOT NULL DEFAULT '{}',
    in_mind             boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    version             bigint NOT NULL DEFAULT 1,
    archived_at         timestamptz
);

-- Names are unique per kind among live records only: an archived record frees its name.
CREATE UNIQUE INDEX organisations_live_name_key ON organisations (kind, name_key) WHERE archived_at IS NULL;
-- Sorts (kind is always fixed by the route or the filter); id breaks ties.
CREATE INDEX organisations_kind_name_idx ON organisations (kind, name_key, id);
CREATE INDEX organisations_kind_created_idx ON organisations (kind, created_at, id);
CREATE INDEX organisations_kind_updated_idx ON organisations (kind, updated_at, id);
-- Filters.
CREATE INDEX organisations_kind_province_idx ON organisations (kind, address_province);
CREATE INDEX organisations_kind_in_mind_idx ON organisations (kind, in_mind);
CREATE INDEX organisations_tags_idx ON organisations USING gin (tags);
-- Substring and word-similarity search over the folded name and legal name.
CREATE INDEX organisations_search_trgm_idx ON organisations USING gin (search_key gin_trgm_ops);

CREATE TABLE companies (
    organisation_id     uuid PRIMARY KEY REFERENCES organisations (id),
    vat_number          text,
    sector              text NOT NULL CHECK (sector IN ('pharmaceutical', 'biopharmaceutical', 'biotech',
                            'medical_devices', 'cdmo', 'healthcare_services', 'digital_health',
                            'nutraceutical', 'other')),
    device_segment      text CHECK (device_segment IN ('biomedicine', 'instrumental_biomedicine',
                            'technical_equipment', 'services_and_software', 'in_vitro_diagnostics',
                            'electromedicine', 'other')),
    ateco_code          text,
    employees           integer CHECK (employees >= 0),
    revenue_eur         bigint CHECK (revenue_eur >= 0),
    rd_investment_eur   bigint CHECK (rd_investment_eur >= 0),
    exports_eur         bigint CHECK (exports_eur >= 0),
    founded_year        integer,
    assolombarda_member boolean NOT NULL DEFAULT false,
    CONSTRAINT companies_device_segment_only_for_devices
        CHECK (device_segment IS NULL OR sector = 'medical_devices')
);

-- A VAT number names one legal entity for good: an archived company keeps it, and is restored
-- rather than created again.
CREATE UNIQUE INDEX companies_vat_number_key ON companies (vat_number);
CREATE INDEX companies_sector_idx ON companies (sector);
CREATE INDEX companies_assolombarda_member_idx ON companies (assolombarda_member);
-- Nullable sort keys sort NULLS LAST both ways as COALESCE(key, sentinel) (see db::list::SortKey):
-- these expressions are the ones the list queries order by, so each direction is one index range.
CREATE INDEX companies_employees_idx ON companies ((COALESCE(employees::bigint, 9223372036854775807)), organisation_id);
CREATE INDEX companies_employees_desc_idx ON companies ((COALESCE(employees::bigint, -9223372036854775807)), organisation_id);
CREATE INDEX companies_revenue_idx ON companies ((COALESCE(revenue_eur, 9223372036854775807)), organisation_id);
CREATE INDEX companies_revenue_desc_idx ON companies ((COALESCE(revenue_eur, -9223372036854775807)), organisation_id);
CREATE INDEX companies_founded_year_idx ON companies ((COALESCE(founded_year::bigint, 9223372036854775807)), organisation_id);
CREATE INDEX companies_founded_year_desc_idx ON companies ((COALESCE(founded_year::bigint, -9223372036854775807)), organisation_id);
-- Range filters.
CREATE INDEX companies_employees_filter_idx ON companies (employees);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    email           text NOT NULL,
    password_hash   text,
    role            text NOT NULL CHECK (role IN ('viewer', 'partner', 'editor', 'admin')),
    organisation_id uuid REFERENCES organisations (id),
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint NOT NULL DEFAULT 1,
    -- A partner acts for exactly one organisation; other roles act for the hub.
    CONSTRAINT users_partner_has_organisation CHECK ((role = 'partner') = (organisation_id IS NOT NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_organisation_idx ON users (organisation_id);

-- Opaque refresh tokens, stored as SHA-256 digests. Each use rotates the token within its
-- family; presenting a rotated token again revokes the family (RFC 9700 §4.14.2).
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id),
    token_hash  bytea NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- The audit trail: one row per write, committed in the write's own transaction.
CREATE TABLE audit_events (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor_id    uuid,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'client', 'system')),
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   uuid NOT NULL,
    request_id  text,
    changes     jsonb NOT NULL
);
-- id is a UUID v7, so it orders events by time.
CREATE INDEX audit_events_entity_idx ON audit_events (entity_id, id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id);
CREATE INDEX audit_events_request_idx ON audit_events (request_id);
