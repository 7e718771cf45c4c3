//! Rate limits, and the `RateLimit-Policy` / `RateLimit` headers that announce them
//! (draft-ietf-httpapi-ratelimit-headers, as structured-field lists).
//!
//! - The API, per principal: a GCRA bucket per user or client id in this replica's memory
//!   (`governor`), so with R replicas behind a load balancer a principal gets up to R times
//!   the limit. Its unit is the point: a `304 Not Modified` costs `not_modified_cost`, any
//!   other answer `full_cost`. A request is admitted when the bucket holds a 304's points
//!   (which it pays then); once the answer is known, a full answer pays the rest. Whatever
//!   the bucket cannot pay at that moment is owed, and the principal's next request pays it
//!   before it is admitted, so every answer costs exactly its price.
//! - The token endpoint, per client IP and per account: GCRA buckets in PostgreSQL
//!   (`models::token_rate_limit`), so a password guesser is held to the limit across replicas.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, ResponseError};
use chrono::{DateTime, Utc};
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::RateLimitSettings;
use crate::db::{self, PgPool};
use crate::error::ApiError;
use crate::metrics::{Counters, Metrics};
use crate::models::token_rate_limit::{self, Bucket, Charged};

/// `RateLimit`: each policy's remaining quota and seconds until it is whole again.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy`: each policy's quota and window.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The API policy's name in the headers.
pub const API_POLICY: &str = "api";
/// The token endpoint's per-IP policy.
pub const TOKEN_IP_POLICY: &str = "token-ip";
/// The token endpoint's per-account (username or client id) policy.
pub const TOKEN_ACCOUNT_POLICY: &str = "token-account";

/// Admissions between two sweeps of the buckets that are full again (governor keeps a
/// bucket per key it has seen until told to forget the idle ones).
const SWEEP_EVERY: u64 = 1024;
/// Token requests between two deletions of the database buckets that are full again.
const PURGE_EVERY: u64 = 100;

/// One policy as an answer announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyState {
    /// The policy's name.
    pub name: &'static str,
    /// The quota: what a full bucket holds.
    pub quota: u32,
    /// Seconds an empty bucket takes to fill.
    pub window_secs: u64,
    /// What the bucket holds now.
    pub remaining: u32,
    /// How long until it is full again.
    pub reset: Duration,
}

/// Whole seconds, rounded up: a client that waits this long is never early.
fn ceil_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// A `Retry-After` for `wait`: whole seconds, rounded up, at least one.
fn retry_after(wait: Duration) -> Duration {
    Duration::from_secs(ceil_secs(wait).max(1))
}

/// Sets `RateLimit-Policy` and `RateLimit` for `states` (nothing when there are none).
pub fn insert_headers(headers: &mut HeaderMap, states: &[PolicyState]) {
    if states.is_empty() {
        return;
    }
    let policy = states
        .iter()
        .map(|s| format!("\"{}\";q={};w={}", s.name, s.quota, s.window_secs))
        .collect::<Vec<_>>()
        .join(", ");
    let state = states
        .iter()
        .map(|s| format!("\"{}\";r={};t={}", s.name, s.remaining, ceil_secs(s.reset)))
        .collect::<Vec<_>>()
        .join(", ");
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

type Governor = DefaultKeyedRateLimiter<Uuid, StateInformationMiddleware>;

/// The per-principal limit of the API, in this replica's memory.
pub struct ApiLimiter {
    inner: Option<Limiter>,
    rejected: Counters<&'static str>,
}

struct Limiter {
    governor: Governor,
    /// Points full answers still owe, by principal: taken first at its next admission.
    owed: Mutex<HashMap<Uuid, u32>>,
    /// The time one point takes to come back.
    emission: Duration,
    burst: u32,
    full_cost: u32,
    not_modified_cost: u32,
    window_secs: u64,
    admissions: AtomicU64,
}

/// A request let through, with what its bucket held afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    key: Uuid,
    remaining: u32,
}

/// A request refused: when to come back, and the policy's state.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    /// The `Retry-After`: whole seconds, at least one.
    pub retry_after: Duration,
    /// What the `RateLimit` header says.
    pub state: PolicyState,
}

impl ApiLimiter {
    /// The limiter the settings describe (none when the rate or the burst is 0), counting
    /// its refusals in `metrics`.
    pub fn new(settings: &RateLimitSettings, metrics: &Metrics) -> Self {
        let rejected = metrics.rate_limited();
        let (Some(per_minute), Some(burst)) = (
            NonZeroU32::new(settings.per_minute),
            NonZeroU32::new(settings.burst),
        ) else {
            return Self {
                inner: None,
                rejected,
            };
        };
        let emission = Duration::from_nanos((60_000_000_000 / u64::from(per_minute.get())).max(1));
        let Some(quota) = Quota::with_period(emission) else {
            return Self {
                inner: None,
                rejected,
            };
        };
        // A price above the burst could never be paid in one go.
        let full_cost = settings.full_cost.clamp(1, burst.get());
        let not_modified_cost = settings.not_modified_cost.clamp(1, full_cost);
        Self {
            inner: Some(Limiter {
                governor: RateLimiter::keyed(quota.allow_burst(burst))
                    .with_middleware::<StateInformationMiddleware>(),
                owed: Mutex::new(HashMap::new()),
                emission,
                burst: burst.get(),
                full_cost,
                not_modified_cost,
                window_secs: (u64::from(burst.get()) * 60)
                    .div_ceil(u64::from(per_minute.get()))
                    .max(1),
                admissions: AtomicU64::new(0),
            }),
            rejected,
        }
    }

    /// Whether any limit applies.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Admits a request of `key` if its bucket holds a 304's price and what it owes.
    pub fn admit(&self, key: Uuid) -> Option<Result<Admitted, Refused>> {
        let verdict = self.inner.as_ref()?.admit(key);
        if verdict.is_err() {
            self.rejected.inc(API_POLICY);
        }
        Some(verdict)
    }

    /// Charges the rest of a full answer's price; the policy's state for the answer's headers.
    pub fn settle(&self, admitted: Admitted, not_modified: bool) -> Option<PolicyState> {
        self.inner
            .as_ref()
            .map(|l| l.settle(admitted, not_modified))
    }
}

impl Limiter {
    fn owed(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, u32>> {
        // The map holds plain counts: one left by a panicking thread is still consistent.
        self.owed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state(&self, remaining: u32, owed: u32) -> PolicyState {
        let remaining = remaining.min(self.burst);
        PolicyState {
            name: API_POLICY,
            quota: self.burst,
            window_secs: self.window_secs,
            remaining: remaining.saturating_sub(owed),
            reset: self.emission * (self.burst - remaining).saturating_add(owed),
        }
    }

    fn admit(&self, key: Uuid) -> Result<Admitted, Refused> {
        if self.admissions.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.governor.retain_recent();
        }
        let owed = self.owed().get(&key).copied().unwrap_or(0);
        // A debt larger than the burst is paid a bucketful at a time.
        let price = self.not_modified_cost.saturating_add(owed).min(self.burst);
        let cells = NonZeroU32::new(price).unwrap_or(NonZeroU32::MIN);
        match self.governor.check_key_n(&key, cells) {
            Ok(Ok(snapshot)) => {
                let paid = price - self.not_modified_cost;
                if paid > 0 {
                    let mut debts = self.owed();
                    if let Some(debt) = debts.get_mut(&key) {
                        *debt = debt.saturating_sub(paid);
                        if *debt == 0 {
                            debts.remove(&key);
                        }
                    }
                }
                Ok(Admitted {
                    key,
                    remaining: snapshot.remaining_burst_capacity(),
                })
            }
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.governor.clock().now());
                let mut state = self.state(0, 0);
                // Until the bucket is full: until this price fits, then the rest of the burst.
                state.reset = wait + self.emission * (self.burst - price);
                Err(Refused {
                    retry_after: retry_after(wait),
                    state,
                })
            }
            // Unreachable: the price never exceeds the burst.
            Err(_) => Err(Refused {
                retry_after: retry_after(self.emission * self.burst),
                state: self.state(0, 0),
            }),
        }
    }

    fn settle(&self, admitted: Admitted, not_modified: bool) -> PolicyState {
        let rest = if not_modified {
            0
        } else {
            self.full_cost - self.not_modified_cost
        };
        let Some(cells) = NonZeroU32::new(rest) else {
            let owed = self.owed().get(&admitted.key).copied().unwrap_or(0);
            return self.state(admitted.remaining, owed);
        };
        match self.governor.check_key_n(&admitted.key, cells) {
            Ok(Ok(snapshot)) => {
                let owed = self.owed().get(&admitted.key).copied().unwrap_or(0);
                self.state(snapshot.remaining_burst_capacity(), owed)
            }
            _ => {
                let mut debts = self.owed();
                let debt = debts.entry(admitted.key).or_insert(0);
                *debt = debt.saturating_add(rest);
                let owed = *debt;
                drop(debts);
                self.state(0, owed)
            }
        }
    }
}

/// Whether a path is limited per principal: the API, but not the OAuth endpoints, which
/// the token limits guard.
fn limited(path: &str) -> bool {
    path.starts_with("/api/v1/") && !path.starts_with("/api/v1/auth/")
}

/// The per-principal limit. A request without a valid token is let through unlimited: the
/// handler answers 401 after a signature check that touches no database, so there is no
/// budget to spend and nobody to charge. The probes, the spec and Swagger UI are outside
/// `/api/v1`, and never limited.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let limiter = req
        .app_data::<web::Data<ApiLimiter>>()
        .filter(|l| l.is_enabled() && limited(req.path()))
        .cloned();
    let principal = limiter
        .as_ref()
        .and_then(|_| crate::auth::authenticate(req.request()).ok());
    let (Some(limiter), Some(principal)) = (limiter, principal) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let admitted = match limiter.admit(principal.id) {
        Some(Ok(admitted)) => admitted,
        Some(Err(refused)) => {
            let mut res = ApiError::RateLimited {
                detail: format!(
                    "this caller's request budget is spent; retry in {} s",
                    refused.retry_after.as_secs()
                ),
                retry_after: refused.retry_after,
            }
            .error_response();
            insert_headers(res.headers_mut(), &[refused.state]);
            return Ok(req.into_response(res));
        }
        None => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
    };
    let outcome = next.call(req).await;
    let not_modified = matches!(&outcome, Ok(res) if res.status() == StatusCode::NOT_MODIFIED);
    let state = limiter.settle(admitted, not_modified);
    let mut res = outcome?;
    if let Some(state) = state {
        insert_headers(res.headers_mut(), &[state]);
    }
    Ok(res.map_into_boxed_body())
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// rightmost `X-Forwarded-For` hop that is not one (each proxy appends the address it saw,
/// so hops to the left of an untrusted one are the client's to invent).
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if trusted_proxies.contains(&ip) => continue,
            Ok(ip) => return Some(ip),
            // A hop no trusted proxy wrote: fall back to the proxy that passed it on.
            Err(_) => break,
        }
    }
    Some(peer)
}

/// An IP's bucket key: IPv4 addresses one by one, IPv6 by /64, the block one subscriber is
/// usually given (one address each would hand a single client 2^64 buckets).
fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Whom a token request tries to authenticate as.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    /// The password grant's username.
    User(&'a str),
    /// The client credentials grant's client id.
    Client(&'a str),
}

impl Account<'_> {
    /// The bucket key: a digest, so the table keeps no usernames (nor the passwords people
    /// type into the username field).
    fn key(self) -> String {
        let (kind, name) = match self {
            // The e-mail matches case-insensitively (`user::find_by_email`), so its bucket does.
            Self::User(name) => ("user", name.to_lowercase()),
            Self::Client(id) => ("client", id.to_owned()),
        };
        format!("{kind}:{}", hex::encode(Sha256::digest(name.as_bytes())))
    }
}

/// The token endpoint's limits, kept in PostgreSQL.
pub struct TokenLimits {
    per_ip: u32,
    per_account: u32,
    window: Duration,
    trusted_proxies: Vec<IpAddr>,
    charges: AtomicU64,
    rejected: Counters<&'static str>,
}

/// What a token request's buckets said: the headers' states, and a wait when refused.
#[derive(Debug, Clone, Default)]
pub struct TokenBudget {
    states: Vec<PolicyState>,
    retry_after: Option<Duration>,
}

impl TokenBudget {
    /// `Retry-After` when a bucket refused the request.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Sets `RateLimit-Policy` and `RateLimit` on an answer.
    pub fn insert_headers(&self, headers: &mut HeaderMap) {
        insert_headers(headers, &self.states);
    }
}

impl TokenLimits {
    /// The limits the settings describe, counting their refusals in `metrics`.
    pub fn new(settings: &RateLimitSettings, metrics: &Metrics) -> Self {
        Self {
            per_ip: settings.token_per_ip,
            per_account: settings.token_per_username,
            window: Duration::from_secs(u64::from(settings.token_window_secs.max(1))),
            trusted_proxies: settings.trusted_proxies.clone(),
            charges: AtomicU64::new(0),
            rejected: metrics.rate_limited(),
        }
    }

    fn bucket(&self, key: String, limit: u32) -> Bucket {
        let window_us = i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX);
        Bucket {
            key,
            emission_us: (window_us / i64::from(limit)).max(1),
            burst: i32::try_from(limit).unwrap_or(i32::MAX),
        }
    }

    /// Charges one request of `req` for `account` against its buckets, refused or not, in
    /// one statement; answers which were refused and what each holds.
    pub async fn charge(
        &self,
        pool: &PgPool,
        req: &HttpRequest,
        account: Option<Account<'_>>,
    ) -> Result<TokenBudget, ApiError> {
        let mut policies: Vec<(String, &'static str, u32)> = Vec::new();
        if self.per_ip > 0 {
            if let Some(ip) = client_ip(req, &self.trusted_proxies) {
                policies.push((ip_key(ip), TOKEN_IP_POLICY, self.per_ip));
            }
        }
        if let (true, Some(account)) = (self.per_account > 0, account) {
            policies.push((account.key(), TOKEN_ACCOUNT_POLICY, self.per_account));
        }
        if policies.is_empty() {
            return Ok(TokenBudget::default());
        }
        let buckets: Vec<Bucket> = policies
            .iter()
            .map(|(key, _, limit)| self.bucket(key.clone(), *limit))
            .collect();
        let purge = self.charges.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == 0;
        let charged = db::transaction(pool, move |conn| {
            let charged = token_rate_limit::charge(conn, &buckets)?;
            if purge {
                token_rate_limit::purge_full(conn)?;
            }
            Ok(charged)
        })
        .await?;
        let mut budget = TokenBudget::default();
        for (key, name, limit) in &policies {
            let Some(row) = charged.iter().find(|c| &c.key == key) else {
                return Err(ApiError::internal(format!("no rate-limit row for {name}")));
            };
            let bucket = self.bucket(key.clone(), *limit);
            let (state, wait) = token_state(row, &bucket, name, self.window);
            budget.states.push(state);
            if let Some(wait) = wait {
                self.rejected.inc(name);
                budget.retry_after = Some(budget.retry_after.map_or(wait, |w| w.max(wait)));
            }
        }
        Ok(budget)
    }
}

fn micros_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// A bucket's state as the database left it, and the wait when it refused the request.
fn token_state(
    row: &Charged,
    bucket: &Bucket,
    name: &'static str,
    window: Duration,
) -> (PolicyState, Option<Duration>) {
    let until_full = micros_between(row.at, row.tat);
    let tolerance = bucket.emission_us * i64::from(bucket.burst - 1);
    let remaining = if row.allowed {
        // What a full bucket holds, less what has not come back yet.
        let until_full = until_full.max(0);
        let missing =
            until_full / bucket.emission_us + i64::from(until_full % bucket.emission_us > 0);
        u32::try_from((i64::from(bucket.burst) - missing).max(0)).unwrap_or(0)
    } else {
        0
    };
    let state = PolicyState {
        name,
        quota: u32::try_from(bucket.burst).unwrap_or(0),
        window_secs: window.as_secs(),
        remaining,
        reset: from_micros(until_full),
    };
    let wait = (!row.allowed).then(|| retry_after(from_micros(until_full - tolerance)));
    (state, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32, full: u32, not_modified: u32) -> ApiLimiter {
        ApiLimiter::new(
            &RateLimitSettings {
                per_minute,
                burst,
                full_cost: full,
                not_modified_cost: not_modified,
                ..RateLimitSettings::default()
            },
            &Metrics::new().expect("metrics"),
        )
    }

    #[test]
    fn a_full_answer_that_the_bucket_cannot_pay_is_owed_and_paid_by_the_next_request() {
        // One point a minute: nothing comes back during the test.
        let api = limiter(1, 6, 4, 1);
        let key = Uuid::now_v7();
        let first = api.admit(key).expect("enabled").expect("admitted");
        assert_eq!(api.settle(first, false).expect("state").remaining, 2);
        // 2 points left: admitted (1), then the full answer owes 3 it cannot pay at once.
        let second = api.admit(key).expect("enabled").expect("admitted");
        let state = api.settle(second, false).expect("state");
        assert_eq!(state.remaining, 0);
        // 1 point left, but 3 owed: 4 needed, refused.
        let refused = api.admit(key).expect("enabled").expect_err("refused");
        assert!(refused.retry_after >= Duration::from_secs(1));
        assert_eq!(refused.state.remaining, 0);
    }

    #[test]
    fn a_304_costs_its_own_price() {
        let api = limiter(1, 4, 4, 1);
        let key = Uuid::now_v7();
        for left in (0..4).rev() {
            let admitted = api.admit(key).expect("enabled").expect("admitted");
            assert_eq!(api.settle(admitted, true).expect("state").remaining, left);
        }
        assert!(api.admit(key).expect("enabled").is_err());
        assert!(api.admit(Uuid::now_v7()).expect("enabled").is_ok());
    }

    #[test]
    fn no_rate_or_no_burst_is_no_limit() {
        assert!(!limiter(0, 10, 4, 1).is_enabled());
        assert!(!limiter(10, 0, 4, 1).is_enabled());
    }

    #[test]
    fn headers_are_structured_field_lists() {
        let mut headers = HeaderMap::new();
        let state = |name, remaining| PolicyState {
            name,
            quota: 10,
            window_secs: 60,
            remaining,
            reset: Duration::from_millis(5_100),
        };
        insert_headers(
            &mut headers,
            &[state("token-ip", 9), state("token-account", 3)],
        );
        assert_eq!(
            headers.get(RATELIMIT_POLICY).and_then(|v| v.to_str().ok()),
            Some("\"token-ip\";q=10;w=60, \"token-account\";q=10;w=60")
        );
        assert_eq!(
            headers.get(RATELIMIT).and_then(|v| v.to_str().ok()),
            Some("\"token-ip\";r=9;t=6, \"token-account\";r=3;t=6")
        );
    }

    #[test]
    fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
        use actix_web::test::TestRequest;
        let proxy: IpAddr = "10.0.0.2".parse().expect("ip");
        let request = |peer: &str| {
            TestRequest::default()
                .peer_addr(peer.parse().expect("socket address"))
                .insert_header(("X-Forwarded-For", "198.51.100.9, 203.0.113.5, 10.0.0.2"))
                .to_http_request()
        };
        // From an untrusted peer, the header is the client's own invention.
        assert_eq!(
            client_ip(&request("192.0.2.1:4000"), &[proxy]),
            "192.0.2.1".parse().ok()
        );
        assert_eq!(
            client_ip(&request("10.0.0.2:4000"), &[]),
            "10.0.0.2".parse().ok()
        );
        // From a trusted one, the rightmost hop it does not vouch for.
        assert_eq!(
            client_ip(&request("10.0.0.2:4000"), &[proxy]),
            "203.0.113.5".parse().ok()
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("192.0.2.7".parse().expect("ip")), "ip:192.0.2.7");
    }
}
