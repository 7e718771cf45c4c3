DROP INDEX activity_participants_counted_idx;
DROP INDEX companies_stats_idx;
DROP INDEX organisations_stats_idx;
