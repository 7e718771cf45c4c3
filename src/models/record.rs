//! Row operations every versioned, archivable table shares (goals, activities): the lock taken
//! before a write and the archive switch, both under the version guard.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::StoreError;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    archived_at: Option<DateTime<Utc>>,
}

/// Locks row `id` of `table` (a constant of ours, never input) for update; its version and
/// archive time, or 404 naming `entity`.
pub fn lock(
    conn: &mut PgConnection,
    table: &'static str,
    entity: &'static str,
    id: Uuid,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    diesel::sql_query(format!(
        "SELECT version, archived_at FROM {table} WHERE id = $1 FOR UPDATE"
    ))
    .bind::<SqlUuid, _>(id)
    .get_result::<Locked>(conn)
    .optional()?
    .map(|l| (l.version, l.archived_at))
    .ok_or_else(|| StoreError::not_found(entity))
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// Sets or clears `archived_at` of row `id` if it is at `expected` (else 412); the new version.
pub fn set_archived(
    conn: &mut PgConnection,
    table: &'static str,
    id: Uuid,
    expected: i64,
    archived_at: Option<DateTime<Utc>>,
) -> Result<i64, StoreError> {
    diesel::sql_query(format!(
        "UPDATE {table} SET archived_at = $1, updated_at = $2, version = version + 1 \
         WHERE id = $3 AND version = $4 RETURNING version"
    ))
    .bind::<Nullable<Timestamptz>, _>(archived_at)
    .bind::<Timestamptz, _>(crate::db::now())
    .bind::<SqlUuid, _>(id)
    .bind::<BigInt, _>(expected)
    .get_result::<Version>(conn)
    .optional()?
    .map(|v| v.version)
    .ok_or(StoreError::Stale)
}
