//! The HTTP layer: one module per resource, the shared pieces (bodies, ETags, lists, the write
//! pipeline), and the route table.

#[macro_use]
mod macros;

pub mod activities;
pub mod areas;
pub mod auth;
pub mod body;
pub mod companies;
pub mod csv;
pub mod dated;
pub mod etag;
pub mod goals;
pub mod health;
pub mod irccs;
pub mod links;
pub mod list;
pub mod middleware;
pub mod organisation;
pub mod organisations;
pub mod partners;
pub mod problems;
pub mod record;
pub mod routes;
pub mod schema;
pub mod universities;

pub use routes::configure as routes;
