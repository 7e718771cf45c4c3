//! What a query can fail with, in storage terms. The HTTP layer maps it to problems in one
//! place (`impl From<StoreError> for ApiError` in `error.rs`).

use std::borrow::Cow;

/// A failed read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed the statement.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// No live row of this entity with that id.
    #[error("no {0} with that id")]
    NotFound(Cow<'static, str>),
    /// The row is no longer at the version the write expected.
    #[error("the row changed since the version the write expected")]
    Stale,
    /// A list cursor that is corrupt or belongs to another query.
    #[error("the cursor is invalid or belongs to another query")]
    InvalidCursor,
    /// A list parameter the engine cannot serve (e.g. an unknown sort key).
    #[error("{message}")]
    Parameter {
        /// The parameter, as a JSON Pointer (`/sort`).
        field: &'static str,
        /// Stable code, e.g. `unknown_value`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
}

impl StoreError {
    /// No row of `entity` with that id.
    pub fn not_found(entity: impl Into<Cow<'static, str>>) -> Self {
        Self::NotFound(entity.into())
    }
}
