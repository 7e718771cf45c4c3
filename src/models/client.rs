//! API clients: machine integrations that get tokens by OAuth2 client credentials.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::api_clients;

/// An `api_clients` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_clients, check_for_backend(diesel::pg::Pg))]
pub struct ClientRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub organisation_id: Option<Uuid>,
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl ClientRow {
    /// The hashes a presented secret may match at `now`: the current one, and the previous
    /// one within its grace period.
    pub fn secret_hashes(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut hashes = vec![self.secret_hash.clone()];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret_hash, self.previous_valid_until)
        {
            if now < until {
                hashes.push(previous.clone());
            }
        }
        hashes
    }
}

/// A client to create.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = api_clients)]
pub struct NewClient<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub role: &'a str,
    pub organisation_id: Option<Uuid>,
    pub secret_hash: &'a str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Inserts a client.
pub fn insert(conn: &mut PgConnection, client: &NewClient<'_>) -> QueryResult<()> {
    diesel::insert_into(api_clients::table)
        .values(client)
        .execute(conn)
        .map(|_| ())
}

/// The client with this id, revoked or not.
pub fn find(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<ClientRow>> {
    api_clients::table
        .find(id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

/// Every revoked client's id.
pub fn revoked_ids(conn: &mut PgConnection) -> QueryResult<Vec<Uuid>> {
    api_clients::table
        .filter(api_clients::revoked_at.is_not_null())
        .select(api_clients::id)
        .load(conn)
}
