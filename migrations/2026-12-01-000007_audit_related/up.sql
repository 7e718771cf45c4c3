-- The records an event concerns besides its own: a link's ends (a goal-activity link's goal
-- and activity, a goal partner's goal and organisation, a participant's activity and
-- organisation). A record's history is its own events and those that name it here, so an
-- activity's history shows a participant confirmed and a goal's a partner added.
ALTER TABLE audit_events ADD COLUMN related uuid[] NOT NULL DEFAULT '{}';

-- Events of links that still exist: their ends from the link (an update's changes do not
-- carry them, the ends being fixed).
UPDATE audit_events a SET related = ARRAY[l.goal_id, l.activity_id]
  FROM goal_activity_links l
 WHERE a.entity = 'goal_activity_link' AND a.entity_id = l.id;
UPDATE audit_events a SET related = ARRAY[l.goal_id, l.organisation_id]
  FROM goal_partners l
 WHERE a.entity = 'goal_partner' AND a.entity_id = l.id;
UPDATE audit_events a SET related = ARRAY[l.activity_id, l.organisation_id]
  FROM activity_participants l
 WHERE a.entity = 'activity_participant' AND a.entity_id = l.id;

-- Events of deleted links: their ends from the delete's `before` (and the create's `after`),
-- for every event of the same link.
WITH ends AS (
    SELECT DISTINCT ON (entity_id) entity_id, entity,
           CASE action WHEN 'delete' THEN changes->'before' ELSE changes->'after' END AS link
      FROM audit_events
     WHERE entity IN ('goal_activity_link', 'goal_partner', 'activity_participant')
       AND related = '{}'
       AND action IN ('create', 'delete')
     ORDER BY entity_id, id DESC
)
UPDATE audit_events a
   SET related = array_remove(ARRAY[
       (e.link->>(CASE e.entity WHEN 'activity_participant' THEN 'activity_id' ELSE 'goal_id' END))::uuid,
       (e.link->>(CASE e.entity WHEN 'goal_activity_link' THEN 'activity_id' ELSE 'organisation_id' END))::uuid
   ], NULL)
  FROM ends e
 WHERE a.entity_id = e.entity_id AND a.related = '{}';

CREATE INDEX audit_events_related_idx ON audit_events USING gin (related);
