//! Webhook subscriptions, their cursors in the change feed, and their delivery attempts.
//!
//! Migration 000017 explains the outbox: a subscription's cursor is a position in the feed's
//! order, claimed by a lease (never a row lock held across a delivery, which would hold the
//! feed's fence), and advanced in the transaction that records the attempt.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use uuid::Uuid;

use super::change::{FEED_ENTITIES, FENCE};
use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value, BY_ID};
use crate::db::schema::{webhook_cursors, webhook_deliveries, webhooks};
use crate::db::StoreError;
use crate::domain::webhook::WebhookDraft;

/// A `webhooks` row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::pg::Pg))]
pub struct WebhookRow {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl WebhookRow {
    /// The secrets a delivery at `now` is signed with: the current one, and the previous one
    /// within its grace period (receivers that have not switched yet still verify).
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_valid_until) {
            if now < until {
                secrets.push(previous);
            }
        }
        secrets
    }
}

impl Keyed for WebhookRow {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// The columns an admin writes.
#[derive(Debug, Clone, AsChangeset, Insertable)]
#[diesel(table_name = webhooks, treat_none_as_null = true)]
struct WebhookColumns<'a> {
    url: &'a str,
    events: &'a [String],
    kinds: Vec<&'static str>,
    description: Option<&'a str>,
    disabled: bool,
}

impl<'a> From<&'a WebhookDraft> for WebhookColumns<'a> {
    fn from(d: &'a WebhookDraft) -> Self {
        Self {
            url: &d.url,
            events: &d.events,
            kinds: d.kinds.iter().map(|k| k.as_str()).collect(),
            description: d.description.as_deref(),
            disabled: d.disabled,
        }
    }
}

/// Inserts a subscription with its signing secret, and its cursor at the creating
/// transaction: it is sent the changes of transactions that begin after it.
pub fn insert(conn: &mut PgConnection, draft: &WebhookDraft, secret: &str) -> QueryResult<Uuid> {
    let id = Uuid::now_v7();
    let now = crate::db::now();
    diesel::insert_into(webhooks::table)
        .values((
            webhooks::id.eq(id),
            WebhookColumns::from(draft),
            webhooks::secret.eq(secret),
            webhooks::created_at.eq(now),
            webhooks::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO webhook_cursors (webhook_id, after_txid, after_id) \
         VALUES ($1, pg_current_xact_id()::text::bigint, 'ffffffff-ffff-ffff-ffff-ffffffffffff')",
    )
    .bind::<SqlUuid, _>(id)
    .execute(conn)?;
    Ok(id)
}

/// Rewrites what an admin writes of subscription `id` at `expected` version (else 412). An
/// enabled subscription has no `disabled_reason`, and one enabled again tries its next event
/// at once, with its count of failures cleared.
pub fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected: i64,
    draft: &WebhookDraft,
) -> Result<(), StoreError> {
    let was_disabled: Option<bool> = webhooks::table
        .find(id)
        .select(webhooks::disabled)
        .first(conn)
        .optional()?;
    let n = diesel::update(
        webhooks::table
            .filter(webhooks::id.eq(id))
            .filter(webhooks::version.eq(expected)),
    )
    .set((
        WebhookColumns::from(draft),
        webhooks::disabled_reason.eq(webhooks::disabled_reason.nullable()),
        webhooks::updated_at.eq(crate::db::now()),
        webhooks::version.eq(webhooks::version + 1),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(StoreError::Stale);
    }
    if !draft.disabled {
        diesel::update(webhooks::table.find(id))
            .set(webhooks::disabled_reason.eq(None::<String>))
            .execute(conn)?;
        if was_disabled == Some(true) {
            diesel::update(webhook_cursors::table.find(id))
                .set((
                    webhook_cursors::failures.eq(0),
                    webhook_cursors::next_attempt_at.eq(crate::db::now()),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Gives subscription `id` a new secret at `expected` version; deliveries are signed with the
/// old one too until `previous_valid_until`. The new version.
pub fn rotate_secret(
    conn: &mut PgConnection,
    id: Uuid,
    expected: i64,
    secret: &str,
    previous_valid_until: DateTime<Utc>,
) -> Result<i64, StoreError> {
    diesel::update(
        webhooks::table
            .filter(webhooks::id.eq(id))
            .filter(webhooks::version.eq(expected)),
    )
    .set((
        webhooks::previous_secret.eq(webhooks::secret.nullable()),
        webhooks::previous_valid_until.eq(previous_valid_until),
        webhooks::secret.eq(secret),
        webhooks::updated_at.eq(crate::db::now()),
        webhooks::version.eq(webhooks::version + 1),
    ))
    .returning(webhooks::version)
    .get_result(conn)
    .optional()?
    .ok_or(StoreError::Stale)
}

/// Locks subscription `id` for a write; its version.
pub fn lock(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<i64>> {
    webhooks::table
        .find(id)
        .select(webhooks::version)
        .for_update()
        .first(conn)
        .optional()
}

/// Subscription `id`.
pub fn find(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .find(id)
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()
}

/// Removes subscription `id`, its cursor and its deliveries.
pub fn delete(conn: &mut PgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(webhooks::table.find(id))
        .execute(conn)
        .map(|_| ())
}

/// Disables subscription `id` on the hub's own account (`reason`: `gone`, `failing`); its
/// version after, or None when it was disabled already.
pub fn disable(conn: &mut PgConnection, id: Uuid, reason: &str) -> QueryResult<Option<i64>> {
    diesel::update(
        webhooks::table
            .filter(webhooks::id.eq(id))
            .filter(webhooks::disabled.eq(false)),
    )
    .set((
        webhooks::disabled.eq(true),
        webhooks::disabled_reason.eq(reason),
        webhooks::updated_at.eq(crate::db::now()),
        webhooks::version.eq(webhooks::version + 1),
    ))
    .returning(webhooks::version)
    .get_result(conn)
    .optional()
}

/// Subscriptions, in creation order.
pub fn list_query(limit: Option<u32>) -> ListQuery {
    ListQuery {
        resource: "webhooks",
        select: "SELECT *",
        from: "FROM webhooks",
        id_expr: "id",
        filters: Vec::new(),
        order: Order::Key {
            key: BY_ID,
            desc: false,
        },
        limit,
    }
}

/// A `webhook_deliveries` row: one attempt.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_seq: i64,
    pub event_type: String,
    pub attempt: i32,
    pub manual: bool,
    pub outcome: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i32,
    pub attempted_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Keyed for DeliveryRow {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// The attempts of subscription `webhook`, newest first.
pub fn deliveries_query(webhook: Uuid, limit: Option<u32>) -> ListQuery {
    ListQuery {
        resource: "webhook_deliveries",
        select: "SELECT *",
        from: "FROM webhook_deliveries",
        id_expr: "id",
        filters: vec![Filter::Eq("webhook_id", Value::Uuid(webhook))],
        order: Order::Key {
            key: SortKey {
                name: "id",
                expr: "id",
                ty: KeyType::Uuid,
                nullable: false,
                tie: "id",
            },
            desc: true,
        },
        limit,
    }
}

/// Delivery `id` of subscription `webhook`.
pub fn find_delivery(
    conn: &mut PgConnection,
    webhook: Uuid,
    id: Uuid,
) -> QueryResult<Option<DeliveryRow>> {
    webhook_deliveries::table
        .find(id)
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
}

/// Records an attempt.
pub fn insert_delivery(conn: &mut PgConnection, row: &DeliveryRow) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// The attempts made so far at event `event` for subscription `webhook`.
pub fn attempts_at(conn: &mut PgConnection, webhook: Uuid, event: Uuid) -> QueryResult<i32> {
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .filter(webhook_deliveries::event_id.eq(event))
        .select(diesel::dsl::max(webhook_deliveries::attempt))
        .first::<Option<i32>>(conn)
        .map(Option::unwrap_or_default)
}

/// A subscription claimed for one delivery.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claim {
    #[diesel(sql_type = SqlUuid)]
    pub webhook_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub after_txid: i64,
    #[diesel(sql_type = SqlUuid)]
    pub after_id: Uuid,
    #[diesel(sql_type = Integer)]
    pub failures: i32,
}

/// Claims an enabled subscription that is due and has an event past its cursor, for
/// `lease_secs`: `SKIP LOCKED`, so replicas (and this one's workers) never claim one
/// subscription twice, and the lease commits at once.
pub fn claim(conn: &mut PgConnection, lease: Uuid, lease_secs: f64) -> QueryResult<Option<Claim>> {
    diesel::sql_query(format!(
        "UPDATE webhook_cursors c SET lease = $1, \
                leased_until = now() + make_interval(secs => $2) \
          WHERE c.webhook_id = ( \
                SELECT c2.webhook_id FROM webhook_cursors c2 \
                  JOIN webhooks w ON w.id = c2.webhook_id \
                 WHERE NOT w.disabled AND c2.next_attempt_at <= now() \
                   AND (c2.leased_until IS NULL OR c2.leased_until < now()) \
                   AND EXISTS (SELECT 1 FROM audit_events \
                                WHERE (txid, id) > (c2.after_txid, c2.after_id) \
                                  AND {FENCE} AND entity = ANY($3)) \
                 ORDER BY c2.next_attempt_at \
                 LIMIT 1 \
                   FOR UPDATE OF c2 SKIP LOCKED) \
         RETURNING c.webhook_id, c.after_txid, c.after_id, c.failures"
    ))
    .bind::<SqlUuid, _>(lease)
    .bind::<diesel::sql_types::Double, _>(lease_secs)
    .bind::<Array<Text>, _>(FEED_ENTITIES)
    .get_result(conn)
    .optional()
}

/// An event of the feed as a delivery sends it.
#[derive(Debug, Clone, QueryableByName)]
pub struct FeedEvent {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub txid: i64,
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Text)]
    pub entity: String,
    #[diesel(sql_type = SqlUuid)]
    pub entity_id: Uuid,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub version: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    /// The audit diff (`before`, `after`): only its member names are sent.
    #[diesel(sql_type = Jsonb)]
    pub changes: serde_json::Value,
}

const EVENT_COLUMNS: &str = "id, txid, seq, entity, entity_id, action, version, at, changes";

/// Up to `limit` feed events past `(after_txid, after_id)`, under the feed's fence.
pub fn events_after(
    conn: &mut PgConnection,
    after_txid: i64,
    after_id: Uuid,
    limit: i64,
) -> QueryResult<Vec<FeedEvent>> {
    diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events \
          WHERE (txid, id) > ($1, $2) AND {FENCE} AND entity = ANY($3) \
          ORDER BY txid, id LIMIT $4"
    ))
    .bind::<BigInt, _>(after_txid)
    .bind::<SqlUuid, _>(after_id)
    .bind::<Array<Text>, _>(FEED_ENTITIES)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// Feed event `id` (a delivery's, for a retry by hand).
pub fn event(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<FeedEvent>> {
    diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events WHERE id = $1"
    ))
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .optional()
}

/// Where a claimed subscription's cursor goes after an attempt.
#[derive(Debug, Clone, Copy)]
pub enum Next {
    /// Past `(txid, id)`, the next event due at once.
    Past(i64, Uuid),
    /// Stays, with one more failure, the next attempt at this time.
    RetryAt(DateTime<Utc>),
    /// Stays, the subscription disabled (its next attempt when it is enabled again).
    Stop,
}

/// Moves claimed subscription `webhook`'s cursor and ends the claim, if `lease` still holds
/// it: false when the lease ran out and another worker may have taken over (this worker's
/// attempt is then not recorded, and the event is sent again: at least once).
pub fn release(
    conn: &mut PgConnection,
    webhook: Uuid,
    lease: Uuid,
    next: Next,
) -> QueryResult<bool> {
    let held = webhook_cursors::table
        .filter(webhook_cursors::webhook_id.eq(webhook))
        .filter(webhook_cursors::lease.eq(lease))
        .filter(webhook_cursors::leased_until.gt(diesel::dsl::now));
    let done = (
        webhook_cursors::lease.eq(None::<Uuid>),
        webhook_cursors::leased_until.eq(None::<DateTime<Utc>>),
    );
    let n = match next {
        Next::Past(txid, id) => diesel::update(held)
            .set((
                done,
                webhook_cursors::after_txid.eq(txid),
                webhook_cursors::after_id.eq(id),
                webhook_cursors::failures.eq(0),
                webhook_cursors::next_attempt_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?,
        Next::RetryAt(at) => diesel::update(held)
            .set((
                done,
                webhook_cursors::failures.eq(webhook_cursors::failures + 1),
                webhook_cursors::next_attempt_at.eq(at),
            ))
            .execute(conn)?,
        Next::Stop => diesel::update(held)
            .set((done, webhook_cursors::failures.eq(0)))
            .execute(conn)?,
    };
    Ok(n == 1)
}
