//! The audit trail: one writer, called inside each write's transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::list::{Filter, Keyed, ListQuery, Order, Value, BY_ID};
use crate::db::schema::audit_events;
use crate::domain::AuditAction;

/// Who made a change, and under which request (the HTTP layer builds it from the caller).
#[derive(Debug, Clone)]
pub struct Actor {
    /// User or client id; `None` for the system (seeding, CLI).
    pub id: Option<Uuid>,
    /// `user`, `client` or `system`.
    pub kind: &'static str,
    /// The request's id.
    pub request_id: Option<String>,
}

impl Actor {
    /// The service itself (seeding, command line).
    pub fn system() -> Self {
        Self {
            id: None,
            kind: "system",
            request_id: None,
        }
    }
}

/// An audit event, as stored and as served (history and the audit log).
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize, ToSchema)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditEvent {
    /// Event id (UUID v7: orders by time).
    pub id: Uuid,
    /// When the change committed.
    pub at: DateTime<Utc>,
    /// The user or client who made it; null for the system.
    pub actor_id: Option<Uuid>,
    /// `user`, `client` or `system`.
    pub actor_kind: String,
    /// What the change did.
    #[schema(value_type = AuditAction)]
    pub action: String,
    /// The kind of record, e.g. `company`, `goal_partner`.
    pub entity: String,
    /// The record.
    pub entity_id: Uuid,
    /// The request that made the change (its `X-Request-Id`); null for the system's.
    #[schema(value_type = Option<crate::domain::RequestId>)]
    pub request_id: Option<String>,
    /// The changed fields: `{"before": {...}, "after": {...}}` (`before` is null on create,
    /// `after` on delete).
    #[schema(value_type = Object)]
    pub changes: Json,
    /// The records the change also concerns: a link's ends (its goal and activity, or its
    /// goal or activity and its organisation); empty for a record's own changes.
    pub related: Vec<Uuid>,
}

impl Keyed for AuditEvent {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// What the audit log filters on; every filter is served by an index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Changes by this user or client.
    pub actor_id: Option<Uuid>,
    /// Changes to records of this entity (`company`, `goal_partner`, ...).
    pub entity: Option<String>,
    /// Changes to this record.
    pub entity_id: Option<Uuid>,
    /// Changes to this record or to a link that names it (a record's history).
    pub concerning: Option<Uuid>,
    /// Changes of this kind.
    pub action: Option<AuditAction>,
    /// Changes at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Changes before this time.
    pub until: Option<DateTime<Utc>>,
    /// Changes made by this request.
    pub request_id: Option<String>,
}

/// The audit trail, newest first (the log's, or with `entity_id` a record's history).
pub fn log_query(filter: &AuditFilter, limit: Option<u32>) -> ListQuery {
    let mut filters = Vec::new();
    if let Some(actor) = filter.actor_id {
        filters.push(Filter::Eq("actor_id", Value::Uuid(actor)));
    }
    if let Some(entity) = &filter.entity {
        filters.push(Filter::Eq("entity", Value::Text(entity.clone())));
    }
    if let Some(id) = filter.entity_id {
        filters.push(Filter::Eq("entity_id", Value::Uuid(id)));
    }
    if let Some(id) = filter.concerning {
        filters.push(Filter::Template(
            "(entity_id = ? OR related @> ARRAY[?]::uuid[])",
            vec![Value::Uuid(id), Value::Uuid(id)],
        ));
    }
    if let Some(action) = filter.action {
        filters.push(Filter::Eq(
            "action",
            Value::Text(action.as_str().to_owned()),
        ));
    }
    if let Some(since) = filter.since {
        filters.push(Filter::Gte("at", Value::Time(since)));
    }
    if let Some(until) = filter.until {
        filters.push(Filter::Template("at < ?", vec![Value::Time(until)]));
    }
    if let Some(request) = &filter.request_id {
        filters.push(Filter::Eq("request_id", Value::Text(request.clone())));
    }
    ListQuery {
        resource: "audit_events",
        select: "SELECT *",
        from: "FROM audit_events",
        id_expr: "id",
        filters,
        order: Order::Key {
            key: BY_ID,
            desc: true,
        },
        limit,
    }
}

/// The history of record `id`, newest first: its own changes and those of the links that name
/// it.
pub fn history_query(id: Uuid, limit: Option<u32>) -> ListQuery {
    log_query(
        &AuditFilter {
            concerning: Some(id),
            ..AuditFilter::default()
        },
        limit,
    )
}

/// Fields that change on every write and say nothing about what changed.
const BOOKKEEPING: &[&str] = &["version", "updated_at"];

/// The top-level fields that differ between two JSON documents, as
/// `{"before": {field: old}, "after": {field: new}}`; `None` stands for "did not exist".
pub fn diff(before: Option<&Json>, after: Option<&Json>) -> Json {
    let empty = Map::new();
    let b = before.and_then(Json::as_object).unwrap_or(&empty);
    let a = after.and_then(Json::as_object).unwrap_or(&empty);
    let mut old = Map::new();
    let mut new = Map::new();
    for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
        if BOOKKEEPING.contains(&key.as_str()) {
            continue;
        }
        let (x, y) = (
            b.get(key).unwrap_or(&Json::Null),
            a.get(key).unwrap_or(&Json::Null),
        );
        if x != y {
            old.insert(key.clone(), x.clone());
            new.insert(key.clone(), y.clone());
        }
    }
    let side = |present: bool, map: Map<String, Json>| {
        if present {
            Json::Object(map)
        } else {
            Json::Null
        }
    };
    serde_json::json!({ "before": side(before.is_some(), old), "after": side(after.is_some(), new) })
}

/// One event for [`record_all`]: which record, what else it concerns, what changed.
#[derive(Debug, Clone)]
pub struct Event {
    /// The record.
    pub entity_id: Uuid,
    /// The records the change also concerns (a link's ends), whose histories show it too.
    pub related: Vec<Uuid>,
    /// The record's version after the change (for a delete, the version it was deleted at);
    /// `None` where a change moves no version (an account's password or token). The change
    /// feed serves it, since [`diff`] leaves `version` out of `changes`.
    pub version: Option<i64>,
    /// `{"before": ..., "after": ...}`, usually from [`diff`].
    pub changes: Json,
}

/// Writes one audit event. Call it inside the write's transaction, so neither commits alone.
pub fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: AuditAction,
    entity: &str,
    event: Event,
) -> QueryResult<()> {
    record_all(conn, actor, action, entity, vec![event])
}

/// Writes the audit events of one action on many records of one entity in one statement (a
/// bulk load's), in the order given. Their `seq` and `txid` (the change feed's) come from the
/// columns' defaults, inside this same transaction.
pub fn record_all(
    conn: &mut PgConnection,
    actor: &Actor,
    action: AuditAction,
    entity: &str,
    events: Vec<Event>,
) -> QueryResult<()> {
    let at = crate::db::now();
    let rows: Vec<_> = events
        .into_iter()
        .map(|event| {
            let Event {
                entity_id,
                related,
                version,
                changes,
            } = event;
            (
                audit_events::id.eq(Uuid::now_v7()),
                audit_events::at.eq(at),
                audit_events::actor_id.eq(actor.id),
                audit_events::actor_kind.eq(actor.kind),
                audit_events::action.eq(action.as_str()),
                audit_events::entity.eq(entity),
                audit_events::entity_id.eq(entity_id),
                audit_events::request_id.eq(actor.request_id.as_deref()),
                audit_events::changes.eq(changes),
                audit_events::related.eq(related),
                audit_events::version.eq(version),
            )
        })
        .collect();
    diesel::insert_into(audit_events::table)
        .values(&rows)
        .execute(conn)
        .map(|_| ())
}

/// The number of committed changes so far: the sum of the shards a trigger on `audit_events`
/// bumps.
pub fn change_counter(conn: &mut PgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    diesel::sql_query("SELECT coalesce(sum(value), 0)::bigint AS total FROM change_counter")
        .get_result::<Total>(conn)
        .map(|t| t.total)
}

/// The change counter as a replica follows it: read when the listener connects and again when
/// `NOTIFY lshub_changes` says a change committed (the counting trigger sends it), so that a
/// poll whose `If-None-Match` still matches is answered from memory. `None` while the listener
/// is down: polls then read the table, as before.
#[derive(Debug, Default)]
pub struct ChangeCounter {
    value: std::sync::RwLock<Option<i64>>,
}

impl ChangeCounter {
    /// The channel the counting trigger announces on.
    pub const CHANNEL: &'static str = "lshub_changes";

    /// The counter as last read, unless the listener is down.
    pub fn current(&self) -> Option<i64> {
        *self
            .value
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a value read after a change: the counter only grows, so an older read (the
    /// listener's, racing with a write) never takes it back. Nothing while the listener is
    /// down: only its reload makes the counter known again.
    pub fn observe(&self, value: i64) {
        let mut guard = self
            .value
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(current) = guard.as_mut() {
            *current = (*current).max(value);
        }
    }

    fn set(&self, value: Option<i64>) {
        *self
            .value
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }
}

impl crate::db::listener::Follower for ChangeCounter {
    fn channel(&self) -> &'static str {
        Self::CHANNEL
    }

    fn reload(&self, conn: &mut PgConnection) -> QueryResult<()> {
        self.set(Some(change_counter(conn)?));
        Ok(())
    }

    // However many changes a poll brought, one read of the counter catches up with them.
    fn notified(&self, conn: &mut PgConnection, _payloads: &[String]) -> QueryResult<()> {
        self.observe(change_counter(conn)?);
        Ok(())
    }

    fn forget(&self) {
        self.set(None);
    }
}
