//! `/api/v1/organisations`: one read-only view across the four kinds.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::companies::{Companies, CompanyResponse};
use super::etag;
use super::irccs::{Irccs, IrccsResponse};
use super::list::PageResponse;
use super::organisation::{self as org, OrgResource, OrganisationView, Pool, SEARCH_COLUMN};
use super::partners::{PartnerResponse, Partners};
use super::problems;
use super::record::GetParams;
use super::universities::{Universities, UniversityResponse};
use crate::auth::Principal;
use crate::db::{self, list::Filter, list::ListQuery, list::Order, list::Value};
use crate::domain::{OrganisationKind, Tag};
use crate::error::{stored, ApiError};
use crate::models::organisation::{self as model, NoDetail, OrgRecord};

/// Query of `GET /organisations`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrganisationListQuery {
    /// Page size, 1..200 (default 50; CSV: every row unless given).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; only valid with the same sort, `q` and filters.
    pub cursor: Option<String>,
    /// One of `name`, `created_at`, `updated_at`, `-` prefixed for descending (default `name`;
    /// with `q`, relevance).
    #[param(pattern = "^-?(name|created_at|updated_at)$")]
    pub sort: Option<String>,
    /// Search name and legal name across every kind (case, accents and small typos do not
    /// matter); results by relevance unless `sort` is given.
    pub q: Option<String>,
    /// Add `total` (a count of every match) to the answer.
    pub include_total: Option<bool>,
    /// Include archived records (editors and admins).
    pub include_archived: Option<bool>,
    /// Only this kind.
    pub kind: Option<OrganisationKind>,
    /// Only this province (e.g. `MI`).
    pub province: Option<String>,
    /// Only organisations in MIND (true) or outside it (false).
    pub in_mind: Option<bool>,
    /// Only organisations carrying every one of these tags (comma-separated).
    pub tags: Option<String>,
}

list_params!(OrganisationListQuery);

const CSV_COLUMNS: &[&str] = &[
    "id",
    "kind",
    "name",
    "legal_name",
    "description",
    "website",
    "email",
    "phone",
    "address_street",
    "address_city",
    "address_postal_code",
    "address_province",
    "address_country",
    "tags",
    "in_mind",
    "created_at",
    "updated_at",
    "version",
    "archived_at",
];

/// List organisations of every kind, in the shape they share.
#[utoipa::path(
    get, path = "/api/v1/organisations", tag = "organisations",
    description = "Every kind in one list with the fields they share; \
        read a record's full shape at `/organisations/{id}`. `Accept: text/csv` streams every match.",
    params(OrganisationListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of organisations (or CSV)",
         content((PageResponse<OrganisationView> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 400, response = problems::BadRequest),
        (status = 401, response = problems::Unauthorized),
        (status = 403, response = problems::Forbidden),
        (status = 422, response = problems::Unprocessable),
        (status = 429, response = problems::TooManyRequests),
        (status = 503, response = problems::Unavailable),
    )
)]
pub async fn list_organisations(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: web::Query<OrganisationListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let params = query.common();
    let mut filters = org::common_filters(
        &principal,
        &params,
        query.province.as_deref(),
        query.in_mind,
    )?;
    if let Some(kind) = query.kind {
        filters.push(Filter::Eq("o.kind", Value::Text(kind.as_str().to_owned())));
    }
    if let Some(tags) = query.tags.as_deref().filter(|t| !t.trim().is_empty()) {
        let tags = tags
            .split(',')
            .map(|t| {
                Tag::parse(t)
                    .map(Tag::into_inner)
                    .map_err(|e| ApiError::invalid("/tags", e.code, e.message))
            })
            .collect::<Result<Vec<_>, _>>()?;
        filters.push(Filter::Contains("o.tags", Value::TextArray(tags)));
    }
    let keys = &[model::SORT_NAME, model::SORT_CREATED, model::SORT_UPDATED];
    let order = Order::parse(
        params.sort.as_deref(),
        keys,
        "name",
        params.search().map(|q| (SEARCH_COLUMN, q)),
    )?;
    let list = ListQuery {
        resource: "organisations",
        select: "SELECT o.*",
        from: "FROM organisations o",
        id_expr: "o.id",
        filters,
        order,
        limit: None,
    };
    super::list::serve_list(
        &pool,
        &principal,
        &req,
        &params,
        list,
        CSV_COLUMNS,
        |_conn, rows: Vec<OrgRecord<NoDetail>>| {
            rows.iter()
                .map(|r| OrganisationView::from_row(&r.organisation))
                .collect()
        },
    )
    .await
}

/// An organisation of any kind, in its kind's full shape (`kind` tells which).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AnyOrganisation {
    /// A company.
    Company(CompanyResponse),
    /// An IRCCS.
    Irccs(IrccsResponse),
    /// A university.
    University(UniversityResponse),
    /// An institutional partner.
    Partner(PartnerResponse),
}

impl AnyOrganisation {
    fn version(&self) -> i64 {
        match self {
            Self::Company(r) => Companies::version(r),
            Self::Irccs(r) => Irccs::version(r),
            Self::University(r) => Universities::version(r),
            Self::Partner(r) => Partners::version(r),
        }
    }
}

/// Read an organisation of any kind.
#[utoipa::path(
    get, path = "/api/v1/organisations/{id}", tag = "organisations",
    description = "Answers any kind in its full shape. Honours `If-None-Match` (304).",
    params(("id" = Uuid, Path, description = "Organisation id"), GetParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The organisation", body = AnyOrganisation,
         headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, response = problems::BadRequest),
        (status = 401, response = problems::Unauthorized),
        (status = 403, response = problems::Forbidden),
        (status = 404, response = problems::NotFound),
        (status = 503, response = problems::Unavailable),
    )
)]
pub async fn get_organisation(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<Uuid>,
    query: web::Query<GetParams>,
) -> Result<HttpResponse, ApiError> {
    let include_archived =
        principal.check_include_archived(query.include_archived.unwrap_or(false))?;
    let id = id.into_inner();
    let record = db::run(&pool, move |conn| {
        let kind = model::kind_of(conn, id)?.ok_or_else(|| ApiError::not_found("organisation"))?;
        let kind: OrganisationKind = stored(&kind)?;
        Ok(match kind {
            OrganisationKind::Company => {
                AnyOrganisation::Company(org::load::<Companies>(conn, id, include_archived)?)
            }
            OrganisationKind::Irccs => {
                AnyOrganisation::Irccs(org::load::<Irccs>(conn, id, include_archived)?)
            }
            OrganisationKind::University => {
                AnyOrganisation::University(org::load::<Universities>(conn, id, include_archived)?)
            }
            OrganisationKind::Partner => {
                AnyOrganisation::Partner(org::load::<Partners>(conn, id, include_archived)?)
            }
        })
    })
    .await
    .map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::not_found("organisation"),
        other => other,
    })?;
    let version = record.version();
    if let Some(not_modified) = etag::not_modified(&req, version) {
        return Ok(not_modified);
    }
    Ok(etag::tag(&mut HttpResponse::Ok(), version).json(record))
}
