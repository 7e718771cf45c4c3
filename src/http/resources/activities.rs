//! `/api/v1/activities`: the activities through which goals are pursued.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::db::list::SortKey;
use crate::domain::strategy::{self, ActivityBody, ActivityDraft};
use crate::domain::{ActivityStatus, Area};
use crate::error::{stored, ApiError};
use crate::http::machinery::list::{serve_list, ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{to_object, Resource};
use crate::http::machinery::schema::request_bodies;
use crate::models::activity::{self as model, ActivityFilter, ActivityRow};
use crate::models::record as rows;

/// An activity, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivityResponse {
    /// UUID v7.
    pub id: Uuid,
    /// What the activity is (2..500 characters).
    pub title: String,
    /// More detail.
    pub description: Option<String>,
    /// Where it stands.
    pub status: ActivityStatus,
    /// First day, if known.
    pub starts_on: Option<NaiveDate>,
    /// Last day, if known.
    pub ends_on: Option<NaiveDate>,
    /// Areas of action: its own, or (when it has none) its primary goal's.
    pub areas: Vec<Area>,
    /// True when `areas` are the primary goal's (the activity has none of its own).
    pub areas_inherited: bool,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
}

/// Responses for a page of rows; the primary goals' areas come in one query.
fn responses(
    conn: &mut diesel::PgConnection,
    rows: Vec<ActivityRow>,
) -> Result<Vec<ActivityResponse>, ApiError> {
    let bare: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.areas.is_empty())
        .map(|r| r.id)
        .collect();
    let inherited = if bare.is_empty() {
        Default::default()
    } else {
        model::primary_goal_areas(conn, &bare)?
    };
    rows.into_iter()
        .map(|row| {
            let (areas, areas_inherited) = if row.areas.is_empty() {
                (inherited.get(&row.id).cloned().unwrap_or_default(), true)
            } else {
                (row.areas, false)
            };
            Ok(ActivityResponse {
                id: row.id,
                title: row.title,
                description: row.description,
                status: stored(&row.status)?,
                starts_on: row.starts_on,
                ends_on: row.ends_on,
                areas: areas.iter().map(|a| stored(a)).collect::<Result<_, _>>()?,
                areas_inherited,
                created_at: row.created_at,
                updated_at: row.updated_at,
                version: row.version,
                archived_at: row.archived_at,
            })
        })
        .collect()
}

request_bodies!(ActivityBody => CreateActivity, ActivityPatch);

/// Activities in the record pipeline.
pub struct Activities;

impl Resource for Activities {
    const ENTITY: &'static str = "activity";
    type Parent = ();
    type Write = ActivityDraft;
    type Response = ActivityResponse;
    type Body = ActivityBody;

    fn validate(body: Map<String, Json>) -> Result<ActivityDraft, ApiError> {
        Ok(strategy::activity(body)?)
    }

    record_table_storage!("activities", ActivityDraft);

    fn load(
        conn: &mut diesel::PgConnection,
        (): (),
        id: Uuid,
        include_archived: bool,
    ) -> Result<ActivityResponse, ApiError> {
        let row = model::load_one(conn, id, include_archived)?
            .ok_or_else(|| ApiError::not_found(Self::ENTITY))?;
        responses(conn, vec![row])?
            .pop()
            .ok_or_else(|| ApiError::not_found(Self::ENTITY))
    }

    fn version(record: &ActivityResponse) -> i64 {
        record.version
    }

    /// Inherited areas are not the activity's own: a patch that leaves `areas` alone keeps
    /// inheriting them.
    fn writable(record: &ActivityResponse) -> Result<Map<String, Json>, ApiError> {
        let mut map = to_object(record)?;
        map.retain(|k, _| !Self::shape().is_read_only(k));
        if record.areas_inherited {
            map.remove("areas");
        }
        Ok(map)
    }
}

/// Filters of `GET /activities` (besides the parameters every record list takes).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityFilters {
    /// Only activities linked to this goal (either role).
    pub goal_id: Option<Uuid>,
    /// Only activities in this area of action (their own areas, or their primary goal's).
    pub area: Option<Area>,
    /// Only activities with this status.
    pub status: Option<ActivityStatus>,
    /// Only activities running on or after this day (`ends_on` null or not before it).
    pub from: Option<NaiveDate>,
    /// Only activities running on or before this day (`starts_on` null or not after it; not
    /// before `from`, else 422).
    pub to: Option<NaiveDate>,
}

impl ListKind for Activities {
    const SORTS: &'static [SortKey] = model::SORT_KEYS;
    const SEARCHES: &'static str = "title and description";
    const ARCHIVED: Option<&'static str> = Some("Include archived activities.");
    const CSV_COLUMNS: &'static [&'static str] = CSV_COLUMNS;
}

/// CSV columns of the list: the response's members, nested objects flattened with `_`.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "title",
    "description",
    "status",
    "starts_on",
    "ends_on",
    "areas",
    "areas_inherited",
    "created_at",
    "updated_at",
    "version",
    "archived_at",
];

/// List activities.
#[utoipa::path(
    get, path = "/api/v1/activities", tag = "activities",
    description = "Keyset-paginated; `Accept: text/csv` streams every match.",
    params(ListRequest<Activities, ActivityFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of activities (or CSV)",
         content((PageResponse<ActivityResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_activities(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Activities, ActivityFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let include_archived =
        principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if to < from {
            return Err(ApiError::invalid(
                "/to",
                "out_of_range",
                "`to` is before `from`",
            ));
        }
    }
    let filter = ActivityFilter {
        include_archived,
        goal_id: query.goal_id,
        area: query.area,
        status: query.status,
        period: (query.from, query.to),
        search: params.search().map(str::to_owned),
    };
    let order = params.order::<Activities>(model::SEARCH_COLUMN)?;
    serve_list(
        &pool,
        &principal,
        &req,
        &params,
        model::list_query(&filter, order, None),
        CSV_COLUMNS,
        responses,
    )
    .await
}

record_handlers! {
    resource: Activities,
    tag: "activities",
    collection: "/api/v1/activities",
    item: "/api/v1/activities/{id}",
    restore: "/api/v1/activities/{id}/restore",
    history: "/api/v1/activities/{id}/history",
    response: ActivityResponse,
    create_body: CreateActivity,
    patch_body: ActivityPatch,
    patch_description: "RFC 7396 merge patch: lists replace, null clears. Requires If-Match. \
        Archiving an activity keeps its links; they are hidden with it and come back with a restore.",
    summaries: ("Create an activity.", "Read an activity.", "Update an activity (JSON Merge Patch).",
        "Archive an activity.", "Restore an archived activity.", "An activity's audit trail, newest first."),
    handlers: (create_activity, get_activity, update_activity, archive_activity, restore_activity, activity_history),
}
