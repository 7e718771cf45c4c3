//! `/api/v1/organisations`: one read-only view across the four kinds, and each
//! organisation's engagements (the goals it partners, the activities it takes part in).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::companies::{Companies, CompanyResponse};
use super::dated::{self, GoalPartner, GoalPartners, Participant, Participants};
use super::irccs::{Irccs, IrccsResponse};
use super::organisation::{self as org, OrgResource, OrganisationView, Pool, ProvinceCode};
use super::partners::{PartnerResponse, Partners};
use super::universities::{Universities, UniversityResponse};
use crate::auth::Principal;
use crate::db::{self, list::SortKey};
use crate::domain::OrganisationId;
use crate::domain::{OrganisationKind, Tag};
use crate::error::{stored, ApiError};
use crate::http::machinery::etag;
use crate::http::machinery::list::{ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::GetParams;
use crate::models::link;
use crate::models::organisation::{self as model, AnyKindFilter, NoDetail, OrgRecord};

/// The organisations list, across kinds.
pub struct AllOrganisations;

impl ListKind for AllOrganisations {
    const SORTS: &'static [SortKey] = &[model::SORT_NAME, model::SORT_CREATED, model::SORT_UPDATED];
    const SEARCHES: &'static str = "name and legal name across every kind";
    const ARCHIVED: Option<&'static str> = Some("Include archived records.");
}

/// What a `tags` filter may hold: comma-separated tags, each 1..50 characters, no `;` or
/// control characters, no surrounding spaces; empty.
pub const TAGS_PATTERN: &str = r"^([^\s,;\x00-\x1f\x7f-\x9f]([^,;\x00-\x1f\x7f-\x9f]{0,48}[^\s,;\x00-\x1f\x7f-\x9f])?(,[^\s,;\x00-\x1f\x7f-\x9f]([^,;\x00-\x1f\x7f-\x9f]{0,48}[^\s,;\x00-\x1f\x7f-\x9f])?)*)?$";

/// A `tags` filter as given: comma-separated tags, parsed by [`parse_tags`].
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct TagList(String);

impl utoipa::PartialSchema for TagList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(TAGS_PATTERN))
            .into()
    }
}

impl ToSchema for TagList {}

/// The `tags` filter: every tag parsed (422 at `/tags` for one that is not a tag); blank is
/// no filter.
pub fn parse_tags(tags: Option<&TagList>) -> Result<Vec<Tag>, ApiError> {
    match tags.map(|t| t.0.as_str()).filter(|t| !t.trim().is_empty()) {
        Some(tags) => tags
            .split(',')
            .map(|t| Tag::parse(t).map_err(|e| ApiError::invalid("/tags", e.code, e.message)))
            .collect(),
        None => Ok(Vec::new()),
    }
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
    #[param(inline)]
    pub tags: Option<TagList>,
}

const CSV_COLUMNS: &[&str] = organisation_csv_columns![];

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
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_organisations(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<AllOrganisations, OrganisationFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let shared =
        org::organisation_filter(&principal, &params, query.province.as_ref(), query.in_mind)?;
    let tags = parse_tags(query.tags.as_ref())?;
    let own = AnyKindFilter {
        kind: query.kind,
        tags,
    };
    let order = params.order::<AllOrganisations>(model::SEARCH_COLUMN)?;
    let list = model::any_kind_list_query(&shared, &own, order, None);
    crate::http::machinery::list::serve_list(
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
    etag::cached_record(&pool, &req, include_archived, move |conn| {
        let kind = model::kind_of(conn, id)?.ok_or_else(|| ApiError::not_found("organisation"))?;
        let kind: OrganisationKind = stored(&kind)?;
        let record = match kind {
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
        };
        let version = record.version();
        Ok((record, version))
    })
    .await
    .map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::not_found("organisation"),
        other => other,
    })
}

/// Every goal an organisation partners and every activity it takes part in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Engagements {
    /// The organisation.
    pub organisation_id: Uuid,
    /// Its partnerships of goals, with roles and dates.
    pub goal_partnerships: Vec<GoalPartner>,
    /// Its participations in activities, with roles, statuses and dates.
    pub participations: Vec<Participant>,
}

/// Query of an organisation's engagements.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EngagementQuery {
    /// Only engagements that held on this day (`YYYY-MM-DD`); without it, all of them.
    pub as_of: Option<NaiveDate>,
}

/// An organisation's engagements.
#[utoipa::path(
    get, path = "/api/v1/organisations/{id}/engagements", tag = "organisations",
    description = "Every goal the organisation partners and every activity it takes part in \
        (of live goals and activities), with roles and dates; `as_of` keeps those that held that day. Two queries whatever the size.",
    params(("id" = Uuid, Path, description = "Organisation id"), EngagementQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Its engagements", body = Engagements),
    )
)]
pub async fn list_engagements(
    pool: Pool,
    _principal: Principal,
    id: web::Path<Uuid>,
    query: web::Query<EngagementQuery>,
) -> Result<HttpResponse, ApiError> {
    let organisation = id.into_inner();
    let as_of = query.as_of;
    let body = db::run(&pool, move |conn| {
        if !link::is_live(conn, OrganisationId::new(organisation))? {
            return Err(ApiError::not_found("organisation"));
        }
        Ok(Engagements {
            organisation_id: organisation,
            goal_partnerships: dated::engagements_of::<GoalPartners>(conn, organisation, as_of)?,
            participations: dated::engagements_of::<Participants>(conn, organisation, as_of)?,
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            crate::http::machinery::etag::PRIVATE_REVALIDATE,
        ))
        .json(body))
}
