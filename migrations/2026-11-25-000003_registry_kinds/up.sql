-- The other three kinds of organisation, each a detail table of `organisations`.

CREATE TABLE irccs (
    organisation_id         uuid PRIMARY KEY REFERENCES organisations (id),
    ownership               text CHECK (ownership IN ('public', 'private')),
    specialisations         text[] NOT NULL CHECK (
                                cardinality(specialisations) >= 1
                                AND specialisations <@ ARRAY['cardiology', 'oncology', 'rehabilitation',
                                    'neurology', 'molecular_medicine', 'psychiatry', 'rare_diseases',
                                    'musculoskeletal', 'pediatrics', 'other']),
    beds                    integer CHECK (beds >= 0),
    emergency_care          boolean,
    serves_foreign_patients boolean
);
CREATE INDEX irccs_specialisations_idx ON irccs USING gin (specialisations);
CREATE INDEX irccs_ownership_idx ON irccs (ownership);
CREATE INDEX irccs_beds_idx ON irccs ((COALESCE(beds::bigint, 9223372036854775807)), organisation_id);
CREATE INDEX irccs_beds_desc_idx ON irccs ((COALESCE(beds::bigint, -9223372036854775807)), organisation_id);

CREATE TABLE universities (
    organisation_id     uuid PRIMARY KEY REFERENCES organisations (id),
    ownership           text CHECK (ownership IN ('public', 'private')),
    has_medical_faculty boolean,
    students            integer CHECK (students >= 0),
    ror_id              text
);
-- A ROR id names one institution: like a VAT number, it stays with an archived record.
CREATE UNIQUE INDEX universities_ror_id_key ON universities (ror_id);
CREATE INDEX universities_ownership_idx ON universities (ownership);
CREATE INDEX universities_medical_idx ON universities (has_medical_faculty);
CREATE INDEX universities_students_idx ON universities ((COALESCE(students::bigint, 9223372036854775807)), organisation_id);
CREATE INDEX universities_students_desc_idx ON universities ((COALESCE(students::bigint, -9223372036854775807)), organisation_id);

-- Subject rankings, a child collection written and read with its university (replaced whole).
CREATE TABLE university_rankings (
    university_id uuid NOT NULL REFERENCES universities (organisation_id),
    position      smallint NOT NULL,
    area          text NOT NULL CHECK (area IN ('life_sciences_and_medicine', 'natural_sciences',
                      'management_and_social_sciences', 'engineering_and_technology', 'arts_and_humanities')),
    rank          integer NOT NULL CHECK (rank >= 1),
    source        text NOT NULL,
    year          integer NOT NULL,
    PRIMARY KEY (university_id, position),
    CONSTRAINT university_rankings_one_per_area_source_year UNIQUE (university_id, area, source, year)
);
-- `ranking_area` + `max_rank`: the universities ranked at most N in an area.
CREATE INDEX university_rankings_area_rank_idx ON university_rankings (area, rank, university_id);

CREATE TABLE partners (
    organisation_id uuid PRIMARY KEY REFERENCES organisations (id),
    partner_type    text NOT NULL CHECK (partner_type IN ('public_institution', 'trade_association',
                        'cluster', 'agency', 'foreign_representation', 'research_foundation',
                        'investor', 'other')),
    scope           text CHECK (scope IN ('local', 'regional', 'national', 'international'))
);
CREATE INDEX partners_type_idx ON partners (partner_type);
CREATE INDEX partners_scope_idx ON partners (scope);

-- The cross-kind view sorts and filters without a kind.
CREATE INDEX organisations_name_idx ON organisations (name_key, id);
CREATE INDEX organisations_created_idx ON organisations (created_at, id);
CREATE INDEX organisations_updated_idx ON organisations (updated_at, id);
CREATE INDEX organisations_province_idx ON organisations (address_province);
