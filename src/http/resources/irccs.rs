//! `/api/v1/irccs`: Clinical Care and Research Institutes.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::organisation::{self as org, OrgResource, OrganisationView, Pool, ProvinceCode};
use crate::auth::Principal;
use crate::db::list::SortKey;
use crate::domain::organisation::IrccsBody;
use crate::domain::{OrganisationKind, Ownership, Specialisation};
use crate::error::{stored, ApiError};
use crate::http::machinery::list::{ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::schema::request_bodies;
use crate::models::irccs::{self as model, IrccsDetail, IrccsFilter};
use crate::models::organisation::OrgRecord;

/// An IRCCS, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IrccsResponse {
    #[serde(flatten)]
    pub organisation: OrganisationView,
    /// Public or private.
    pub ownership: Option<Ownership>,
    /// Areas of specialisation (at least one).
    pub specialisations: Vec<Specialisation>,
    /// Number of beds.
    pub beds: Option<i32>,
    /// Provides emergency care.
    pub emergency_care: Option<bool>,
    /// Serves foreign patients.
    pub serves_foreign_patients: Option<bool>,
}

impl TryFrom<OrgRecord<IrccsDetail>> for IrccsResponse {
    type Error = ApiError;

    fn try_from(record: OrgRecord<IrccsDetail>) -> Result<Self, ApiError> {
        let d = record.detail;
        Ok(Self {
            organisation: OrganisationView::from_row(&record.organisation)?,
            ownership: d.ownership.as_deref().map(stored).transpose()?,
            specialisations: d
                .specialisations
                .iter()
                .map(|s| stored(s))
                .collect::<Result<_, _>>()?,
            beds: d.beds,
            emergency_care: d.emergency_care,
            serves_foreign_patients: d.serves_foreign_patients,
        })
    }
}

request_bodies!(IrccsBody => CreateIrccs, IrccsPatch);

/// IRCCS in the shared organisation machinery.
pub struct Irccs;

impl OrgResource for Irccs {
    const KIND: OrganisationKind = OrganisationKind::Irccs;
    const COLLECTION: &'static str = "irccs";
    const PARTNER_MANAGED: &'static [&'static str] = org::PARTNER_MANAGED;
    const SORT_KEYS: &'static [SortKey] = model::SORT_KEYS;
    const CSV_COLUMNS: &'static [&'static str] = organisation_csv_columns![
        "ownership",
        "specialisations",
        "beds",
        "emergency_care",
        "serves_foreign_patients"
    ];
    type Row = IrccsDetail;
    type Response = IrccsResponse;
    type Body = IrccsBody;

    fn responses(
        _conn: &mut diesel::PgConnection,
        rows: Vec<OrgRecord<IrccsDetail>>,
    ) -> Result<Vec<IrccsResponse>, ApiError> {
        rows.into_iter().map(IrccsResponse::try_from).collect()
    }

    fn version(record: &IrccsResponse) -> i64 {
        record.organisation.version
    }
}

/// Filters of `GET /irccs` (besides the parameters every record list takes).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IrccsFilters {
    /// Only IRCCS with this specialisation.
    pub specialisation: Option<Specialisation>,
    /// Only public or only private IRCCS.
    pub ownership: Option<Ownership>,
    /// Only this province.
    pub province: Option<ProvinceCode>,
    /// Only IRCCS in MIND (true) or outside it (false).
    pub in_mind: Option<bool>,
}

/// List IRCCS.
#[utoipa::path(
    get, path = "/api/v1/irccs", tag = "irccs",
    description = "Keyset-paginated; `Accept: text/csv` streams every match as CSV.",
    params(ListRequest<Irccs, IrccsFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of IRCCS (or CSV)",
         content((PageResponse<IrccsResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_irccs(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Irccs, IrccsFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let own = IrccsFilter {
        specialisation: query.specialisation,
        ownership: query.ownership,
    };
    org::list::<Irccs>(
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
    resource: Irccs,
    tag: "irccs",
    collection: "/api/v1/irccs",
    item: "/api/v1/irccs/{id}",
    restore: "/api/v1/irccs/{id}/restore",
    history: "/api/v1/irccs/{id}/history",
    response: IrccsResponse,
    create_body: CreateIrccs,
    patch_body: IrccsPatch,
    patch_description: "A partner changes only its own IRCCS, and only its self-managed fields \
        (description, website, email, phone, address, tags). RFC 7396 merge patch: objects merge, \
        arrays replace, null clears. Requires If-Match.",
    summaries: ("Create an IRCCS.", "Read an IRCCS.", "Update an IRCCS (JSON Merge Patch).",
        "Archive an IRCCS.", "Restore an archived IRCCS.", "An IRCCS's audit trail, newest first."),
    handlers: (create_irccs, get_irccs, update_irccs, archive_irccs, restore_irccs, irccs_history),
}
