//! `/api/v1/changes`: the change feed, for integrators that mirror the registry (every role).
//!
//! It reads the audit rows each write commits (`models::change` explains the fence that makes
//! its cursor exact); it has no write path of its own.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::domain::{AuditAction, ChangeEntity, OrganisationKind};
use crate::error::ApiError;
use crate::http::machinery::list::{
    cached_answer, check_limit, ListKind, ListRequest, Paged, TagState,
};
use crate::models::change::{self as model, ChangeFilter};

/// The feed, as a list: in commit order, `limit` and `cursor` only, no CSV.
pub struct Changes;

impl ListKind for Changes {
    const EXPORTS: bool = false;
}

/// Filters of `GET /changes`; they combine (both must hold).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangeFilters {
    /// Only changes to this entity; `organisation` is any of the four kinds.
    pub entity: Option<ChangeEntity>,
    /// Only changes to organisations of this kind (an organisation's `entity` is its kind, so
    /// this is `entity=<kind>`, and with another entity than `organisation` or the same kind
    /// it matches nothing).
    pub kind: Option<OrganisationKind>,
}

/// One change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeEvent {
    /// The event's number, unique and stable (a webhook's event id). Numbers are taken as
    /// changes are written, so they are not in feed order when transactions overlap: resume
    /// with `next_cursor`, never with `seq`.
    pub seq: i64,
    /// The entity changed: `company`, `irccs`, `university`, `partner`, `goal`, `activity`,
    /// `goal_activity_link`, `goal_partner` or `activity_participant`.
    #[schema(example = "company")]
    pub entity: String,
    /// The record's id.
    pub id: Uuid,
    /// What the change did. `archive` is a tombstone: the record left the registry's lists
    /// (a mirror removes it); `delete` removes a link for good.
    #[schema(value_type = AuditAction)]
    pub action: String,
    /// The record's version after the change (its `ETag`); for a link's `delete`, the version
    /// it was deleted at.
    pub version: Option<i64>,
    /// When the change was written.
    pub at: DateTime<Utc>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    /// The changes after the cursor, oldest first.
    pub data: Vec<ChangeEvent>,
    /// Pass as `cursor` for the next page. Never null: after the last change it resumes there,
    /// so poll it again for later ones.
    pub next_cursor: String,
}

impl Paged for ChangePage {
    fn next_cursor(&self) -> Option<&str> {
        Some(&self.next_cursor)
    }
}

/// The change feed.
#[utoipa::path(
    get, path = "/api/v1/changes", tag = "changes",
    description = "Every create, update, archive, restore and link change (links' deletes \
        too) of the registry, its goals, activities and links, in commit order: mirror the \
        registry by reading it once and then following this feed. Start without `cursor`; \
        pass each page's `next_cursor` (or follow the `Link` header) for the next, and poll \
        the last one for later changes: it is never null. The cursor is exact and never \
        expires: no change is skipped or repeated, even when transactions commit out of \
        order, because a page holds only changes older than every transaction still in \
        flight (a transaction held open delays the feed until it ends). Changes come in the \
        order their transactions began writing, which agrees with the commits for every two \
        that did not overlap and for every two writes of one record. Users' and API clients' \
        changes are not in it (see the audit log).",
    params(ListRequest<Changes, ChangeFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of changes", body = ChangePage,
         headers(("Link" = String, description = "`<...>; rel=\"next\"`: the next page, or \
                      where to poll again"),
                 ("ETag" = String, description = "Changes whenever the page could"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
    )
)]
pub async fn list_changes(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Changes, ChangeFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, filters) = query.into_parts();
    let limit = check_limit(params.limit)?;
    let query = model::feed_query(
        ChangeFilter {
            entity: filters.entity,
            kind: filters.kind,
        },
        limit,
    );
    // Before the ETag: a corrupt cursor is 400 even when the feed has not moved.
    query.check_cursor(params.cursor.as_deref())?;
    let cursor = params.cursor;
    cached_answer(
        &pool,
        &req,
        &principal,
        TagState::Read(model::feed_state),
        move |conn| {
            let page = query.load::<model::Change>(conn, cursor.as_deref(), false)?;
            let next_cursor = query.resume_after(page.data.last(), cursor.as_deref());
            let data = page
                .data
                .into_iter()
                .map(|c| ChangeEvent {
                    seq: c.seq,
                    entity: c.entity,
                    id: c.entity_id,
                    action: c.action,
                    version: c.version,
                    at: c.at,
                })
                .collect();
            Ok(ChangePage { data, next_cursor })
        },
    )
    .await
}
