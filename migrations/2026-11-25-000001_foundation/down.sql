DROP TABLE audit_events;
DROP TABLE refresh_tokens;
DROP TABLE users;
DROP TABLE companies;
DROP TABLE organisations;
DROP FUNCTION lshub_fold(text);
DROP FUNCTION lshub_unaccent(text);
