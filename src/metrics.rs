//! The service's Prometheus series (README, "Metrics", lists each one). Every App owns one
//! [`Metrics`], held in its state: several Apps in one process (the tests, a replica) never mix
//! series, and there is no global registry to race for.
//!
//! Series that change as the service works are kept here and bumped where it happens; those
//! that describe a moment (the pool's connections, the feed's lag) are read at scrape time and
//! handed to [`Metrics::render`] as a [`Reading`].

use std::time::Duration;

use diesel::r2d2::event::{CheckoutEvent, TimeoutEvent};
use diesel::r2d2::HandleEvent;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::db::replicas::ReplicaStatus;
use crate::domain::DeliveryOutcome;
use crate::models::change::FeedLag;

/// Every series' name starts with `lshub_`.
const PREFIX: &str = "lshub";

/// The `route` of a request no route matched: one value, so a scan of random paths adds no
/// series.
pub const UNMATCHED: &str = "unmatched";

/// The `route` of a request that ended in an error before any response existed (the
/// whole-request timeout): its route is no longer known.
pub const UNKNOWN_ROUTE: &str = "unknown";

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Pool checkouts are fast or waiting for a connection: from a tenth of a millisecond to past
/// the checkout timeout's default (3 s).
const CHECKOUT_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A counter per value of one label, each resolved once: counting costs no label lookup, and
/// every value is exposed from the start, at 0, so a rate over it exists before the first event.
#[derive(Debug, Clone)]
pub struct Counters<K: 'static> {
    counters: Vec<(K, IntCounter)>,
}

impl<K: Copy + PartialEq> Counters<K> {
    fn new(vec: &IntCounterVec, keys: &[K], label: impl Fn(K) -> &'static str) -> Self {
        Self {
            counters: keys
                .iter()
                .map(|&k| (k, vec.with_label_values(&[label(k)])))
                .collect(),
        }
    }

    /// Counts one `key` (a key not declared is not counted).
    pub fn inc(&self, key: K) {
        if let Some((_, counter)) = self.counters.iter().find(|(k, _)| *k == key) {
            counter.inc();
        }
    }
}

/// The series of one App, in its own registry.
pub struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    checkout_wait: Histogram,
    checkout_timeouts: IntCounter,
    rate_limited: Counters<&'static str>,
    deliveries: Counters<DeliveryOutcome>,
}

impl Metrics {
    /// A registry with every series of the service registered.
    pub fn new() -> prometheus::Result<Self> {
        use crate::http::machinery::rate_limit::{
            API_POLICY, TOKEN_ACCOUNT_POLICY, TOKEN_IP_POLICY,
        };
        let registry = Registry::new_custom(Some(PREFIX.into()), None)?;
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP requests, by method, route template and status: seconds until the \
                 answer's head (its _count is the number of requests)",
            ),
            &["method", "route", "status"],
        )?;
        let checkout_wait = Histogram::with_opts(
            HistogramOpts::new(
                "db_pool_checkout_wait_seconds",
                "Seconds a pool checkout waited for a connection (timed-out ones included)",
            )
            .buckets(CHECKOUT_BUCKETS.to_vec()),
        )?;
        let checkout_timeouts = IntCounter::new(
            "db_pool_checkout_timeouts_total",
            "Pool checkouts that found no connection within the checkout timeout",
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limit_rejections_total",
                "Requests refused by a rate limit, by the limit (policy) that refused them",
            ),
            &["policy"],
        )?;
        let deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts, by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(checkout_wait.clone()))?;
        registry.register(Box::new(checkout_timeouts.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        Ok(Self {
            registry,
            requests,
            checkout_wait,
            checkout_timeouts,
            rate_limited: Counters::new(
                &rate_limited,
                &[API_POLICY, TOKEN_IP_POLICY, TOKEN_ACCOUNT_POLICY],
                |policy| policy,
            ),
            deliveries: Counters::new(&deliveries, DeliveryOutcome::ALL, DeliveryOutcome::as_str),
        })
    }

    /// Observes one answered request; `route` is a template or one of the fixed values above,
    /// never a path as sent.
    pub fn observe_request(&self, method: &str, route: &str, status: &str, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, status])
            .observe(elapsed.as_secs_f64());
    }

    /// The rate limits' rejections, by policy name (`rate_limit::API_POLICY`, ...).
    pub fn rate_limited(&self) -> Counters<&'static str> {
        self.rate_limited.clone()
    }

    /// Webhook delivery attempts, by outcome.
    pub fn deliveries(&self) -> Counters<DeliveryOutcome> {
        self.deliveries.clone()
    }

    /// The pool's event handler, which times every checkout.
    pub fn pool_events(&self) -> Box<dyn HandleEvent> {
        Box::new(PoolEvents {
            wait: self.checkout_wait.clone(),
            timeouts: self.checkout_timeouts.clone(),
        })
    }

    /// The text exposition of every series, with `now`'s readings.
    pub fn render(&self, now: &Reading) -> prometheus::Result<String> {
        let mut families = self.registry.gather();
        families.extend(now.gather()?);
        TextEncoder::new().encode_to_string(&families)
    }
}

/// Times pool checkouts: r2d2 reports each one, with how long it waited, wherever the
/// connection was asked for.
#[derive(Debug)]
struct PoolEvents {
    wait: Histogram,
    timeouts: IntCounter,
}

impl HandleEvent for PoolEvents {
    fn handle_checkout(&self, event: CheckoutEvent) {
        self.wait.observe(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, event: TimeoutEvent) {
        self.timeouts.inc();
        self.wait.observe(event.timeout().as_secs_f64());
    }
}

/// The series read at scrape time.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The pool's configured size.
    pub pool_max: u32,
    /// Connections the pool holds open.
    pub pool_connections: u32,
    /// Of those, the idle ones.
    pub pool_idle: u32,
    /// The feed's lag, when the database answered in time.
    pub feed: Option<FeedLag>,
    /// The read replicas (none unless configured), and the reads that fell back to the primary.
    pub replicas: (Vec<ReplicaStatus>, u64),
}

impl Reading {
    /// The reading as metric families. A lag the database did not give is left out rather
    /// than shown as 0, and `feed_lag_read_ok` says so.
    fn gather(&self) -> prometheus::Result<Vec<prometheus::proto::MetricFamily>> {
        let registry = Registry::new_custom(Some(PREFIX.into()), None)?;
        let int = |name: &str, help: &str, value: i64| -> prometheus::Result<()> {
            let gauge = IntGauge::new(name, help)?;
            gauge.set(value);
            registry.register(Box::new(gauge))
        };
        int(
            "db_pool_max_connections",
            "Connections the pool may open (LSHUB_DB_POOL_SIZE)",
            i64::from(self.pool_max),
        )?;
        int(
            "db_pool_connections",
            "Connections the pool holds open, idle or checked out",
            i64::from(self.pool_connections),
        )?;
        int(
            "db_pool_idle_connections",
            "Open connections waiting in the pool",
            i64::from(self.pool_idle),
        )?;
        int(
            "feed_lag_read_ok",
            "1 when this scrape read the feed's lag from the database, 0 when that read failed \
             or timed out (the feed_lag series are then absent)",
            i64::from(self.feed.is_some()),
        )?;
        if let Some(lag) = self.feed {
            int(
                "feed_lag_events",
                "Committed change-feed events still held back by the feed's fence (an older \
                 transaction in flight)",
                lag.events,
            )?;
            let seconds = Gauge::new(
                "feed_lag_seconds",
                "Seconds since the oldest event the fence holds back was written (0 when none is)",
            )?;
            seconds.set(lag.seconds);
            registry.register(Box::new(seconds))?;
        }
        let (replicas, fallbacks) = &self.replicas;
        if !replicas.is_empty() {
            let labelled =
                |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["replica"]);
            let up = labelled(
                "read_replica_up",
                "1 while the read replica is heard from within LSHUB_READ_MAX_LAG_MS, else 0",
            )?;
            let behind = labelled(
                "read_replica_behind_bytes",
                "WAL bytes the read replica's replay trails the primary's last sampled position by",
            )?;
            let reads = IntCounterVec::new(
                Opts::new(
                    "read_replica_reads_total",
                    "Reads the read replica answered",
                ),
                &["replica"],
            )?;
            for replica in replicas {
                let label = [replica.name.as_str()];
                up.with_label_values(&label).set(i64::from(replica.up));
                behind.with_label_values(&label).set(replica.behind_bytes);
                reads.with_label_values(&label).inc_by(replica.reads);
            }
            let fell_back = IntCounter::new(
                "read_replica_fallbacks_total",
                "Reads that no read replica could answer (down, behind, or not yet replaying the \
                 caller's write), which the primary answered",
            )?;
            fell_back.inc_by(*fallbacks);
            registry.register(Box::new(up))?;
            registry.register(Box::new(behind))?;
            registry.register(Box::new(reads))?;
            registry.register(Box::new(fell_back))?;
        }
        Ok(registry.gather())
    }
}
