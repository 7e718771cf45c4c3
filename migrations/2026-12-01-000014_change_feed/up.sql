-- The change feed (GET /api/v1/changes) reads the audit rows every write already commits.
--
-- `seq` numbers each event (the id a webhook carries); `txid` is the writing transaction's id
-- (`pg_current_xact_id()`, an xid8 stored as bigint: 64 bits with the epoch, so it never wraps).
-- A sequence value is taken at insert, not at commit, so reading `seq > last` skips an event
-- whose transaction commits after a later one. The feed is ordered by (txid, id) instead and
-- hands out only rows whose transaction is older than the oldest one still in flight
-- (`pg_snapshot_xmin(pg_current_snapshot())`): every transaction below that fence has ended,
-- so nothing can appear behind a cursor once it has passed. Both columns are filled by their
-- defaults at insert, inside the writer's transaction, so no write path can leave them out.
--
-- `version` is the record's version after the change (its last one, for a link's delete): the
-- writer stores it, since the changes leave it out as bookkeeping.
CREATE SEQUENCE audit_events_seq AS bigint;
ALTER TABLE audit_events
    ADD COLUMN seq bigint,
    ADD COLUMN txid bigint,
    ADD COLUMN version bigint;

-- Existing events have all committed: they take this migration's transaction id, below every
-- later writer's, and numbers in the order they were written (ids are UUID v7).
WITH numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_events
)
UPDATE audit_events a SET seq = n.n, txid = pg_current_xact_id()::text::bigint
  FROM numbered n WHERE a.id = n.id;
SELECT setval('audit_events_seq', greatest((SELECT max(seq) FROM audit_events), 1),
              (SELECT max(seq) IS NOT NULL FROM audit_events));

-- Every create, update, archive and restore of a registry record bumps its version by one
-- (creates start at 1), so the n-th event of a record left it at version n; a delete leaves
-- the link at the version it had. Accounts (users, API clients) are not in the feed and have
-- changes that bump nothing (a set-password token): their old events keep no version.
WITH counted AS (
    SELECT id, action,
           count(*) FILTER (WHERE action <> 'delete')
               OVER (PARTITION BY entity, entity_id ORDER BY id) AS n
      FROM audit_events
     WHERE entity IN ('company', 'irccs', 'university', 'partner', 'goal', 'activity',
                      'goal_activity_link', 'goal_partner', 'activity_participant')
)
UPDATE audit_events a SET version = c.n FROM counted c WHERE a.id = c.id;

ALTER TABLE audit_events
    ALTER COLUMN seq SET DEFAULT nextval('audit_events_seq'),
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN txid SET DEFAULT pg_current_xact_id()::text::bigint,
    ALTER COLUMN txid SET NOT NULL;
ALTER SEQUENCE audit_events_seq OWNED BY audit_events.seq;

CREATE UNIQUE INDEX audit_events_seq_idx ON audit_events (seq);
-- The feed's order, and the same per entity for its `entity` and `kind` filters.
CREATE INDEX audit_events_feed_idx ON audit_events (txid, id);
CREATE INDEX audit_events_feed_entity_idx ON audit_events (entity, txid, id);
