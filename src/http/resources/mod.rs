//! One module per resource: its request and response types, its storage and validation hooks
//! for the pipeline, and its thin handlers. Who may call each handler is declared in
//! `http::routes`.

pub mod activities;
pub mod areas;
pub mod auth;
pub mod companies;
pub mod dated;
pub mod goals;
pub mod health;
pub mod irccs;
pub mod links;
pub mod organisation;
pub mod organisations;
pub mod partners;
pub mod universities;
