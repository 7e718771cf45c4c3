//! `/api/v1/companies`: the companies of the registry.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::{self as org, OrgResource, OrganisationView, Pool, ProvinceCode};
use crate::auth::Principal;
use crate::db::list::{Filter, SortKey, Value};
use crate::domain::{self, DeviceSegment, Invalid, OrganisationKind, Sector};
use crate::error::{stored, ApiError};
use crate::http::machinery::body::Errors;
use crate::http::machinery::list::{ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::schema::request_bodies;
use crate::models::company::{self as model, CompanyDetail};
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

/// A company as written (its body's one declaration): `POST /api/v1/companies` takes these
/// members (`CreateCompany`), `PATCH` a merge patch of them (`CompanyPatch`). Blank optional
/// members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CompanyBody {
    #[serde(flatten)]
    pub organisation: org::OrganisationBody,
    /// An Italian Partita IVA (11 digits, optionally prefixed `IT`; its check digit and office
    /// code are verified) or a foreign VAT number with its country prefix (e.g. `DE123456789`).
    /// Spaces and lowercase are accepted. Unique across all companies, archived ones included
    /// (409 `duplicate` otherwise).
    #[schema(value_type = Option<domain::VatNumber>, inline)]
    pub vat_number: Option<String>,
    /// Business sector.
    #[schema(required)]
    pub sector: Option<Sector>,
    /// Medical-device segment: only when `sector` is `medical_devices` (refused otherwise).
    pub device_segment: Option<DeviceSegment>,
    /// ATECO activity code: `NN`, `NN.N`, `NN.NN`, `NN.NN.N` or `NN.NN.NN` (e.g. `21.20`).
    #[schema(value_type = Option<domain::AtecoCode>, inline)]
    pub ateco_code: Option<String>,
    /// Head count.
    #[serde(
        default,
        deserialize_with = "crate::http::machinery::body::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 2147483647, format = Int32)]
    pub employees: Option<i64>,
    /// Yearly revenue in whole euros.
    #[serde(
        default,
        deserialize_with = "crate::http::machinery::body::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 1000000000000000_i64)]
    pub revenue_eur: Option<i64>,
    /// Yearly R&D investment in whole euros.
    #[serde(
        default,
        deserialize_with = "crate::http::machinery::body::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 1000000000000000_i64)]
    pub rd_investment_eur: Option<i64>,
    /// Yearly exports in whole euros.
    #[serde(
        default,
        deserialize_with = "crate::http::machinery::body::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 1000000000000000_i64)]
    pub exports_eur: Option<i64>,
    /// Year founded: 1800 to the current year. The upper bound moves every 1 January, so
    /// the schema states only the lower one.
    #[serde(
        default,
        deserialize_with = "crate::http::machinery::body::optional_whole_number"
    )]
    #[schema(minimum = 1800, format = Int32)]
    pub founded_year: Option<i64>,
    /// Member of Assolombarda; default false.
    #[serde(default)]
    pub assolombarda_member: bool,
}

request_bodies!(CompanyBody => CreateCompany, CompanyPatch);

/// The largest money amount accepted (whole euros): beyond any company's figures, and safe
/// in a JSON number.
const MAX_EUR: i64 = 1_000_000_000_000_000;

/// Companies in the shared organisation machinery.
pub struct Companies;

impl OrgResource for Companies {
    const KIND: OrganisationKind = OrganisationKind::Company;
    const COLLECTION: &'static str = "companies";
    const FROM: &'static str = "FROM organisations o JOIN companies d ON d.organisation_id = o.id";
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
    type Detail = CompanyDetail;
    type Response = CompanyResponse;
    type Body = CompanyBody;

    fn validate_detail(m: CompanyBody, errors: &mut Errors) -> Result<CompanyDetail, ApiError> {
        let sector = m.sector.unwrap_or_else(|| {
            errors.push(
                "/sector",
                Invalid::new(domain::codes::REQUIRED, "sector is required"),
            );
            Sector::Other
        });
        if m.device_segment.is_some() && sector != Sector::MedicalDevices {
            errors.push(
                "/device_segment",
                Invalid::new(
                    domain::codes::INVALID_FORMAT,
                    "device_segment applies to medical_devices companies only",
                ),
            );
        }
        let this_year = i64::from(chrono::Datelike::year(&chrono::Utc::now()));
        Ok(CompanyDetail {
            organisation_id: Uuid::nil(),
            vat_number: errors.optional("/vat_number", m.vat_number, |v| {
                domain::VatNumber::parse(v).map(|v| v.into_inner())
            }),
            sector: sector.as_str().to_owned(),
            device_segment: m.device_segment.map(|d| d.as_str().to_owned()),
            ateco_code: errors.optional("/ateco_code", m.ateco_code, |v| {
                domain::AtecoCode::parse(v).map(|v| v.into_inner())
            }),
            employees: errors.range("/employees", m.employees, 0, i64::from(i32::MAX)),
            revenue_eur: errors.range("/revenue_eur", m.revenue_eur, 0, MAX_EUR),
            rd_investment_eur: errors.range("/rd_investment_eur", m.rd_investment_eur, 0, MAX_EUR),
            exports_eur: errors.range("/exports_eur", m.exports_eur, 0, MAX_EUR),
            founded_year: errors.range("/founded_year", m.founded_year, 1800, this_year),
            assolombarda_member: m.assolombarda_member,
        })
    }

    fn responses(
        _conn: &mut diesel::PgConnection,
        rows: Vec<OrgRecord<CompanyDetail>>,
    ) -> Result<Vec<CompanyResponse>, ApiError> {
        rows.into_iter().map(CompanyResponse::try_from).collect()
    }

    fn version(record: &CompanyResponse) -> i64 {
        record.organisation.version
    }

    fn insert_detail(
        conn: &mut diesel::PgConnection,
        id: Uuid,
        detail: &CompanyDetail,
    ) -> diesel::QueryResult<()> {
        model::insert(
            conn,
            &CompanyDetail {
                organisation_id: id,
                ..detail.clone()
            },
        )
    }

    fn update_detail(
        conn: &mut diesel::PgConnection,
        id: Uuid,
        detail: &CompanyDetail,
    ) -> diesel::QueryResult<()> {
        model::update(
            conn,
            &CompanyDetail {
                organisation_id: id,
                ..detail.clone()
            },
        )
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
    let mut filters = Vec::new();
    if let Some(sector) = query.sector {
        filters.push(Filter::Eq(
            "d.sector",
            Value::Text(sector.as_str().to_owned()),
        ));
    }
    if let (Some(min), Some(max)) = (query.min_employees, query.max_employees) {
        if min > max {
            return Err(ApiError::invalid(
                "/min_employees",
                "out_of_range",
                "min_employees exceeds max_employees",
            ));
        }
    }
    if let Some(min) = query.min_employees {
        filters.push(Filter::Gte("d.employees", Value::Int(min)));
    }
    if let Some(max) = query.max_employees {
        filters.push(Filter::Lte("d.employees", Value::Int(max)));
    }
    if let Some(member) = query.assolombarda_member {
        filters.push(Filter::Eq("d.assolombarda_member", Value::Bool(member)));
    }
    org::list::<Companies>(
        &pool,
        &principal,
        &req,
        params,
        query.province.as_ref(),
        query.in_mind,
        filters,
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
