//! Rows, write forms and query functions. SQL lives here and in `db::list` only.

pub mod audit;
pub mod company;
pub mod organisation;
pub mod user;
