//! `/api/v1/goals`: the hub's strategic goals.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::db::list::SortKey;
use crate::domain::strategy::{self, GoalBody, GoalDraft, LineOfAction};
use crate::domain::Area;
use crate::error::{stored, ApiError};
use crate::http::machinery::list::{serve_list, ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::Resource;
use crate::http::machinery::schema::request_bodies;
use crate::models::goal::{self as model, GoalFilter, GoalRow};
use crate::models::record as rows;

/// A strategic goal, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalResponse {
    /// UUID v7.
    pub id: Uuid,
    /// The goal's number (1..), unique among live goals.
    pub code: i32,
    /// The short name, e.g. "Competitiveness and internationalization".
    pub title: String,
    /// The one-line aim.
    pub headline: Option<String>,
    /// The GOAL sentence.
    pub statement: Option<String>,
    /// How the goal is pursued.
    pub lines_of_action: Vec<LineOfAction>,
    /// Areas of action.
    pub areas: Vec<Area>,
    /// Partners named only as a category (e.g. "Investment funds dedicated to the Life
    /// Sciences sector").
    pub unlisted_partners: Vec<String>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
}

impl TryFrom<GoalRow> for GoalResponse {
    type Error = ApiError;

    fn try_from(row: GoalRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id,
            code: row.code,
            title: row.title,
            headline: row.headline,
            statement: row.statement,
            lines_of_action: serde_json::from_value(row.lines_of_action)
                .map_err(ApiError::internal)?,
            areas: row
                .areas
                .iter()
                .map(|a| stored(a))
                .collect::<Result<_, _>>()?,
            unlisted_partners: row.unlisted_partners,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            archived_at: row.archived_at,
        })
    }
}

request_bodies!(GoalBody => CreateGoal, GoalPatch);

/// Goals in the record pipeline.
pub struct Goals;

impl Resource for Goals {
    const ENTITY: &'static str = "goal";
    type Parent = ();
    type Write = GoalDraft;
    type Response = GoalResponse;
    type Body = GoalBody;

    fn validate(body: Map<String, Json>) -> Result<GoalDraft, ApiError> {
        Ok(strategy::goal(body)?)
    }

    record_table_storage!("goals", GoalDraft);

    fn load(
        conn: &mut diesel::PgConnection,
        (): (),
        id: Uuid,
        include_archived: bool,
    ) -> Result<GoalResponse, ApiError> {
        model::load_one(conn, id, include_archived)?
            .ok_or_else(|| ApiError::not_found(Self::ENTITY))
            .and_then(GoalResponse::try_from)
    }

    fn version(record: &GoalResponse) -> i64 {
        record.version
    }
}

/// Filters of `GET /goals` (besides the parameters every record list takes).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GoalFilters {
    /// Only goals filed under this area of action.
    pub area: Option<Area>,
}

impl ListKind for Goals {
    const SORTS: &'static [SortKey] = model::SORT_KEYS;
    const SEARCHES: &'static str = "title and headline";
    const ARCHIVED: Option<&'static str> = Some("Include archived goals.");
    const CSV_COLUMNS: &'static [&'static str] = CSV_COLUMNS;
}

/// CSV columns of the list: the response's members, nested objects flattened with `_`.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "code",
    "title",
    "headline",
    "statement",
    "lines_of_action",
    "areas",
    "unlisted_partners",
    "created_at",
    "updated_at",
    "version",
    "archived_at",
];

/// List goals.
#[utoipa::path(
    get, path = "/api/v1/goals", tag = "goals",
    description = "Keyset-paginated; `Accept: text/csv` streams every match.",
    params(ListRequest<Goals, GoalFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of goals (or CSV)",
         content((PageResponse<GoalResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_goals(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Goals, GoalFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let filter = GoalFilter {
        include_archived: principal
            .check_include_archived(params.include_archived.unwrap_or(false))?,
        area: query.area,
        search: params.search().map(str::to_owned),
    };
    let order = params.order::<Goals>(model::SEARCH_COLUMN)?;
    serve_list(
        &pool,
        &principal,
        &req,
        &params,
        model::list_query(&filter, order, None),
        CSV_COLUMNS,
        |_conn, rows: Vec<GoalRow>| rows.into_iter().map(GoalResponse::try_from).collect(),
    )
    .await
}

record_handlers! {
    resource: Goals,
    tag: "goals",
    collection: "/api/v1/goals",
    item: "/api/v1/goals/{id}",
    restore: "/api/v1/goals/{id}/restore",
    history: "/api/v1/goals/{id}/history",
    response: GoalResponse,
    create_body: CreateGoal,
    patch_body: GoalPatch,
    patch_description: "RFC 7396 merge patch: lists replace, null clears. Requires If-Match. \
        Archiving a goal keeps its links; they are hidden with it and come back with a restore.",
    summaries: ("Create a goal.", "Read a goal.", "Update a goal (JSON Merge Patch).", "Archive a goal.",
        "Restore an archived goal.", "A goal's audit trail, newest first."),
    handlers: (create_goal, get_goal, update_goal, archive_goal, restore_goal, goal_history),
}
