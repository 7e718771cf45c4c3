//! Integration tests: the real service over HTTP against a real PostgreSQL.

mod auth;
mod companies;
mod errors;
mod helpers;
mod openapi;
