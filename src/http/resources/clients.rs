//! `/api/v1/clients`: API clients, the machine integrations' credentials (admins only).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::account::{self, AccountFilters, ADMINS};
use super::organisation::Pool;
use crate::auth::password::hash_password;
use crate::auth::tokens::random_secret;
use crate::auth::Principal;
use crate::domain::account::{self as rules, ClientBody, ClientDraft};
use crate::domain::{codes, AuditAction, Role};
use crate::error::{stored, ApiError};
use crate::http::machinery::etag;
use crate::http::machinery::idempotency::shown_once;
use crate::http::machinery::list::{ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{self, top_level, Call, Locked, Removal, Resource};
use crate::http::machinery::rotation;
use crate::http::machinery::schema::request_bodies;
use crate::models::account::CLIENTS;
use crate::models::audit;
use crate::models::client::{self as model, ClientRow};
use crate::models::link::is_live;
use crate::models::record as rows;

/// An API client, as read: never its secret, nor any hash of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientResponse {
    /// The client id (`client_id` at the token endpoint; UUID v7).
    pub id: Uuid,
    /// What the client is.
    pub name: String,
    /// The role whose rights it has.
    pub role: Role,
    /// The organisation a partner client acts for.
    pub organisation_id: Option<Uuid>,
    /// Until when the secret before the last rotation still works, if it does.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    /// When it was revoked: its secrets and its access tokens no longer work.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
}

impl TryFrom<ClientRow> for ClientResponse {
    type Error = ApiError;

    fn try_from(row: ClientRow) -> Result<Self, ApiError> {
        let now = Utc::now();
        Ok(Self {
            id: row.id,
            name: row.name,
            role: stored(&row.role)?,
            organisation_id: row.organisation_id,
            previous_secret_valid_until: row.previous_valid_until.filter(|until| *until > now),
            revoked_at: row.revoked_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// A client as the create (and a secret rotation) answers it: the secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientResponse,
    /// The secret (`client_secret` at the token endpoint). Shown only in this answer: it is
    /// stored as an Argon2 hash and cannot be read again.
    pub client_secret: String,
}

request_bodies!(ClientBody => CreateClient, ClientPatch);

/// A client as written: its draft, and on create its new secret with the hash stored.
#[derive(Debug, Clone)]
pub struct ClientWrite {
    draft: ClientDraft,
    secret: Option<(String, String)>,
}

/// Two writes are the same change when their drafts are: a secret is never patched.
impl PartialEq for ClientWrite {
    fn eq(&self, other: &Self) -> bool {
        self.draft == other.draft
    }
}

/// API clients in the write pipeline: admins' to write; DELETE revokes (an archive whose
/// restore is not offered: a revoked client gets a new one).
pub struct Clients;

impl Resource for Clients {
    const ENTITY: &'static str = "api_client";
    const NOUN: &'static str = "API client";
    const CREATE_ROLES: &'static [Role] = ADMINS;
    const UPDATE_ROLES: &'static [Role] = ADMINS;
    const REMOVAL: Removal = Removal::Archive;
    type Parent = ();
    type Write = ClientWrite;
    type Response = ClientResponse;
    type Body = ClientBody;

    fn location((): (), id: Uuid) -> String {
        top_level("clients", id)
    }

    fn validate(body: Map<String, Json>) -> Result<ClientWrite, ApiError> {
        Ok(ClientWrite {
            draft: rules::client(body)?,
            secret: None,
        })
    }

    /// A partner client's organisation must be live; a new client gets its secret.
    fn prepare(
        conn: &mut diesel::PgConnection,
        _principal: &Principal,
        write: &mut ClientWrite,
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
        let secret = random_secret();
        let hash = hash_password(&secret).map_err(ApiError::internal)?;
        write.secret = Some((secret, hash));
        Ok(())
    }

    fn reveal(write: &ClientWrite) -> Option<Map<String, Json>> {
        let (secret, _) = write.secret.as_ref()?;
        Some(Map::from_iter([(
            "client_secret".to_owned(),
            Json::String(secret.clone()),
        )]))
    }

    fn lock(conn: &mut diesel::PgConnection, (): (), id: Uuid) -> Result<Locked, ApiError> {
        let (version, archived_at) = rows::lock(conn, CLIENTS.archivable, Self::NOUN, id)?;
        Ok(Locked {
            version,
            archived_at,
        })
    }

    fn insert(
        conn: &mut diesel::PgConnection,
        (): (),
        write: &ClientWrite,
    ) -> Result<Uuid, ApiError> {
        let (_, hash) = write
            .secret
            .as_ref()
            .ok_or_else(|| ApiError::internal("a client created without a secret"))?;
        Ok(model::insert_draft(conn, &write.draft, hash)?)
    }

    fn update(
        conn: &mut diesel::PgConnection,
        id: Uuid,
        expected: i64,
        write: &ClientWrite,
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
            CLIENTS.archivable,
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
    ) -> Result<ClientResponse, ApiError> {
        model::load_one(conn, id, include_archived)?
            .ok_or_else(|| ApiError::not_found(Self::NOUN))
            .and_then(ClientResponse::try_from)
    }

    fn version(record: &ClientResponse) -> i64 {
        record.version
    }
}

impl ListKind for Clients {
    const ARCHIVED: Option<&'static str> = Some("Include revoked clients.");
    const CSV_COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "role",
        "organisation_id",
        "previous_secret_valid_until",
        "revoked_at",
        "created_at",
        "updated_at",
        "version",
    ];
}

/// List API clients.
#[utoipa::path(
    get, path = "/api/v1/clients", tag = "clients",
    description = "In creation order; keyset-paginated. Revoked clients only with `include_archived=true`.",
    params(ListRequest<Clients, AccountFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of clients (or CSV)",
         content((PageResponse<ClientResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_clients(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Clients, AccountFilters>,
) -> Result<HttpResponse, ApiError> {
    let parts = query.into_parts();
    account::list::<Clients, ClientRow, ClientResponse>(
        &pool,
        &principal,
        &req,
        parts,
        CLIENTS,
        ClientResponse::try_from,
    )
    .await
}

pipeline_handler! {
    /// Create an API client.
    #[utoipa::path(
        post, path = "/api/v1/clients", tag = "clients",
        summary = "Create an API client.",
        description = "The answer carries the new client's secret, shown this once.",
        request_body(content = CreateClient, content_type = "application/json"),
        security(("bearer" = [])),
        responses(
            (status = 201, description = "Created, with its secret", body = ClientWithSecret,
             headers(("Location" = String, description = "The new client's URL"),
                     ("ETag" = String, description = "`\"<version>\"`"))),
        )
    )]
    create_client(body: web::Bytes) => create::<Clients>((), body)
}

pipeline_handler! {
    /// Read an API client.
    #[utoipa::path(
        get, path = "/api/v1/clients/{id}", tag = "clients",
        summary = "Read an API client.",
        description = "Honours `If-None-Match` (304).",
        params(("id" = Uuid, Path, description = "Client id"), record::GetParams),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "The client", body = ClientResponse,
             headers(("ETag" = String, description = "`\"<version>\"`"))),
            (status = 304, description = "Not modified since the ETag in If-None-Match"),
        )
    )]
    get_client(id: web::Path<Uuid>, query: web::Query<record::GetParams>)
        => get::<Clients>((), id.into_inner(), query.into_inner())
}

pipeline_handler! {
    /// Update an API client (JSON Merge Patch).
    #[utoipa::path(
        patch, path = "/api/v1/clients/{id}", tag = "clients",
        summary = "Update an API client (JSON Merge Patch).",
        description = "Its name, role and organisation (a partner client's only). Requires If-Match.",
        params(("id" = Uuid, Path, description = "Client id"), etag::IfMatch),
        request_body(content((ClientPatch = "application/merge-patch+json"), (ClientPatch = "application/json"))),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "Updated", body = ClientResponse,
             headers(("ETag" = String, description = "`\"<version>\"`"))),
        )
    )]
    update_client(id: web::Path<Uuid>, body: web::Bytes) => update::<Clients>((), id.into_inner(), body)
}

pipeline_handler! {
    /// Revoke an API client.
    #[utoipa::path(
        delete, path = "/api/v1/clients/{id}", tag = "clients",
        summary = "Revoke an API client.",
        description = "Its secrets stop working at once, its access tokens within a second. Requires If-Match.",
        params(("id" = Uuid, Path, description = "Client id"), etag::IfMatch),
        security(("bearer" = [])),
        responses(
            (status = 204, description = "Revoked",
             headers(("ETag" = String, description = "The revoked version's ETag"))),
        )
    )]
    revoke_client(id: web::Path<Uuid>) => remove::<Clients>((), id.into_inner())
}

pipeline_handler! {
    /// An API client's audit trail, newest first.
    #[utoipa::path(
        get, path = "/api/v1/clients/{id}/history", tag = "clients",
        summary = "An API client's audit trail, newest first.",
        description = "Its creation, changes, secret rotations and revocation.",
        params(("id" = Uuid, Path, description = "Client id"),
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
    client_history(
        id: web::Path<Uuid>,
        query: ListRequest<record::History, crate::http::machinery::list::NoFilters>
    ) => history::<Clients>((), id.into_inner(), query.into_parts().0)
}

/// Rotate an API client's secret.
#[utoipa::path(
    post, path = "/api/v1/clients/{id}/rotate-secret", tag = "clients",
    summary = "Rotate an API client's secret.",
    description = "A new secret, shown this once; the old one keeps working for `grace_seconds` \
        (default 0: it stops at once). Requires If-Match.",
    params(("id" = Uuid, Path, description = "Client id"), etag::IfMatch),
    request_body(content = rotation::RotateSecret, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rotated, with the new secret", body = ClientWithSecret,
         headers(("ETag" = String, description = "`\"<version>\"`"))),
    )
)]
pub async fn rotate_client_secret(
    call: Call,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let grace = rotation::grace_of(call.parts().2, &body)?;
    let secret = random_secret();
    let hash = web::block(move || hash_password(&secret).map(|h| (secret, h)))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let (secret, hash) = hash;
    let record =
        record::locked_write::<Clients, _>(&call, (), id, true, move |conn, actor, locked| {
            let until = Utc::now() + grace;
            model::rotate_secret(conn, id, locked.version, &hash, until)?;
            audit::record(
                conn,
                actor,
                AuditAction::Update,
                Clients::ENTITY,
                audit::Event {
                    entity_id: id,
                    related: Vec::new(),
                    version: None,
                    changes: serde_json::json!({
                        "before": {"secret": "rotated"},
                        "after": {"secret": "new", "previous_secret_valid_until": until},
                    }),
                },
            )?;
            Clients::load(conn, (), id, false)
        })
        .await?;
    let version = record.version;
    Ok(shown_once(
        etag::tag(&mut HttpResponse::Ok(), version).json(ClientWithSecret {
            client: record,
            client_secret: secret,
        }),
    ))
}
