-- Goal statistics count the participations that still hold (proposed or confirmed) of each
-- activity (src/models/stats.rs): the existing (activity_id, organisation_id) index cannot
-- tell them apart without reading every row.
--
-- Organisation statistics get no index of their own: an unfiltered GROUP BY reads every live
-- row whatever the index, and covering indexes for the group keys and the company sums were
-- measured with bench/stats.sh and left out (the planner kept its parallel sequential scans;
-- the time is in the join and the aggregate, not in reading pages). Filtered statistics use
-- the lists' indexes.
CREATE INDEX activity_participants_counted_idx ON activity_participants (activity_id, organisation_id)
    WHERE status IN ('proposed', 'confirmed');
