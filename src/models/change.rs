//! The change feed: the audit rows of registry records, in transaction order, behind a fence.
//!
//! Why a fence. An event's `seq` is taken when its row is inserted, not when its transaction
//! commits: if T1 takes seq 10 and commits after T2 has committed seq 11, a reader that saw 11
//! and resumes at `seq > 11` never reads 10. So the feed is ordered by the writing
//! transaction's id (`txid`, `pg_current_xact_id()` stored by the column's default) and then
//! the event id (UUID v7, made in the order the transaction wrote), and a page holds only
//! events whose `txid` is below `pg_snapshot_xmin(pg_current_snapshot())`, the oldest
//! transaction still in flight. Every transaction below it has ended and is visible to the
//! page's own snapshot (the fence is taken in the same statement), so once a cursor has passed
//! `(txid, id)` no event with a smaller key can ever commit: nothing is skipped, and since the
//! cursor only moves forward over a total order, nothing is repeated. A transaction held open
//! holds the fence (and the feed waits for it), bounded by the statement and
//! idle-in-transaction timeouts.
//!
//! Order. Transactions come in the order they took their ids (their first write), which is
//! commit order for any two that did not overlap. Two writes of one record come in commit
//! order too: every write locks its rows before it writes anything, and a transaction that
//! waits for a row lock is given its id only once the lock is granted, after the holder's
//! commit.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types;
use uuid::Uuid;

use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value};
use crate::domain::{ChangeEntity, OrganisationKind};

/// The entities whose changes the feed serves: the registry, its goals, activities and links.
/// Users' and API clients' events stay in the audit log, for admins.
pub const FEED_ENTITIES: &[&str] = &[
    "company",
    "irccs",
    "university",
    "partner",
    "goal",
    "activity",
    "goal_activity_link",
    "goal_partner",
    "activity_participant",
];

/// The fence: only transactions older than every one still in flight. `pg_current_snapshot()`
/// is the statement's own snapshot, so what is below the fence is exactly what it sees.
pub const FENCE: &str = "txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

/// The feed's order: the writing transaction, then the event (an index on `(txid, id)`).
pub const BY_TRANSACTION: SortKey = SortKey {
    name: "txid",
    expr: "txid",
    ty: KeyType::Int,
    nullable: false,
    tie: "id",
};

/// One event of the feed, as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct Change {
    /// The audit event's id (the tie-breaker within a transaction).
    #[diesel(sql_type = sql_types::Uuid)]
    pub id: Uuid,
    /// The writing transaction.
    #[diesel(sql_type = sql_types::BigInt)]
    pub txid: i64,
    /// The event's number.
    #[diesel(sql_type = sql_types::BigInt)]
    pub seq: i64,
    /// The entity, e.g. `company`, `goal_partner`.
    #[diesel(sql_type = sql_types::Text)]
    pub entity: String,
    /// The record.
    #[diesel(sql_type = sql_types::Uuid)]
    pub entity_id: Uuid,
    /// `create`, `update`, `archive`, `restore` or `delete`.
    #[diesel(sql_type = sql_types::Text)]
    pub action: String,
    /// The record's version after the change.
    #[diesel(sql_type = sql_types::Nullable<sql_types::BigInt>)]
    pub version: Option<i64>,
    /// When it was written.
    #[diesel(sql_type = sql_types::Timestamptz)]
    pub at: DateTime<Utc>,
}

impl Keyed for Change {
    fn id(&self) -> Uuid {
        self.id
    }

    fn sort_value(&self, _key: &str) -> Option<Value> {
        Some(Value::Int(self.txid))
    }
}

/// What the feed filters on; both must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only this entity (or, for `organisation`, the four kinds).
    pub entity: Option<ChangeEntity>,
    /// Only organisations of this kind.
    pub kind: Option<OrganisationKind>,
}

/// The feed after a cursor, `limit` events a page.
pub fn feed_query(filter: ChangeFilter, limit: u32) -> ListQuery {
    let names = |names: Vec<&'static str>| {
        Filter::Template(
            "entity = ANY(?)",
            vec![Value::TextArray(
                names.into_iter().map(str::to_owned).collect(),
            )],
        )
    };
    let mut filters = vec![
        Filter::Raw(FENCE),
        names(match filter.entity {
            Some(entity) => entity.entities(),
            None => FEED_ENTITIES.to_vec(),
        }),
    ];
    if let Some(kind) = filter.kind {
        filters.push(Filter::Eq("entity", Value::Text(kind.as_str().to_owned())));
    }
    ListQuery {
        resource: "changes",
        select: "SELECT id, txid, seq, entity, entity_id, action, version, at",
        from: "FROM audit_events",
        id_expr: "id",
        filters,
        order: Order::Key {
            key: BY_TRANSACTION,
            desc: false,
        },
        limit: Some(limit),
    }
}

/// What a feed page depends on, for its ETag: the change counter (it moves when events
/// commit) and how many committed events the fence still holds back (it moves when the
/// fence passes them, which a transaction that writes no event can cause). Equal states mean
/// equal pages: with no new event the held set can only shrink, so an equal count is the same
/// set. One statement, one snapshot.
pub fn feed_state(conn: &mut PgConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = sql_types::BigInt)]
        total: i64,
        #[diesel(sql_type = sql_types::BigInt)]
        held: i64,
    }
    let state: State = diesel::sql_query(
        "SELECT (SELECT coalesce(sum(value), 0)::bigint FROM change_counter) AS total, \
                (SELECT count(*) FROM audit_events \
                  WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint) AS held",
    )
    .get_result(conn)?;
    Ok(format!("{}.{}", state.total, state.held))
}

/// What the fence holds back at one moment: how far the feed's readable head is behind the
/// events that have committed.
#[derive(Debug, Clone, Copy, PartialEq, QueryableByName)]
pub struct FeedLag {
    /// Committed feed events a page cannot serve yet.
    #[diesel(sql_type = sql_types::BigInt)]
    pub events: i64,
    /// Seconds since the oldest of them was written (0 when there is none).
    #[diesel(sql_type = sql_types::Double)]
    pub seconds: f64,
}

/// The feed's lag, in one statement bounded by `timeout` (a scrape must not wait on a busy
/// database). Only the held events are read, by the `(txid, id)` index from the fence up.
pub fn feed_lag(conn: &mut PgConnection, timeout: std::time::Duration) -> QueryResult<FeedLag> {
    use diesel::connection::SimpleConnection;
    conn.transaction(|conn| {
        conn.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            timeout.as_millis().max(1)
        ))?;
        diesel::sql_query(
            "SELECT count(*) AS events, \
                    coalesce(extract(epoch FROM clock_timestamp() - min(at)), 0)::float8 AS seconds \
               FROM audit_events \
              WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                AND entity = ANY($1)",
        )
        .bind::<sql_types::Array<sql_types::Text>, _>(FEED_ENTITIES)
        .get_result(conn)
    })
}
