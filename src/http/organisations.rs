//! `/api/v1/organisations`: one read-only view across the four kinds.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::companies::{Companies, CompanyResponse};
use super::etag;
use super::irccs::{Irccs, IrccsResponse};
use super::list::{ListKind, ListRequest, PageResponse};
use super::organisation::{
    self as org, OrgResource, OrganisationView, Pool, ProvinceCode, SEARCH_COLUMN,
};
use super::partners::{PartnerResponse, Partners};
use super::problems;
use super::record::GetParams;
use super::universities::{Universities, UniversityResponse};
use crate::auth::Principal;
use crate::db::{self, list::Filter, list::ListQuery, list::SortKey, list::Value};
use crate::domain::{OrganisationKind, Tag};
use crate::error::{stored, ApiError};
use crate::models::organisation::{self as model, NoDetail, OrgRecord};

/// The organisations list, across kinds.
pub struct AllOrganisations;

impl ListKind for AllOrganisations {
    const SORTS: &'static [SortKey] = &[model::SORT_NAME, model::SORT_CREATED, model::SORT_UPDATED];
    const SEARCHES: &'static str = "name and legal name across every kind";
    const ARCHIVED: Option<&'static str> = Some("Include archived records.");
}

/// Filters of `GET /organisations` (besides the parameters every record list takes).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrganisationFilters {
    /// Only this kind.
    pub kind: Option<OrganisationKind>,
    /// Only this province.
    pub province: Option<ProvinceCode>,
    /// Only organisations in MIND (true) or outside it (false).
    pub in_mind: Option<bool>,
    /// Only organisations carrying every one of these tags, comma-separated (each 1..50
    /// characters, no `;` or control characters, no surrounding spaces). Empty is no filter.
    #[param(
        pattern = r"^([^\s,;\x00-\x1f\x7f-\x9f]([^,;\x00-\x1f\x7f-\x9f]{0,48}[^\s,;\x00-\x1f\x7f-\x9f])?(,[^\s,;\x00-\x1f\x7f-\x9f]([^,;\x00-\x1f\x7f-\x9f]{0,48}[^\s,;\x00-\x1f\x7f-\x9f])?)*)?$"
    )]
    pub tags: Option<String>,
}

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
    params(ListRequest<AllOrganisations, OrganisationFilters>),
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
    query: ListRequest<AllOrganisations, OrganisationFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let mut filters =
        org::common_filters(&principal, &params, query.province.as_ref(), query.in_mind)?;
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
    let order = params.order::<AllOrganisations>(SEARCH_COLUMN)?;
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
