//! The one list engine: filters, sort, keyset cursor, `limit`, optional total.
//!
//! Every list in the API is a [`ListQuery`]: dynamic SQL with bound parameters, ordered by one
//! sort key and the id, continued with `WHERE (key, id) > (last key, last id)` rather than
//! OFFSET, so a page costs the same wherever it is and inserts never shift a page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::StoreError;

/// A value bound into a list query or carried in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// `text`.
    Text(String),
    /// `bigint` (smaller integer columns compare fine against it).
    Int(i64),
    /// `boolean`.
    Bool(bool),
    /// `timestamptz`.
    Time(DateTime<Utc>),
    /// `real` (relevance scores).
    Float(f32),
    /// `uuid`.
    Uuid(Uuid),
    /// `date`.
    Date(chrono::NaiveDate),
    /// `text[]`.
    TextArray(Vec<String>),
}

/// SQL text with its bound parameters (`$1`, `$2`, ...), built piece by piece.
pub struct Sql {
    query: BoxedSqlQuery<'static, Pg, SqlQuery>,
    binds: usize,
}

impl Sql {
    /// Starts a statement.
    pub fn new(text: &str) -> Self {
        Self {
            query: diesel::sql_query(text.to_owned()).into_boxed(),
            binds: 0,
        }
    }

    /// Appends SQL text.
    pub fn push(self, text: &str) -> Self {
        Self {
            query: self.query.sql(text),
            binds: self.binds,
        }
    }

    /// Appends a placeholder and binds `value` to it.
    pub fn bind(self, value: &Value) -> Self {
        let binds = self.binds + 1;
        let q = self.query.sql(format!("${binds}"));
        let query = match value.clone() {
            Value::Text(v) => q.bind::<sql_types::Text, _>(v),
            Value::Int(v) => q.bind::<sql_types::BigInt, _>(v),
            Value::Bool(v) => q.bind::<sql_types::Bool, _>(v),
            Value::Time(v) => q.bind::<sql_types::Timestamptz, _>(v),
            Value::Float(v) => q.bind::<sql_types::Float, _>(v),
            Value::Uuid(v) => q.bind::<sql_types::Uuid, _>(v),
            Value::Date(v) => q.bind::<sql_types::Date, _>(v),
            Value::TextArray(v) => q.bind::<sql_types::Array<sql_types::Text>, _>(v),
        };
        Self { query, binds }
    }

    /// The statement, ready to load.
    pub fn into_query(self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        self.query
    }
}

/// One condition of a list's `WHERE`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `expr = value`.
    Eq(&'static str, Value),
    /// `expr >= value`.
    Gte(&'static str, Value),
    /// `expr <= value`.
    Lte(&'static str, Value),
    /// `expr @> value` (array contains all of).
    Contains(&'static str, Value),
    /// A fixed condition.
    Raw(&'static str),
    /// A fixed condition whose `?` marks take `values` in order.
    Template(&'static str, Vec<Value>),
    /// `q` over a folded search column of `table`: substring or trigram word similarity;
    /// `id` is the listed row's id expression.
    Search {
        id: &'static str,
        table: &'static str,
        column: &'static str,
        q: String,
    },
    /// `id IN (SELECT key FROM table alias WHERE filters)`: a detail table's conditions,
    /// written against its alias, applied from a query that does not join it under that alias.
    Within {
        id: &'static str,
        key: &'static str,
        table: &'static str,
        alias: &'static str,
        filters: Vec<Filter>,
    },
    /// Any of the groups holds, each group being its conditions joined with AND; no group
    /// is FALSE.
    AnyOf(Vec<Vec<Filter>>),
}

/// Appends ` WHERE` and `filters` joined with AND (`TRUE` when there are none).
pub fn push_where(sql: Sql, filters: &[Filter]) -> Sql {
    let mut sql = sql.push(" WHERE TRUE");
    for filter in filters {
        sql = filter.render(sql.push(" AND "));
    }
    sql
}

fn like_pattern(q: &str) -> String {
    q.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Filter {
    fn render(&self, sql: Sql) -> Sql {
        match self {
            Self::Eq(expr, v) => sql.push(expr).push(" = ").bind(v),
            Self::Gte(expr, v) => sql.push(expr).push(" >= ").bind(v),
            Self::Lte(expr, v) => sql.push(expr).push(" <= ").bind(v),
            Self::Contains(expr, v) => sql.push(expr).push(" @> ").bind(v),
            Self::Raw(text) => sql.push(text),
            Self::Template(text, values) => {
                let mut sql = sql;
                let mut values = values.iter();
                for (i, piece) in text.split('?').enumerate() {
                    if i > 0 {
                        sql = match values.next() {
                            Some(v) => sql.bind(v),
                            None => sql.push("NULL"),
                        };
                    }
                    sql = sql.push(piece);
                }
                sql
            }
            // A UNION of the two trigram-indexed conditions: with a plain OR the planner
            // gives up the GIN index and scans the table (216 ms against 21 ms on 100k rows).
            Self::Search {
                id,
                table,
                column,
                q,
            } => sql
                .push(id)
                .push(" IN (SELECT id FROM ")
                .push(table)
                .push(" WHERE ")
                .push(column)
                .push(" LIKE '%' || lshub_fold(")
                .bind(&Value::Text(like_pattern(q)))
                .push(") || '%' UNION ALL SELECT id FROM ")
                .push(table)
                .push(" WHERE lshub_fold(")
                .bind(&Value::Text(q.clone()))
                .push(") <% ")
                .push(column)
                .push(")"),
            Self::Within {
                id,
                key,
                table,
                alias,
                filters,
            } => push_where(
                sql.push(id)
                    .push(" IN (SELECT ")
                    .push(key)
                    .push(" FROM ")
                    .push(table)
                    .push(" ")
                    .push(alias),
                filters,
            )
            .push(")"),
            Self::AnyOf(groups) if groups.is_empty() => sql.push("FALSE"),
            Self::AnyOf(groups) => {
                let mut sql = sql.push("(");
                for (i, group) in groups.iter().enumerate() {
                    sql = sql.push(if i == 0 { "(TRUE" } else { " OR (TRUE" });
                    for filter in group {
                        sql = filter.render(sql.push(" AND "));
                    }
                    sql = sql.push(")");
                }
                sql.push(")")
            }
        }
    }
}

/// How a sort key's values are typed in cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Text (folded names).
    Text,
    /// Integers.
    Int,
    /// Timestamps.
    Time,
    /// UUIDs (lists ordered by their time-ordered v7 id alone).
    Uuid,
}

/// A sort key a resource offers in its `sort` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The name clients use (`name`, `created_at`, ...).
    pub name: &'static str,
    /// The SQL expression sorted on; an index serves it.
    pub expr: &'static str,
    /// Its type.
    pub ty: KeyType,
    /// Whether it can be NULL. Nullable keys must be `Int`: they sort as
    /// `COALESCE(expr, sentinel)` with a sentinel beyond every value in the sort's direction, so
    /// NULLs come last both ways and the key stays a plain B-tree range (expression indexes in
    /// the migrations match these expressions exactly).
    pub nullable: bool,
    /// The id column of the key's own table, the tie-breaker: with it, `(key, id)` is one
    /// index's order.
    pub tie: &'static str,
}

/// What a NULL sorts as ascending (after every value) and descending (after every value too).
const NULL_LAST_ASC: i64 = i64::MAX;
const NULL_LAST_DESC: i64 = -i64::MAX;

/// A list's order: a sort key in a direction, or relevance to `q`.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// By a key; `id` breaks ties in the same direction.
    Key { key: SortKey, desc: bool },
    /// By relevance to `q` over `column` (best first), then id.
    Relevance { column: &'static str, q: String },
}

impl Order {
    /// Parses `sort` (`name`, `-employees`) against the resource's keys; relevance when `sort`
    /// is absent and `q` is given.
    pub fn parse(
        sort: Option<&str>,
        keys: &[SortKey],
        default: &str,
        search: Option<(&'static str, &str)>,
    ) -> Result<Self, StoreError> {
        let raw = match (sort, search) {
            (Some(s), _) => s,
            (None, Some((column, q))) => {
                return Ok(Self::Relevance {
                    column,
                    q: q.to_owned(),
                })
            }
            (None, None) => default,
        };
        let (name, desc) = raw.strip_prefix('-').map_or((raw, false), |n| (n, true));
        keys.iter()
            .find(|k| k.name == name)
            .map(|key| Self::Key { key: *key, desc })
            .ok_or_else(|| {
                let allowed: Vec<&str> = keys.iter().map(|k| k.name).collect();
                StoreError::Parameter {
                    field: "/sort",
                    code: "unknown_value",
                    message: format!(
                        "sort must be one of {} (prefix - for descending)",
                        allowed.join(", ")
                    ),
                }
            })
    }

    fn desc(&self) -> bool {
        match self {
            Self::Key { desc, .. } => *desc,
            Self::Relevance { .. } => true,
        }
    }

    fn null_sentinel(&self) -> Option<i64> {
        match self {
            Self::Key { key, desc } if key.nullable => {
                Some(if *desc { NULL_LAST_DESC } else { NULL_LAST_ASC })
            }
            _ => None,
        }
    }

    fn push_expr(&self, sql: Sql) -> Sql {
        match (self, self.null_sentinel()) {
            (Self::Key { key, .. }, Some(sentinel)) => sql
                .push("COALESCE(")
                .push(key.expr)
                .push(&format!(", {sentinel})")),
            (Self::Key { key, .. }, None) => sql.push(key.expr),
            (Self::Relevance { column, q }, _) => sql
                .push("((CASE WHEN ")
                .push(column)
                .push(" LIKE '%' || lshub_fold(")
                .bind(&Value::Text(like_pattern(q)))
                .push(") || '%' THEN 1 ELSE 0 END) + word_similarity(lshub_fold(")
                .bind(&Value::Text(q.clone()))
                .push("), ")
                .push(column)
                // Whole-string similarity breaks ties between names that all contain the words:
                // the one with the fewest extra words comes first.
                .push(") + similarity(lshub_fold(")
                .bind(&Value::Text(q.clone()))
                .push("), ")
                .push(column)
                .push("))::real"),
        }
    }
}

/// Rows a list returns: their id and the value of each sort key, for the next cursor.
/// Rows in creation order, their ids being UUID v7: a list with no sort of its own.
pub const BY_ID: SortKey = SortKey {
    name: "id",
    expr: "id",
    ty: KeyType::Uuid,
    nullable: false,
    tie: "id",
};

pub trait Keyed {
    /// The row's id (the tie-breaker).
    fn id(&self) -> Uuid;
    /// The row's value for the sort key named `key`, `None` when NULL. By default its id:
    /// rows listed only in id order (audit events, links) need no other.
    fn sort_value(&self, _key: &str) -> Option<Value> {
        Some(Value::Uuid(self.id()))
    }
    /// The relevance score selected as `score`, for rows that support `q`.
    fn score(&self) -> Option<f32> {
        None
    }
}

/// The first second `timestamptz` holds (4714-11-24 BC, Julian day 0, in Unix seconds); chrono
/// reaches further back.
const PG_TIMESTAMP_MIN_SECS: i64 = -210_866_803_200;

#[derive(Debug, Serialize, Deserialize)]
struct CursorData {
    /// Resource and query fingerprint the cursor belongs to.
    f: String,
    /// The last row's sort value.
    v: Option<Value>,
    /// The last row's id.
    id: Uuid,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Cursor for the next page, `None` on the last.
    pub next_cursor: Option<String>,
    /// Count of every matching row, when asked for.
    pub total: Option<i64>,
}

/// The session setting (set on every pooled connection) that holds the search time bound,
/// `LSHUB_SEARCH_TIMEOUT_MS`.
pub const SEARCH_TIMEOUT_SETTING: &str = "lshub.search_timeout";

/// A list request, resolved: what to select, how to filter and order, where to resume.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Name of the resource, binding cursors to it.
    pub resource: &'static str,
    /// `SELECT ...` (the engine appends the `score` column).
    pub select: &'static str,
    /// `FROM ...` with joins.
    pub from: &'static str,
    /// The id expression, the tie-breaker.
    pub id_expr: &'static str,
    /// Conditions, joined with AND.
    pub filters: Vec<Filter>,
    /// The order.
    pub order: Order,
    /// Page size; `None` for every row (CSV export).
    pub limit: Option<u32>,
}

impl ListQuery {
    /// Identifies resource, order and filters, so a cursor cannot be replayed against another
    /// query.
    fn fingerprint(&self) -> String {
        let canonical = format!("{}|{:?}|{:?}", self.resource, self.order, self.filters);
        URL_SAFE_NO_PAD.encode(&Sha256::digest(canonical.as_bytes())[..12])
    }

    fn decode_cursor(&self, cursor: &str) -> Result<CursorData, StoreError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| StoreError::InvalidCursor)?;
        let data: CursorData =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
        if data.f != self.fingerprint() {
            return Err(StoreError::InvalidCursor);
        }
        let type_ok = match (&self.order, &data.v) {
            (Order::Relevance { .. }, Some(Value::Float(_))) => true,
            // Cursors are not signed, so a client can forge one with its fingerprint: a value
            // the database cannot take (text with NUL, an instant before `timestamptz`
            // begins) is refused here, or PostgreSQL refuses the statement (a 500).
            (Order::Key { key, .. }, Some(v)) => match (key.ty, v) {
                (KeyType::Text, Value::Text(text)) => !text.contains('\0'),
                (KeyType::Time, Value::Time(time)) => time.timestamp() >= PG_TIMESTAMP_MIN_SECS,
                (KeyType::Int, Value::Int(_)) | (KeyType::Uuid, Value::Uuid(_)) => true,
                _ => false,
            },
            _ => false,
        };
        if type_ok {
            Ok(data)
        } else {
            Err(StoreError::InvalidCursor)
        }
    }

    fn encode_cursor<T: Keyed>(&self, row: &T) -> String {
        let v = match &self.order {
            Order::Key { key, .. } => row
                .sort_value(key.name)
                .or_else(|| self.order.null_sentinel().map(Value::Int)),
            Order::Relevance { .. } => row.score().map(Value::Float),
        };
        let data = CursorData {
            f: self.fingerprint(),
            v,
            id: row.id(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap_or_default())
    }

    /// Where a feed resumes after a page: after its last row, else (an empty page) where
    /// `cursor` did, else from before the first row. Never `None`, so a poller always has a
    /// cursor to come back with. `cursor` must have been checked ([`Self::check_cursor`]).
    pub fn resume_after<T: Keyed>(&self, last: Option<&T>, cursor: Option<&str>) -> String {
        if let Some(row) = last {
            return self.encode_cursor(row);
        }
        if let Some(cursor) = cursor {
            return cursor.to_owned();
        }
        let desc = self.order.desc();
        let v = match &self.order {
            Order::Key { key, .. } => match key.ty {
                KeyType::Int if desc => Value::Int(i64::MAX),
                KeyType::Int => Value::Int(i64::MIN),
                KeyType::Uuid if desc => Value::Uuid(Uuid::max()),
                KeyType::Uuid => Value::Uuid(Uuid::nil()),
                KeyType::Time if desc => Value::Time(DateTime::<Utc>::MAX_UTC),
                KeyType::Time => Value::Time(DateTime::<Utc>::MIN_UTC),
                // No text sorts after every other; descending text feeds do not exist.
                KeyType::Text => Value::Text(String::new()),
            },
            Order::Relevance { .. } => Value::Float(f32::MAX),
        };
        let id = if desc { Uuid::max() } else { Uuid::nil() };
        let data = CursorData {
            f: self.fingerprint(),
            v: Some(v),
            id,
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap_or_default())
    }

    fn push_where(&self, sql: Sql) -> Sql {
        push_where(sql, &self.filters)
    }

    /// The tie-breaking id for this order.
    fn tie(&self) -> &'static str {
        match &self.order {
            Order::Key { key, .. } => key.tie,
            Order::Relevance { .. } => self.id_expr,
        }
    }

    /// `(key, id)` strictly after the cursor's, in the list's direction.
    ///
    /// A row comparison, so the B-tree on `(key, id)` starts the scan at the cursor (an
    /// expanded `key > v OR (key = v AND id > i)` makes PostgreSQL read from the start).
    fn push_keyset(&self, sql: Sql, cursor: &CursorData) -> Sql {
        let cmp = if self.order.desc() { " < " } else { " > " };
        let Some(v) = &cursor.v else {
            return sql.push(" AND FALSE");
        };
        self.order
            .push_expr(sql.push(" AND ROW("))
            .push(", ")
            .push(self.tie())
            .push(")")
            .push(cmp)
            .push("ROW(")
            .bind(v)
            .push(", ")
            .bind(&Value::Uuid(cursor.id))
            .push(")")
    }

    fn push_order(&self, sql: Sql) -> Sql {
        // Every key is non-null (see `SortKey::nullable`), so plain ASC/DESC: they match an
        // index scanned either way, where an explicit NULLS LAST on DESC would not.
        let dir = if self.order.desc() { " DESC" } else { " ASC" };
        self.order
            .push_expr(sql.push(" ORDER BY "))
            .push(dir)
            .push(", ")
            .push(self.tie())
            .push(dir)
    }

    /// The statement for one page (or for every row when `limit` is `None`).
    fn page_sql(&self, cursor: Option<&CursorData>) -> Sql {
        let mut sql = Sql::new(self.select).push(", ");
        sql = match self.order {
            Order::Relevance { .. } => self.order.push_expr(sql),
            Order::Key { .. } => sql.push("NULL::real"),
        };
        sql = self.push_where(sql.push(" AS score ").push(self.from));
        if let Some(cursor) = cursor {
            sql = self.push_keyset(sql, cursor);
        }
        sql = self.push_order(sql);
        if let Some(limit) = self.limit {
            sql = sql.push(&format!(" LIMIT {}", u64::from(limit) + 1));
        }
        sql
    }

    /// 400 `invalid_cursor` unless `cursor` belongs to this query (checked before a stream
    /// starts, since a streamed answer cannot change its status afterwards).
    pub fn check_cursor(&self, cursor: Option<&str>) -> Result<(), StoreError> {
        cursor
            .map(|c| self.decode_cursor(c))
            .transpose()
            .map(|_| ())
    }

    /// [`Self::load`] for a page a client waits for: a search runs under the search time
    /// bound (the session's [`SEARCH_TIMEOUT_SETTING`], which every pooled connection has; a
    /// connection without it keeps its statement timeout), and one that exceeds it is refused
    /// as too broad rather than left to scan. An export's batches use `load`, unbounded: a
    /// refusal there would cut a stream already begun.
    pub fn load_page<T>(
        &self,
        conn: &mut PgConnection,
        cursor: Option<&str>,
        include_total: bool,
    ) -> Result<Page<T>, StoreError>
    where
        T: QueryableByName<Pg> + Keyed + 'static,
    {
        if !self
            .filters
            .iter()
            .any(|f| matches!(f, Filter::Search { .. }))
        {
            return self.load(conn, cursor, include_total);
        }
        conn.transaction(|conn| {
            diesel::sql_query(format!(
                "SELECT set_config('statement_timeout', \
                 coalesce(current_setting('{SEARCH_TIMEOUT_SETTING}', true), \
                          current_setting('statement_timeout')), true)"
            ))
            .execute(conn)?;
            self.load(conn, cursor, include_total)
        })
        .map_err(|e| match e {
            StoreError::Query(diesel::result::Error::DatabaseError(_, info))
                if info.sqlstate() == Some(crate::error::sqlstate::QUERY_CANCELED) =>
            {
                StoreError::Parameter {
                    field: "/q",
                    code: crate::domain::codes::SEARCH_TOO_BROAD,
                    message: "q matches too many records to rank in time: add characters, \
                              another word or a filter"
                        .into(),
                }
            }
            other => other,
        })
    }

    /// Loads the page after `cursor`.
    pub fn load<T>(
        &self,
        conn: &mut PgConnection,
        cursor: Option<&str>,
        include_total: bool,
    ) -> Result<Page<T>, StoreError>
    where
        T: QueryableByName<Pg> + Keyed + 'static,
    {
        let cursor = cursor.map(|c| self.decode_cursor(c)).transpose()?;
        let mut data: Vec<T> = self.page_sql(cursor.as_ref()).into_query().load(conn)?;
        let next_cursor = match self.limit {
            Some(limit) if data.len() > limit as usize => {
                data.truncate(limit as usize);
                data.last().map(|row| self.encode_cursor(row))
            }
            _ => None,
        };
        let total = if include_total {
            Some(self.count(conn)?)
        } else {
            None
        };
        Ok(Page {
            data,
            next_cursor,
            total,
        })
    }

    /// Counts every row matching the filters (only on `include_total=true`: it is O(rows)).
    pub fn count(&self, conn: &mut PgConnection) -> Result<i64, StoreError> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = sql_types::BigInt)]
            total: i64,
        }
        let sql = self.push_where(Sql::new("SELECT count(*) AS total ").push(self.from));
        let row: Count = sql.into_query().get_result(conn)?;
        Ok(row.total)
    }
}

#[cfg(test)]
mod proptests {
    //! Cursors are client input: whatever comes back in `cursor` must decode to this query's
    //! position or be refused, and what the engine encodes must decode to itself.

    use proptest::prelude::*;

    use super::*;

    /// A row of any list: its id and one sort value.
    #[derive(Debug, Clone)]
    struct Row {
        id: Uuid,
        value: Option<Value>,
        score: Option<f32>,
    }

    impl Keyed for Row {
        fn id(&self) -> Uuid {
            self.id
        }
        fn sort_value(&self, _key: &str) -> Option<Value> {
            self.value.clone()
        }
        fn score(&self) -> Option<f32> {
            self.score
        }
    }

    fn key(ty: KeyType, nullable: bool) -> SortKey {
        SortKey {
            name: "k",
            expr: "t.k",
            ty,
            nullable,
            tie: "t.id",
        }
    }

    fn query(resource: &'static str, order: Order, filters: Vec<Filter>) -> ListQuery {
        ListQuery {
            resource,
            select: "SELECT t.id",
            from: "FROM t",
            id_expr: "t.id",
            filters,
            order,
            limit: Some(50),
        }
    }

    /// Every kind of order the engine serves, with or without a filter.
    fn any_query() -> impl Strategy<Value = ListQuery> {
        let order = prop_oneof![
            (
                prop_oneof![
                    Just(KeyType::Text),
                    Just(KeyType::Int),
                    Just(KeyType::Time),
                    Just(KeyType::Uuid)
                ],
                any::<bool>()
            )
                .prop_map(|(ty, desc)| Order::Key {
                    key: key(ty, ty == KeyType::Int),
                    desc,
                }),
            "[a-z ]{0,12}".prop_map(|q| Order::Relevance {
                column: "t.search",
                q
            }),
        ];
        let filters = proptest::collection::vec(
            any::<i64>().prop_map(|n| Filter::Eq("t.n", Value::Int(n))),
            0..3,
        );
        (
            prop_oneof![Just("companies"), Just("irccs"), Just("changes")],
            order,
            filters,
        )
            .prop_map(|(resource, order, filters)| query(resource, order, filters))
    }

    /// Text as PostgreSQL stores it: anything but U+0000.
    fn stored_text() -> impl Strategy<Value = String> {
        any::<String>().prop_map(|s| s.replace('\0', ""))
    }

    /// An instant `timestamptz` holds.
    fn stored_time() -> impl Strategy<Value = DateTime<Utc>> {
        (
            PG_TIMESTAMP_MIN_SECS..=DateTime::<Utc>::MAX_UTC.timestamp(),
            0..1_000_000u32,
        )
            .prop_map(|(secs, micros)| {
                DateTime::from_timestamp(secs, micros * 1000).unwrap_or(DateTime::<Utc>::MAX_UTC)
            })
    }

    /// A row as the list `q` would load it: a value of its key's type (NULL when the key
    /// allows it), or a finite relevance score.
    fn row_for(q: &ListQuery) -> BoxedStrategy<Row> {
        let id = any::<u128>().prop_map(Uuid::from_u128);
        match &q.order {
            Order::Relevance { .. } => (id, any::<f32>().prop_filter("finite", |f| f.is_finite()))
                .prop_map(|(id, score)| Row {
                    id,
                    value: None,
                    score: Some(score),
                })
                .boxed(),
            Order::Key { key, .. } => {
                let value = match key.ty {
                    KeyType::Text => stored_text().prop_map(Value::Text).boxed(),
                    KeyType::Int => any::<i64>().prop_map(Value::Int).boxed(),
                    KeyType::Time => stored_time().prop_map(Value::Time).boxed(),
                    KeyType::Uuid => any::<u128>()
                        .prop_map(|n| Value::Uuid(Uuid::from_u128(n)))
                        .boxed(),
                };
                let value = if key.nullable {
                    proptest::option::of(value).boxed()
                } else {
                    value.prop_map(Some).boxed()
                };
                (id, value)
                    .prop_map(|(id, value)| Row {
                        id,
                        value,
                        score: None,
                    })
                    .boxed()
            }
        }
    }

    fn query_and_row() -> impl Strategy<Value = (ListQuery, Row)> {
        any_query().prop_flat_map(|q| {
            let row = row_for(&q);
            (Just(q), row)
        })
    }

    /// Whether `decoded` is the position after `row` in `q`.
    fn decodes_to(q: &ListQuery, row: &Row, decoded: &CursorData) -> bool {
        let expected = match &q.order {
            Order::Relevance { .. } => row.score.map(Value::Float),
            Order::Key { .. } => row
                .value
                .clone()
                .or_else(|| q.order.null_sentinel().map(Value::Int)),
        };
        decoded.id == row.id && decoded.v == expected && decoded.f == q.fingerprint()
    }

    /// Two queries no cursor may pass between.
    fn distinct_queries() -> impl Strategy<Value = (ListQuery, ListQuery)> {
        (any_query(), any_query()).prop_filter("distinct", |(a, b)| {
            a.resource != b.resource || a.order != b.order || a.filters != b.filters
        })
    }

    proptest! {
        #![proptest_config(crate::proptest_config(2000))]

        #[test]
        fn arbitrary_text_is_a_cursor_or_refused(q in any_query(), text in any::<String>()) {
            match q.decode_cursor(&text) {
                Ok(data) => prop_assert_eq!(data.f, q.fingerprint()),
                Err(e) => prop_assert!(refused_with_400(e)),
            }
        }

        #[test]
        fn arbitrary_bytes_and_json_are_refused(
            q in any_query(),
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            json in proptest::arbitrary::any::<(Option<String>, Option<i64>, Option<String>)>(),
        ) {
            // Well-formed base64 of anything but a cursor, and JSON shaped almost like one.
            let (f, v, id) = json;
            let almost = serde_json::json!({"f": f, "v": {"Int": v}, "id": id});
            for payload in [bytes, serde_json::to_vec(&almost).unwrap_or_default()] {
                let refused = q.decode_cursor(&URL_SAFE_NO_PAD.encode(&payload));
                prop_assert!(matches!(refused, Err(StoreError::InvalidCursor)));
            }
        }

        #[test]
        fn every_encoded_cursor_decodes_to_its_row((q, row) in query_and_row()) {
            let cursor = q.encode_cursor(&row);
            let decoded = q.decode_cursor(&cursor);
            prop_assert!(decoded.is_ok(), "{cursor} refused: {decoded:?}");
            let decoded = decoded.unwrap_or_else(|_| unreachable!());
            prop_assert!(decodes_to(&q, &row, &decoded), "{cursor} gave {decoded:?}");
        }

        #[test]
        fn a_cursor_belongs_to_its_query_alone(
            (a, b) in distinct_queries(),
            id in any::<u128>(),
        ) {
            let row = Row {
                id: Uuid::from_u128(id),
                value: Some(Value::Int(7)),
                score: Some(0.5),
            };
            prop_assert!(matches!(
                b.decode_cursor(&a.encode_cursor(&row)),
                Err(StoreError::InvalidCursor)
            ));
            prop_assert!(matches!(
                b.decode_cursor(&a.resume_after::<Row>(None, None)),
                Err(StoreError::InvalidCursor)
            ));
        }

        /// Cursors are not signed (they carry nothing secret: a client may page from any
        /// position of its own query), so a changed byte may still name a position; but never
        /// one of another query, and never a value the database cannot take.
        #[test]
        fn a_tampered_cursor_is_refused_or_stays_in_its_query(
            (q, row) in query_and_row(),
            other in any_query(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let cursor = q.encode_cursor(&row).into_bytes();
            let at = at.index(cursor.len());
            prop_assume!(cursor[at] != byte);
            let mut tampered = cursor;
            tampered[at] = byte;
            let tampered = String::from_utf8_lossy(&tampered).into_owned();
            match q.decode_cursor(&tampered) {
                Ok(data) => {
                    prop_assert_eq!(&data.f, &q.fingerprint());
                    prop_assert!(data.v.as_ref().is_some_and(bindable), "{data:?}");
                }
                Err(e) => prop_assert!(refused_with_400(e)),
            }
            if other.fingerprint() != q.fingerprint() {
                prop_assert!(other.decode_cursor(&tampered).is_err());
            }
        }

        /// A forged cursor (this query's fingerprint, any value of the key's type) decodes only
        /// to values the database can compare with: no NUL in text, no instant before
        /// `timestamptz` begins (either would be a 500 from PostgreSQL).
        #[test]
        fn a_forged_cursor_holds_only_bindable_values(
            q in any_query(),
            text in any::<String>(),
            secs in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
        ) {
            let time = DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
            for v in [Value::Text(text.clone()), Value::Time(time)] {
                let data = CursorData { f: q.fingerprint(), v: Some(v), id: Uuid::nil() };
                let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap_or_default());
                if let Ok(decoded) = q.decode_cursor(&forged) {
                    prop_assert!(decoded.v.as_ref().is_some_and(bindable), "{decoded:?}");
                }
            }
        }
    }

    /// Whether `e` is the cursor's refusal, which the API answers with 400 `invalid_cursor`.
    fn refused_with_400(e: StoreError) -> bool {
        use actix_web::ResponseError;
        let invalid = matches!(e, StoreError::InvalidCursor);
        invalid && crate::error::ApiError::from(e).status_code() == 400
    }

    /// Whether PostgreSQL takes `v` as a bind parameter of its type.
    fn bindable(v: &Value) -> bool {
        match v {
            Value::Text(s) => !s.contains('\0'),
            Value::Time(t) => t.timestamp() >= PG_TIMESTAMP_MIN_SECS,
            _ => true,
        }
    }

    /// Found by `a_forged_cursor_holds_only_bindable_values` (and over HTTP, where both
    /// answered 500): a forged cursor with text holding NUL, or an instant one second before
    /// `timestamptz` begins.
    #[test]
    fn forged_values_the_database_cannot_take_are_refused() {
        let forge = |ty: KeyType, v: Value| {
            let q = query(
                "companies",
                Order::Key {
                    key: key(ty, false),
                    desc: false,
                },
                vec![],
            );
            let data = CursorData {
                f: q.fingerprint(),
                v: Some(v),
                id: Uuid::nil(),
            };
            let cursor = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap_or_default());
            q.decode_cursor(&cursor).map(|d| d.v)
        };
        let ancient = DateTime::from_timestamp(PG_TIMESTAMP_MIN_SECS - 1, 0);
        assert!(ancient.is_some());
        let ancient = ancient.unwrap_or_default();
        assert!(matches!(
            forge(KeyType::Text, Value::Text("eug\0eug".into())),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            forge(KeyType::Time, Value::Time(ancient)),
            Err(StoreError::InvalidCursor)
        ));
        let first = ancient + chrono::Duration::seconds(1);
        assert!(forge(KeyType::Time, Value::Time(first)).is_ok());
        assert!(forge(KeyType::Text, Value::Text("eug".into())).is_ok());
    }

    #[test]
    fn timestamptz_begins_at_julian_day_zero() {
        let start = chrono::NaiveDate::from_ymd_opt(-4713, 11, 24)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp());
        assert_eq!(start, Some(PG_TIMESTAMP_MIN_SECS));
    }
}
