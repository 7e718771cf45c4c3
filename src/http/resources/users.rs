//! `/api/v1/users`: the people who log in (admins only).

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::account::{self, AccountFilters, ADMINS};
use super::organisation::Pool;
use crate::auth::password::hash_password;
use crate::auth::Principal;
use crate::domain::account::{self as rules, UserBody, UserDraft};
use crate::domain::{codes, Role};
use crate::error::{stored, ApiError};
use crate::http::machinery::list::{ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{top_level, Locked, Removal, Resource};
use crate::http::machinery::schema::request_bodies;
use crate::models::account::USERS;
use crate::models::link::is_live;
use crate::models::record as rows;
use crate::models::user::{self as model, UserRow};

/// A user, as read: never a password or its hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserResponse {
    /// UUID v7.
    pub id: Uuid,
    /// The login name.
    pub email: String,
    /// The user's role.
    pub role: Role,
    /// The organisation a partner acts for.
    pub organisation_id: Option<Uuid>,
    /// When the user was disabled: it can neither log in nor refresh, and its access tokens
    /// stop within a second.
    pub disabled_at: Option<DateTime<Utc>>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
}

impl TryFrom<UserRow> for UserResponse {
    type Error = ApiError;

    fn try_from(row: UserRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id,
            email: row.email,
            role: stored(&row.role)?,
            organisation_id: row.organisation_id,
            disabled_at: row.disabled_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

request_bodies!(UserBody => CreateUser, UserPatch, fixed in Users);

/// Users in the write pipeline: admins' to write; DELETE disables and restore enables again
/// (never a hard delete: the audit trail names them).
pub struct Users;

impl Resource for Users {
    const ENTITY: &'static str = "user";
    const NOUN: &'static str = "user";
    const CREATE_ROLES: &'static [Role] = ADMINS;
    const UPDATE_ROLES: &'static [Role] = ADMINS;
    const REMOVAL: Removal = Removal::Archive;
    const FIXED: &'static [&'static str] = &["email", "password"];
    type Parent = ();
    type Write = UserDraft;
    type Response = UserResponse;
    type Body = UserBody;

    fn location((): (), id: Uuid) -> String {
        top_level("users", id)
    }

    fn validate(body: Map<String, Json>) -> Result<UserDraft, ApiError> {
        Ok(rules::user(body)?)
    }

    /// A new user needs its password, and a partner a live organisation.
    fn prepare(
        conn: &mut diesel::PgConnection,
        _principal: &Principal,
        write: &mut UserDraft,
    ) -> Result<(), ApiError> {
        if write.password.is_none() {
            return Err(ApiError::invalid(
                "/password",
                codes::REQUIRED,
                "a new user needs its initial password",
            ));
        }
        if let Some(org) = write.organisation_id {
            if !is_live(conn, org)? {
                return Err(ApiError::invalid(
                    "/organisation_id",
                    codes::UNKNOWN_VALUE,
                    "no live organisation with this id",
                ));
            }
        }
        Ok(())
    }

    /// An admin does not disable themselves (the hub would be left with no admin to undo it).
    fn check_remove(principal: &Principal, id: Uuid) -> Result<(), ApiError> {
        if principal.id == id {
            return Err(ApiError::forbidden("an admin does not disable themselves"));
        }
        Ok(())
    }

    fn lock(conn: &mut diesel::PgConnection, (): (), id: Uuid) -> Result<Locked, ApiError> {
        let (version, archived_at) = rows::lock(conn, USERS.archivable, Self::NOUN, id)?;
        Ok(Locked {
            version,
            archived_at,
        })
    }

    fn insert(
        conn: &mut diesel::PgConnection,
        (): (),
        write: &UserDraft,
    ) -> Result<Uuid, ApiError> {
        let password = write
            .password
            .as_deref()
            .ok_or_else(|| ApiError::internal("a user created without a password"))?;
        let hash = hash_password(password).map_err(ApiError::internal)?;
        Ok(model::insert_draft(conn, write, &hash)?)
    }

    fn update(
        conn: &mut diesel::PgConnection,
        id: Uuid,
        expected: i64,
        write: &UserDraft,
    ) -> Result<(), ApiError> {
        Ok(model::update(conn, id, expected, write)?)
    }

    fn set_archived(
        conn: &mut diesel::PgConnection,
        id: Uuid,
        expected: i64,
        archived_at: Option<DateTime<Utc>>,
    ) -> Result<i64, ApiError> {
        Ok(rows::set_archived(
            conn,
            USERS.archivable,
            id,
            expected,
            archived_at,
        )?)
    }

    fn load(
        conn: &mut diesel::PgConnection,
        (): (),
        id: Uuid,
        include_archived: bool,
    ) -> Result<UserResponse, ApiError> {
        model::load_one(conn, id, include_archived)?
            .ok_or_else(|| ApiError::not_found(Self::NOUN))
            .and_then(UserResponse::try_from)
    }

    fn version(record: &UserResponse) -> i64 {
        record.version
    }
}

impl ListKind for Users {
    const ARCHIVED: Option<&'static str> = Some("Include disabled users.");
    const CSV_COLUMNS: &'static [&'static str] = &[
        "id",
        "email",
        "role",
        "organisation_id",
        "disabled_at",
        "created_at",
        "updated_at",
        "version",
    ];
}

/// List users.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    description = "In creation order; keyset-paginated. Disabled users only with `include_archived=true`.",
    params(ListRequest<Users, AccountFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users (or CSV)",
         content((PageResponse<UserResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_users(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Users, AccountFilters>,
) -> Result<HttpResponse, ApiError> {
    let parts = query.into_parts();
    account::list::<Users, UserRow, UserResponse>(
        &pool,
        &principal,
        &req,
        parts,
        USERS,
        UserResponse::try_from,
    )
    .await
}

record_handlers! {
    resource: Users,
    tag: "users",
    collection: "/api/v1/users",
    item: "/api/v1/users/{id}",
    restore: "/api/v1/users/{id}/restore",
    history: "/api/v1/users/{id}/history",
    response: UserResponse,
    create_body: CreateUser,
    patch_body: UserPatch,
    patch_description: "The role and the organisation (a partner's only); the e-mail and the \
        password are fixed at creation. RFC 7396 merge patch. Requires If-Match.",
    summaries: ("Create a user.", "Read a user.", "Update a user (JSON Merge Patch).",
        "Disable a user.", "Enable a disabled user again.", "A user's audit trail, newest first."),
    handlers: (create_user, get_user, update_user, disable_user, enable_user, user_history),
}
