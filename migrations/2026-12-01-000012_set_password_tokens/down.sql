DROP TABLE set_password_tokens;
