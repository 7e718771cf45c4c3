//! Integration tests: the real service over HTTP against a real PostgreSQL.

mod audit;
mod auth;
mod bodies;
mod changes;
mod cli;
mod clients;
mod companies;
mod csv;
mod errors;
mod helpers;
mod idempotency;
mod imports;
mod openapi;
mod pipeline;
mod polling;
mod rate_limits;
mod registry;
mod relationships;
mod seed;
mod set_password;
mod stats;
mod strategy;
mod structure;
mod users;
mod webhooks;
