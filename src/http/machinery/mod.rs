//! The machinery every resource shares, and none owns: the one write pipeline (`record`) and
//! its bulk form (`import`), the list engine's HTTP side (`list`, `csv`), request bodies and
//! their schemas (`body`, `schema`), conditional requests (`etag`), the problem responses of
//! the spec (`problems`), the request middleware, `Idempotency-Key` (`idempotency`), the
//! rate limits (`rate_limit`) and the request series (`metrics`).

pub mod body;
pub mod csv;
pub mod etag;
pub mod idempotency;
pub mod import;
pub mod list;
pub mod metrics;
pub mod middleware;
pub mod problems;
pub mod rate_limit;
pub mod record;
pub mod rotation;
pub mod schema;
