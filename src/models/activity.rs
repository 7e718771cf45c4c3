//! Activities, and the links that say which goals they serve.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Float, Nullable};
use uuid::Uuid;

use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value};
use crate::db::schema::{activities, goal_activity_links, goals};
use crate::db::StoreError;
use crate::domain::strategy::ActivityDraft;
use crate::domain::{ActivityId, ActivityStatus, Area};

/// An `activities` row as lists read it (with relevance when searched).
#[derive(Debug, Clone, Queryable, QueryableByName)]
#[diesel(table_name = activities, check_for_backend(diesel::pg::Pg))]
pub struct ActivityRow {
    pub id: Uuid,
    pub title: String,
    pub title_key: String,
    pub description: Option<String>,
    pub status: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub areas: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub archived_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Float>)]
    pub score: Option<f32>,
}

/// Row `id`, unless absent (or archived, unless `include_archived`), by a statement diesel
/// prepares once per connection (the list engine's dynamic SQL is for lists).
pub fn load_one(
    conn: &mut PgConnection,
    id: Uuid,
    include_archived: bool,
) -> QueryResult<Option<ActivityRow>> {
    activities::table
        .find(id)
        .filter(
            activities::archived_at
                .is_null()
                .or(include_archived.into_sql::<diesel::sql_types::Bool>()),
        )
        .select((
            activities::id,
            activities::title,
            activities::title_key,
            activities::description,
            activities::status,
            activities::starts_on,
            activities::ends_on,
            activities::areas,
            activities::created_at,
            activities::updated_at,
            activities::version,
            activities::archived_at,
            None::<f32>.into_sql::<Nullable<Float>>(),
        ))
        .first(conn)
        .optional()
}

impl Keyed for ActivityRow {
    fn id(&self) -> Uuid {
        self.id
    }
    fn sort_value(&self, key: &str) -> Option<Value> {
        match key {
            "title" => Some(Value::Text(self.title_key.clone())),
            "created_at" => Some(Value::Time(self.created_at)),
            "updated_at" => Some(Value::Time(self.updated_at)),
            _ => None,
        }
    }
    fn score(&self) -> Option<f32> {
        self.score
    }
}

/// The sort keys `GET /activities` offers (the first is the default).
pub const SORT_KEYS: &[SortKey] = &[
    SortKey {
        name: "title",
        expr: "a.title_key",
        ty: KeyType::Text,
        nullable: false,
        tie: "a.id",
    },
    SortKey {
        name: "created_at",
        expr: "a.created_at",
        ty: KeyType::Time,
        nullable: false,
        tie: "a.id",
    },
    SortKey {
        name: "updated_at",
        expr: "a.updated_at",
        ty: KeyType::Time,
        nullable: false,
        tie: "a.id",
    },
];

/// The folded title + description column `q` searches and ranks by.
pub const SEARCH_COLUMN: &str = "a.search_key";

/// What the activities list filters on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityFilter {
    /// Archived activities too.
    pub include_archived: bool,
    /// Only activities linked to this goal (either role).
    pub goal_id: Option<Uuid>,
    /// Only activities in this area: their own areas, or their primary goal's when they have
    /// none.
    pub area: Option<Area>,
    /// Only this status.
    pub status: Option<ActivityStatus>,
    /// Only activities running at some time from the first day to the second (either end
    /// open); an activity's missing dates are open ends too.
    pub period: (Option<NaiveDate>, Option<NaiveDate>),
    /// Matches of `q` (trimmed, not blank) by substring or trigram word similarity.
    pub search: Option<String>,
}

/// The activities list.
pub fn list_query(filter: &ActivityFilter, order: Order, limit: Option<u32>) -> ListQuery {
    let mut filters = Vec::new();
    if !filter.include_archived {
        filters.push(Filter::Raw("a.archived_at IS NULL"));
    }
    if let Some(goal) = filter.goal_id {
        filters.push(Filter::Template(
            "a.id IN (SELECT activity_id FROM goal_activity_links WHERE goal_id = ?)",
            vec![Value::Uuid(goal)],
        ));
    }
    if let Some(area) = filter.area {
        let area = Value::TextArray(vec![area.as_str().to_owned()]);
        filters.push(Filter::Template(
            "(a.areas @> ? OR (a.areas = '{}' AND a.id IN (SELECT l.activity_id FROM goal_activity_links l \
             JOIN goals g ON g.id = l.goal_id WHERE l.role = 'primary' AND g.areas @> ?)))",
            vec![area.clone(), area],
        ));
    }
    if let Some(status) = filter.status {
        filters.push(Filter::Eq(
            "a.status",
            Value::Text(status.as_str().to_owned()),
        ));
    }
    let (from, to) = filter.period;
    if let Some(from) = from {
        filters.push(Filter::Template(
            "(a.ends_on IS NULL OR a.ends_on >= ?)",
            vec![Value::Date(from)],
        ));
    }
    if let Some(to) = to {
        filters.push(Filter::Template(
            "(a.starts_on IS NULL OR a.starts_on <= ?)",
            vec![Value::Date(to)],
        ));
    }
    if let Some(q) = &filter.search {
        filters.push(Filter::Search {
            id: "a.id",
            table: "activities",
            column: "search_key",
            q: q.clone(),
        });
    }
    ListQuery {
        resource: "activities",
        select: "SELECT a.*",
        from: "FROM activities a",
        id_expr: "a.id",
        filters,
        order,
        limit,
    }
}

/// An activity's writable columns, from a validated draft.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = activities, treat_none_as_null = true)]
struct ActivityWrite {
    pub title: String,
    pub description: Option<String>,
    pub status: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub areas: Vec<String>,
}

impl From<&ActivityDraft> for ActivityWrite {
    fn from(d: &ActivityDraft) -> Self {
        Self {
            title: d.title.clone(),
            description: d.description.clone(),
            status: d.status.as_str().to_owned(),
            starts_on: d.starts_on,
            ends_on: d.ends_on,
            areas: d.areas.iter().map(|a| a.as_str().to_owned()).collect(),
        }
    }
}

/// Inserts an activity; its id.
pub fn insert(conn: &mut PgConnection, draft: &ActivityDraft) -> QueryResult<Uuid> {
    let id = Uuid::now_v7();
    let now = crate::db::now();
    diesel::insert_into(activities::table)
        .values((
            activities::id.eq(id),
            ActivityWrite::from(draft),
            activities::created_at.eq(now),
            activities::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Rewrites an activity at `expected` version (else 412).
pub fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected: i64,
    draft: &ActivityDraft,
) -> Result<(), StoreError> {
    let n = diesel::update(
        activities::table
            .filter(activities::id.eq(id))
            .filter(activities::version.eq(expected)),
    )
    .set((
        ActivityWrite::from(draft),
        activities::updated_at.eq(crate::db::now()),
        activities::version.eq(activities::version + 1),
    ))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale)
    }
}

/// The areas of each activity's primary goal, for activities that have none of their own;
/// one query for the whole page.
pub fn primary_goal_areas(
    conn: &mut PgConnection,
    activity_ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<String>>> {
    let rows: Vec<(Uuid, Vec<String>)> = goal_activity_links::table
        .inner_join(goals::table)
        .filter(goal_activity_links::activity_id.eq_any(activity_ids))
        .filter(goal_activity_links::role.eq("primary"))
        .select((goal_activity_links::activity_id, goals::areas))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// The live activity whose folded title is `title`'s, if any.
pub fn live_id_by_title(conn: &mut PgConnection, title: &str) -> QueryResult<Option<ActivityId>> {
    activities::table
        .filter(activities::title_key.eq(crate::db::lshub_fold(title)))
        .filter(activities::archived_at.is_null())
        .select(activities::id)
        .first(conn)
        .optional()
        .map(|id| id.map(ActivityId::new))
}
