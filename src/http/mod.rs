//! The HTTP layer: the route table (`routes`), the machinery every resource shares
//! (`machinery`) and the resources themselves (`resources`).

#[macro_use]
mod macros;

pub mod machinery;
pub mod resources;
pub mod routes;

pub use routes::configure as routes;
