//! Idempotency keys: the first answer to a POST, per principal and `Idempotency-Key`, kept in
//! the database so that every replica, and a restarted one, replays it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::db::schema::idempotency_keys as keys;

/// How often a claim is tried when the row it met vanished before it could be read (its
/// attempt failed and released it in between).
const CLAIM_ATTEMPTS: usize = 3;

/// An attempt at a request under a key.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The user's or client's id: keys are per principal.
    pub principal_id: Uuid,
    /// The `Idempotency-Key` as sent.
    pub key: &'a str,
    /// SHA-256 of the request (method, path and query, body).
    pub request_hash: &'a [u8],
    /// This attempt's own id, so that only it completes or releases the row it claimed.
    pub claim: Uuid,
}

/// When rows stop counting, as instants (the clock is the application's, as everywhere in the
/// registry's timestamps).
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    /// Rows created before this have expired: ignored, taken over and swept.
    pub expired_before: DateTime<Utc>,
    /// Rows still in flight that were created before this were abandoned (their request has
    /// outlived the whole-request timeout): taken over.
    pub abandoned_before: DateTime<Utc>,
}

/// A key's row as a later attempt finds it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = keys, check_for_backend(diesel::pg::Pg))]
pub struct KeyRow {
    /// The first request's hash.
    pub request_hash: Vec<u8>,
    /// When its answer was stored; `None` while the first attempt is in flight.
    pub completed_at: Option<DateTime<Utc>>,
    /// The answer's status.
    pub status: Option<i16>,
    /// The answer's headers a replay repeats, as `[[name, value], ...]`.
    pub headers: Option<Json>,
    /// The answer's body.
    pub body: Option<Vec<u8>>,
    /// The answer showed a secret: nothing of it but this marker, its status and headers
    /// without secrets is kept.
    pub shown_once: bool,
}

/// The outcome of a claim.
#[derive(Debug)]
pub enum Claimed {
    /// The attempt holds the key: it runs the request and completes or releases the row.
    Held,
    /// An earlier attempt holds it, in flight or completed.
    Taken(KeyRow),
    /// The row kept changing under the claim: treat as in flight.
    Contended,
}

/// Claims `attempt`'s key: a new row, or one taken over from an expired or abandoned attempt
/// (in one statement, so two attempts racing for a key cannot both hold it); otherwise the
/// row of the attempt that holds it.
pub fn claim(
    conn: &mut PgConnection,
    attempt: Attempt<'_>,
    now: DateTime<Utc>,
    horizon: Horizon,
) -> QueryResult<Claimed> {
    for _ in 0..CLAIM_ATTEMPTS {
        let upsert = diesel::insert_into(keys::table)
            .values((
                keys::principal_id.eq(attempt.principal_id),
                keys::key.eq(attempt.key),
                keys::request_hash.eq(attempt.request_hash),
                keys::claim.eq(attempt.claim),
                keys::created_at.eq(now),
            ))
            .on_conflict((keys::principal_id, keys::key))
            .do_update()
            .set((
                keys::request_hash.eq(excluded(keys::request_hash)),
                keys::claim.eq(excluded(keys::claim)),
                keys::created_at.eq(excluded(keys::created_at)),
                keys::completed_at.eq(None::<DateTime<Utc>>),
                keys::status.eq(None::<i16>),
                keys::headers.eq(None::<Json>),
                keys::body.eq(None::<Vec<u8>>),
                keys::shown_once.eq(false),
            ));
        // `ON CONFLICT ... DO UPDATE ... WHERE`: the existing row is taken over only when it
        // no longer counts.
        let held = diesel::query_dsl::methods::FilterDsl::filter(
            upsert,
            keys::created_at
                .lt(horizon.expired_before)
                .or(keys::completed_at
                    .is_null()
                    .and(keys::created_at.lt(horizon.abandoned_before))),
        )
        .execute(conn)?;
        if held == 1 {
            return Ok(Claimed::Held);
        }
        let row = keys::table
            .find((attempt.principal_id, attempt.key))
            .select(KeyRow::as_select())
            .first(conn)
            .optional()?;
        if let Some(row) = row {
            return Ok(Claimed::Taken(row));
        }
    }
    Ok(Claimed::Contended)
}

/// The answer an attempt stores under its key.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// Its status.
    pub status: i16,
    /// The headers a replay repeats, as `[[name, value], ...]`.
    pub headers: &'a Json,
    /// Its body; `None` when it showed a secret.
    pub body: Option<&'a [u8]>,
    /// It showed a secret once.
    pub shown_once: bool,
}

/// Stores the answer of the attempt that holds the key; false when it no longer holds it.
pub fn complete(
    conn: &mut PgConnection,
    attempt: Attempt<'_>,
    answer: Answer<'_>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        keys::table
            .find((attempt.principal_id, attempt.key))
            .filter(keys::claim.eq(attempt.claim)),
    )
    .set((
        keys::completed_at.eq(now),
        keys::status.eq(answer.status),
        keys::headers.eq(answer.headers),
        keys::body.eq(answer.body),
        keys::shown_once.eq(answer.shown_once),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Gives the key up, so that a retry runs the request afresh (its attempt failed or was cut
/// short); a row since taken over by another attempt is left alone.
pub fn release(conn: &mut PgConnection, attempt: Attempt<'_>) -> QueryResult<()> {
    diesel::delete(
        keys::table
            .find((attempt.principal_id, attempt.key))
            .filter(keys::claim.eq(attempt.claim)),
    )
    .execute(conn)
    .map(drop)
}

/// Deletes the rows created before `expired_before`; how many.
pub fn delete_expired(
    conn: &mut PgConnection,
    expired_before: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::delete(keys::table.filter(keys::created_at.lt(expired_before))).execute(conn)
}
