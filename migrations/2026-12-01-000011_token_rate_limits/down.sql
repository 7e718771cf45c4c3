DROP TABLE token_rate_limits;
