//! `/api/v1/goal-activity-links`: which activity serves which goal, and the same links read
//! from either side (`/goals/{id}/activities`, `/activities/{id}/goals`).
//!
//! A link is a record of its own (id, version, timestamps, ETag, audit), deleted rather than
//! archived. Archiving a goal or an activity keeps its links; they are hidden while either end
//! is archived (editors see them with `include_archived=true`) and come back with a restore.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::db::{self, PgPool};
use crate::domain::strategy::{self, GoalActivityLinkBody, LinkDraft};
use crate::domain::{codes, ActivityStatus, GoalLinkRole};
use crate::error::{stored, ApiError, FieldError};
use crate::http::machinery::etag::IfMatch;
use crate::http::machinery::list::{serve_list, ListKind, ListParams, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{self, top_level, Call, GetParams, Locked, Removal, Resource};
use crate::http::machinery::schema::request_bodies;
use crate::models::link::{self, GoalActivityLinkFilter, GoalActivityLinkRow, NewGoalActivityLink};

/// The goal end of a link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalSummary {
    /// Goal id.
    pub id: Uuid,
    /// Its number.
    pub code: i32,
    /// Its short name.
    pub title: String,
}

/// The activity end of a link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivitySummary {
    /// Activity id.
    pub id: Uuid,
    /// Its title.
    pub title: String,
    /// Its status.
    pub status: ActivityStatus,
}

/// A goal–activity link, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalActivityLink {
    /// UUID v7.
    pub id: Uuid,
    /// The goal.
    pub goal_id: Uuid,
    /// The activity.
    pub activity_id: Uuid,
    /// `primary` (the goal the activity is listed under; one per activity) or `supporting`.
    pub role: GoalLinkRole,
    /// A note.
    pub note: Option<String>,
    /// The goal, in brief.
    pub goal: GoalSummary,
    /// The activity, in brief.
    pub activity: ActivitySummary,
    /// When the link was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
}

impl TryFrom<GoalActivityLinkRow> for GoalActivityLink {
    type Error = ApiError;
    fn try_from(r: GoalActivityLinkRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: r.id,
            goal_id: r.goal_id,
            activity_id: r.activity_id,
            role: stored(&r.role)?,
            note: r.note,
            goal: GoalSummary {
                id: r.goal_id,
                code: r.goal_code,
                title: r.goal_title,
            },
            activity: ActivitySummary {
                id: r.activity_id,
                title: r.activity_title,
                status: stored(&r.activity_status)?,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

fn load(conn: &mut PgConnection, id: Uuid) -> Result<GoalActivityLink, ApiError> {
    link::load_goal_activity_link(conn, id)?
        .ok_or_else(|| ApiError::not_found("goal-activity link"))
        .and_then(GoalActivityLink::try_from)
}

/// CSV columns of the list: the response's members, nested objects flattened with `_`.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "goal_id",
    "activity_id",
    "role",
    "note",
    "goal_code",
    "goal_title",
    "activity_title",
    "activity_status",
    "created_at",
    "updated_at",
    "version",
];

/// Filters of the goal–activity link list (besides `limit`, `cursor`, `include_archived`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LinkFilters {
    /// Only links of this goal.
    pub goal_id: Option<Uuid>,
    /// Only links of this activity.
    pub activity_id: Option<Uuid>,
    /// Only this role.
    pub role: Option<GoalLinkRole>,
}

impl ListKind for GoalActivityLinks {
    const ARCHIVED: Option<&'static str> =
        Some("Include links whose goal or activity is archived.");
    const CSV_COLUMNS: &'static [&'static str] = CSV_COLUMNS;
}

async fn serve_links(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    params: ListParams,
    query: LinkFilters,
) -> Result<HttpResponse, ApiError> {
    let filter = GoalActivityLinkFilter {
        include_archived: principal
            .check_include_archived(params.include_archived.unwrap_or(false))?,
        goal_id: query.goal_id,
        activity_id: query.activity_id,
        role: query.role,
    };
    serve_list(
        pool,
        principal,
        req,
        &params,
        link::goal_activity_links_query(&filter, None),
        CSV_COLUMNS,
        |_conn, rows: Vec<GoalActivityLinkRow>| {
            rows.into_iter().map(GoalActivityLink::try_from).collect()
        },
    )
    .await
}

/// List goal–activity links.
#[utoipa::path(
    get, path = "/api/v1/goal-activity-links", tag = "activities",
    description = "In creation order; keyset-paginated; `Accept: text/csv` streams every match.",
    params(ListRequest<GoalActivityLinks, LinkFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of links (or CSV)",
         content((PageResponse<GoalActivityLink> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_goal_activity_links(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<GoalActivityLinks, LinkFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, filters) = query.into_parts();
    serve_links(&pool, &principal, &req, params, filters).await
}

/// The links read from either side: in creation order, no archived ends.
pub struct LinkSides;

impl ListKind for LinkSides {}

/// Filters of the either-side reads (besides `limit` and `cursor`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SideFilters {
    /// Only this role.
    pub role: Option<GoalLinkRole>,
}

/// The activities that serve a goal.
#[utoipa::path(
    get, path = "/api/v1/goals/{id}/activities", tag = "goals",
    description = "The goal's links, each with its activity in brief.",
    params(("id" = Uuid, Path, description = "Goal id"), ListRequest<LinkSides, SideFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of links (or CSV)",
         content((PageResponse<GoalActivityLink> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_goal_activities(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<Uuid>,
    query: ListRequest<LinkSides, SideFilters>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (params, side) = query.into_parts();
    let filters = LinkFilters {
        goal_id: Some(id),
        role: side.role,
        ..LinkFilters::default()
    };
    serve_side::<super::goals::Goals>(&pool, &principal, &req, id, params, filters).await
}

/// The goals an activity serves.
#[utoipa::path(
    get, path = "/api/v1/activities/{id}/goals", tag = "activities",
    description = "The activity's links, each with its goal in brief.",
    params(("id" = Uuid, Path, description = "Activity id"), ListRequest<LinkSides, SideFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of links (or CSV)",
         content((PageResponse<GoalActivityLink> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_activity_goals(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<Uuid>,
    query: ListRequest<LinkSides, SideFilters>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (params, side) = query.into_parts();
    let filters = LinkFilters {
        activity_id: Some(id),
        role: side.role,
        ..LinkFilters::default()
    };
    serve_side::<super::activities::Activities>(&pool, &principal, &req, id, params, filters).await
}

/// The links of one end, `E` record `end` (404 unless it is live), narrowed by `filters`.
async fn serve_side<E: Resource<Parent = ()>>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    end: Uuid,
    params: ListParams,
    filters: LinkFilters,
) -> Result<HttpResponse, ApiError> {
    db::run(pool, move |conn| E::load(conn, (), end, false).map(|_| ())).await?;
    serve_links(pool, principal, req, params, filters).await
}

request_bodies!(
    GoalActivityLinkBody => CreateGoalActivityLink, GoalActivityLinkPatch, fixed in GoalActivityLinks
);

/// Goal–activity links in the write pipeline: top-level, editors' to write, deleted rather
/// than archived, their ends fixed.
pub struct GoalActivityLinks;

impl Resource for GoalActivityLinks {
    const ENTITY: &'static str = "goal_activity_link";
    const NOUN: &'static str = "goal-activity link";
    const REMOVAL: Removal = Removal::Delete;
    const FIXED: &'static [&'static str] = &["goal_id", "activity_id"];
    type Parent = ();
    type Write = LinkDraft;
    type Response = GoalActivityLink;
    type Body = GoalActivityLinkBody;

    fn location((): (), id: Uuid) -> String {
        top_level("goal-activity-links", id)
    }

    fn validate(body: Map<String, Json>) -> Result<LinkDraft, ApiError> {
        Ok(strategy::goal_activity_link(body)?)
    }

    /// 422 unless both ends exist and are live.
    fn prepare(
        conn: &mut PgConnection,
        _principal: &Principal,
        write: &mut LinkDraft,
    ) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if !link::is_live(conn, write.goal_id)? {
            errors.push(FieldError::new(
                "/goal_id",
                codes::UNKNOWN_VALUE,
                "no live goal with this id",
            ));
        }
        if !link::is_live(conn, write.activity_id)? {
            errors.push(FieldError::new(
                "/activity_id",
                codes::UNKNOWN_VALUE,
                "no live activity with this id",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    /// A link's changes show in its goal's and its activity's histories.
    fn related(link: &GoalActivityLink) -> Vec<Uuid> {
        vec![link.goal_id, link.activity_id]
    }

    fn lock(conn: &mut PgConnection, (): (), id: Uuid) -> Result<Locked, ApiError> {
        link::lock_goal_activity_link(conn, id)?
            .map(Locked::live)
            .ok_or_else(|| ApiError::not_found(Self::NOUN))
    }

    fn insert(conn: &mut PgConnection, (): (), write: &LinkDraft) -> Result<Uuid, ApiError> {
        let id = Uuid::now_v7();
        let now = db::now();
        link::insert_goal_activity_link(
            conn,
            &NewGoalActivityLink {
                id,
                goal_id: write.goal_id.uuid(),
                activity_id: write.activity_id.uuid(),
                role: write.role.as_str(),
                note: write.note.as_deref(),
                created_at: now,
                updated_at: now,
            },
        )?;
        Ok(id)
    }

    fn update(
        conn: &mut PgConnection,
        id: Uuid,
        _expected_version: i64,
        write: &LinkDraft,
    ) -> Result<(), ApiError> {
        Ok(link::update_goal_activity_link(
            conn,
            id,
            write.role.as_str(),
            write.note.as_deref(),
            db::now(),
        )?)
    }

    fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), ApiError> {
        Ok(link::delete_goal_activity_link(conn, id)?)
    }

    fn load(
        conn: &mut PgConnection,
        (): (),
        id: Uuid,
        _include_archived: bool,
    ) -> Result<GoalActivityLink, ApiError> {
        load(conn, id)
    }

    fn version(link: &GoalActivityLink) -> i64 {
        link.version
    }
}

/// Link an activity to a goal.
#[utoipa::path(
    post, path = "/api/v1/goal-activity-links", tag = "activities",
    description = "One link per (goal, activity); at most one `primary` goal per activity (409).",
    request_body(content = CreateGoalActivityLink, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Linked", body = GoalActivityLink,
         headers(("Location" = String, description = "The link's URL"), ("ETag" = String, description = "`\"<version>\"`"))),
        (status = 409, response = problems::Conflict),
    )
)]
pub async fn create_goal_activity_link(
    call: Call,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    record::create::<GoalActivityLinks>(&call, (), body).await
}

/// Read a goal–activity link.
#[utoipa::path(
    get, path = "/api/v1/goal-activity-links/{id}", tag = "activities",
    description = "Honours `If-None-Match` (304).",
    params(("id" = Uuid, Path, description = "Link id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The link", body = GoalActivityLink, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 304, description = "Not modified"),
    )
)]
pub async fn get_goal_activity_link(
    call: Call,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let params = GetParams::default();
    record::get::<GoalActivityLinks>(&call, (), id.into_inner(), params).await
}

/// Change a link's role or note (JSON Merge Patch).
#[utoipa::path(
    patch, path = "/api/v1/goal-activity-links/{id}", tag = "activities",
    description = "Only `role` and `note` change; a link to other ends is a new link. Requires If-Match. A patch that changes nothing writes nothing.",
    params(("id" = Uuid, Path, description = "Link id"), IfMatch),
    request_body(content((GoalActivityLinkPatch = "application/merge-patch+json"), (GoalActivityLinkPatch = "application/json"))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = GoalActivityLink, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 409, response = problems::Conflict),
    )
)]
pub async fn update_goal_activity_link(
    call: Call,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    record::update::<GoalActivityLinks>(&call, (), id.into_inner(), body).await
}

/// Remove a link.
#[utoipa::path(
    delete, path = "/api/v1/goal-activity-links/{id}", tag = "activities",
    description = "Removes the link (its audit trail keeps it). Requires If-Match.",
    params(("id" = Uuid, Path, description = "Link id"), IfMatch),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
    )
)]
pub async fn delete_goal_activity_link(
    call: Call,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    record::remove::<GoalActivityLinks>(&call, (), id.into_inner()).await
}
