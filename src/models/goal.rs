//! Strategic goals.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Float, Nullable};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value};
use crate::db::schema::goals;
use crate::db::StoreError;
use crate::domain::strategy::GoalDraft;
use crate::domain::{Area, GoalId};

/// A `goals` row as lists read it (with relevance when searched).
#[derive(Debug, Clone, Queryable, QueryableByName)]
#[diesel(table_name = goals, check_for_backend(diesel::pg::Pg))]
pub struct GoalRow {
    pub id: Uuid,
    pub code: i32,
    pub title: String,
    pub title_key: String,
    pub headline: Option<String>,
    pub statement: Option<String>,
    pub lines_of_action: Json,
    pub areas: Vec<String>,
    pub unlisted_partners: Vec<String>,
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
) -> QueryResult<Option<GoalRow>> {
    goals::table
        .find(id)
        .filter(
            goals::archived_at
                .is_null()
                .or(include_archived.into_sql::<diesel::sql_types::Bool>()),
        )
        .select((
            goals::id,
            goals::code,
            goals::title,
            goals::title_key,
            goals::headline,
            goals::statement,
            goals::lines_of_action,
            goals::areas,
            goals::unlisted_partners,
            goals::created_at,
            goals::updated_at,
            goals::version,
            goals::archived_at,
            None::<f32>.into_sql::<Nullable<Float>>(),
        ))
        .first(conn)
        .optional()
}

impl Keyed for GoalRow {
    fn id(&self) -> Uuid {
        self.id
    }
    fn sort_value(&self, key: &str) -> Option<Value> {
        match key {
            "code" => Some(Value::Int(self.code.into())),
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

/// The sort keys `GET /goals` offers (the first is the default).
pub const SORT_KEYS: &[SortKey] = &[
    SortKey {
        name: "code",
        expr: "g.code",
        ty: KeyType::Int,
        nullable: false,
        tie: "g.id",
    },
    SortKey {
        name: "title",
        expr: "g.title_key",
        ty: KeyType::Text,
        nullable: false,
        tie: "g.id",
    },
    SortKey {
        name: "created_at",
        expr: "g.created_at",
        ty: KeyType::Time,
        nullable: false,
        tie: "g.id",
    },
    SortKey {
        name: "updated_at",
        expr: "g.updated_at",
        ty: KeyType::Time,
        nullable: false,
        tie: "g.id",
    },
];

/// The folded title + headline column `q` searches and ranks by.
pub const SEARCH_COLUMN: &str = "g.search_key";

/// What the goals list filters on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalFilter {
    /// Archived goals too.
    pub include_archived: bool,
    /// Only goals filed under this area.
    pub area: Option<Area>,
    /// Matches of `q` (trimmed, not blank) by substring or trigram word similarity.
    pub search: Option<String>,
}

/// The goals list.
pub fn list_query(filter: &GoalFilter, order: Order, limit: Option<u32>) -> ListQuery {
    let mut filters = Vec::new();
    if !filter.include_archived {
        filters.push(Filter::Raw("g.archived_at IS NULL"));
    }
    if let Some(area) = filter.area {
        filters.push(Filter::Contains(
            "g.areas",
            Value::TextArray(vec![area.as_str().to_owned()]),
        ));
    }
    if let Some(q) = &filter.search {
        filters.push(Filter::Search {
            id: "g.id",
            table: "goals",
            column: "search_key",
            q: q.clone(),
        });
    }
    ListQuery {
        resource: "goals",
        select: "SELECT g.*",
        from: "FROM goals g",
        id_expr: "g.id",
        filters,
        order,
        limit,
    }
}

/// A goal's writable columns, from a validated draft.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = goals, treat_none_as_null = true)]
struct GoalWrite {
    pub code: i32,
    pub title: String,
    pub headline: Option<String>,
    pub statement: Option<String>,
    pub lines_of_action: Json,
    pub areas: Vec<String>,
    pub unlisted_partners: Vec<String>,
}

impl TryFrom<&GoalDraft> for GoalWrite {
    type Error = diesel::result::Error;

    fn try_from(d: &GoalDraft) -> QueryResult<Self> {
        Ok(Self {
            code: d.code,
            title: d.title.clone(),
            headline: d.headline.clone(),
            statement: d.statement.clone(),
            lines_of_action: serde_json::to_value(&d.lines_of_action)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?,
            areas: d.areas.iter().map(|a| a.as_str().to_owned()).collect(),
            unlisted_partners: d.unlisted_partners.clone(),
        })
    }
}

/// Inserts a goal; its id.
pub fn insert(conn: &mut PgConnection, draft: &GoalDraft) -> QueryResult<Uuid> {
    let write = GoalWrite::try_from(draft)?;
    let id = Uuid::now_v7();
    let now = crate::db::now();
    diesel::insert_into(goals::table)
        .values((
            goals::id.eq(id),
            &write,
            goals::created_at.eq(now),
            goals::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Rewrites a goal at `expected` version (else 412).
pub fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected: i64,
    draft: &GoalDraft,
) -> Result<(), StoreError> {
    let write = GoalWrite::try_from(draft)?;
    let n = diesel::update(
        goals::table
            .filter(goals::id.eq(id))
            .filter(goals::version.eq(expected)),
    )
    .set((
        &write,
        goals::updated_at.eq(crate::db::now()),
        goals::version.eq(goals::version + 1),
    ))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale)
    }
}

/// The live goal numbered `code`, if any.
pub fn live_id_by_code(conn: &mut PgConnection, code: i32) -> QueryResult<Option<GoalId>> {
    goals::table
        .filter(goals::code.eq(code))
        .filter(goals::archived_at.is_null())
        .select(goals::id)
        .first(conn)
        .optional()
        .map(|id| id.map(GoalId::new))
}
