//! `/api/v1/stats`: aggregates for dashboards, under the lists' filters and their ETags.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::companies::employees_range;
use super::organisation::{organisation_filter, Pool, ProvinceCode};
use super::organisations::{parse_tags, TagList};
use crate::auth::Principal;
use crate::db::{self, PgPool};
use crate::domain::{
    ActivityStatus, OrganisationKind, Ownership, PartnerScope, PartnerType, Sector, Specialisation,
    StatsGroupKey,
};
use crate::error::ApiError;
use crate::http::machinery::csv::{self, TEXT_CSV};
use crate::http::machinery::etag::PRIVATE_REVALIDATE;
use crate::http::machinery::list::{by_counter, cached, ListParams};
use crate::http::machinery::problems;
use crate::models::company::CompanyFilter;
use crate::models::irccs::IrccsFilter;
use crate::models::organisation::AnyKindFilter;
use crate::models::partner::PartnerFilter;
use crate::models::stats::{self as model, KindFilters, OrganisationStatsFilter};
use crate::models::university::UniversityFilter;

/// Every `group_by` value: one key, or two different keys in either order.
fn group_by_values() -> Vec<String> {
    let keys = StatsGroupKey::ALL;
    let mut values: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    for a in keys {
        for b in keys.iter().filter(|b| *b != a) {
            values.push(format!("{a},{b}"));
        }
    }
    values
}

/// `group_by` as given: one or two different keys, comma-separated.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct GroupBy(String);

impl utoipa::PartialSchema for GroupBy {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // Every pair spelled out: a pattern could not say that the two keys differ.
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(group_by_values()))
            .examples(["kind,province"])
            .into()
    }
}

impl ToSchema for GroupBy {}

impl GroupBy {
    /// The keys, in order: 422 at `/group_by` for an unknown key, a repeated one, or more
    /// than two.
    fn keys(&self) -> Result<Vec<StatsGroupKey>, ApiError> {
        let invalid =
            |code: &'static str, message: String| ApiError::invalid("/group_by", code, message);
        let keys = self
            .0
            .split(',')
            .map(|k| {
                k.parse::<StatsGroupKey>()
                    .map_err(|e| invalid(e.code, format!("group_by: {}", e.message)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match keys.as_slice() {
            [_] => Ok(keys),
            [a, b] if a != b => Ok(keys),
            [_, _] => Err(invalid(
                "duplicate_value",
                "group_by names two different keys".into(),
            )),
            _ => Err(invalid("too_many", "group_by takes one or two keys".into())),
        }
    }
}

/// The query of `GET /stats/organisations`: `group_by` and the lists' filters. A filter that
/// belongs to some kinds (`sector` to companies, `ownership` to IRCCS and universities, ...)
/// keeps only organisations of those kinds that match it, as the kind's own list would.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrganisationStatsQuery {
    /// One key, or two different keys comma-separated (`kind,province`): groups are the
    /// combinations of their values that occur, NULL (no such field, or not filled in)
    /// being a value. An unknown or repeated key, or more than two, is 422.
    #[param(inline)]
    pub group_by: GroupBy,
    /// Only this kind.
    pub kind: Option<OrganisationKind>,
    /// Only this province.
    pub province: Option<ProvinceCode>,
    /// Only organisations in MIND (true) or outside it (false).
    pub in_mind: Option<bool>,
    /// Search name and legal name, as the lists do (at most 200 characters, no NUL; blank is
    /// no search).
    #[param(max_length = 200, pattern = "^[^\\x00]*$")]
    pub q: Option<String>,
    /// Only organisations carrying every one of these tags, comma-separated (each 1..50
    /// characters, no `;` or control characters, no surrounding spaces). Empty is no filter.
    #[param(inline)]
    pub tags: Option<TagList>,
    /// Include archived records. Editors and admins; 403 for other roles.
    pub include_archived: Option<bool>,
    /// Only companies of this sector.
    pub sector: Option<Sector>,
    /// Only companies with at least this many employees (at most `max_employees`, else 422).
    pub min_employees: Option<i64>,
    /// Only companies with at most this many employees.
    pub max_employees: Option<i64>,
    /// Only companies that are (true) or are not (false) Assolombarda members.
    pub assolombarda_member: Option<bool>,
    /// Only IRCCS with this specialisation (among others).
    pub specialisation: Option<Specialisation>,
    /// Only public or only private IRCCS and universities.
    pub ownership: Option<Ownership>,
    /// Only universities with (true) or without (false) a medical faculty.
    pub has_medical_faculty: Option<bool>,
    /// Only institutional partners of this type.
    pub partner_type: Option<PartnerType>,
    /// Only institutional partners of this reach.
    pub scope: Option<PartnerScope>,
}

impl OrganisationStatsQuery {
    /// The kinds the kind-specific filters leave, each with its list's filter.
    fn kinds(&self) -> Result<KindFilters, ApiError> {
        let company = self.sector.is_some()
            || self.min_employees.is_some()
            || self.max_employees.is_some()
            || self.assolombarda_member.is_some();
        let irccs = self.specialisation.is_some();
        let university = self.has_medical_faculty.is_some();
        let partner = self.partner_type.is_some() || self.scope.is_some();
        let ownership = self.ownership.is_some();
        // A kind stays unless a filter names a field it does not have.
        let keep = |lacks: &[bool]| !lacks.iter().any(|given| *given);
        let employees = employees_range(self.min_employees, self.max_employees)?;
        Ok(KindFilters {
            company: keep(&[irccs, university, partner, ownership]).then_some(CompanyFilter {
                sector: self.sector,
                employees,
                assolombarda_member: self.assolombarda_member,
            }),
            irccs: keep(&[company, university, partner]).then_some(IrccsFilter {
                specialisation: self.specialisation,
                ownership: self.ownership,
            }),
            university: keep(&[company, irccs, partner]).then_some(UniversityFilter {
                ownership: self.ownership,
                has_medical_faculty: self.has_medical_faculty,
                ranking: None,
            }),
            partner: keep(&[company, irccs, university, ownership]).then_some(PartnerFilter {
                partner_type: self.partner_type,
                scope: self.scope,
            }),
        })
    }
}

/// Sums over a group's companies.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompanySums {
    /// Total head count of the group's companies; null when none states it (a group without
    /// companies always).
    pub employees: Option<i64>,
    /// Total yearly revenue in whole euros; null likewise.
    pub revenue_eur: Option<i64>,
    /// Total yearly R&D investment in whole euros; null likewise.
    pub rd_investment_eur: Option<i64>,
    /// Total yearly exports in whole euros; null likewise.
    pub exports_eur: Option<i64>,
}

/// One group of organisations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationGroup {
    /// The group's value of each `group_by` key, by key name: a string (an enum's wire value,
    /// a province code), a boolean for `in_mind`, or null where the organisations have no
    /// such field (`sector` of a university) or have not filled it in.
    #[schema(value_type = Object, example = json!({"kind": "company", "province": "MI"}))]
    pub key: Map<String, Json>,
    /// Organisations in the group (an IRCCS grouped by specialisation counts in each of its
    /// specialisations).
    pub count: i64,
    /// Sums over the group's companies.
    pub sums: CompanySums,
}

/// Organisation statistics.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationStats {
    /// The keys the groups are made of, in the order given.
    pub group_by: Vec<StatsGroupKey>,
    /// Every non-empty group, ordered by the first key's value, then the second's, nulls last.
    pub data: Vec<OrganisationGroup>,
    /// Organisations matching the filters, each counted once (with `specialisation` among
    /// the keys, less than the sum of the counts when an IRCCS has several).
    pub total: i64,
}

fn key_value(key: StatsGroupKey, value: Option<String>) -> Json {
    match (key, value) {
        (_, None) => Json::Null,
        (StatsGroupKey::InMind, Some(v)) => Json::Bool(v == "true"),
        (_, Some(v)) => Json::String(v),
    }
}

const SUM_COLUMNS: [&str; 5] = [
    "count",
    "employees",
    "revenue_eur",
    "rd_investment_eur",
    "exports_eur",
];

/// Adds what every statistic answers with: its tag, the cache policy, and `Vary: Accept`
/// (JSON and CSV share the URL, with different tags).
fn stats_answer(tag: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::ETAG, tag.to_owned()))
        .insert_header((header::CACHE_CONTROL, PRIVATE_REVALIDATE))
        .insert_header((header::VARY, "Accept"));
    res
}

fn csv_answer<R: Serialize>(
    tag: &str,
    rows: &[R],
    columns: &[&str],
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let body = csv::table(rows, columns)?;
    Ok(stats_answer(tag)
        .content_type(TEXT_CSV)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.csv\""),
        ))
        .body(body))
}

/// Organisations counted by one or two keys.
#[utoipa::path(
    get, path = "/api/v1/stats/organisations", tag = "stats",
    description = "Counts of the organisations matching the lists' filters (archived ones only with \
        `include_archived`), grouped by one or two keys, with sums over each group's companies. \
        `Accept: text/csv` answers the same groups as CSV: a column per key, then `count`, \
        `employees`, `revenue_eur`, `rd_investment_eur`, `exports_eur`. \
        The ETag derives from a counter of committed changes, as the lists' do: a poll with \
        If-None-Match answers 304 without counting again. A fixed number of statements: one, from \
        counts kept up to date by every write, when every filter is among `kind`, `province`, \
        `in_mind`, `sector`, `partner_type` and `include_archived`; otherwise one GROUP BY over the \
        matching organisations (two with `specialisation`). Both answer alike.",
    params(OrganisationStatsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The groups (or CSV)",
         content((OrganisationStats = "application/json"), (String = "text/csv")),
         headers(("ETag" = String, description = "Changes whenever the registry changes; send it back in If-None-Match"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 422, response = problems::Unprocessable),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn get_organisation_stats(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
    query: web::Query<OrganisationStatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let keys = query.group_by.keys()?;
    let params = ListParams {
        q: query.q.clone(),
        include_archived: query.include_archived,
        ..ListParams::default()
    };
    params.check_q()?;
    let filter = OrganisationStatsFilter {
        shared: organisation_filter(&principal, &params, query.province.as_ref(), query.in_mind)?,
        any: AnyKindFilter {
            kind: query.kind,
            tags: parse_tags(query.tags.as_ref())?,
        },
        kinds: query.kinds()?,
    };
    let csv = csv::wants_csv(&req);
    let load_keys = keys.clone();
    cached(
        &pool,
        &req,
        &principal,
        csv.then_some("csv"),
        by_counter(),
        move |conn| Ok(model::organisation_groups(conn, &load_keys, &filter)?),
        move |(rows, total), _req, tag| {
            let data: Vec<OrganisationGroup> = rows
                .into_iter()
                .map(|row| {
                    let mut key = Map::new();
                    for (k, v) in keys.iter().zip([row.k1, row.k2]) {
                        key.insert(k.as_str().to_owned(), key_value(*k, v));
                    }
                    OrganisationGroup {
                        key,
                        count: row.count,
                        sums: CompanySums {
                            employees: row.employees,
                            revenue_eur: row.revenue_eur,
                            rd_investment_eur: row.rd_investment_eur,
                            exports_eur: row.exports_eur,
                        },
                    }
                })
                .collect();
            if csv {
                let mut columns: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
                columns.extend(SUM_COLUMNS);
                let rows: Vec<Json> = data
                    .iter()
                    .map(|g| {
                        let mut row = g.key.clone();
                        row.insert("count".into(), json!(g.count));
                        row.insert("employees".into(), json!(g.sums.employees));
                        row.insert("revenue_eur".into(), json!(g.sums.revenue_eur));
                        row.insert("rd_investment_eur".into(), json!(g.sums.rd_investment_eur));
                        row.insert("exports_eur".into(), json!(g.sums.exports_eur));
                        Json::Object(row)
                    })
                    .collect();
                return csv_answer(tag, &rows, &columns, "organisation-stats");
            }
            Ok(stats_answer(tag).json(OrganisationStats {
                group_by: keys,
                data,
                total,
            }))
        },
    )
    .await
}

/// How often the server folds the organisation rollup's deltas into its base: often enough
/// that readers add up a few hundred rows, seldom enough to cost nothing when idle.
pub const ROLLUP_FOLD_PERIOD: Duration = Duration::from_secs(2);

/// Folds the organisation rollup's deltas now and then for as long as the server runs. The
/// answers do not wait for it (they add the deltas up); every replica runs it, and one at a
/// time does the work.
pub async fn fold_rollup(pool: web::Data<PgPool>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match db::run(&pool, |conn| Ok(model::compact_rollup(conn)?)).await {
            Ok(0) => {}
            Ok(folded) => tracing::debug!(folded, "organisation rollup compacted"),
            Err(err) => tracing::warn!(error = %err, "organisation rollup not compacted"),
        }
    }
}

/// A goal's live activities by status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ActivityCounts {
    /// Planned.
    pub planned: i64,
    /// Active.
    pub active: i64,
    /// Completed.
    pub completed: i64,
    /// Cancelled.
    pub cancelled: i64,
    /// All of them.
    pub total: i64,
}

/// Distinct organisations by kind.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct KindCounts {
    /// Companies.
    pub company: i64,
    /// IRCCS.
    pub irccs: i64,
    /// Universities.
    pub university: i64,
    /// Institutional partners.
    pub partner: i64,
    /// All of them (each organisation once).
    pub total: i64,
}

/// One goal's numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalStatsRow {
    /// The goal.
    pub goal_id: Uuid,
    /// Its code.
    pub code: i32,
    /// Its title.
    pub title: String,
    /// Live activities linked to the goal (primary or supporting), by status.
    pub activities: ActivityCounts,
    /// Distinct live organisations that partner the goal today (a partnership holds on a day
    /// when `since` <= day <= `until`, open ends unbounded).
    pub partners: i64,
    /// Distinct live organisations taking part in the goal's live activities, by kind: a
    /// participation counts while `proposed` or `confirmed`, whatever its dates; `declined`
    /// and `withdrawn` ones do not.
    pub participants: KindCounts,
}

/// Goal statistics.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalStatsResponse {
    /// The day partnerships are counted on (today, UTC).
    pub as_of: chrono::NaiveDate,
    /// Every live goal, by code.
    pub data: Vec<GoalStatsRow>,
}

const GOAL_CSV_COLUMNS: &[&str] = &[
    "goal_id",
    "code",
    "title",
    "activities_planned",
    "activities_active",
    "activities_completed",
    "activities_cancelled",
    "activities_total",
    "partners",
    "participants_company",
    "participants_irccs",
    "participants_university",
    "participants_partner",
    "participants_total",
];

fn goal_rows(stats: model::GoalStats) -> Vec<GoalStatsRow> {
    let mut activities: HashMap<Uuid, ActivityCounts> = HashMap::new();
    for c in stats.activities {
        let counts = activities.entry(c.goal_id).or_default();
        match c.label.as_deref().and_then(|l| l.parse().ok()) {
            Some(ActivityStatus::Planned) => counts.planned += c.count,
            Some(ActivityStatus::Active) => counts.active += c.count,
            Some(ActivityStatus::Completed) => counts.completed += c.count,
            Some(ActivityStatus::Cancelled) => counts.cancelled += c.count,
            None => {}
        }
        counts.total += c.count;
    }
    let partners: HashMap<Uuid, i64> = stats
        .partners
        .into_iter()
        .map(|c| (c.goal_id, c.count))
        .collect();
    let mut participants: BTreeMap<Uuid, KindCounts> = BTreeMap::new();
    for c in stats.participants {
        let counts = participants.entry(c.goal_id).or_default();
        match c.label.as_deref().and_then(|l| l.parse().ok()) {
            Some(OrganisationKind::Company) => counts.company += c.count,
            Some(OrganisationKind::Irccs) => counts.irccs += c.count,
            Some(OrganisationKind::University) => counts.university += c.count,
            Some(OrganisationKind::Partner) => counts.partner += c.count,
            None => {}
        }
        // An organisation has one kind, so the kinds' distinct counts add up.
        counts.total += c.count;
    }
    stats
        .goals
        .into_iter()
        .map(|g| GoalStatsRow {
            goal_id: g.id,
            code: g.code,
            title: g.title,
            activities: activities.remove(&g.id).unwrap_or_default(),
            partners: partners.get(&g.id).copied().unwrap_or(0),
            participants: participants.remove(&g.id).unwrap_or_default(),
        })
        .collect()
}

/// Per goal: activities by status, partners, participating organisations by kind.
#[utoipa::path(
    get, path = "/api/v1/stats/goals", tag = "stats",
    description = "Every live goal with its live activities by status, the distinct organisations \
        partnering it today, and the distinct organisations taking part (proposed or confirmed) \
        in its activities, by kind; archived organisations are not counted. `Accept: text/csv` \
        answers one row per goal, nested members flattened with `_`. ETag and 304 as the lists. \
        Four statements whatever the number of goals.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per goal (or CSV)",
         content((GoalStatsResponse = "application/json"), (String = "text/csv")),
         headers(("ETag" = String, description = "Changes whenever the registry changes; send it back in If-None-Match"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn get_goal_stats(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let csv = csv::wants_csv(&req);
    let today = crate::db::now().date_naive();
    // The day is part of the answer: the tag must change with it, or a poll across midnight
    // would keep yesterday's partners.
    let variant = format!("{today}{}", if csv { ",csv" } else { "" });
    cached(
        &pool,
        &req,
        &principal,
        Some(&variant),
        by_counter(),
        move |conn| Ok(model::goal_stats(conn, today)?),
        move |stats, _req, tag| {
            let data = goal_rows(stats);
            if csv {
                return csv_answer(tag, &data, GOAL_CSV_COLUMNS, "goal-stats");
            }
            Ok(stats_answer(tag).json(GoalStatsResponse { as_of: today, data }))
        },
    )
    .await
}
