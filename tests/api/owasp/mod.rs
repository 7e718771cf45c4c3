//! OWASP API Security Top 10 (2023), one module per risk that applies to this API.
//!
//! API1 object-level authorisation, API2 authentication, API3 property-level authorisation,
//! API4 unrestricted resource consumption, API5 function-level authorisation, API8 security
//! misconfiguration. (API6 business flows, API7 SSRF, API9 inventory and API10 unsafe
//! consumption are covered where they apply: the webhooks' SSRF guard in `webhooks.rs`, the
//! inventory by the committed OpenAPI document in `openapi.rs`.)

mod authentication;
mod function_level;
mod misconfiguration;
mod object_level;
mod property_level;
mod resource_consumption;
pub(crate) mod spec;
