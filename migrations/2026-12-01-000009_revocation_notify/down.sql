DROP TRIGGER api_clients_notify_revocation ON api_clients;
DROP TRIGGER users_notify_revocation ON users;
DROP FUNCTION lshub_notify_revocation();
