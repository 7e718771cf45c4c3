DROP TABLE activity_participants;
DROP TABLE goal_partners;
DROP TABLE goal_activity_links;
DROP TABLE activities;
DROP TABLE goals;
DROP TABLE areas;
