-- Organisation statistics from a rollup kept in the write's own transaction (issue 10): an
-- unfiltered GROUP BY over 110,000 organisations costs 110-150 ms of CPU, and 16 dashboards
-- queue behind two cores. `GET /stats/organisations` answers from these counts whenever its
-- filters are the rollup's dimensions (src/models/stats.rs), and from the live GROUP BY
-- otherwise.
--
-- Why triggers, not the pipeline: the record pipeline, imports, archive/restore and the seed
-- write organisations and details through several functions (single and batched inserts,
-- updates, an upsert, DELETE + INSERT of details); a trigger on each table the statistics read
-- sees every one of them, and any write added later, in the same transaction, so none can
-- forget the rollup or count it twice.
--
-- Why an append-only delta table, not one counter row per group: a group row (say live
-- biotech companies in MI outside MIND) is a hot row. Every write in the group would lock it
-- until commit, serialising concurrent PATCHes and imports, and a write moving a record from
-- group A to B (its organisation and its detail are two statements, each touching groups)
-- against one moving another from B to A would lock the two rows in opposite orders and
-- deadlock. Appending takes no row locks: writers never wait on each other here. Each
-- statement appends one row per group it changes (a statement-level trigger over the
-- transition tables: an import's thousand rows add a few dozen rows, not a thousand), with
-- signed counts and sums; readers add the base and the deltas up in one statement, one
-- snapshot. `lshub_stats_compact()` folds the deltas into the base now and then (the server
-- runs it every few seconds; one compaction at a time, by an advisory lock), so readers add
-- up a few hundred rows whatever the registry's size.
--
-- What a row counts: an organisation's contribution is what the live query reads of it, the
-- organisation LEFT JOINed with its companies, partners and irccs rows and the IRCCS's
-- specialisations unnested (universities' columns are no key, so they need no trigger). A
-- statement changing one table appends minus the contribution of every organisation it
-- touched as it was before (the transition table's old rows, the other tables as they are)
-- and plus the contribution after: whatever the order and number of statements, the deltas
-- add up to the contribution of what is committed, including an organisation whose detail
-- row is not written yet.
--
-- `members` counts an organisation once per specialisation (what group_by=specialisation
-- counts); `organisations` counts it once, on its first specialisation's row, so groups
-- without that key and the total count each record once. A sum's `_n` counts the figures
-- stated, so a group where none is stated sums to NULL as SUM does. Sums sit on every member
-- row; only companies have figures and a company has no specialisations (one kind, one
-- detail row), so they are counted once.

CREATE TABLE organisation_stats (
    archived            boolean NOT NULL,
    kind                text NOT NULL,
    province            text,
    in_mind             boolean NOT NULL,
    sector              text,
    partner_type        text,
    specialisation      text,
    organisations       bigint NOT NULL,
    members             bigint NOT NULL,
    employees           bigint NOT NULL,
    employees_n         bigint NOT NULL,
    revenue_eur         bigint NOT NULL,
    revenue_eur_n       bigint NOT NULL,
    rd_investment_eur   bigint NOT NULL,
    rd_investment_eur_n bigint NOT NULL,
    exports_eur         bigint NOT NULL,
    exports_eur_n       bigint NOT NULL,
    -- NULL is a group value like any other (no province, no sector).
    CONSTRAINT organisation_stats_group_key UNIQUE NULLS NOT DISTINCT
        (archived, kind, province, in_mind, sector, partner_type, specialisation)
);

-- No index: writers only append, the compaction and the readers read it whole.
CREATE TABLE organisation_stats_delta (LIKE organisation_stats);

-- The contribution rows (sign, the keys, first, the figures) of the organisations in `o`
-- (or, with `ids`, of those ids, read from `o`), each of `o`, `c`, `p`, `i` naming the
-- organisations, companies, partners and irccs rows to read: a table or a transition table.
CREATE FUNCTION lshub_stats_contributions(sign int, o text, c text, p text, i text, ids text DEFAULT NULL)
    RETURNS text LANGUAGE sql IMMUTABLE
    RETURN format(
        'SELECT %s AS sign, o.archived_at IS NOT NULL AS archived, o.kind, o.address_province AS province, '
        'o.in_mind, c.sector, p.partner_type, s.specialisation, coalesce(s.n, 1) = 1 AS first, '
        'c.employees::bigint AS employees, c.revenue_eur, c.rd_investment_eur, c.exports_eur '
        'FROM %s '
        'LEFT JOIN %s c ON c.organisation_id = o.id '
        'LEFT JOIN %s p ON p.organisation_id = o.id '
        'LEFT JOIN %s i ON i.organisation_id = o.id '
        'LEFT JOIN LATERAL unnest(i.specialisations) WITH ORDINALITY AS s(specialisation, n) ON TRUE',
        sign,
        CASE WHEN ids IS NULL THEN o || ' o' ELSE format('(%s) ids JOIN %s o ON o.id = ids.id', ids, o) END,
        c, p, i);

-- The statement appending the signed `rows` (contribution rows) to the deltas, one row per
-- group they change. A statement, not a function that runs it: transition tables are visible
-- to the trigger function's own statements only.
CREATE FUNCTION lshub_stats_delta_sql(rows text) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN format(
        'INSERT INTO organisation_stats_delta '
        'SELECT archived, kind, province, in_mind, sector, partner_type, specialisation, '
        'coalesce(sum(sign) FILTER (WHERE first), 0), sum(sign), '
        'coalesce(sum(sign * employees), 0), coalesce(sum(sign) FILTER (WHERE employees IS NOT NULL), 0), '
        'coalesce(sum(sign * revenue_eur), 0), coalesce(sum(sign) FILTER (WHERE revenue_eur IS NOT NULL), 0), '
        'coalesce(sum(sign * rd_investment_eur), 0), coalesce(sum(sign) FILTER (WHERE rd_investment_eur IS NOT NULL), 0), '
        'coalesce(sum(sign * exports_eur), 0), coalesce(sum(sign) FILTER (WHERE exports_eur IS NOT NULL), 0) '
        'FROM (%s) x GROUP BY 1, 2, 3, 4, 5, 6, 7 '
        -- A write that leaves its record in its group with the same figures changes nothing.
        'HAVING sum(sign) FILTER (WHERE first) <> 0 OR sum(sign) <> 0 '
        'OR sum(sign * employees) <> 0 OR sum(sign) FILTER (WHERE employees IS NOT NULL) <> 0 '
        'OR sum(sign * revenue_eur) <> 0 OR sum(sign) FILTER (WHERE revenue_eur IS NOT NULL) <> 0 '
        'OR sum(sign * rd_investment_eur) <> 0 OR sum(sign) FILTER (WHERE rd_investment_eur IS NOT NULL) <> 0 '
        'OR sum(sign * exports_eur) <> 0 OR sum(sign) FILTER (WHERE exports_eur IS NOT NULL) <> 0',
        rows);

-- Counts the registry afresh: the backfill, and after a TRUNCATE (which fires no row or
-- statement trigger with transition tables). Waits for a running compaction rather than
-- interleave with it.
CREATE FUNCTION lshub_stats_rebuild() RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7316213);
    DELETE FROM organisation_stats;
    DELETE FROM organisation_stats_delta;
    EXECUTE lshub_stats_delta_sql(
        lshub_stats_contributions(1, 'organisations', 'companies', 'partners', 'irccs'));
END
$$;

-- One function for the four tables and their events. Dynamic SQL because a transition table
-- exists only for its events (no old rows on INSERT), and because plpgsql would cache one
-- plan per function for tables of different shapes.
CREATE FUNCTION lshub_stats_track() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    empty text := format('(SELECT * FROM %I.%I WHERE FALSE)', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    before text := CASE WHEN TG_OP = 'INSERT' THEN empty ELSE 'old_rows' END;
    after text := CASE WHEN TG_OP = 'DELETE' THEN empty ELSE 'new_rows' END;
    ids text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM lshub_stats_rebuild();
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'organisations' THEN
        EXECUTE lshub_stats_delta_sql(
            lshub_stats_contributions(-1, before, 'companies', 'partners', 'irccs')
            || ' UNION ALL '
            || lshub_stats_contributions(1, after, 'companies', 'partners', 'irccs'));
        RETURN NULL;
    END IF;
    ids := format('SELECT organisation_id AS id FROM %s b UNION SELECT organisation_id FROM %s a', before, after);
    EXECUTE lshub_stats_delta_sql(
        lshub_stats_contributions(-1, 'organisations',
            CASE TG_TABLE_NAME WHEN 'companies' THEN before ELSE 'companies' END,
            CASE TG_TABLE_NAME WHEN 'partners' THEN before ELSE 'partners' END,
            CASE TG_TABLE_NAME WHEN 'irccs' THEN before ELSE 'irccs' END,
            ids)
        || ' UNION ALL '
        || lshub_stats_contributions(1, 'organisations',
            CASE TG_TABLE_NAME WHEN 'companies' THEN after ELSE 'companies' END,
            CASE TG_TABLE_NAME WHEN 'partners' THEN after ELSE 'partners' END,
            CASE TG_TABLE_NAME WHEN 'irccs' THEN after ELSE 'irccs' END,
            ids));
    RETURN NULL;
END
$$;

-- A trigger with transition tables takes one event, hence three a table.
CREATE TRIGGER organisations_stats_insert AFTER INSERT ON organisations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER organisations_stats_update AFTER UPDATE ON organisations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER organisations_stats_delete AFTER DELETE ON organisations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER companies_stats_insert AFTER INSERT ON companies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER companies_stats_update AFTER UPDATE ON companies
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER companies_stats_delete AFTER DELETE ON companies
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER partners_stats_insert AFTER INSERT ON partners
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER partners_stats_update AFTER UPDATE ON partners
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER partners_stats_delete AFTER DELETE ON partners
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER irccs_stats_insert AFTER INSERT ON irccs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER irccs_stats_update AFTER UPDATE ON irccs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER irccs_stats_delete AFTER DELETE ON irccs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();

CREATE TRIGGER organisations_stats_truncate AFTER TRUNCATE ON organisations
    FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER companies_stats_truncate AFTER TRUNCATE ON companies
    FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER partners_stats_truncate AFTER TRUNCATE ON partners
    FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();
CREATE TRIGGER irccs_stats_truncate AFTER TRUNCATE ON irccs
    FOR EACH STATEMENT EXECUTE FUNCTION lshub_stats_track();

-- A transition table holds the statement's rows, one or a thousand, and the planner cannot
-- tell how many: left to itself it hashes them against a sequential scan of the whole
-- registry, a cost per write that grows with the table (146 ms a 1,000-row statement at
-- 110,000 organisations). Index lookups per row suit every batch a write makes; a recount
-- reads everything, and scans.
ALTER FUNCTION lshub_stats_track() SET enable_seqscan = off;
ALTER FUNCTION lshub_stats_rebuild() SET enable_seqscan = on;

-- Folds the deltas into the base; how many groups it wrote. The DELETE and the upsert are one
-- statement, so a reader sees the deltas either still there or already in the base. Writers
-- are not blocked (they append rows this statement does not see); a second compaction skips
-- rather than waits, and base rows are written in key order, so compactions never deadlock.
CREATE FUNCTION lshub_stats_compact() RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    -- The rollup's key among the application's advisory locks (no other lock uses one).
    IF NOT pg_try_advisory_xact_lock(7316213) THEN
        RETURN 0;
    END IF;
    WITH moved AS (DELETE FROM organisation_stats_delta RETURNING *)
    INSERT INTO organisation_stats AS b
    SELECT archived, kind, province, in_mind, sector, partner_type, specialisation,
           sum(organisations), sum(members), sum(employees), sum(employees_n),
           sum(revenue_eur), sum(revenue_eur_n), sum(rd_investment_eur), sum(rd_investment_eur_n),
           sum(exports_eur), sum(exports_eur_n)
    FROM moved
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT ON CONSTRAINT organisation_stats_group_key DO UPDATE SET
        organisations = b.organisations + excluded.organisations,
        members = b.members + excluded.members,
        employees = b.employees + excluded.employees,
        employees_n = b.employees_n + excluded.employees_n,
        revenue_eur = b.revenue_eur + excluded.revenue_eur,
        revenue_eur_n = b.revenue_eur_n + excluded.revenue_eur_n,
        rd_investment_eur = b.rd_investment_eur + excluded.rd_investment_eur,
        rd_investment_eur_n = b.rd_investment_eur_n + excluded.rd_investment_eur_n,
        exports_eur = b.exports_eur + excluded.exports_eur,
        exports_eur_n = b.exports_eur_n + excluded.exports_eur_n;
    GET DIAGNOSTICS folded = ROW_COUNT;
    -- A group emptied by archives or moves: readers skip it anyway, and the base stays small.
    DELETE FROM organisation_stats
    WHERE organisations = 0 AND members = 0 AND employees = 0 AND employees_n = 0
      AND revenue_eur = 0 AND revenue_eur_n = 0 AND rd_investment_eur = 0 AND rd_investment_eur_n = 0
      AND exports_eur = 0 AND exports_eur_n = 0;
    RETURN folded;
END
$$;

-- Backfill: the registry as it stands, through the same contribution rows the triggers write.
SELECT lshub_stats_rebuild();
SELECT lshub_stats_compact();
