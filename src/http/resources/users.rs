//! `/api/v1/users`: the people who log in (admins only).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::account::{self, AccountFilters, ADMINS};
use super::organisation::Pool;
use crate::auth::password::hash_password;
use crate::auth::tokens::new_opaque_token;
use crate::auth::Principal;
use crate::domain::account::{self as rules, UserBody, UserDraft};
use crate::domain::{codes, AuditAction, Role};
use crate::error::{stored, ApiError};
use crate::http::machinery::etag;
use crate::http::machinery::idempotency::shown_once;
use crate::http::machinery::list::{ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{self, top_level, Call, Locked, Removal, Resource};
use crate::http::machinery::schema::request_bodies;
use crate::models::account::USERS;
use crate::models::audit;
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
    /// Whether the user is disabled (`disabled_at` says since when).
    pub disabled: bool,
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
            disabled: row.disabled_at.is_some(),
            disabled_at: row.disabled_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// A user as its create answers it when the body had no `password`, and as
/// `POST /api/v1/users/{id}/set-password-token` answers it: with a one-time token, shown this
/// once.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserWithToken {
    #[serde(flatten)]
    pub user: UserResponse,
    /// The one-time token with which the user sets its password at
    /// `POST /api/v1/auth/set-password` (once; within `LSHUB_SET_PASSWORD_TOKEN_TTL` seconds,
    /// 72 h by default; a newer token replaces it). Only this answer shows it: it is stored
    /// as a SHA-256 digest. Absent from a create answer whose body had a `password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_password_token: Option<String>,
}

request_bodies!(UserBody => CreateUser, UserPatch, fixed in Users);

/// A user as written: its draft, and on a create without a password the one-time token it
/// gets, with the digest stored.
#[derive(Debug, Clone)]
pub struct UserWrite {
    draft: UserDraft,
    token: Option<(String, Vec<u8>)>,
}

/// Two writes are the same change when their drafts are: a token is never patched.
impl PartialEq for UserWrite {
    fn eq(&self, other: &Self) -> bool {
        self.draft == other.draft
    }
}

/// Users in the write pipeline: admins' to write; DELETE (or a patch of `disabled: true`)
/// disables and restore (or `disabled: false`) enables again (never a hard delete: the audit
/// trail names them).
pub struct Users;

impl Resource for Users {
    const ENTITY: &'static str = "user";
    const NOUN: &'static str = "user";
    const CREATE_ROLES: &'static [Role] = ADMINS;
    const UPDATE_ROLES: &'static [Role] = ADMINS;
    const REMOVAL: Removal = Removal::Archive;
    const FIXED: &'static [&'static str] = &["email", "password"];
    const ARCHIVE_MEMBER: Option<&'static str> = Some("disabled");
    type Parent = ();
    type Write = UserWrite;
    type Response = UserResponse;
    type Body = UserBody;

    fn location((): (), id: Uuid) -> String {
        top_level("users", id)
    }

    fn validate(body: Map<String, Json>) -> Result<UserWrite, ApiError> {
        Ok(UserWrite {
            draft: rules::user(body)?,
            token: None,
        })
    }

    /// A partner's organisation must be live; a new user without a password gets its
    /// one-time set-password token.
    fn prepare(
        conn: &mut diesel::PgConnection,
        _principal: &Principal,
        write: &mut UserWrite,
    ) -> Result<(), ApiError> {
        if let Some(org) = write.draft.organisation_id {
            if !is_live(conn, org)? {
                return Err(ApiError::invalid(
                    "/organisation_id",
                    codes::UNKNOWN_VALUE,
                    "no live organisation with this id",
                ));
            }
        }
        if write.draft.password.is_none() {
            write.token = Some(new_opaque_token());
        }
        Ok(())
    }

    fn reveal(write: &UserWrite) -> Option<Map<String, Json>> {
        let (token, _) = write.token.as_ref()?;
        Some(Map::from_iter([(
            "set_password_token".to_owned(),
            Json::String(token.clone()),
        )]))
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
        write: &UserWrite,
    ) -> Result<Uuid, ApiError> {
        let hash = match write.draft.password.as_deref() {
            Some(password) => Some(hash_password(password).map_err(ApiError::internal)?),
            None => None,
        };
        let id = model::insert_draft(conn, &write.draft, hash.as_deref())?;
        if let Some((_, digest)) = &write.token {
            model::replace_set_password_token(conn, id, digest)?;
        }
        Ok(id)
    }

    fn update(
        conn: &mut diesel::PgConnection,
        id: Uuid,
        expected: i64,
        write: &UserWrite,
    ) -> Result<(), ApiError> {
        Ok(model::update(conn, id, expected, &write.draft)?)
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

    /// Disabled ones too: a user may be created disabled.
    fn load_all(
        conn: &mut diesel::PgConnection,
        (): (),
        ids: &[Uuid],
    ) -> Result<Vec<UserResponse>, ApiError> {
        ids.iter()
            .map(|id| Self::load(conn, (), *id, true))
            .collect()
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
        "disabled",
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

pipeline_handler! {
    /// Create a user.
    #[utoipa::path(
        post, path = "/api/v1/users", tag = "users",
        summary = "Create a user.",
        description = "With `password`, the user logs in with it. Without one, the user gets no \
            password: the answer shows, this once, a `set_password_token` with which the user \
            sets its own at `POST /api/v1/auth/set-password` (within `LSHUB_SET_PASSWORD_TOKEN_TTL` \
            seconds, 72 h by default); until then it cannot log in. An answer that shows a token \
            is never kept for an `Idempotency-Key` retry (409 `idempotency_answer_not_stored`).",
        request_body(content = CreateUser, content_type = "application/json"),
        security(("bearer" = [])),
        responses(
            (status = 201, description = "Created (with its one-time `set_password_token` when the body had no `password`)",
             body = UserWithToken,
             headers(("Location" = String, description = "The new user's URL"),
                     ("ETag" = String, description = "`\"<version>\"`"))),
            (status = 409, response = problems::Conflict),
        )
    )]
    create_user(body: web::Bytes) => create::<Users>((), body)
}

pipeline_handler! {
    /// Read a user.
    #[utoipa::path(
        get, path = "/api/v1/users/{id}", tag = "users",
        summary = "Read a user.",
        description = "Honours `If-None-Match` (304).",
        params(("id" = Uuid, Path, description = "User id"), record::GetParams),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "The user", body = UserResponse,
             headers(("ETag" = String, description = "`\"<version>\"`"))),
            (status = 304, description = "Not modified since the ETag in If-None-Match"),
        )
    )]
    get_user(id: web::Path<Uuid>, query: web::Query<record::GetParams>)
        => get::<Users>((), id.into_inner(), query.into_inner())
}

pipeline_handler! {
    /// Update a user (JSON Merge Patch).
    #[utoipa::path(
        patch, path = "/api/v1/users/{id}", tag = "users",
        summary = "Update a user (JSON Merge Patch).",
        description = "The role, the organisation (a partner's only) and `disabled`; the e-mail and \
            the password are fixed at creation. `disabled: true` disables the user as `DELETE` \
            does (an admin does not disable themselves: 403), `disabled: false` enables it as \
            `restore` does, each with the same audit event; a disabled user takes only a patch \
            that enables it (404 otherwise). RFC 7396 merge patch. Requires If-Match.",
        params(("id" = Uuid, Path, description = "User id"), etag::IfMatch),
        request_body(content((UserPatch = "application/merge-patch+json"), (UserPatch = "application/json"))),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "Updated", body = UserResponse,
             headers(("ETag" = String, description = "`\"<version>\"`"))),
            (status = 409, response = problems::Conflict),
        )
    )]
    update_user(id: web::Path<Uuid>, body: web::Bytes) => update::<Users>((), id.into_inner(), body)
}

pipeline_handler! {
    /// Disable a user.
    #[utoipa::path(
        delete, path = "/api/v1/users/{id}", tag = "users",
        summary = "Disable a user.",
        description = "As `PATCH` of `disabled: true`: the user can neither log in nor refresh, \
            and its access tokens stop within a second; an admin does not disable themselves \
            (403). Requires If-Match.",
        params(("id" = Uuid, Path, description = "User id"), etag::IfMatch),
        security(("bearer" = [])),
        responses(
            (status = 204, description = "Disabled",
             headers(("ETag" = String, description = "The disabled version's ETag"))),
        )
    )]
    disable_user(id: web::Path<Uuid>) => remove::<Users>((), id.into_inner())
}

pipeline_handler! {
    /// Enable a disabled user again.
    #[utoipa::path(
        post, path = "/api/v1/users/{id}/restore", tag = "users",
        summary = "Enable a disabled user again.",
        description = "As `PATCH` of `disabled: false`. Requires If-Match (the disabled version's ETag).",
        params(("id" = Uuid, Path, description = "User id"), etag::IfMatch),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "Enabled", body = UserResponse,
             headers(("ETag" = String, description = "`\"<version>\"`"))),
            (status = 409, response = problems::Conflict),
        )
    )]
    enable_user(id: web::Path<Uuid>) => restore::<Users>((), id.into_inner())
}

pipeline_handler! {
    /// A user's audit trail, newest first.
    #[utoipa::path(
        get, path = "/api/v1/users/{id}/history", tag = "users",
        summary = "A user's audit trail, newest first.",
        description = "Its creation, changes, disabling and enabling, set-password tokens issued \
            and passwords set (never the token or the password).",
        params(("id" = Uuid, Path, description = "User id"),
               ListRequest<record::History, crate::http::machinery::list::NoFilters>),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "A page of audit events (or CSV)",
             content((PageResponse<record::AuditEvent> = "application/json"), (String = "text/csv")),
             headers(("ETag" = String, description = "Changes whenever the registry changes"))),
            (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
            (status = 429, response = problems::TooManyRequests),
        )
    )]
    user_history(
        id: web::Path<Uuid>,
        query: ListRequest<record::History, crate::http::machinery::list::NoFilters>
    ) => history::<Users>((), id.into_inner(), query.into_parts().0)
}

/// Issue a fresh set-password token for a user.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/set-password-token", tag = "users",
    summary = "Issue a fresh set-password token for a user.",
    description = "A new one-time `set_password_token`, shown this once, with which the user sets \
        its password at `POST /api/v1/auth/set-password` (within `LSHUB_SET_PASSWORD_TOKEN_TTL` \
        seconds, 72 h by default). Earlier tokens of the user stop working; its password, if it \
        has one, keeps working until the new one is set. A disabled user is 404, as for every \
        write of one. Never kept for an `Idempotency-Key` retry (409 \
        `idempotency_answer_not_stored`).",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user, with its new token", body = UserWithToken,
         headers(("Cache-Control" = String, description = "`no-store`"))),
    )
)]
pub async fn issue_set_password_token(
    call: Call,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (pool, principal, _) = call.parts();
    let actor = record::actor(principal);
    let (token, digest) = new_opaque_token();
    let user = crate::db::transaction(pool, move |conn| {
        if Users::lock(conn, (), id)?.archived_at.is_some() {
            return Err(ApiError::not_found(Users::NOUN));
        }
        model::replace_set_password_token(conn, id, &digest)?;
        audit::record(
            conn,
            &actor,
            AuditAction::Update,
            Users::ENTITY,
            audit::Event {
                entity_id: id,
                related: Vec::new(),
                version: None,
                changes:             serde_json::json!({"before": {}, "after": {"set_password_token": "issued"}}),
            }
        )?;
        Users::load(conn, (), id, false)
    })
    .await?;
    Ok(shown_once(
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(UserWithToken {
                user,
                set_password_token: Some(token),
            }),
    ))
}
