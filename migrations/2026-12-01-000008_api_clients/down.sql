DROP TABLE api_clients;
