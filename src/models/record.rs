//! Row operations every versioned, archivable table shares (goals, activities, users, API
//! clients): the lock taken before a write and the archive switch, both under the version
//! guard.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::StoreError;

/// A versioned table whose rows are archived by a timestamp column: `archived_at`, or a
/// user's `disabled_at`, a client's `revoked_at`. Both names are constants of ours, never input.
#[derive(Debug, Clone, Copy)]
pub struct Archivable {
    /// The table.
    pub table: &'static str,
    /// The column whose time archives a row (null: live).
    pub archived: &'static str,
}

impl Archivable {
    /// `table`, archived by `archived_at`.
    pub const fn new(table: &'static str) -> Self {
        Self {
            table,
            archived: "archived_at",
        }
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    archived_at: Option<DateTime<Utc>>,
}

/// Locks row `id` of `t` for update; its version and archive time, or 404 naming `entity`.
pub fn lock(
    conn: &mut PgConnection,
    t: Archivable,
    entity: &'static str,
    id: Uuid,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    diesel::sql_query(format!(
        "SELECT version, {} AS archived_at FROM {} WHERE id = $1 FOR UPDATE",
        t.archived, t.table
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

/// Sets or clears the archive time of row `id` of `t` if it is at `expected` (else 412); the
/// new version.
pub fn set_archived(
    conn: &mut PgConnection,
    t: Archivable,
    id: Uuid,
    expected: i64,
    archived_at: Option<DateTime<Utc>>,
) -> Result<i64, StoreError> {
    diesel::sql_query(format!(
        "UPDATE {} SET {} = $1, updated_at = $2, version = version + 1 \
         WHERE id = $3 AND version = $4 RETURNING version",
        t.table, t.archived
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
