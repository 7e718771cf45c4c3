//! Settings from flags and environment. Secrets are wrapped so they never reach a log line.

use std::fmt;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Default database of `serve`, `migrate` and the other commands.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/lshub";

/// A string that prints as `[redacted]` in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

/// Database connection settings, shared by every command that touches the database.
#[derive(Debug, Clone, Args)]
pub struct DbSettings {
    /// PostgreSQL URL; the database is created if it does not exist.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Maximum connections in the pool.
    #[arg(long, env = "LSHUB_DB_POOL_SIZE", default_value_t = 10)]
    pub pool_size: u32,
    /// Seconds a request waits for a free connection before answering 503.
    #[arg(long, env = "LSHUB_DB_CHECKOUT_TIMEOUT", default_value_t = 3)]
    pub checkout_timeout_secs: u64,
    /// Server-side statement timeout, in seconds.
    #[arg(long, env = "LSHUB_DB_STATEMENT_TIMEOUT", default_value_t = 15)]
    pub statement_timeout_secs: u64,
    /// Milliseconds a pooled connection may sit idle before it is pinged at checkout (a dead
    /// one is replaced before a request sees it).
    #[arg(long, env = "LSHUB_DB_IDLE_CHECK_MS", default_value_t = 1000)]
    pub idle_check_ms: u64,
    /// Milliseconds the `LISTEN` connection waits before reconnecting after it dropped; the
    /// replica answers from the database meanwhile.
    #[arg(long, env = "LSHUB_LISTENER_RECONNECT_MS", default_value_t = 500)]
    pub listener_reconnect_ms: u64,
    /// Milliseconds a search page (`q`) may take in PostgreSQL before it is refused as too
    /// broad (422 `search_too_broad`): a common term is bounded, never a scan of the registry.
    #[arg(long, env = "LSHUB_SEARCH_TIMEOUT_MS", default_value_t = 500)]
    pub search_timeout_ms: u64,
    /// PostgreSQL streaming replicas that GETs read from, comma-separated (empty: every read
    /// goes to `DATABASE_URL`). Writes, and every read inside a write, go to the primary.
    #[arg(long, env = "LSHUB_DATABASE_READ_URL", value_delimiter = ',')]
    pub read_urls: Vec<String>,
    /// Milliseconds of staleness past which a replica is skipped: it must have replayed what
    /// the primary had written that long ago.
    #[arg(long, env = "LSHUB_READ_MAX_LAG_MS", default_value_t = 1000)]
    pub read_max_lag_ms: u64,
    /// Milliseconds a read waits for a replica to replay the caller's own last write before
    /// it goes to the primary instead.
    #[arg(long, env = "LSHUB_READ_WAIT_MS", default_value_t = 250)]
    pub read_wait_ms: u64,
}

impl DbSettings {
    /// Settings for `url` with the defaults above.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            database_url: url.into(),
            pool_size: 10,
            checkout_timeout_secs: 3,
            statement_timeout_secs: 15,
            idle_check_ms: 1000,
            listener_reconnect_ms: 500,
            search_timeout_ms: 500,
            read_urls: Vec::new(),
            read_max_lag_ms: 1000,
            read_wait_ms: 250,
        }
    }

    /// Pool checkout timeout.
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_secs(self.checkout_timeout_secs.max(1))
    }

    /// How long a pooled connection may sit idle before it is pinged at checkout.
    pub fn idle_check(&self) -> Duration {
        Duration::from_millis(self.idle_check_ms)
    }
}

/// Access-token and password settings.
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// HMAC key for access tokens (at least 32 bytes).
    #[arg(long, env = "LSHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// The key before the last rotation: its tokens keep verifying until they expire.
    #[arg(long, env = "LSHUB_JWT_PREVIOUS_SECRET", hide_env_values = true)]
    pub jwt_previous_secret: Option<Secret>,
    /// `iss` of issued tokens, required on presented ones.
    #[arg(long, env = "LSHUB_JWT_ISSUER", default_value = "lshub")]
    pub jwt_issuer: String,
    /// `aud` of issued tokens, required on presented ones.
    #[arg(long, env = "LSHUB_JWT_AUDIENCE", default_value = "lshub-api")]
    pub jwt_audience: String,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "LSHUB_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,
    /// Refresh-token lifetime in seconds (30 days by default).
    #[arg(long, env = "LSHUB_REFRESH_TOKEN_TTL", default_value_t = 2_592_000)]
    pub refresh_token_ttl: u64,
    /// Seconds a one-time set-password token works after it was issued (72 h by default).
    #[arg(long, env = "LSHUB_SET_PASSWORD_TOKEN_TTL", default_value_t = 259_200)]
    pub set_password_token_ttl: u64,
    /// How many password hashes may run at once (Argon2 is deliberately expensive).
    #[arg(long, env = "LSHUB_PASSWORD_HASH_CONCURRENCY", default_value_t = 2)]
    pub password_hash_concurrency: usize,
}

/// HTTP server settings.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address to listen on.
    #[arg(long, env = "LSHUB_BIND", default_value = "0.0.0.0:8080")]
    pub bind: String,
    /// Origins allowed by CORS, comma-separated (empty: no cross-origin access).
    #[arg(long, env = "LSHUB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Whole-request timeout in seconds, body included.
    #[arg(long, env = "LSHUB_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds in-flight requests may take to finish after SIGTERM or SIGINT; then the
    /// process exits regardless.
    #[arg(long, env = "LSHUB_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// CSV exports that may stream at once in this process (more answer 429).
    #[arg(long, env = "LSHUB_MAX_CSV_EXPORTS", default_value_t = 4)]
    pub max_csv_exports: usize,
    /// Worker threads (default: one per core).
    #[arg(long, env = "LSHUB_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds a POST's answer is kept for a retry with the same `Idempotency-Key`.
    #[arg(long, env = "LSHUB_IDEMPOTENCY_TTL", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,
    /// The bearer token `/metrics` requires. Unset, `/metrics` is open to anyone who reaches
    /// the listener: then keep its path off the public load balancer.
    #[arg(long, env = "LSHUB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Rate limits.
    #[command(flatten)]
    pub rate_limits: RateLimitSettings,
    /// Webhook deliveries.
    #[command(flatten)]
    pub webhooks: WebhookSettings,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            cors_origins: Vec::new(),
            request_timeout_secs: 30,
            shutdown_timeout_secs: 30,
            max_csv_exports: 4,
            workers: None,
            idempotency_ttl_secs: 86_400,
            metrics_token: None,
            rate_limits: RateLimitSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

/// Webhook deliveries: how this replica delivers the change feed to subscriptions.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Allow webhook targets on loopback, private, link-local, shared (CGNAT) and metadata
    /// addresses, and plain `http://` (tests, receivers on the same premises).
    #[arg(
        long = "webhook-allow-private-targets",
        env = "LSHUB_WEBHOOK_ALLOW_PRIVATE_TARGETS",
        action = clap::ArgAction::Set,
        default_value_t = false
    )]
    pub allow_private_targets: bool,
    /// Seconds before each retry of a failed delivery, comma-separated (Standard Webhooks'
    /// schedule by default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), each with
    /// up to 20 % jitter. After the last retry fails, the subscription is disabled.
    #[arg(
        long = "webhook-retry-schedule",
        env = "LSHUB_WEBHOOK_RETRY_SCHEDULE",
        value_delimiter = ',',
        default_values_t = WebhookSettings::RETRY_SCHEDULE
    )]
    pub retry_schedule_secs: Vec<f64>,
    /// Seconds a delivery may take, connection included.
    #[arg(
        long = "webhook-timeout",
        env = "LSHUB_WEBHOOK_TIMEOUT",
        default_value_t = 10.0
    )]
    pub timeout_secs: f64,
    /// Deliveries this replica makes at once, each to another subscription (0: this replica
    /// delivers nothing, and leaves it to the others).
    #[arg(
        id = "webhook_workers",
        long = "webhook-workers",
        env = "LSHUB_WEBHOOK_WORKERS",
        default_value_t = 4
    )]
    pub workers: usize,
    /// Milliseconds an idle delivery worker waits before it looks for due events again.
    #[arg(
        long = "webhook-poll-ms",
        env = "LSHUB_WEBHOOK_POLL_MS",
        default_value_t = 500
    )]
    pub poll_ms: u64,
}

impl WebhookSettings {
    /// Standard Webhooks' retry schedule, in seconds.
    pub const RETRY_SCHEDULE: [f64; 9] = [
        5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0,
    ];
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_schedule_secs: Self::RETRY_SCHEDULE.to_vec(),
            timeout_secs: 10.0,
            // One loop, looking often: what a test (or a single-replica setup) needs.
            workers: 1,
            poll_ms: 100,
        }
    }
}

/// Rate limits: per principal on the API (in memory, per replica), per client IP and per
/// account at the token endpoint (in PostgreSQL, shared by every replica). 0 disables a limit.
///
/// The API's budget is counted in points: a full answer costs `full_cost`, a `304 Not
/// Modified` costs `not_modified_cost`, so a dashboard that revalidates pays less.
#[derive(Debug, Clone, Args)]
pub struct RateLimitSettings {
    /// Points a principal regains per minute on the API (0: no API limit).
    #[arg(long = "rate-limit-per-minute", env = "LSHUB_RATE_LIMIT_PER_MINUTE", default_value_t = RateLimitSettings::PER_MINUTE)]
    pub per_minute: u32,
    /// Points a principal may spend at once (0: no API limit).
    #[arg(long = "rate-limit-burst", env = "LSHUB_RATE_LIMIT_BURST", default_value_t = RateLimitSettings::BURST)]
    pub burst: u32,
    /// Points a full answer (anything but a 304) costs.
    #[arg(long = "rate-limit-full-cost", env = "LSHUB_RATE_LIMIT_FULL_COST", default_value_t = RateLimitSettings::FULL_COST)]
    pub full_cost: u32,
    /// Points a `304 Not Modified` costs (at least 1, at most the full cost).
    #[arg(long = "rate-limit-not-modified-cost", env = "LSHUB_RATE_LIMIT_NOT_MODIFIED_COST", default_value_t = RateLimitSettings::NOT_MODIFIED_COST)]
    pub not_modified_cost: u32,
    /// Token requests per client IP per window (0: none).
    #[arg(long = "token-rate-limit-per-ip", env = "LSHUB_TOKEN_RATE_LIMIT_PER_IP", default_value_t = RateLimitSettings::TOKEN_PER_IP)]
    pub token_per_ip: u32,
    /// Token requests per username (password grant) or client id (client credentials) per
    /// window (0: none).
    #[arg(long = "token-rate-limit-per-username", env = "LSHUB_TOKEN_RATE_LIMIT_PER_USERNAME", default_value_t = RateLimitSettings::TOKEN_PER_USERNAME)]
    pub token_per_username: u32,
    /// The token limits' window, in seconds.
    #[arg(long = "token-rate-limit-window", env = "LSHUB_TOKEN_RATE_LIMIT_WINDOW", default_value_t = RateLimitSettings::TOKEN_WINDOW_SECS)]
    pub token_window_secs: u32,
    /// Proxies whose `X-Forwarded-For` is believed (exact addresses, comma-separated). Empty:
    /// the client IP is the peer address, and the header is ignored.
    #[arg(long, env = "LSHUB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl RateLimitSettings {
    /// 600 full answers a minute, or 2,400 revalidations.
    pub const PER_MINUTE: u32 = 2400;
    /// A minute's worth at once: a dashboard opening many panels is not refused.
    pub const BURST: u32 = 2400;
    /// A full answer's points.
    pub const FULL_COST: u32 = 4;
    /// A 304's points.
    pub const NOT_MODIFIED_COST: u32 = 1;
    /// Token requests per IP per window (an office behind one NAT logs in now and then).
    pub const TOKEN_PER_IP: u32 = 30;
    /// Token requests per account per window: a person mistypes a few times, a guesser is
    /// held to this.
    pub const TOKEN_PER_USERNAME: u32 = 10;
    /// The token limits' window.
    pub const TOKEN_WINDOW_SECS: u32 = 60;
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_minute: Self::PER_MINUTE,
            burst: Self::BURST,
            full_cost: Self::FULL_COST,
            not_modified_cost: Self::NOT_MODIFIED_COST,
            token_per_ip: Self::TOKEN_PER_IP,
            token_per_username: Self::TOKEN_PER_USERNAME,
            token_window_secs: Self::TOKEN_WINDOW_SECS,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Everything the running service reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Database.
    pub db: DbSettings,
    /// Tokens and passwords; `jwt_secret` is resolved (demo mode fills it in).
    pub auth: AuthSettings,
    /// HTTP server.
    pub http: HttpSettings,
}

/// The smallest HMAC key `serve` accepts (RFC 7518 §3.2: at least the hash output size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
