//! The machinery every resource shares, and none owns: the one write pipeline (`record`) and
//! its bulk form (`import`), the list engine's HTTP side (`list`, `csv`), request bodies and
//! their schemas (`body`, `schema`), conditional requests (`etag`), the problem responses of the spec (`problems`)
//! and the request middleware, with `Idempotency-Key` (`idempotency`).

pub mod body;
pub mod csv;
pub mod etag;
pub mod idempotency;
pub mod import;
pub mod list;
pub mod middleware;
pub mod problems;
pub mod record;
pub mod schema;
