//! The token endpoint's rate-limit buckets (`token_rate_limits`): GCRA in one statement, so
//! replicas over one database agree on every decision.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Text, Timestamptz};

/// One bucket to charge a request against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's key (`ip:...`, `user:<digest>`, `client:<digest>`).
    pub key: String,
    /// Microseconds one request's worth takes to come back (the window over the burst).
    pub emission_us: i64,
    /// Requests the bucket holds when full.
    pub burst: i32,
}

/// A bucket's state after the charge.
#[derive(Debug, Clone, QueryableByName)]
pub struct Charged {
    /// The bucket's key.
    #[diesel(sql_type = Text)]
    pub key: String,
    /// Whether the request conformed (and was charged).
    #[diesel(sql_type = Bool)]
    pub allowed: bool,
    /// The theoretical arrival time after the decision: the bucket is full again then.
    #[diesel(sql_type = Timestamptz)]
    pub tat: DateTime<Utc>,
    /// The database's clock at the decision, against which `tat` is read.
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
}

/// Charges one request against every bucket in `buckets`, each decided on its own: a bucket
/// conforms while `tat - emission * (burst - 1) <= now()`, and is then advanced by one
/// emission from `max(tat, now())`; a refused one keeps its `tat`. `ON CONFLICT DO UPDATE`
/// locks the row and reads its latest version, so concurrent requests, on any replica, are
/// decided one after the other. Keys are taken in sorted order, so two requests naming the
/// same two buckets lock them alike and cannot deadlock.
pub fn charge(conn: &mut PgConnection, buckets: &[Bucket]) -> QueryResult<Vec<Charged>> {
    let mut sorted: Vec<&Bucket> = buckets.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    sorted.dedup_by(|a, b| a.key == b.key);
    diesel::sql_query(
        "INSERT INTO token_rate_limits AS l (key, tat, emission_us, burst, allowed) \
         SELECT b.key, now() + b.emission_us * interval '1 microsecond', b.emission_us, b.burst, true \
         FROM unnest($1::text[], $2::bigint[], $3::integer[]) AS b(key, emission_us, burst) \
         ORDER BY b.key \
         ON CONFLICT (key) DO UPDATE SET \
           allowed = l.tat - excluded.emission_us * (excluded.burst - 1) * interval '1 microsecond' <= now(), \
           tat = CASE \
             WHEN l.tat - excluded.emission_us * (excluded.burst - 1) * interval '1 microsecond' <= now() \
             THEN greatest(l.tat, now()) + excluded.emission_us * interval '1 microsecond' \
             ELSE l.tat END, \
           emission_us = excluded.emission_us, \
           burst = excluded.burst \
         RETURNING key, allowed, tat, now() AS at",
    )
    .bind::<Array<Text>, _>(sorted.iter().map(|b| b.key.as_str()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(sorted.iter().map(|b| b.emission_us).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(sorted.iter().map(|b| b.burst).collect::<Vec<_>>())
    .load(conn)
}

/// Deletes the buckets that are full again: a missing row reads as a full bucket.
pub fn purge_full(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM token_rate_limits WHERE tat < now()").execute(conn)
}
