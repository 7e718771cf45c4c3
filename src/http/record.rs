//! The life of a record, written once for every resource: create, read, update (JSON Merge
//! Patch under If-Match), archive, restore and history, each write committing with its audit
//! event. A resource (an organisation kind, a goal, an activity) supplies only its storage and
//! validation through [`Resource`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::body::{self, Shape};
use super::etag;
use super::list::{serve_list, ListParams};
use crate::auth::Principal;
use crate::db::list::{Filter, KeyType, ListQuery, Order, SortKey, Value};
use crate::db::{self, PgPool};
use crate::domain::Role;
use crate::error::{ApiError, FieldError};
use crate::models::audit::{self, Actor, AuditEventRow};

/// A kind of record with its own storage: what the shared pipeline needs from it.
pub trait Resource: Send + 'static {
    /// The audit `entity` and the noun of its 404s, e.g. `company`, `goal`.
    const ENTITY: &'static str;
    /// The collection's path segment under `/api/v1`.
    const COLLECTION: &'static str;
    /// Members a body may carry, and those that are read-only.
    const SHAPE: &'static Shape;
    /// Members a partner may change on a record it owns (none: partners may not write it).
    const PARTNER_MANAGED: &'static [&'static str];
    /// A validated body, ready to write.
    type Write: Clone + Send + 'static;
    /// The record as served.
    type Response: Serialize + Send + 'static;

    /// Decodes and validates a whole body (a create body, or a record with a patch merged in).
    fn validate(body: Map<String, Json>) -> Result<Self::Write, ApiError>;
    /// The organisation a partner must act for to change this record, if partners may.
    fn owner(id: Uuid) -> Option<Uuid>;
    /// Locks the record for update: its version and archive time, or 404.
    fn lock(conn: &mut PgConnection, id: Uuid) -> Result<(i64, Option<DateTime<Utc>>), ApiError>;
    /// Inserts a new record; returns its id.
    fn insert(conn: &mut PgConnection, write: &Self::Write) -> Result<Uuid, ApiError>;
    /// Rewrites the record and bumps its version, if it is still at `expected_version` (412).
    fn update(
        conn: &mut PgConnection,
        id: Uuid,
        expected_version: i64,
        write: &Self::Write,
    ) -> Result<(), ApiError>;
    /// Sets or clears `archived_at` under the version guard; returns the new version.
    fn set_archived(
        conn: &mut PgConnection,
        id: Uuid,
        expected_version: i64,
        archived_at: Option<DateTime<Utc>>,
    ) -> Result<i64, ApiError>;
    /// Loads one record (404 when absent, or archived unless `include_archived`).
    fn load(
        conn: &mut PgConnection,
        id: Uuid,
        include_archived: bool,
    ) -> Result<Self::Response, ApiError>;
    /// The record's version (its ETag).
    fn version(record: &Self::Response) -> i64;

    /// The record as a PATCH's merge target: its members less the read-only ones.
    fn writable(record: &Self::Response) -> Result<Map<String, Json>, ApiError> {
        let mut map = to_object(record)?;
        map.retain(|k, _| !Self::SHAPE.read_only.contains(&k.as_str()));
        Ok(map)
    }
}

/// The record as a JSON object, for audit diffs and merge patches.
pub fn to_object<T: Serialize>(record: &T) -> Result<Map<String, Json>, ApiError> {
    match serde_json::to_value(record).map_err(ApiError::internal)? {
        Json::Object(map) => Ok(map),
        _ => Err(ApiError::internal(
            "a record did not serialise to an object",
        )),
    }
}

/// `Location` of a created record.
pub fn location(collection: &str, id: Uuid) -> (header::HeaderName, String) {
    (header::LOCATION, format!("/api/v1/{collection}/{id}"))
}

/// Inserts a record with its audit event (call inside a transaction).
pub fn insert_new<R: Resource>(
    conn: &mut PgConnection,
    actor: &Actor,
    write: &R::Write,
) -> Result<(Uuid, R::Response), ApiError> {
    let id = R::insert(conn, write)?;
    let record = R::load(conn, id, false)?;
    let changes = audit::diff(None, Some(&Json::Object(to_object(&record)?)));
    audit::record(conn, actor, "create", R::ENTITY, id, changes)?;
    Ok((id, record))
}

/// `POST /{collection}`: 201 with `Location` and `ETag`.
pub async fn create<R: Resource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require_editor()?;
    body::check_media_type(req.headers(), body::JSON)?;
    let map = body::parse_object(&body)?;
    R::SHAPE.check(&map)?;
    let write = R::validate(map)?;
    let actor = Actor::from_principal(principal);
    let (id, record) =
        db::transaction(pool, move |conn| insert_new::<R>(conn, &actor, &write)).await?;
    Ok(etag::tag(&mut HttpResponse::Created(), R::version(&record))
        .insert_header(location(R::COLLECTION, id))
        .json(record))
}

/// Query of a single-record read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// Answer archived records too (editors and admins; 403 for others).
    pub include_archived: Option<bool>,
}

/// `GET /{collection}/{id}`: 200 with `ETag`, or 304 on a matching `If-None-Match`.
pub async fn get<R: Resource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
    params: GetParams,
) -> Result<HttpResponse, ApiError> {
    let include_archived =
        principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    let record = db::run(pool, move |conn| R::load(conn, id, include_archived)).await?;
    let version = R::version(&record);
    if let Some(not_modified) = etag::not_modified(req, version) {
        return Ok(not_modified);
    }
    Ok(etag::tag(&mut HttpResponse::Ok(), version).json(record))
}

/// 403 when a partner's patch changes a field outside `allowed` (the hub manages the rest).
pub fn check_partner_fields(
    principal: &Principal,
    before: &Map<String, Json>,
    after: &Map<String, Json>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    if principal.role != Role::Partner {
        return Ok(());
    }
    let mut errors: Vec<FieldError> = after
        .keys()
        .chain(before.keys())
        .filter(|k| !allowed.contains(&k.as_str()) && before.get(*k) != after.get(*k))
        .map(|k| {
            FieldError::new(
                format!("/{k}"),
                "hub_managed",
                format!("`{k}` is managed by the hub"),
            )
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    errors.dedup_by(|a, b| a.field == b.field);
    Err(ApiError::Forbidden {
        detail: "a partner may change only its organisation's self-managed fields".into(),
        errors,
    })
}

/// 403 unless the caller may patch record `id` of `R`: editors and admins always; partners
/// only a record their organisation owns, and only if `R` lets partners write at all.
fn require_patch_rights<R: Resource>(principal: &Principal, id: Uuid) -> Result<(), ApiError> {
    match (principal.role, R::owner(id)) {
        (Role::Editor | Role::Admin, _) => Ok(()),
        (Role::Partner, Some(owner)) if !R::PARTNER_MANAGED.is_empty() => {
            principal.require_owner_of(owner)
        }
        _ => Err(ApiError::forbidden(format!(
            "the {} role may not change this record",
            principal.role
        ))),
    }
}

/// `PATCH /{collection}/{id}`: JSON Merge Patch under `If-Match`.
///
/// Checks run in the contract's order: role, existence, ownership, media type, JSON, `If-Match`
/// (428, 412), the partner's field rights, validation (422), conflicts (409). The row is locked
/// first, so concurrent patches with one ETag serialise and all but one get 412.
pub async fn update<R: Resource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let partners_may = !R::PARTNER_MANAGED.is_empty();
    principal.require(if partners_may {
        &[Role::Partner, Role::Editor, Role::Admin]
    } else {
        &[Role::Editor, Role::Admin]
    })?;
    let headers = req.headers().clone();
    let actor = Actor::from_principal(principal);
    let principal = principal.clone();
    let record = db::transaction(pool, move |conn| {
        let (current_version, archived_at) = R::lock(conn, id)?;
        if archived_at.is_some() {
            return Err(ApiError::not_found(R::ENTITY));
        }
        require_patch_rights::<R>(&principal, id)?;
        body::check_media_type(&headers, body::MERGE_PATCH)?;
        let patch = body::parse_object(&body)?;
        etag::check_version(&etag::required_if_match(&headers)?, current_version)?;
        R::SHAPE.check(&patch)?;

        let current = R::load(conn, id, false)?;
        let before = to_object(&current)?;
        let unpatched = R::writable(&current)?;
        let mut patched = Json::Object(unpatched.clone());
        body::merge_patch(&mut patched, &Json::Object(patch));
        let Json::Object(patched) = patched else {
            return Err(ApiError::internal("merge patch produced a non-object"));
        };
        if patched == unpatched {
            return Ok(current);
        }
        check_partner_fields(&principal, &unpatched, &patched, R::PARTNER_MANAGED)?;
        let write = R::validate(patched)?;

        R::update(conn, id, current_version, &write)?;
        let record = R::load(conn, id, false)?;
        let after = Json::Object(to_object(&record)?);
        audit::record(
            conn,
            &actor,
            "update",
            R::ENTITY,
            id,
            audit::diff(Some(&Json::Object(before)), Some(&after)),
        )?;
        Ok(record)
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::Ok(), R::version(&record)).json(record))
}

/// `DELETE /{collection}/{id}`: archives (If-Match), 204 with the new ETag.
pub async fn archive<R: Resource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    principal.require_editor()?;
    let headers = req.headers().clone();
    let actor = Actor::from_principal(principal);
    let version = db::transaction(pool, move |conn| {
        let (current, archived_at) = R::lock(conn, id)?;
        if archived_at.is_some() {
            return Err(ApiError::not_found(R::ENTITY));
        }
        etag::check_version(&etag::required_if_match(&headers)?, current)?;
        let now = db::now();
        let version = R::set_archived(conn, id, current, Some(now))?;
        let changes =
            serde_json::json!({"before": {"archived_at": null}, "after": {"archived_at": now}});
        audit::record(conn, &actor, "archive", R::ENTITY, id, changes)?;
        Ok(version)
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::NoContent(), version).finish())
}

/// `POST /{collection}/{id}/restore`: un-archives (If-Match); 409 if live or if what made it
/// unique (a name) is now taken.
pub async fn restore<R: Resource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    principal.require_editor()?;
    let headers = req.headers().clone();
    let actor = Actor::from_principal(principal);
    let record = db::transaction(pool, move |conn| {
        let (current, archived_at) = R::lock(conn, id)?;
        etag::check_version(&etag::required_if_match(&headers)?, current)?;
        let Some(archived_at) = archived_at else {
            return Err(ApiError::conflict("the record is not archived", None));
        };
        R::set_archived(conn, id, current, None)?;
        let changes = serde_json::json!({"before": {"archived_at": archived_at}, "after": {"archived_at": null}});
        audit::record(conn, &actor, "restore", R::ENTITY, id, changes)?;
        R::load(conn, id, false)
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::Ok(), R::version(&record)).json(record))
}

/// An audit event as served.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Event id (UUID v7).
    pub id: Uuid,
    /// When the change committed.
    pub at: DateTime<Utc>,
    /// The user or client who made it; null for the system.
    pub actor_id: Option<Uuid>,
    /// `user`, `client` or `system`.
    pub actor_kind: String,
    /// `create`, `update`, `archive` or `restore`.
    pub action: String,
    /// The kind of record, e.g. `company`.
    pub entity: String,
    /// The record.
    pub entity_id: Uuid,
    /// The request that made the change.
    pub request_id: Option<String>,
    /// The changed fields: `{"before": {...}, "after": {...}}` (`before` is null on create).
    #[schema(value_type = Object)]
    pub changes: Json,
}

impl From<AuditEventRow> for AuditEvent {
    fn from(row: AuditEventRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            actor_id: row.actor_id,
            actor_kind: row.actor_kind,
            action: row.action,
            entity: row.entity,
            entity_id: row.entity_id,
            request_id: row.request_id,
            changes: row.changes,
        }
    }
}

/// Query of a history: a page of the record's audit trail, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Page size, 1..200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Accepted as on every GET (editors and admins); a history always covers archived
    /// records, whose trail matters most.
    pub include_archived: Option<bool>,
}

const AUDIT_ID: SortKey = SortKey {
    name: "id",
    expr: "id",
    ty: KeyType::Uuid,
    nullable: false,
    tie: "id",
};

/// CSV columns of an audit trail (`changes` as its JSON text).
const AUDIT_CSV_COLUMNS: &[&str] = &[
    "id",
    "at",
    "actor_id",
    "actor_kind",
    "action",
    "entity",
    "entity_id",
    "request_id",
    "changes",
];

/// `GET /{collection}/{id}/history`: the record's audit trail (editors and admins).
pub async fn history<R: Resource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
    params: HistoryParams,
) -> Result<HttpResponse, ApiError> {
    principal.require_editor()?;
    principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    db::run(pool, move |conn| R::load(conn, id, true).map(|_| ())).await?;
    let query = ListQuery {
        resource: "audit_events",
        select: "SELECT *",
        from: "FROM audit_events",
        id_expr: "id",
        filters: vec![Filter::Eq("entity_id", Value::Uuid(id))],
        order: Order::Key {
            key: AUDIT_ID,
            desc: true,
        },
        limit: None,
    };
    let params = ListParams {
        limit: params.limit,
        cursor: params.cursor,
        ..ListParams::default()
    };
    serve_list(
        pool,
        principal,
        req,
        &params,
        query,
        AUDIT_CSV_COLUMNS,
        |_conn, rows: Vec<AuditEventRow>| Ok(rows.into_iter().map(AuditEvent::from).collect()),
    )
    .await
}
