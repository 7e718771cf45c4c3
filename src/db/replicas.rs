//! Reads from PostgreSQL streaming replicas (`LSHUB_DATABASE_READ_URL`), with two promises:
//!
//! - **Bounded staleness.** A replica answers only while it has replayed at least what the
//!   primary had written `max_lag` ago. A thread samples the primary's WAL position every
//!   [`POLL`]; a thread per replica reads its replay position as often. A replica that is down,
//!   not heard from for `max_lag`, or behind that floor is skipped, and the read goes to the
//!   primary (measured by WAL position, so an idle primary never makes a replica look stale).
//! - **Read your writes.** After a caller's write commits, its WAL position is kept for that
//!   caller ([`ReadReplicas::wrote`]); its reads then wait, at most `wait`, until the replica
//!   has replayed that position (`pg_last_wal_replay_lsn`), and go to the primary if it has
//!   not.
//!
//! A read that fails on a replica because the connection went, or because the replica
//! cancelled it for a conflict with recovery, runs again on the primary: a read changes
//! nothing. Positions are WAL byte offsets (`pg_lsn - '0/0'`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::PgConnection;
use uuid::Uuid;

use super::pool::{build_pool, PgPool};
use crate::config::DbSettings;
use crate::error::ApiError;

/// How often the primary's WAL position and each replica's replay position are read.
pub const POLL: Duration = Duration::from_millis(100);

/// Which server answered a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The primary (no replica configured, or none fit to answer).
    Primary,
    /// A streaming replica that had replayed what the read needed.
    Replica,
}

/// The replicas GETs read from, and what is known of how far each has replayed.
#[derive(Debug)]
pub struct ReadReplicas {
    replicas: Vec<Replica>,
    max_lag: Duration,
    wait: Duration,
    /// Where reads start their turn, so the replicas share them.
    next: AtomicUsize,
    /// The primary's WAL position, sampled every [`POLL`], oldest first, for `max_lag` and a
    /// little more.
    primary: Mutex<VecDeque<(Instant, i64)>>,
    /// Each recent writer's last write position, forgotten once the lag floor passes it.
    written: Mutex<HashMap<Uuid, i64>>,
    /// Reads no replica could answer, which the primary did.
    fallbacks: AtomicU64,
}

/// What `/metrics` shows of one replica.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// Its URL, without password or parameters.
    pub name: String,
    /// Heard from within the lag bound, and its last read of position worked.
    pub up: bool,
    /// WAL bytes between the primary's last sampled position and the replica's replay.
    pub behind_bytes: i64,
    /// Reads it answered.
    pub reads: u64,
}

#[derive(Debug)]
struct Replica {
    /// The URL without its password, for logs.
    name: String,
    url: String,
    pool: PgPool,
    up: AtomicBool,
    /// Nanoseconds after `epoch` when its replay position was last read.
    heard: AtomicI64,
    epoch: Instant,
    replayed: AtomicI64,
    reads: AtomicU64,
}

impl Replica {
    fn heard_within(&self, bound: Duration) -> bool {
        let heard =
            Duration::from_nanos(u64::try_from(self.heard.load(Ordering::Acquire)).unwrap_or(0));
        self.up.load(Ordering::Acquire) && self.epoch.elapsed().saturating_sub(heard) < bound
    }

    fn heard(&self, replayed: i64) {
        self.replayed.store(replayed, Ordering::Release);
        let now = i64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(i64::MAX);
        self.heard.store(now, Ordering::Release);
        self.up.store(true, Ordering::Release);
    }

    fn lost(&self, why: &dyn std::fmt::Display) {
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(replica = %self.name, error = %why, "read replica unavailable; reads go elsewhere");
        }
    }
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
}

/// The primary's WAL position as a byte offset: the end of what has been inserted (a commit
/// is inserted before it returns, whatever `synchronous_commit` says).
const PRIMARY_LSN: &str = "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint";

/// The primary's WAL position ([`PRIMARY_LSN`]).
pub fn primary_position(conn: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query(format!("SELECT {PRIMARY_LSN} AS lsn"))
        .get_result::<Position>(conn)
        .map(|p| p.lsn)
}

/// The channel on which a process tells the others of a caller's write position, so the
/// caller's reads at any of them wait for it.
pub const WRITTEN_CHANNEL: &str = "lshub_written";

/// The primary's WAL position after `caller`'s write, announced on [`WRITTEN_CHANNEL`] in the
/// same statement (an autocommit `NOTIFY` is delivered as the statement ends).
pub fn announce_write(conn: &mut PgConnection, caller: Uuid) -> QueryResult<i64> {
    diesel::sql_query(format!(
        "WITH p AS (SELECT {PRIMARY_LSN} AS lsn) SELECT p.lsn FROM p, \
         LATERAL (SELECT pg_notify($1, $2 || ' ' || p.lsn::text)) AS n"
    ))
    .bind::<diesel::sql_types::Text, _>(WRITTEN_CHANNEL)
    .bind::<diesel::sql_types::Text, _>(caller.to_string())
    .get_result::<Position>(conn)
    .map(|p| p.lsn)
}

/// How far a server has replayed: a standby's replay position, or a primary's own position
/// (a URL that names a primary is never behind).
fn replayed_position(conn: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query(
        "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
         ELSE pg_current_wal_insert_lsn() END - '0/0'::pg_lsn)::bigint AS lsn",
    )
    .get_result::<Position>(conn)
    .map(|p| p.lsn)
}

impl ReadReplicas {
    /// No replicas: every read goes to the primary.
    pub fn none() -> Self {
        Self::from_pools(Vec::new(), Duration::ZERO, Duration::ZERO)
    }

    /// The replicas `settings` names, with lazily connecting pools of the primary's size.
    /// `monitor` starts the threads that follow the positions, which end when this is dropped.
    pub fn new(settings: &DbSettings) -> Arc<Self> {
        let replicas = settings
            .read_urls
            .iter()
            .filter(|url| !url.trim().is_empty())
            .map(|url| {
                let pool = build_pool(
                    &DbSettings {
                        database_url: url.trim().to_owned(),
                        read_urls: Vec::new(),
                        ..settings.clone()
                    },
                    Box::new(diesel::r2d2::NopEventHandler),
                );
                (url.trim().to_owned(), pool)
            })
            .collect();
        Arc::new(Self::from_pools(
            replicas,
            Duration::from_millis(settings.read_max_lag_ms),
            Duration::from_millis(settings.read_wait_ms),
        ))
    }

    fn from_pools(pools: Vec<(String, PgPool)>, max_lag: Duration, wait: Duration) -> Self {
        let epoch = Instant::now();
        Self {
            replicas: pools
                .into_iter()
                .map(|(url, pool)| Replica {
                    name: super::redact_url(&url),
                    url,
                    pool,
                    up: AtomicBool::new(false),
                    heard: AtomicI64::new(0),
                    epoch,
                    replayed: AtomicI64::new(0),
                    reads: AtomicU64::new(0),
                })
                .collect(),
            max_lag,
            wait,
            next: AtomicUsize::new(0),
            primary: Mutex::new(VecDeque::new()),
            written: Mutex::new(HashMap::new()),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Each replica's state, for `/metrics`, and how many reads fell back to the primary.
    pub fn status(&self) -> (Vec<ReplicaStatus>, u64) {
        let primary = {
            let samples = self.primary.lock().unwrap_or_else(PoisonError::into_inner);
            samples.back().map_or(0, |(_, lsn)| *lsn)
        };
        let replicas = self
            .replicas
            .iter()
            .map(|r| ReplicaStatus {
                name: r.name.clone(),
                up: r.heard_within(self.max_lag),
                behind_bytes: (primary - r.replayed.load(Ordering::Acquire)).max(0),
                reads: r.reads.load(Ordering::Relaxed),
            })
            .collect();
        (replicas, self.fallbacks.load(Ordering::Relaxed))
    }

    /// Whether any replica is configured.
    pub fn any(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// Starts following the primary (`primary_url`) and every replica, each on a thread of
    /// its own (a hung server stalls only its own), until `this` is dropped.
    pub fn monitor(this: &Arc<Self>, primary_url: &str) {
        if !this.any() {
            return;
        }
        let weak = Arc::downgrade(this);
        let url = primary_url.to_owned();
        spawn("lshub-wal-primary", move || {
            follow(&weak, &url, primary_position, |replicas, read| {
                // An unreadable primary leaves the samples as they are: the lag floor stays.
                if let Ok(lsn) = read {
                    replicas.sampled(Instant::now(), lsn);
                }
            });
        });
        for index in 0..this.replicas.len() {
            let weak = Arc::downgrade(this);
            let url = this.replicas[index].url.clone();
            spawn("lshub-wal-replica", move || {
                follow(&weak, &url, replayed_position, move |replicas, read| {
                    let replica = &replicas.replicas[index];
                    match read {
                        Ok(lsn) => replica.heard(lsn),
                        Err(why) => replica.lost(&why),
                    }
                });
            });
        }
    }

    fn sampled(&self, at: Instant, lsn: i64) {
        let mut samples = self.primary.lock().unwrap_or_else(PoisonError::into_inner);
        samples.push_back((at, lsn));
        // Keep the newest sample at least `max_lag` old, and everything after it.
        while samples.len() > 1 && at.duration_since(samples[1].0) >= self.max_lag {
            samples.pop_front();
        }
    }

    /// The position every replica must have replayed to answer: what the primary had written
    /// `max_lag` ago (the oldest sample while there is none that old, so a replica is judged
    /// from the first sample on; nothing while the primary has not been heard from).
    fn lag_floor(&self) -> i64 {
        let samples = self.primary.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        samples
            .iter()
            .rev()
            .find(|(at, _)| now.duration_since(*at) >= self.max_lag)
            .or(samples.front())
            .map_or(0, |(_, lsn)| *lsn)
    }

    /// Records that `writer`'s write committed at `lsn` (the primary's position just after
    /// it): its reads wait for it.
    pub fn wrote(&self, writer: Uuid, lsn: i64) {
        if !self.any() {
            return;
        }
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded by the writers of the last `max_lag`: older writes are under the lag floor.
        if written.len() >= 1024 {
            let floor = self.lag_floor();
            written.retain(|_, at| *at > floor);
        }
        let at = written.entry(writer).or_insert(lsn);
        *at = (*at).max(lsn);
    }

    fn own_floor(&self, reader: Option<Uuid>) -> i64 {
        reader
            .and_then(|id| {
                let written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
                written.get(&id).copied()
            })
            .unwrap_or(0)
    }

    /// Runs `f` on a replica that has replayed what `reader` needs; `None` when no replica
    /// could answer, and the primary must. `f` is told which it runs on.
    pub(super) fn read<T>(
        &self,
        reader: Option<Uuid>,
        f: &mut dyn FnMut(&mut PgConnection, Source) -> Result<T, ApiError>,
    ) -> Option<Result<T, ApiError>> {
        if !self.any() {
            return None;
        }
        let lag_floor = self.lag_floor();
        let floor = lag_floor.max(self.own_floor(reader));
        let deadline = Instant::now() + self.wait;
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for turn in 0..count {
            let replica = &self.replicas[(start + turn) % count];
            if !replica.heard_within(self.max_lag)
                || replica.replayed.load(Ordering::Acquire) < lag_floor
            {
                continue;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut conn = match replica
                .pool
                .get_timeout(remaining.max(Duration::from_millis(50)))
            {
                Ok(conn) => conn,
                Err(e) => {
                    replica.lost(&e);
                    continue;
                }
            };
            if !caught_up(replica, &mut conn, floor, deadline) {
                super::pool::give_back(&mut conn);
                continue;
            }
            let result = f(&mut conn, Source::Replica);
            let lost = super::pool::was_lost(&mut conn);
            super::pool::give_back(&mut conn);
            match result {
                Err(e) if lost => replica.lost(&e),
                // Cancelled for a conflict with recovery (40001 on a standby): the primary has
                // no such conflict.
                Err(ApiError::Contention) => {}
                other => {
                    replica.reads.fetch_add(1, Ordering::Relaxed);
                    return Some(other);
                }
            }
        }
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Another process's callers' writes: their reads here wait for them too (within one
/// listener poll of the write; a notification missed while the listener was down leaves
/// those reads to the lag bound).
impl super::listener::Follower for ReadReplicas {
    fn channel(&self) -> &'static str {
        WRITTEN_CHANNEL
    }

    fn reload(&self, _conn: &mut PgConnection) -> QueryResult<()> {
        Ok(())
    }

    fn notified(&self, _conn: &mut PgConnection, payloads: &[String]) -> QueryResult<()> {
        for payload in payloads {
            let parsed = payload
                .split_once(' ')
                .and_then(|(caller, lsn)| Some((caller.parse().ok()?, lsn.parse().ok()?)));
            match parsed {
                Some((caller, lsn)) => self.wrote(caller, lsn),
                None => tracing::warn!(payload, "an unreadable write announcement"),
            }
        }
        Ok(())
    }

    fn forget(&self) {}
}

/// Waits, until `deadline`, for `replica` to replay `floor`; false when it has not (or its
/// connection failed).
fn caught_up(replica: &Replica, conn: &mut PgConnection, floor: i64, deadline: Instant) -> bool {
    if replica.replayed.load(Ordering::Acquire) >= floor {
        return true;
    }
    loop {
        match replayed_position(conn) {
            Ok(lsn) => {
                replica.heard(lsn);
                if lsn >= floor {
                    return true;
                }
            }
            Err(e) => {
                replica.lost(&e);
                return false;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| tracing::error!(error = %e, "cannot start a WAL position monitor"))
        .ok();
}

/// Reads `position` on a connection of its own every [`POLL`] and hands it, or why it could
/// not be read, to `heard`, while the replicas live; reconnects after a failure.
fn follow(
    weak: &Weak<ReadReplicas>,
    url: &str,
    position: fn(&mut PgConnection) -> QueryResult<i64>,
    heard: impl Fn(&ReadReplicas, Result<i64, String>),
) {
    let mut conn: Option<PgConnection> = None;
    loop {
        let Some(replicas) = weak.upgrade() else {
            return;
        };
        if conn.is_none() {
            conn = super::connect(url).ok();
        }
        let read = match conn.as_mut() {
            Some(c) => position(c).map_err(|e| e.to_string()),
            None => Err("cannot connect".to_owned()),
        };
        if let Err(why) = &read {
            tracing::debug!(error = %why, "WAL position unreadable; reconnecting");
            conn = None;
        }
        heard(&replicas, read);
        drop(replicas);
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_floor_is_what_the_primary_had_written_max_lag_ago() {
        let replicas = ReadReplicas::from_pools(Vec::new(), Duration::from_secs(1), Duration::ZERO);
        assert_eq!(replicas.lag_floor(), 0, "nothing heard from the primary");
        let now = Instant::now();
        let ago = |ms: u64| now - Duration::from_millis(ms);
        replicas.sampled(ago(2500), 100);
        replicas.sampled(ago(1500), 200);
        replicas.sampled(ago(1100), 300);
        replicas.sampled(ago(500), 400);
        replicas.sampled(ago(0), 500);
        assert_eq!(replicas.lag_floor(), 300, "the newest sample a second old");
        let samples = replicas.primary.lock().unwrap();
        assert_eq!(
            samples.front().map(|s| s.1),
            Some(300),
            "older ones dropped"
        );
    }

    #[test]
    fn a_young_sample_set_judges_from_its_first_sample() {
        let replicas = ReadReplicas::from_pools(Vec::new(), Duration::from_secs(1), Duration::ZERO);
        replicas.sampled(Instant::now(), 42);
        assert_eq!(replicas.lag_floor(), 42);
    }
}
