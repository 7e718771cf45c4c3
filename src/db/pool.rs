//! The connection pool, and how it heals after the database went away.
//!
//! A pooled connection can be dead without knowing it: PostgreSQL restarted, a managed
//! database failed over, a proxy dropped an idle socket. Two rules keep that from reaching
//! clients:
//! - a connection that sat idle past a short threshold is pinged at checkout, and a dead one is
//!   replaced before the request sees it (`Manager::is_valid`);
//! - a connection that fails its first statement of a checkout with a connection-level error
//!   (and that statement could not have written anything) lets [`super::run`] try once more on a
//!   fresh connection; and since one dead connection means its siblings from before are likely
//!   dead too (a restart kills them all), every connection given back before that moment is
//!   pinged at its next checkout, so the retry does not draw another corpse.
//!
//! Each connection carries a [`Probe`] as its diesel instrumentation: it sees every statement,
//! so the pool knows when a connection was last returned and whether its first statement of the
//! current checkout failed because the connection was gone.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, HandleEvent, ManageConnection, Pool};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::Connection as _;

use crate::config::DbSettings;

/// The connection pool type.
pub type PgPool = Pool<Manager>;

/// diesel's manager, with a ping for connections idle past `idle_check` and a connection-level
/// failure counted as breaking the connection.
#[derive(Debug)]
pub struct Manager {
    inner: ConnectionManager<PgConnection>,
    idle_check: Duration,
    /// The pool's clock origin, for `lost_at`.
    epoch: Instant,
    /// Nanoseconds after `epoch` when a connection was last found dead: connections given back
    /// before then are suspects.
    lost_at: AtomicU64,
}

impl Manager {
    fn since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        let mut conn = self.inner.connect()?;
        conn.set_instrumentation(Probe::default());
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        let lost_at = self.lost_at.load(Ordering::Relaxed);
        let suspect = probe(conn).is_none_or(|p| {
            p.returned.elapsed() >= self.idle_check || self.since_epoch(p.returned) < lost_at
        });
        if suspect {
            conn.batch_execute("SELECT 1")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        if let Some(probe) = probe(conn) {
            probe.checked_out();
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        // diesel only counts a broken transaction; a socket PostgreSQL closed leaves an
        // autocommit connection looking healthy, and the pool would hand it out again.
        if probe(conn).is_some_and(|p| p.lost) {
            self.lost_at
                .fetch_max(self.since_epoch(Instant::now()), Ordering::Relaxed);
            return true;
        }
        self.inner.has_broken(conn)
    }
}

fn probe(conn: &mut PgConnection) -> Option<&mut Probe> {
    conn.instrumentation().downcast_mut::<Probe>()
}

/// What the pool needs to know of one connection's statements since its checkout.
#[derive(Debug)]
pub struct Probe {
    /// When the connection was last given back (or opened).
    returned: Instant,
    /// Statements started since checkout.
    started: u32,
    /// A statement failed because the connection was gone.
    lost: bool,
    /// ... and it was the first statement since checkout, and could not have changed anything
    /// (`BEGIN` or a `SELECT`), so failing it left nothing half-done.
    lost_unused: bool,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            returned: Instant::now(),
            started: 0,
            lost: false,
            lost_unused: false,
        }
    }
}

impl Probe {
    fn checked_out(&mut self) {
        self.started = 0;
        self.lost_unused = false;
    }
}

impl Instrumentation for Probe {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started += 1,
            // The statement's SQL is read only here, when it failed: diesel renders it (every
            // bind and the whole text) to show it, which cost a tenth of a point read's
            // instructions when it was read at every checkout's first statement (issue 12).
            InstrumentationEvent::FinishQuery {
                query,
                error: Some(error),
                ..
            } if connection_lost(error) => {
                self.lost = true;
                self.lost_unused = self.started == 1 && starts_harmless(query);
            }
            _ => {}
        }
    }
}

/// Whether the statement's SQL begins with `BEGIN` or `SELECT`, read from its `Display`
/// without allocating (this runs only for a statement that failed for a lost connection).
fn starts_harmless(query: &dyn std::fmt::Display) -> bool {
    struct Head {
        bytes: [u8; 6],
        len: usize,
    }
    impl std::fmt::Write for Head {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for b in s.bytes() {
                if self.len == self.bytes.len() {
                    // Enough seen: stop formatting the rest of the statement.
                    return Err(std::fmt::Error);
                }
                if self.len == 0 && b.is_ascii_whitespace() {
                    continue;
                }
                self.bytes[self.len] = b.to_ascii_uppercase();
                self.len += 1;
            }
            Ok(())
        }
    }
    let mut head = Head {
        bytes: [0; 6],
        len: 0,
    };
    let _ = write!(head, "{query}");
    let head = &head.bytes[..head.len];
    head.starts_with(b"BEGIN") || head.starts_with(b"SELECT")
}

fn connection_lost(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

/// The pooled connection after its work: marks when it went back, and whether the work failed
/// only because the connection had died before it did anything.
pub(super) fn give_back(conn: &mut PgConnection) -> bool {
    match probe(conn) {
        Some(probe) => {
            probe.returned = Instant::now();
            probe.lost_unused
        }
        None => false,
    }
}

/// Whether a statement of the connection's current checkout failed because the connection
/// was gone (it will not go back to the pool).
pub(super) fn was_lost(conn: &mut PgConnection) -> bool {
    probe(conn).is_some_and(|p| p.lost)
}

/// Sets per-session limits on every new physical connection (not on every checkout).
#[derive(Debug, Clone, Copy)]
struct SessionSettings {
    statement_timeout_ms: u64,
    search_timeout_ms: u64,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
             SET lock_timeout = {}; \
             SET pg_trgm.word_similarity_threshold = 0.5; SET timezone = 'UTC'; \
             SET {} = '{}ms'",
            self.statement_timeout_ms,
            self.statement_timeout_ms * 2,
            // A write waiting on a row lock gives up well inside the whole-request timeout,
            // so it cannot commit after its client has been told 503.
            (self.statement_timeout_ms / 3).max(1000),
            super::list::SEARCH_TIMEOUT_SETTING,
            self.search_timeout_ms.max(1)
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pool that opens connections lazily, so the service starts even if the database blips.
/// `events` hears of every checkout, wherever it is made (the metrics time them).
pub fn build_pool(settings: &DbSettings, events: Box<dyn HandleEvent>) -> PgPool {
    let manager = Manager {
        inner: ConnectionManager::new(super::with_connection_params(&settings.database_url)),
        idle_check: settings.idle_check(),
        epoch: Instant::now(),
        lost_at: AtomicU64::new(0),
    };
    Pool::builder()
        .max_size(settings.pool_size.max(1))
        .min_idle(Some(0))
        // A checkout that cannot be served quickly becomes 503 + Retry-After, not a hung request.
        .connection_timeout(settings.checkout_timeout())
        // `is_valid` pings only connections idle past the threshold: a busy pool pays nothing.
        .test_on_check_out(true)
        .idle_timeout(Some(Duration::from_secs(300)))
        .event_handler(events)
        .connection_customizer(Box::new(SessionSettings {
            statement_timeout_ms: settings.statement_timeout_secs.max(1) * 1000,
            search_timeout_ms: settings.search_timeout_ms,
        }))
        .build_unchecked(manager)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_begin_and_select_count_as_harmless_first_statements() {
        for sql in [
            "BEGIN",
            "  select 1",
            "SELECT \"companies\".\"id\" FROM",
            "begin isolation",
        ] {
            assert!(starts_harmless(&sql), "{sql}");
        }
        for sql in [
            "INSERT INTO x",
            "UPDATE x",
            "WITH a AS (DELETE",
            "SET x = 1",
            "",
            "SEL",
        ] {
            assert!(!starts_harmless(&sql), "{sql}");
        }
    }

    #[test]
    fn only_connection_level_errors_count_as_lost() {
        let info = || Box::new(String::from("gone")) as Box<_>;
        assert!(connection_lost(&DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            info()
        )));
        assert!(connection_lost(&DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            info()
        )));
        assert!(!connection_lost(&DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            info()
        )));
        assert!(!connection_lost(&DieselError::NotFound));
    }
}
