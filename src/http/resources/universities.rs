//! `/api/v1/universities`: universities and their subject rankings.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::{self as org, OrgResource, OrganisationView, Pool, ProvinceCode};
use crate::auth::Principal;
use crate::db::list::SortKey;
use crate::domain::organisation::UniversityBody;
use crate::domain::{OrganisationKind, Ownership, RankingArea};
use crate::error::{stored, ApiError};
use crate::http::machinery::import::NaturalKey;
use crate::http::machinery::list::{ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::schema::request_bodies;
use crate::models::organisation::OrgRecord;
use crate::models::university::{self as model, UniversityDetail, UniversityFilter};

/// A subject ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ranking {
    /// Subject area.
    pub area: RankingArea,
    /// Position in the ranking (1 is best).
    pub rank: i32,
    /// Who ranks, e.g. `QS World University Rankings`.
    pub source: String,
    /// Edition year.
    pub year: i32,
}

/// A university, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UniversityResponse {
    #[serde(flatten)]
    pub organisation: OrganisationView,
    /// Public or private.
    pub ownership: Option<Ownership>,
    /// Has a medical faculty.
    pub has_medical_faculty: Option<bool>,
    /// Number of students.
    pub students: Option<i32>,
    /// Research Organization Registry id (9 characters, checksum verified).
    pub ror_id: Option<String>,
    /// Subject rankings, in the order written.
    pub rankings: Vec<Ranking>,
}

request_bodies!(UniversityBody => CreateUniversity, UniversityPatch);

/// Universities in the shared organisation machinery.
pub struct Universities;

impl OrgResource for Universities {
    const KIND: OrganisationKind = OrganisationKind::University;
    const COLLECTION: &'static str = "universities";
    const PARTNER_MANAGED: &'static [&'static str] = org::PARTNER_MANAGED;
    const NATURAL_KEY: Option<NaturalKey> = Some(NaturalKey {
        member: "ror_id",
        normalise: |value| {
            crate::domain::RorId::parse(value)
                .ok()
                .map(|v| v.into_inner())
        },
    });
    const SORT_KEYS: &'static [SortKey] = model::SORT_KEYS;
    const CSV_COLUMNS: &'static [&'static str] = organisation_csv_columns![
        "ownership",
        "has_medical_faculty",
        "students",
        "ror_id",
        "rankings"
    ];
    type Row = UniversityDetail;
    type Response = UniversityResponse;
    type Body = UniversityBody;

    fn responses(
        conn: &mut diesel::PgConnection,
        rows: Vec<OrgRecord<UniversityDetail>>,
    ) -> Result<Vec<UniversityResponse>, ApiError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.organisation.id).collect();
        let mut rankings = model::rankings_of(conn, &ids)?;
        rows.into_iter()
            .map(|record| {
                let d = record.detail;
                let own = rankings.remove(&d.organisation_id).unwrap_or_default();
                Ok(UniversityResponse {
                    organisation: OrganisationView::from_row(&record.organisation)?,
                    ownership: d.ownership.as_deref().map(stored).transpose()?,
                    has_medical_faculty: d.has_medical_faculty,
                    students: d.students,
                    ror_id: d.ror_id,
                    rankings: own
                        .into_iter()
                        .map(|r| {
                            Ok(Ranking {
                                area: stored(&r.area)?,
                                rank: r.rank,
                                source: r.source,
                                year: r.year,
                            })
                        })
                        .collect::<Result<_, ApiError>>()?,
                })
            })
            .collect()
    }

    fn version(record: &UniversityResponse) -> i64 {
        record.organisation.version
    }
}

/// Filters of `GET /universities` (besides the parameters every record list takes).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UniversityFilters {
    /// Only public or only private universities.
    pub ownership: Option<Ownership>,
    /// Only universities with (true) or without (false) a medical faculty.
    pub has_medical_faculty: Option<bool>,
    /// Only universities ranked in this area (with `max_rank`: at most that rank).
    pub ranking_area: Option<RankingArea>,
    /// With `ranking_area` (422 without it): ranked at most this (1 is best).
    #[param(minimum = 1)]
    pub max_rank: Option<i64>,
    /// Only this province.
    pub province: Option<ProvinceCode>,
    /// Only universities in MIND (true) or outside it (false).
    pub in_mind: Option<bool>,
}

/// List universities.
#[utoipa::path(
    get, path = "/api/v1/universities", tag = "universities",
    description = "Keyset-paginated; `Accept: text/csv` streams every match as CSV \
        (rankings as `area:rank:source:year;...`).",
    params(ListRequest<Universities, UniversityFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of universities (or CSV)",
         content((PageResponse<UniversityResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_universities(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: ListRequest<Universities, UniversityFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, query) = query.into_parts();
    let ranking = match (query.ranking_area, query.max_rank) {
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "/max_rank",
                "required",
                "max_rank needs ranking_area",
            ));
        }
        (Some(_), Some(rank)) if rank < 1 => {
            return Err(ApiError::invalid(
                "/max_rank",
                "out_of_range",
                "max_rank must be 1 or more",
            ));
        }
        (Some(area), rank) => Some((area, rank)),
        (None, None) => None,
    };
    let own = UniversityFilter {
        ownership: query.ownership,
        has_medical_faculty: query.has_medical_faculty,
        ranking,
    };
    org::list::<Universities>(
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
    resource: Universities,
    tag: "universities",
    collection: "/api/v1/universities",
    item: "/api/v1/universities/{id}",
    restore: "/api/v1/universities/{id}/restore",
    history: "/api/v1/universities/{id}/history",
    response: UniversityResponse,
    create_body: CreateUniversity,
    patch_body: UniversityPatch,
    patch_description: "A partner changes only its own university, and only its self-managed fields \
        (description, website, email, phone, address, tags). RFC 7396 merge patch: objects merge, \
        arrays (`rankings` too) replace, null clears. Requires If-Match.",
    summaries: ("Create a university.", "Read a university.", "Update a university (JSON Merge Patch).",
        "Archive a university.", "Restore an archived university.", "A university's audit trail, newest first."),
    handlers: (create_university, get_university, update_university, archive_university, restore_university, university_history),
}
