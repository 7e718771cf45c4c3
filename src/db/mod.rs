//! The database: pool, the one way into it (`run` / `transaction`), migrations, creation.

pub mod error;
pub mod list;
pub mod listener;
pub mod pool;
pub mod replicas;
pub mod schema;

pub use error::StoreError;
pub use pool::{build_pool, PgPool};
pub use replicas::{ReadReplicas, Source};

use std::time::Duration;

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use rand::Rng;

use crate::error::ApiError;

/// The current time at the database's precision (microseconds), so a timestamp written into
/// an audit event's JSON equals the one stored in a column.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// Refreshes the planner's statistics of the registry's tables after a bulk load, or the
/// planner sorts whole tables for keyset pages until autovacuum gets round to it (measured:
/// 180 ms a 1,000-row batch instead of 8 ms). VACUUM too: a bulk insert leaves the GIN
/// indexes' entries in their pending lists, which the planner prices as a scan of every
/// pending page, so a search read the whole table (tests/api/plans.rs: 5,532 pending name
/// trigrams at 20,000 companies, a bitmap scan costed 1,620 against 884 for the table).
/// VACUUM cannot run inside a transaction: call it after the load commits.
pub fn vacuum_analyze_registry(conn: &mut diesel::PgConnection) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(
        "VACUUM (ANALYZE) organisations, companies, irccs, universities, university_rankings, partners, audit_events",
    )
}

/// A round trip that touches no table: whether the database answers at all (and, on a
/// `LISTEN`ing connection, what notifications are pending).
pub fn ping(conn: &mut PgConnection) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// The SQL migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Key of the advisory lock that serialises migrations across replicas starting together.
const MIGRATION_LOCK_KEY: i64 = 0x6c73_6875_625f_6d67;

/// How often a transaction that hit a serialization failure or deadlock is tried in all.
const TRANSACTION_ATTEMPTS: u32 = 4;

/// `url` with libpq connect timeout and TCP keepalives added unless the URL sets them; and,
/// for a server on this machine's loopback, no TLS unless the URL asks for it.
///
/// libpq's default `sslmode=prefer` puts TLS on a loopback connection, where it protects
/// nothing and cost a third of point-read throughput (measured, issue 12). A server elsewhere
/// keeps libpq's default; an explicit `sslmode` always wins.
pub fn with_connection_params(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    // `postgres:` is not a special scheme to the URL standard, so its host stays text.
    let loopback = parsed.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    {
        let mut pairs = parsed.query_pairs_mut();
        for (key, value) in [
            ("connect_timeout", "5"),
            ("keepalives", "1"),
            ("keepalives_idle", "30"),
            ("keepalives_interval", "10"),
            ("keepalives_count", "3"),
            ("application_name", "lshub"),
        ] {
            if !present.iter().any(|p| p == key) {
                pairs.append_pair(key, value);
            }
        }
        if loopback && !present.iter().any(|p| p == "sslmode") {
            pairs.append_pair("sslmode", "disable");
        }
    }
    parsed.to_string()
}

/// The URL with its password removed, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(None);
            }
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<unparsable database URL>".into(),
    }
}

/// Why the database could not be prepared at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {url}: {reason}. Start one with `docker compose up -d db`, or set DATABASE_URL to a reachable server")]
    Connect { url: String, reason: String },
    /// A statement failed while creating or migrating the database.
    #[error("database setup failed on {url}: {reason}")]
    Setup { url: String, reason: String },
}

/// A single connection (commands and start-up work).
pub fn connect(url: &str) -> Result<PgConnection, SetupError> {
    PgConnection::establish(&with_connection_params(url)).map_err(|e| SetupError::Connect {
        url: redact_url(url),
        reason: e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
    })
}

/// Creates the database named in `url` if it does not exist (through the `postgres` database).
pub fn ensure_database(url: &str) -> Result<(), SetupError> {
    let setup = |e: diesel::result::Error| SetupError::Setup {
        url: redact_url(url),
        reason: e.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| SetupError::Setup {
        url: redact_url(url),
        reason: e.to_string(),
    })?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() || name == "postgres" {
        return Ok(());
    }
    // Most often it exists: connecting to it settles that, and works where this role may not
    // use the `postgres` database.
    if PgConnection::establish(&with_connection_params(url)).is_ok() {
        return Ok(());
    }
    let mut admin_url = parsed.clone();
    admin_url.set_path("/postgres");
    // Name the URL the operator configured, not the maintenance database we reach it through.
    let mut conn = connect(admin_url.as_str()).map_err(|e| match e {
        SetupError::Connect { reason, .. } => SetupError::Connect {
            url: redact_url(url),
            reason,
        },
        other => other,
    })?;
    if database_exists(&mut conn, &name).map_err(setup)? {
        return Ok(());
    }
    let quoted = name.replace('"', "\"\"");
    match conn.batch_execute(&format!("CREATE DATABASE \"{quoted}\"")) {
        Ok(()) => {
            tracing::info!(database = %name, "created database");
            Ok(())
        }
        // 42P04: another replica created it between our check and our CREATE.
        Err(e) if database_exists(&mut conn, &name).unwrap_or(false) => {
            tracing::debug!(error = %e, "database created concurrently");
            Ok(())
        }
        Err(e) => Err(setup(e)),
    }
}

fn database_exists(conn: &mut PgConnection, name: &str) -> QueryResult<bool> {
    diesel::select(
        diesel::dsl::sql::<diesel::sql_types::Bool>(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = ",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .sql(")"),
    )
    .get_result(conn)
}

/// Applies pending migrations under an advisory lock, so replicas may start at once.
pub fn migrate(url: &str) -> Result<usize, SetupError> {
    let setup = |reason: String| SetupError::Setup {
        url: redact_url(url),
        reason,
    };
    let mut conn = connect(url)?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .map_err(|e| setup(e.to_string()))?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len());
    let unlock = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    let applied = result.map_err(|e| setup(e.to_string()))?;
    unlock.map_err(|e| setup(e.to_string()))?;
    Ok(applied)
}

/// Runs `f` with a pooled connection on the blocking pool, never on an async worker.
///
/// A pool checkout timeout becomes 503 with `Retry-After`; the caller's tracing span follows
/// the work onto the blocking thread. If the connection turns out to have died before `f`'s
/// first statement reached the database (PostgreSQL restarted while it sat in the pool), `f`
/// runs once more on a fresh connection: nothing of it can have happened.
pub async fn run<F, T>(pool: &PgPool, mut f: F) -> Result<T, ApiError>
where
    F: FnMut(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    blocking(move || on_primary(&pool, &mut f)).await
}

/// Who reads, for [`read`]: the replicas this process reads from, and the caller, whose own
/// writes its reads must see.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The configured replicas (none: the primary answers).
    pub replicas: std::sync::Arc<ReadReplicas>,
    /// The caller's id (a user or a client), when known.
    pub caller: Option<uuid::Uuid>,
}

/// [`run`] for a read that a streaming replica may answer: on a replica that has replayed
/// the caller's last write and is within the lag bound ([`replicas`]), else on the primary.
/// `f` is told which, since an answer tagged by the change counter must read the counter
/// where it reads the body.
pub async fn read<F, T>(pool: &PgPool, reader: &Reader, mut f: F) -> Result<T, ApiError>
where
    F: FnMut(&mut PgConnection, Source) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    if !reader.replicas.any() {
        return run(pool, move |conn| f(conn, Source::Primary)).await;
    }
    let pool = pool.clone();
    let Reader { replicas, caller } = reader.clone();
    blocking(move || match replicas.read(caller, &mut f) {
        Some(answer) => answer,
        None => on_primary(&pool, &mut |conn| f(conn, Source::Primary)),
    })
    .await
}

/// `work` on the blocking pool, under the caller's request id (for the log lines it writes).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let request_id = crate::telemetry::current_request_id();
    web::block(move || match request_id {
        Some(id) => crate::telemetry::with_request_id_sync(id, work),
        None => work(),
    })
    .await
    .map_err(ApiError::internal)?
}

/// `f` on a primary connection, once more on a fresh one if the first had died unused.
fn on_primary<T>(
    pool: &PgPool,
    f: &mut dyn FnMut(&mut PgConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut attempt = |pool: &PgPool| {
        let mut conn = pool.get().map_err(|e| {
            tracing::warn!(error = %e, "database pool checkout failed");
            ApiError::unavailable("the database is unavailable; retry shortly")
        })?;
        let result = f(&mut conn);
        let died_unused = pool::give_back(&mut conn);
        Ok::<_, ApiError>((result, died_unused))
    };
    match attempt(pool)? {
        (Err(_), true) => {
            tracing::info!("pooled connection had died before use; retrying on a fresh one");
            attempt(pool)?.0
        }
        (result, _) => result,
    }
}

/// Runs `f` in one transaction (via [`run`]), retrying it on serialization failures and
/// deadlocks with jittered back-off, then answering 503.
pub async fn transaction<F, T>(pool: &PgPool, mut f: F) -> Result<T, ApiError>
where
    F: FnMut(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |conn| {
        let mut attempt = 1;
        loop {
            match conn.transaction(&mut f) {
                Err(ApiError::Contention) if attempt < TRANSACTION_ATTEMPTS => {
                    let jitter = rand::thread_rng().gen_range(0..20 * u64::from(attempt));
                    std::thread::sleep(Duration::from_millis(10 * u64::from(attempt) + jitter));
                    attempt += 1;
                }
                other => return other,
            }
        }
    })
    .await
}

diesel::define_sql_function! {
    /// The folded form names, titles and searches are compared in (lower case, no accents,
    /// single spaces, one dash): the migrations' `lshub_fold`, which the `*_key` columns and
    /// their unique indexes are built from.
    fn lshub_fold(value: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Subscribes `conn` to `channel` (one of our constants, never input): its notifications then
/// arrive with the connection's next round trip (`PgConnection::notifications_iter`).
pub fn listen(conn: &mut diesel::PgConnection, channel: &'static str) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(&format!("LISTEN {channel}"))
}

#[cfg(test)]
mod tests {
    use super::with_connection_params;
    use crate::telemetry::{current_request_id, with_request_id};

    /// The database's log lines are written on the blocking pool, under the request's id.
    #[actix_web::test]
    async fn work_on_the_blocking_pool_keeps_the_callers_request_id() {
        let inside = with_request_id("req-7".into(), super::blocking(|| Ok(current_request_id())));
        assert_eq!(inside.await.expect("ran").as_deref(), Some("req-7"));
        let outside = super::blocking(|| Ok(current_request_id())).await;
        assert_eq!(outside.expect("ran"), None);
    }

    fn param(url: &str, key: &str) -> Option<String> {
        url::Url::parse(&with_connection_params(url))
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    #[test]
    fn loopback_servers_get_no_tls_unless_the_url_asks() {
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
        ] {
            assert_eq!(param(url, "sslmode").as_deref(), Some("disable"), "{url}");
        }
        assert_eq!(
            param("postgres://u@127.0.0.1/db?sslmode=require", "sslmode").as_deref(),
            Some("require")
        );
        assert_eq!(param("postgres://u@db.example.org/db", "sslmode"), None);
        assert_eq!(param("postgres://u@10.0.0.7/db", "sslmode"), None);
    }
}
