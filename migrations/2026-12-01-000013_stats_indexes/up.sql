-- Statistics read every live organisation's group keys and, for companies, the summed figures
-- (src/models/stats.rs). These two covering indexes let both sides of that join be index-only
-- scans, a fraction of the pages of the wide organisations rows (names, descriptions, search
-- keys) and of the companies rows.
CREATE INDEX organisations_stats_idx ON organisations (kind, address_province, in_mind, id)
    WHERE archived_at IS NULL;
CREATE INDEX companies_stats_idx ON companies (organisation_id)
    INCLUDE (sector, employees, revenue_eur, rd_investment_eur, exports_eur);
-- Goal statistics count the participations that still hold (proposed or confirmed) of each
-- activity: the existing (activity_id, organisation_id) index cannot tell them apart without
-- reading every row.
CREATE INDEX activity_participants_counted_idx ON activity_participants (activity_id, organisation_id)
    WHERE status IN ('proposed', 'confirmed');
