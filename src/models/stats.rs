//! Aggregates for dashboards: organisations counted by one or two keys under the lists'
//! filters, and per-goal counts of activities, partners and participants. Each answer is a
//! fixed number of statements, whatever the registry's size.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Integer, Nullable, Text, Uuid as SqlUuid};
use uuid::Uuid;

use super::company::{CompanyDetail, CompanyFilter};
use super::irccs::{IrccsDetail, IrccsFilter};
use super::organisation::{AnyKindFilter, KindTable, OrganisationFilter};
use super::partner::{PartnerDetail, PartnerFilter};
use super::university::{UniversityDetail, UniversityFilter};
use crate::db::list::{push_where, Filter, Sql, Value};
use crate::domain::{OrganisationKind, StatsGroupKey};

/// Which kinds a statistic covers, each with its list's own filter: `None` leaves the kind
/// out (a filter was given that the kind has no field for, such as `sector` for an IRCCS).
#[derive(Debug, Clone, PartialEq)]
pub struct KindFilters {
    /// Companies, and the companies list's filter.
    pub company: Option<CompanyFilter>,
    /// IRCCS, and the IRCCS list's filter.
    pub irccs: Option<IrccsFilter>,
    /// Universities, and the universities list's filter.
    pub university: Option<UniversityFilter>,
    /// Institutional partners, and the partners list's filter.
    pub partner: Option<PartnerFilter>,
}

impl Default for KindFilters {
    fn default() -> Self {
        Self {
            company: Some(CompanyFilter::default()),
            irccs: Some(IrccsFilter::default()),
            university: Some(UniversityFilter::default()),
            partner: Some(PartnerFilter::default()),
        }
    }
}

fn kind_group<D: KindTable>(kind: OrganisationKind, filter: &D::Filter) -> Vec<Filter> {
    let mut group = vec![Filter::Eq("o.kind", Value::Text(kind.as_str().to_owned()))];
    let own = D::conditions(filter);
    if !own.is_empty() {
        // The kinds' conditions name their detail table `d`, as in their lists; a semi-join
        // keeps that alias free while the statistic joins every detail table at once.
        group.push(Filter::Within {
            id: "o.id",
            key: "d.organisation_id",
            table: D::TABLE,
            alias: "d",
            filters: own,
        });
    }
    group
}

impl KindFilters {
    /// One condition over `o`: of a covered kind, and matching that kind's filter. None when
    /// every kind is covered with no filter of its own.
    fn condition(&self) -> Option<Filter> {
        if *self == Self::default() {
            return None;
        }
        let mut groups = Vec::new();
        if let Some(f) = &self.company {
            groups.push(kind_group::<CompanyDetail>(OrganisationKind::Company, f));
        }
        if let Some(f) = &self.irccs {
            groups.push(kind_group::<IrccsDetail>(OrganisationKind::Irccs, f));
        }
        if let Some(f) = &self.university {
            groups.push(kind_group::<UniversityDetail>(
                OrganisationKind::University,
                f,
            ));
        }
        if let Some(f) = &self.partner {
            groups.push(kind_group::<PartnerDetail>(OrganisationKind::Partner, f));
        }
        Some(Filter::AnyOf(groups))
    }
}

impl KindFilters {
    /// The same condition over the rollup `r`, whose rows carry `kind`, `sector` and
    /// `partner_type`: None when a kind's filter names a field the rollup does not keep
    /// (employees, ownership, a specialisation a record has among others, ...). Inside, None
    /// when every kind is covered with no filter of its own.
    fn rollup_condition(&self) -> Option<Option<Filter>> {
        if *self == Self::default() {
            return Some(None);
        }
        let kind = |k: OrganisationKind| Filter::Eq("r.kind", Value::Text(k.as_str().to_owned()));
        let mut groups = Vec::new();
        if let Some(f) = &self.company {
            if *f
                != (CompanyFilter {
                    sector: f.sector,
                    ..CompanyFilter::default()
                })
            {
                return None;
            }
            let mut group = vec![kind(OrganisationKind::Company)];
            group.extend(
                f.sector
                    .map(|s| Filter::Eq("r.sector", Value::Text(s.as_str().to_owned()))),
            );
            groups.push(group);
        }
        if let Some(f) = &self.irccs {
            if *f != IrccsFilter::default() {
                return None;
            }
            groups.push(vec![kind(OrganisationKind::Irccs)]);
        }
        if let Some(f) = &self.university {
            if *f != UniversityFilter::default() {
                return None;
            }
            groups.push(vec![kind(OrganisationKind::University)]);
        }
        if let Some(f) = &self.partner {
            if *f
                != (PartnerFilter {
                    partner_type: f.partner_type,
                    ..PartnerFilter::default()
                })
            {
                return None;
            }
            let mut group = vec![kind(OrganisationKind::Partner)];
            group.extend(
                f.partner_type
                    .map(|t| Filter::Eq("r.partner_type", Value::Text(t.as_str().to_owned()))),
            );
            groups.push(group);
        }
        Some(Some(Filter::AnyOf(groups)))
    }
}

/// Everything organisation statistics filter on: what the lists filter on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrganisationStatsFilter {
    /// What every organisation list filters on.
    pub shared: OrganisationFilter,
    /// What the cross-kind list filters on (kind, tags).
    pub any: AnyKindFilter,
    /// The kinds covered and their own filters.
    pub kinds: KindFilters,
}

impl OrganisationStatsFilter {
    fn conditions(&self) -> Vec<Filter> {
        let mut filters = self.shared.conditions();
        filters.extend(self.any.conditions());
        filters.extend(self.kinds.condition());
        filters
    }

    /// The same conditions over the rollup `r`, when every filter is one of its dimensions
    /// (archived, kind, province, in_mind, sector, partner_type); None otherwise (a search,
    /// tags, an employee range, ...), for the live GROUP BY to answer.
    fn rollup_conditions(&self) -> Option<Vec<Filter>> {
        let OrganisationFilter {
            include_archived,
            province,
            in_mind,
            search,
        } = &self.shared;
        if search.is_some() || !self.any.tags.is_empty() {
            return None;
        }
        let mut filters = Vec::new();
        if !include_archived {
            filters.push(Filter::Raw("NOT r.archived"));
        }
        if let Some(province) = province {
            filters.push(Filter::Eq(
                "r.province",
                Value::Text(province.as_str().to_owned()),
            ));
        }
        if let Some(in_mind) = in_mind {
            filters.push(Filter::Eq("r.in_mind", Value::Bool(*in_mind)));
        }
        if let Some(kind) = self.any.kind {
            filters.push(Filter::Eq("r.kind", Value::Text(kind.as_str().to_owned())));
        }
        filters.extend(self.kinds.rollup_condition()?);
        Some(filters)
    }
}

/// The SQL a group key reads, as text (NULL where the organisation has no such field).
fn key_expr(key: StatsGroupKey) -> &'static str {
    match key {
        StatsGroupKey::Kind => "o.kind",
        StatsGroupKey::Sector => "c.sector",
        StatsGroupKey::Province => "o.address_province",
        StatsGroupKey::Specialisation => "s.specialisation",
        StatsGroupKey::PartnerType => "p.partner_type",
        StatsGroupKey::InMind => "o.in_mind::text",
    }
}

/// The rollup column a group key reads, as text, as [`key_expr`] reads it live.
fn rollup_key_expr(key: StatsGroupKey) -> &'static str {
    match key {
        StatsGroupKey::Kind => "r.kind",
        StatsGroupKey::Sector => "r.sector",
        StatsGroupKey::Province => "r.province",
        StatsGroupKey::Specialisation => "r.specialisation",
        StatsGroupKey::PartnerType => "r.partner_type",
        StatsGroupKey::InMind => "r.in_mind::text",
    }
}

/// One group of organisations.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct GroupRow {
    /// The first key's value.
    #[diesel(sql_type = Nullable<Text>)]
    pub k1: Option<String>,
    /// The second key's value (NULL with one key).
    #[diesel(sql_type = Nullable<Text>)]
    pub k2: Option<String>,
    /// Organisations in the group.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    /// Sum of the companies' employees; NULL when no company in the group states it.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub employees: Option<i64>,
    /// Sum of the companies' revenue.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub revenue_eur: Option<i64>,
    /// Sum of the companies' R&D investment.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub rd_investment_eur: Option<i64>,
    /// Sum of the companies' exports.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub exports_eur: Option<i64>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// Organisations matching `filter`, counted by `keys` (one or two), and how many matched
/// in all: from the rollup when every filter is one of its dimensions (one statement), else
/// by the live GROUP BY (one statement, two with `specialisation`).
pub fn organisation_groups(
    conn: &mut PgConnection,
    keys: &[StatsGroupKey],
    filter: &OrganisationStatsFilter,
) -> QueryResult<(Vec<GroupRow>, i64)> {
    match rollup_organisation_groups(conn, keys, filter)? {
        Some(answer) => Ok(answer),
        None => live_organisation_groups(conn, keys, filter),
    }
}

#[derive(QueryableByName)]
struct RollupGroupRow {
    #[diesel(embed)]
    group: GroupRow,
    /// The group's organisations each counted once: its count, unless grouped by
    /// specialisation.
    #[diesel(sql_type = BigInt)]
    organisations: i64,
}

/// [`organisation_groups`] from the rollup that migration 000016's triggers keep (the base
/// plus the deltas not folded in yet), in one statement; None when a filter is not one of the
/// rollup's dimensions.
pub fn rollup_organisation_groups(
    conn: &mut PgConnection,
    keys: &[StatsGroupKey],
    filter: &OrganisationStatsFilter,
) -> QueryResult<Option<(Vec<GroupRow>, i64)>> {
    let Some(conditions) = filter.rollup_conditions() else {
        return Ok(None);
    };
    let expr = |i: usize| keys.get(i).map_or("NULL::text", |k| rollup_key_expr(*k));
    // A row holds an IRCCS once per specialisation; `organisations` counts it on one of them.
    let counted = if keys.contains(&StatsGroupKey::Specialisation) {
        "r.members"
    } else {
        "r.organisations"
    };
    // SUM is NULL over no stated figure: the `_n` columns count the figures stated.
    let sum = |column: &str| {
        format!("CASE WHEN sum(r.{column}_n) > 0 THEN sum(r.{column}) END::bigint AS {column}")
    };
    let select = format!(
        "SELECT {} AS k1, {} AS k2, sum({counted})::bigint AS count, {}, {}, {}, {}, \
         sum(r.organisations)::bigint AS organisations \
         FROM (SELECT * FROM organisation_stats UNION ALL SELECT * FROM organisation_stats_delta) r",
        expr(0),
        expr(1),
        sum("employees"),
        sum("revenue_eur"),
        sum("rd_investment_eur"),
        sum("exports_eur"),
    );
    // Groups emptied by archives and moves stay in the rollup at zero until compacted; the
    // live query has no such groups.
    let sql = push_where(Sql::new(&select), &conditions).push(&format!(
        " GROUP BY 1, 2 HAVING sum({counted}) > 0 ORDER BY 1 NULLS LAST, 2 NULLS LAST"
    ));
    let rows: Vec<RollupGroupRow> = sql.into_query().load(conn)?;
    let total = rows.iter().map(|r| r.organisations).sum();
    Ok(Some((rows.into_iter().map(|r| r.group).collect(), total)))
}

/// Folds the rollup's deltas into its base, unless another compaction is running; how many
/// groups it wrote. Readers add the deltas up, so this only keeps them few.
pub fn compact_rollup(conn: &mut PgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Folded {
        #[diesel(sql_type = BigInt)]
        folded: i64,
    }
    Ok(diesel::sql_query("SELECT lshub_stats_compact() AS folded")
        .get_result::<Folded>(conn)?
        .folded)
}

/// [`organisation_groups`] by the live GROUP BY over the registry, whatever the filters (the
/// answer the rollup must equal). One statement, two when grouping by specialisation (an
/// IRCCS counts in each of its specialisations, so the groups' counts no longer add up to the
/// total).
pub fn live_organisation_groups(
    conn: &mut PgConnection,
    keys: &[StatsGroupKey],
    filter: &OrganisationStatsFilter,
) -> QueryResult<(Vec<GroupRow>, i64)> {
    let expr = |i: usize| keys.get(i).map_or("NULL::text", |k| key_expr(*k));
    // The sums (and the sector) are the companies' alone. With none in scope (an IRCCS or
    // university filter) the join adds nothing but its cost: the planner hashed every company
    // for it (tests/api/plans.rs).
    let companies = filter.kinds.company.is_some() || keys.contains(&StatsGroupKey::Sector);
    let mut from = String::from(" FROM organisations o");
    if companies {
        from.push_str(" LEFT JOIN companies c ON c.organisation_id = o.id");
    }
    let sum = |column: &str| {
        if companies {
            format!("sum(c.{column})::bigint")
        } else {
            "NULL::bigint".to_owned()
        }
    };
    if keys.contains(&StatsGroupKey::PartnerType) {
        from.push_str(" LEFT JOIN partners p ON p.organisation_id = o.id");
    }
    if keys.contains(&StatsGroupKey::Specialisation) {
        // LEFT: the other kinds have no specialisations and still count, under NULL.
        from.push_str(
            " LEFT JOIN irccs i ON i.organisation_id = o.id \
             LEFT JOIN LATERAL unnest(i.specialisations) AS s(specialisation) ON TRUE",
        );
    }
    let select = format!(
        "SELECT {} AS k1, {} AS k2, count(*) AS count, {} AS employees, {} AS revenue_eur, \
         {} AS rd_investment_eur, {} AS exports_eur{from}",
        expr(0),
        expr(1),
        sum("employees"),
        sum("revenue_eur"),
        sum("rd_investment_eur"),
        sum("exports_eur"),
    );
    let conditions = filter.conditions();
    let sql = push_where(Sql::new(&select), &conditions)
        .push(" GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST");
    let rows: Vec<GroupRow> = sql.into_query().load(conn)?;
    let total = if keys.contains(&StatsGroupKey::Specialisation) {
        let sql = push_where(
            Sql::new("SELECT count(*) AS total FROM organisations o"),
            &conditions,
        );
        sql.into_query().get_result::<Count>(conn)?.total
    } else {
        rows.iter().map(|r| r.count).sum()
    };
    Ok((rows, total))
}

/// A live goal.
#[derive(Debug, Clone, QueryableByName)]
pub struct GoalBrief {
    /// Its id.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// Its code.
    #[diesel(sql_type = Integer)]
    pub code: i32,
    /// Its title.
    #[diesel(sql_type = Text)]
    pub title: String,
}

/// A count under a goal and a label (an activity status, an organisation kind).
#[derive(Debug, Clone, QueryableByName)]
pub struct GoalCount {
    /// The goal.
    #[diesel(sql_type = SqlUuid)]
    pub goal_id: Uuid,
    /// The label; NULL for a goal's plain count.
    #[diesel(sql_type = Nullable<Text>)]
    pub label: Option<String>,
    /// How many.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// What the goal statistics read, four statements whatever the number of goals.
#[derive(Debug, Clone)]
pub struct GoalStats {
    /// Every live goal, by code.
    pub goals: Vec<GoalBrief>,
    /// Live activities linked to each goal, by status.
    pub activities: Vec<GoalCount>,
    /// Distinct live organisations partnering each goal on `day`.
    pub partners: Vec<GoalCount>,
    /// Distinct live organisations taking part (proposed or confirmed) in the goal's live
    /// activities, by kind.
    pub participants: Vec<GoalCount>,
}

/// The goal statistics, partners counted as of `day`.
pub fn goal_stats(conn: &mut PgConnection, day: NaiveDate) -> QueryResult<GoalStats> {
    let goals = diesel::sql_query(
        "SELECT id, code, title FROM goals WHERE archived_at IS NULL ORDER BY code, id",
    )
    .load(conn)?;
    let activities = diesel::sql_query(
        "SELECT l.goal_id, a.status AS label, count(*) AS count \
         FROM goal_activity_links l \
         JOIN goals g ON g.id = l.goal_id AND g.archived_at IS NULL \
         JOIN activities a ON a.id = l.activity_id AND a.archived_at IS NULL \
         GROUP BY 1, 2",
    )
    .load(conn)?;
    // A dated link holds on day D when since <= D <= until, NULL ends open (the `valid`
    // range the links' lists filter `as_of` with).
    let partners = diesel::sql_query(
        "SELECT gp.goal_id, NULL::text AS label, count(DISTINCT gp.organisation_id) AS count \
         FROM goal_partners gp \
         JOIN goals g ON g.id = gp.goal_id AND g.archived_at IS NULL \
         JOIN organisations o ON o.id = gp.organisation_id AND o.archived_at IS NULL \
         WHERE gp.valid @> $1 \
         GROUP BY 1",
    )
    .bind::<Date, _>(day)
    .load(conn)?;
    // A participation counts while proposed or confirmed (declined and withdrawn ones do
    // not), written out as the partial index `activity_participants_counted_idx` states it.
    let participants = diesel::sql_query(
        "SELECT l.goal_id, o.kind AS label, count(DISTINCT ap.organisation_id) AS count \
         FROM goal_activity_links l \
         JOIN goals g ON g.id = l.goal_id AND g.archived_at IS NULL \
         JOIN activities a ON a.id = l.activity_id AND a.archived_at IS NULL \
         JOIN activity_participants ap ON ap.activity_id = a.id \
             AND ap.status IN ('proposed', 'confirmed') \
         JOIN organisations o ON o.id = ap.organisation_id AND o.archived_at IS NULL \
         GROUP BY 1, 2",
    )
    .load(conn)?;
    Ok(GoalStats {
        goals,
        activities,
        partners,
        participants,
    })
}
