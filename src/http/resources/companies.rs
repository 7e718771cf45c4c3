//! `/api/v1/companies`: the companies of the registry.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::organisation::{self as org, OrgResource, OrganisationView, Pool, ProvinceCode};
use crate::auth::Principal;
use crate::db::list::SortKey;
use crate::domain::organisation::CompanyBody;
use crate::domain::{DeviceSegment, OrganisationKind, Sector};
use crate::error::{stored, ApiError};
use crate::http::machinery::import::NaturalKey;
use crate::http::machinery::list::{ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::schema::request_bodies;
use crate::models::company::{self as model, CompanyDetail, CompanyFilter};
use crate::models::organisation::OrgRecord;

/// A company, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompanyResponse {
    #[serde(flatten)]
    pub organisation: OrganisationView,
    /// Partita IVA (11 digits) or a foreign VAT number with its country prefix.
    pub vat_number: Option<String>,
    /// Business sector.
    pub sector: Sector,
    /// Medical-device segment (medical-device companies only).
    pub device_segment: Option<DeviceSegment>,
    /// ATECO activity code, e.g. `21.20`.
    pub ateco_code: Option<String>,
    /// Head count.
    pub employees: Option<i32>,
    /// Yearly revenue in whole euros.
    pub revenue_eur: Option<i64>,
    /// Yearly R&D investment in whole euros.
    pub rd_investment_eur: Option<i64>,
    /// Yearly exports in whole euros.
    pub exports_eur: Option<i64>,
    /// Year founded.
    pub founded_year: Option<i32>,
    /// Member of Assolombarda.
    pub assolombarda_member: bool,
}

impl TryFrom<OrgRecord<CompanyDetail>> for CompanyResponse {
    type Error = ApiError;

    fn try_from(record: OrgRecord<CompanyDetail>) -> Result<Self, ApiError> {
        let c = record.detail;
        Ok(Self {
            organisation: OrganisationView::from_row(&record.organisation)?,
            vat_number: c.vat_number,
            sector: stored(&c.sector)?,
            device_segment: c.device_segment.as_deref().map(stored).transpose()?,
            ateco_code: c.ateco_code,
            employees: c.employees,
            revenue_eur: c.revenue_eur,
            rd_investment_eur: c.rd_investment_eur,
            exports_eur: c.exports_eur,
            founded_year: c.founded_year,
            assolombarda_member: c.assolombarda_member,
        })
    }
}

request_bodies!(CompanyBody => CreateCompany, CompanyPatch);

/// Companies in the shared organisation machinery.
pub struct Companies;

impl OrgResource for Companies {
    const KIND: OrganisationKind = OrganisationKind::Company;
    const COLLECTION: &'static str = "companies";
    const NATURAL_KEY: Option<NaturalKey> = Some(NaturalKey {
        member: "vat_number",
        normalise: |value| {
            crate::domain::VatNumber::parse(value)
                .ok()
                .map(|v| v.into_inner())
        },
    });
    const SORT_KEYS: &'static [SortKey] = model::SORT_KEYS;
    const CSV_COLUMNS: &'static [&'static str] = organisation_csv_columns![
        "vat_number",
        "sector",
        "device_segment",
        "ateco_code",
        "employees",
        "revenue_eur",
        "rd_investment_eur",
        "exports_eur",
        "founded_year",
        "assolombarda_member"
    ];
    const PARTNER_MANAGED: &'static [&'static str] = &[
        "description",
        "website",
        "email",
        "phone",
        "address",
        "tags",
        "employees",
        "revenue_eur",
        "rd_investment_eur",
        "exports_eur",
        "ateco_code",
        "device_segment",
    ];
    type Row = CompanyDetail;
    type Response = CompanyResponse;
    type Body = CompanyBody;

    fn responses(
        _conn: &mut diesel::PgConnection,
        rows: Vec<OrgRecord<CompanyDetail>>,
    ) -> Result<Vec<CompanyResponse>, ApiError> {
        rows.into_iter().map(CompanyResponse::try_from).collect()
    }

    fn version(record: &CompanyResponse) -> i64 {
        record.organisation.version
    }
}

/// Filters of `GET /companies` (besides the parameters every record list takes).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompanyFilters {
    /// Only this sector.
    pub sector: Option<Sector>,
    /// Only this province.
    pub province: Option<ProvinceCode>,
    /// At least this many employees (at most `max_employees`, else 422).
    pub min_employees: Option<i64>,
    /// At most this many employees.
    pub max_employees: Option<i64>,
    /// Only Assolombarda members (true) or non-members (false).
    pub assolombarda_member: Option<bool>,
    /// Only companies in MIND (true) or outside it (false).
    pub in_mind: Option<bool>,
}

/// The `min_employees`..`max_employees` filter: 422 when the bounds are the wrong way round.
pub fn employees_range(
    min: Option<i64>,
    max: Option<i64>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    match (min, max) {
        (Some(min), Some(max)) if min > max => Err(ApiError::invalid(
            "/min_employees",
            "out_of_range",
            "min_employees exceeds max_employees",
        )),
        range => Ok(range),
    }
}

/// List companies (keyset-paginated).
#[utoipa::path(
    get, path = "/api/v1/companies", tag = "companies",
    description = "Keyset-paginated; follow `next_cursor` or the `Link` header. \
        `Accept: text/csv` streams every match as CSV. \
        The ETag derives from a counter of committed changes: a poll with If-None-Match answers 304 without running the query.",
    params(ListRequest<Companies, CompanyFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of companies (or CSV)",
         content((PageResponse<CompanyResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes; send it back in If-None-Match"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_companies(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Companies, CompanyFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let own = CompanyFilter {
        sector: query.sector,
        employees: employees_range(query.min_employees, query.max_employees)?,
        assolombarda_member: query.assolombarda_member,
    };
    org::list::<Companies>(
        &pool,
        &principal,
        &req,
        params,
        query.province.as_ref(),
        query.in_mind,
        own,
    )
    .await
}

record_handlers! {
    resource: Companies,
    tag: "companies",
    collection: "/api/v1/companies",
    item: "/api/v1/companies/{id}",
    restore: "/api/v1/companies/{id}/restore",
    history: "/api/v1/companies/{id}/history",
    response: CompanyResponse,
    create_body: CreateCompany,
    patch_body: CompanyPatch,
    patch_description: "A partner changes only its own company, and only its self-managed fields \
        (description, website, email, phone, address, tags, employees, revenue_eur, \
        rd_investment_eur, exports_eur, ateco_code, device_segment). RFC 7396 merge patch: \
        objects merge, arrays replace, null clears. Requires If-Match.",
    summaries: ("Create a company.", "Read a company.", "Update a company (JSON Merge Patch).",
        "Archive a company.", "Restore an archived company.", "A company's audit trail, newest first."),
    handlers: (create_company, get_company, update_company, archive_company, restore_company, company_history),
}
