//! Users and their refresh tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::list::Keyed;
use crate::db::schema::{refresh_tokens, set_password_tokens, users};
use crate::db::StoreError;
use crate::domain::account::UserDraft;

/// A `users` row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub role: String,
    pub organisation_id: Option<Uuid>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// A user to create.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: &'a str,
    pub organisation_id: Option<Uuid>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Inserts a user.
pub fn insert(conn: &mut PgConnection, user: &NewUser<'_>) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(|_| ())
}

/// The user with this e-mail, ignoring case.
pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                .bind::<diesel::sql_types::Text, _>(email)
                .sql(")"),
        )
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// The user with this id.
pub fn find(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// A `refresh_tokens` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: Vec<u8>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a refresh token's digest in `family_id`.
pub fn insert_refresh_token(
    conn: &mut PgConnection,
    family_id: Uuid,
    user_id: Uuid,
    digest: &[u8],
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::now_v7()),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::token_hash.eq(digest),
            refresh_tokens::issued_at.eq(Utc::now()),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The refresh token with this digest, locked so two concurrent uses cannot both rotate it.
pub fn find_refresh_token_for_update(
    conn: &mut PgConnection,
    digest: &[u8],
) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(digest))
        .select(RefreshTokenRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Marks a token as used (rotated).
pub fn mark_rotated(conn: &mut PgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(refresh_tokens::table.find(id))
        .set(refresh_tokens::rotated_at.eq(Utc::now()))
        .execute(conn)
        .map(|_| ())
}

/// Revokes every live token of a family.
pub fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(Utc::now()))
        .execute(conn)
}

/// Every disabled user's id.
pub fn disabled_ids(conn: &mut PgConnection) -> QueryResult<Vec<Uuid>> {
    users::table
        .filter(users::disabled_at.is_not_null())
        .select(users::id)
        .load(conn)
}

/// Whether user `id` is disabled: one primary-key read (the revocation check while the
/// revocation set is unknown). An unknown id is not disabled, as the set would say.
pub fn is_disabled(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::id.eq(id).and(users::disabled_at.is_not_null())),
    ))
    .get_result(conn)
}

/// The columns an admin writes of a user, from a validated draft.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
struct UserColumns<'a> {
    role: &'a str,
    organisation_id: Option<Uuid>,
}

/// Inserts a new user from its draft and password hash (none: it cannot log in until it sets
/// one); its id.
pub fn insert_draft(
    conn: &mut PgConnection,
    draft: &UserDraft,
    password_hash: Option<&str>,
) -> QueryResult<Uuid> {
    let id = Uuid::now_v7();
    let now = crate::db::now();
    insert(
        conn,
        &NewUser {
            id,
            email: &draft.email,
            password_hash,
            role: draft.role.as_str(),
            organisation_id: draft.organisation_id.map(Uuid::from),
            disabled_at: draft.disabled.then_some(now),
            created_at: now,
            updated_at: now,
        },
    )?;
    Ok(id)
}

/// Rewrites the role and organisation of user `id` at `expected` version (else 412).
pub fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected: i64,
    draft: &UserDraft,
) -> Result<(), StoreError> {
    let n = diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::version.eq(expected)),
    )
    .set((
        UserColumns {
            role: draft.role.as_str(),
            organisation_id: draft.organisation_id.map(Uuid::from),
        },
        users::updated_at.eq(crate::db::now()),
        users::version.eq(users::version + 1),
    ))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale)
    }
}

/// User `id`, unless absent (or disabled, unless `include_disabled`).
pub fn load_one(
    conn: &mut PgConnection,
    id: Uuid,
    include_disabled: bool,
) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .filter(
            users::disabled_at
                .is_null()
                .or(include_disabled.into_sql::<diesel::sql_types::Bool>()),
        )
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes every live refresh token of user `id` (a new password ends its sessions).
pub fn revoke_refresh_tokens(conn: &mut PgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::user_id.eq(id))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(Utc::now()))
        .execute(conn)
}

/// Stores `digest` as user `id`'s one set-password token, replacing any earlier one (which
/// stops working).
pub fn replace_set_password_token(
    conn: &mut PgConnection,
    id: Uuid,
    digest: &[u8],
) -> QueryResult<()> {
    diesel::insert_into(set_password_tokens::table)
        .values((
            set_password_tokens::user_id.eq(id),
            set_password_tokens::token_hash.eq(digest),
            set_password_tokens::issued_at.eq(crate::db::now()),
        ))
        .on_conflict(set_password_tokens::user_id)
        .do_update()
        .set((
            set_password_tokens::token_hash.eq(digest),
            set_password_tokens::issued_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The user whose set-password token has `digest`, and when the token was issued, the row
/// locked so that two uses of one token serialise.
pub fn find_set_password_token_for_update(
    conn: &mut PgConnection,
    digest: &[u8],
) -> QueryResult<Option<(Uuid, DateTime<Utc>)>> {
    set_password_tokens::table
        .filter(set_password_tokens::token_hash.eq(digest))
        .select((set_password_tokens::user_id, set_password_tokens::issued_at))
        .for_update()
        .first(conn)
        .optional()
}

/// Spends user `id`'s set-password token, if it has one.
pub fn delete_set_password_token(conn: &mut PgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(set_password_tokens::table.find(id)).execute(conn)
}

/// Sets user `id`'s password hash, bumping its version (the ETag of a record that changed).
pub fn set_password_hash(conn: &mut PgConnection, id: Uuid, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(crate::db::now()),
            users::version.eq(users::version + 1),
        ))
        .execute(conn)
        .map(|_| ())
}

impl Keyed for UserRow {
    fn id(&self) -> Uuid {
        self.id
    }
}
