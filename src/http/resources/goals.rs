//! `/api/v1/goals`: the hub's strategic goals.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::db::list::{Filter, ListQuery, Order, SortKey, Value};
use crate::domain::{codes, Area, Invalid};
use crate::error::{stored, ApiError};
use crate::http::machinery::body::Errors;
use crate::http::machinery::list::{serve_list, ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::Resource;
use crate::http::machinery::schema::request_bodies;
use crate::models::goal::{self as model, GoalRow, GoalWrite};
use crate::models::record as rows;

/// One of a goal's lines of action (the brochure's HOW).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LineOfAction {
    /// A short label, e.g. `Communication`, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What is done.
    pub text: String,
}

/// A line of action as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineOfActionInput {
    /// A short label, e.g. `Communication`: up to 100 characters; blank counts as absent.
    #[serde(default)]
    #[schema(value_type = Option<crate::http::machinery::schema::Text<0, 100>>, inline)]
    pub label: Option<String>,
    /// What is done: 1 to 2,000 characters.
    #[schema(value_type = crate::http::machinery::schema::Text<1, 2000>, inline)]
    pub text: String,
}

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

/// A goal as written (its body's one declaration): `POST /api/v1/goals` takes these members
/// (`CreateGoal`), `PATCH` a merge patch of them (`GoalPatch`; lists are replaced whole). Blank
/// optional members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct GoalBody {
    /// The goal's number, 1 to 999, unique among live goals (409 `duplicate` otherwise).
    #[serde(
        default,
        deserialize_with = "crate::http::machinery::body::optional_whole_number"
    )]
    #[schema(required, minimum = 1, maximum = 999, format = Int32)]
    pub code: Option<i64>,
    /// The short name: 2 to 200 characters.
    #[schema(required, value_type = Option<crate::http::machinery::schema::Text<2, 200>>, inline)]
    pub title: Option<String>,
    /// The one-line aim, up to 500 characters.
    #[schema(value_type = Option<crate::http::machinery::schema::Text<0, 500>>, inline)]
    pub headline: Option<String>,
    /// The GOAL sentence, up to 5,000 characters.
    #[schema(value_type = Option<crate::http::machinery::schema::Text<0, 5000>>, inline)]
    pub statement: Option<String>,
    /// How the goal is pursued: up to 50 lines. (The whole body is capped at 64 KiB: 413
    /// beyond.)
    #[serde(default)]
    #[schema(max_items = 50)]
    pub lines_of_action: Vec<LineOfActionInput>,
    /// Areas of action, no repeats.
    #[serde(default)]
    #[schema(value_type = crate::http::machinery::schema::Areas, inline)]
    pub areas: Vec<Area>,
    /// Partners named only as a category: up to 50 names, each up to 300 characters (blank
    /// ones are dropped).
    #[serde(default)]
    #[schema(max_items = 50, value_type = Vec<crate::http::machinery::schema::Text<0, 300>>, inline)]
    pub unlisted_partners: Vec<String>,
}

request_bodies!(GoalBody => CreateGoal, GoalPatch);

/// Checks a text's length; blank counts as absent.
pub fn text(errors: &mut Errors, field: &str, value: Option<String>, max: usize) -> Option<String> {
    errors.optional(field, value, |v| {
        let v = v.trim();
        if v.chars().count() > max {
            Err(Invalid::new(
                codes::TOO_LONG,
                format!("at most {max} characters"),
            ))
        } else {
            Ok(v.to_owned())
        }
    })
}

/// A required title of 2..=`max` characters.
pub fn title(errors: &mut Errors, value: Option<String>, max: usize) -> String {
    match value.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => {
            errors.push("/title", Invalid::new(codes::REQUIRED, "title is required"));
            String::new()
        }
        Some(t) if t.chars().count() < 2 || t.chars().count() > max => {
            errors.push(
                "/title",
                Invalid::new(codes::OUT_OF_RANGE, format!("2 to {max} characters")),
            );
            String::new()
        }
        Some(t) => t.to_owned(),
    }
}

/// Areas without repeats, as stored.
pub fn areas(errors: &mut Errors, areas: &[Area]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, a) in areas.iter().enumerate() {
        if out.iter().any(|o| o == a.as_str()) {
            errors.push(
                &format!("/areas/{i}"),
                Invalid::new(codes::DUPLICATE_VALUE, "listed twice"),
            );
        }
        out.push(a.as_str().to_owned());
    }
    out
}

/// Goals in the record pipeline.
pub struct Goals;

impl Resource for Goals {
    const ENTITY: &'static str = "goal";
    type Parent = ();
    type Write = GoalWrite;
    type Response = GoalResponse;
    type Body = GoalBody;

    fn validate(body: Map<String, Json>) -> Result<GoalWrite, ApiError> {
        let mut errors = Errors::default();
        let input: GoalBody = errors.decode(body);
        let code = match input.code {
            Some(code) => errors.range("/code", Some(code), 1, 999).unwrap_or(1),
            None => {
                errors.push("/code", Invalid::new(codes::REQUIRED, "code is required"));
                1
            }
        };
        let title = title(&mut errors, input.title, 200);
        if input.lines_of_action.len() > 50 {
            errors.push(
                "/lines_of_action",
                Invalid::new(codes::OUT_OF_RANGE, "at most 50"),
            );
        }
        let mut lines = Vec::new();
        for (i, line) in input.lines_of_action.into_iter().enumerate() {
            let text = text(
                &mut errors,
                &format!("/lines_of_action/{i}/text"),
                Some(line.text),
                2000,
            );
            if text.is_none() {
                errors.push(
                    &format!("/lines_of_action/{i}/text"),
                    Invalid::new(codes::REQUIRED, "text is required"),
                );
            }
            let label = self::text(
                &mut errors,
                &format!("/lines_of_action/{i}/label"),
                line.label,
                100,
            );
            lines.push(LineOfAction {
                label,
                text: text.unwrap_or_default(),
            });
        }
        if input.unlisted_partners.len() > 50 {
            errors.push(
                "/unlisted_partners",
                Invalid::new(codes::OUT_OF_RANGE, "at most 50"),
            );
        }
        let unlisted: Vec<String> = input
            .unlisted_partners
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| {
                text(
                    &mut errors,
                    &format!("/unlisted_partners/{i}"),
                    Some(p),
                    300,
                )
            })
            .collect();
        let write = GoalWrite {
            code,
            title,
            headline: text(&mut errors, "/headline", input.headline, 500),
            statement: text(&mut errors, "/statement", input.statement, 5000),
            lines_of_action: serde_json::to_value(lines).map_err(ApiError::internal)?,
            areas: areas(&mut errors, &input.areas),
            unlisted_partners: unlisted,
        };
        errors.finish()?;
        Ok(write)
    }

    record_table_storage!("goals", GoalWrite);

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

fn list_query(filters: Vec<Filter>, order: Order) -> ListQuery {
    ListQuery {
        resource: "goals",
        select: "SELECT g.*",
        from: "FROM goals g",
        id_expr: "g.id",
        filters,
        order,
        limit: Some(1),
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
    let mut filters = Vec::new();
    if !principal.check_include_archived(params.include_archived.unwrap_or(false))? {
        filters.push(Filter::Raw("g.archived_at IS NULL"));
    }
    if let Some(area) = query.area {
        filters.push(Filter::Contains(
            "g.areas",
            Value::TextArray(vec![area.as_str().to_owned()]),
        ));
    }
    if let Some(q) = params.search() {
        filters.push(Filter::Search {
            id: "g.id",
            table: "goals",
            column: "search_key",
            q: q.to_owned(),
        });
    }
    let order = params.order::<Goals>("g.search_key")?;
    serve_list(
        &pool,
        &principal,
        &req,
        &params,
        list_query(filters, order),
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
