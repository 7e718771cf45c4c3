//! `/api/v1/partners`: institutional partners (public bodies, trade associations, clusters,
//! agencies, foreign representations, research foundations, investors).

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::organisation::{self as org, OrgResource, OrganisationView, Pool, ProvinceCode};
use crate::auth::Principal;
use crate::db::list::SortKey;
use crate::domain::organisation::PartnerBody;
use crate::domain::{OrganisationKind, PartnerScope, PartnerType};
use crate::error::{stored, ApiError};
use crate::http::machinery::list::{ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::schema::request_bodies;
use crate::models::organisation::OrgRecord;
use crate::models::partner::{self as model, PartnerDetail, PartnerFilter};

/// An institutional partner, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerResponse {
    #[serde(flatten)]
    pub organisation: OrganisationView,
    /// What kind of institution. (Firms named as partners are companies, not partners.)
    pub partner_type: PartnerType,
    /// Reach.
    pub scope: Option<PartnerScope>,
}

request_bodies!(PartnerBody => CreatePartner, PartnerPatch);

/// Partners in the shared organisation machinery.
pub struct Partners;

impl OrgResource for Partners {
    const KIND: OrganisationKind = OrganisationKind::Partner;
    const COLLECTION: &'static str = "partners";
    const PARTNER_MANAGED: &'static [&'static str] = org::PARTNER_MANAGED;
    const SORT_KEYS: &'static [SortKey] = model::SORT_KEYS;
    const CSV_COLUMNS: &'static [&'static str] = organisation_csv_columns!["partner_type", "scope"];
    type Row = PartnerDetail;
    type Response = PartnerResponse;
    type Body = PartnerBody;

    fn responses(
        _conn: &mut diesel::PgConnection,
        rows: Vec<OrgRecord<PartnerDetail>>,
    ) -> Result<Vec<PartnerResponse>, ApiError> {
        rows.into_iter()
            .map(|record| {
                Ok(PartnerResponse {
                    organisation: OrganisationView::from_row(&record.organisation)?,
                    partner_type: stored(&record.detail.partner_type)?,
                    scope: record.detail.scope.as_deref().map(stored).transpose()?,
                })
            })
            .collect()
    }

    fn version(record: &PartnerResponse) -> i64 {
        record.organisation.version
    }
}

/// Filters of `GET /partners` (besides the parameters every record list takes).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartnerFilters {
    /// Only this type of partner.
    pub partner_type: Option<PartnerType>,
    /// Only this reach.
    pub scope: Option<PartnerScope>,
    /// Only this province.
    pub province: Option<ProvinceCode>,
    /// Only partners in MIND (true) or outside it (false).
    pub in_mind: Option<bool>,
}

/// List institutional partners.
#[utoipa::path(
    get, path = "/api/v1/partners", tag = "partners",
    description = "Keyset-paginated; `Accept: text/csv` streams every match as CSV.",
    params(ListRequest<Partners, PartnerFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of partners (or CSV)",
         content((PageResponse<PartnerResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_partners(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Partners, PartnerFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let own = PartnerFilter {
        partner_type: query.partner_type,
        scope: query.scope,
    };
    org::list::<Partners>(
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
    resource: Partners,
    tag: "partners",
    collection: "/api/v1/partners",
    item: "/api/v1/partners/{id}",
    restore: "/api/v1/partners/{id}/restore",
    history: "/api/v1/partners/{id}/history",
    response: PartnerResponse,
    create_body: CreatePartner,
    patch_body: PartnerPatch,
    patch_description: "A partner changes only its own organisation, and only its self-managed fields \
        (description, website, email, phone, address, tags). RFC 7396 merge patch: objects merge, \
        arrays replace, null clears. Requires If-Match.",
    summaries: ("Create an institutional partner.", "Read an institutional partner.",
        "Update an institutional partner (JSON Merge Patch).", "Archive an institutional partner.",
        "Restore an archived institutional partner.", "An institutional partner's audit trail, newest first."),
    handlers: (create_partner, get_partner, update_partner, archive_partner, restore_partner, partner_history),
}
