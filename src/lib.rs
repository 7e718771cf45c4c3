//! lshub: the HTTP API of the Lombardia Life Sciences Hub's stakeholder registry.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod app;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod memo;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod seed;
pub mod telemetry;
pub mod webhooks;

/// Property tests' one configuration: `cases` cases, and no regression files (a failure found
/// is kept as a named unit test beside its property instead).
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
