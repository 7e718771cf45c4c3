//! API clients: machine integrations that get tokens by OAuth2 client credentials.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::list::Keyed;
use crate::db::schema::api_clients;
use crate::db::StoreError;
use crate::domain::account::ClientDraft;

/// An `api_clients` row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
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

/// Whether client `id` is revoked: one primary-key read (the revocation check while the
/// revocation set is unknown). An unknown id is not revoked, as the set would say.
pub fn is_revoked(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        api_clients::table.filter(
            api_clients::id
                .eq(id)
                .and(api_clients::revoked_at.is_not_null()),
        ),
    ))
    .get_result(conn)
}

/// The columns an admin writes, from a validated draft.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = api_clients, treat_none_as_null = true)]
struct ClientColumns<'a> {
    name: &'a str,
    role: &'a str,
    organisation_id: Option<Uuid>,
}

impl<'a> From<&'a ClientDraft> for ClientColumns<'a> {
    fn from(d: &'a ClientDraft) -> Self {
        Self {
            name: &d.name,
            role: d.role.as_str(),
            organisation_id: d.organisation_id.map(Uuid::from),
        }
    }
}

/// Inserts a new client with the hash of its secret; its id.
pub fn insert_draft(
    conn: &mut PgConnection,
    draft: &ClientDraft,
    secret_hash: &str,
) -> QueryResult<Uuid> {
    let id = Uuid::now_v7();
    let now = crate::db::now();
    insert(
        conn,
        &NewClient {
            id,
            name: &draft.name,
            role: draft.role.as_str(),
            organisation_id: draft.organisation_id.map(Uuid::from),
            secret_hash,
            created_at: now,
            updated_at: now,
        },
    )?;
    Ok(id)
}

/// Rewrites what an admin writes of client `id` at `expected` version (else 412).
pub fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected: i64,
    draft: &ClientDraft,
) -> Result<(), StoreError> {
    let n = diesel::update(
        api_clients::table
            .filter(api_clients::id.eq(id))
            .filter(api_clients::version.eq(expected)),
    )
    .set((
        ClientColumns::from(draft),
        api_clients::updated_at.eq(crate::db::now()),
        api_clients::version.eq(api_clients::version + 1),
    ))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale)
    }
}

/// Gives client `id` a new secret at `expected` version; the old one keeps working until
/// `previous_valid_until` (now: at once). The new version.
pub fn rotate_secret(
    conn: &mut PgConnection,
    id: Uuid,
    expected: i64,
    secret_hash: &str,
    previous_valid_until: DateTime<Utc>,
) -> Result<i64, StoreError> {
    diesel::update(
        api_clients::table
            .filter(api_clients::id.eq(id))
            .filter(api_clients::version.eq(expected)),
    )
    .set((
        api_clients::previous_secret_hash.eq(api_clients::secret_hash.nullable()),
        api_clients::previous_valid_until.eq(previous_valid_until),
        api_clients::secret_hash.eq(secret_hash),
        api_clients::updated_at.eq(crate::db::now()),
        api_clients::version.eq(api_clients::version + 1),
    ))
    .returning(api_clients::version)
    .get_result(conn)
    .optional()?
    .ok_or(StoreError::Stale)
}

/// Client `id`, unless absent (or revoked, unless `include_revoked`).
pub fn load_one(
    conn: &mut PgConnection,
    id: Uuid,
    include_revoked: bool,
) -> QueryResult<Option<ClientRow>> {
    api_clients::table
        .find(id)
        .filter(
            api_clients::revoked_at
                .is_null()
                .or(include_revoked.into_sql::<diesel::sql_types::Bool>()),
        )
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

impl Keyed for ClientRow {
    fn id(&self) -> Uuid {
        self.id
    }
}
