//! `/api/v1/audit-events`: the whole audit trail, newest first (editors and admins).

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::domain::{self, AuditAction};
use crate::error::ApiError;
use crate::http::machinery::list::{serve_list, ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{AuditEvent, AUDIT_CSV_COLUMNS};
use crate::models::audit::{self as model, AuditFilter};

/// The audit log, as a list: newest first, no sort or search of its own.
pub struct AuditLog;

impl ListKind for AuditLog {
    const CSV_COLUMNS: &'static [&'static str] = AUDIT_CSV_COLUMNS;
}

/// Filters of `GET /audit-events`; they combine (every one must hold).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilters {
    /// Only changes by this user or client.
    pub actor_id: Option<Uuid>,
    /// Only changes to records of this entity, as events name it (`company`, `irccs`,
    /// `university`, `partner`, `goal`, `activity`, `goal_activity_link`, `goal_partner`,
    /// `activity_participant`, `user`); another name matches nothing.
    #[param(pattern = "^[a-z_]{1,50}$")]
    pub entity: Option<String>,
    /// Only changes to this record.
    pub entity_id: Option<Uuid>,
    /// Only changes of this kind.
    pub action: Option<AuditAction>,
    /// Only changes at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only changes before this time (RFC 3339); after `since` (422 otherwise).
    pub until: Option<DateTime<Utc>>,
    /// Only changes made by the request with this id (its `X-Request-Id`).
    #[param(value_type = Option<domain::RequestId>)]
    pub request_id: Option<String>,
}

/// The audit log.
#[utoipa::path(
    get, path = "/api/v1/audit-events", tag = "audit",
    description = "Every change to every record, newest first: who (`actor_id`, `actor_kind`), \
        what (`action`, `entity`, `entity_id`, the fields before and after), when, and under \
        which request. Keyset-paginated; follow `next_cursor` or the `Link` header. \
        `Accept: text/csv` streams every match (`changes` as its JSON text).",
    params(ListRequest<AuditLog, AuditFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit events (or CSV)",
         content((PageResponse<AuditEvent> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_audit_events(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<AuditLog, AuditFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if until <= since {
            return Err(ApiError::invalid(
                "/until",
                domain::codes::OUT_OF_RANGE,
                "`until` is not after `since`",
            ));
        }
    }
    if let Some(entity) = &query.entity {
        let named = (1..=50).contains(&entity.len())
            && entity.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !named {
            return Err(ApiError::invalid(
                "/entity",
                domain::codes::INVALID_FORMAT,
                "an entity is 1 to 50 lowercase letters and `_`",
            ));
        }
    }
    let request_id = query
        .request_id
        .as_deref()
        .map(domain::RequestId::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("/request_id", e.code, e.message))?;
    let filter = AuditFilter {
        actor_id: query.actor_id,
        entity: query.entity,
        entity_id: query.entity_id,
        concerning: None,
        action: query.action,
        since: query.since,
        until: query.until,
        request_id: request_id.map(domain::RequestId::into_inner),
    };
    serve_list(
        &pool,
        &principal,
        &req,
        &params,
        model::log_query(&filter, None),
        AuditLog::CSV_COLUMNS,
        |_conn, rows: Vec<AuditEvent>| Ok(rows),
    )
    .await
}
