//! Rows, write forms and query functions. SQL lives here and in `db::list` only.

pub mod account;
pub mod activity;
pub mod area;
pub mod audit;
pub mod change;
pub mod client;
pub mod company;
pub mod goal;
pub mod idempotency;
pub mod irccs;
pub mod link;
pub mod organisation;
pub mod partner;
pub mod record;
pub mod stats;
pub mod token_rate_limit;
pub mod university;
pub mod user;
pub mod webhook;
