//! Disabled users and revoked API clients, refused on every replica within a second and
//! without a database round trip per request: an in-memory set, loaded from the tables and
//! kept current by PostgreSQL `NOTIFY` on `lshub_revocations` (sent by triggers when a change
//! commits), which a listener thread polls.
//!
//! When the listener's connection drops, the set is unknown until it has reconnected and
//! reloaded from the tables: meanwhile every authenticated request is 503 (a missed
//! notification never leaves a revoked principal admitted).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use uuid::Uuid;

use crate::error::ApiError;
use crate::models::{client, user};

/// The channel the triggers announce on (`+<id>` refused, `-<id>` admitted again).
const CHANNEL: &str = "lshub_revocations";
/// How often the listener asks for pending notifications: the bound on a revocation's delay.
pub const POLL: Duration = Duration::from_millis(200);
/// How long the listener waits before reconnecting.
const RECONNECT: Duration = Duration::from_millis(500);

/// The revoked principals, `None` while unknown.
#[derive(Debug, Default)]
pub struct Revocations {
    revoked: RwLock<Option<HashSet<Uuid>>>,
}

impl Revocations {
    /// The set for `database_url`, loaded now when the database answers, and kept current by a
    /// listener thread that ends when the set is dropped.
    pub fn start(database_url: &str) -> Arc<Self> {
        let this = Arc::new(Self::default());
        let database_url = &listener_url(database_url);
        let mut conn = crate::db::connect(database_url).ok();
        if let Some(c) = conn.as_mut() {
            if crate::db::listen(c, CHANNEL).is_err() || this.reload(c).is_err() {
                conn = None;
            }
        }
        let weak = Arc::downgrade(&this);
        let url = database_url.to_owned();
        std::thread::Builder::new()
            .name("lshub-revocations".into())
            .spawn(move || listen(&weak, &url, conn))
            .map_err(|e| tracing::error!(error = %e, "cannot start the revocation listener"))
            .ok();
        this
    }

    /// 401 when `id` is revoked; 503 while the set is unknown.
    pub fn check(&self, id: Uuid) -> Result<(), ApiError> {
        match &*self.revoked.read().unwrap_or_else(PoisonError::into_inner) {
            Some(revoked) if revoked.contains(&id) => Err(ApiError::invalid_token(
                "this user is disabled, or this client revoked",
            )),
            Some(_) => Ok(()),
            None => Err(ApiError::unavailable(
                "the service is reloading who may call it; retry",
            )),
        }
    }

    fn reload(&self, conn: &mut diesel::PgConnection) -> diesel::QueryResult<()> {
        let mut revoked: HashSet<Uuid> = user::disabled_ids(conn)?.into_iter().collect();
        revoked.extend(client::revoked_ids(conn)?);
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = Some(revoked);
        Ok(())
    }

    fn apply(&self, payload: &str) {
        let (admit, id) = match (payload.strip_prefix('-'), payload.strip_prefix('+')) {
            (Some(id), _) => (true, id),
            (_, Some(id)) => (false, id),
            _ => (false, ""),
        };
        let Ok(id) = Uuid::from_str(id) else {
            tracing::warn!(payload, "a revocation notification that names no id");
            return;
        };
        let mut guard = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(revoked) = guard.as_mut() {
            if admit {
                revoked.remove(&id);
            } else {
                revoked.insert(id);
            }
        }
    }

    fn forget(&self) {
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The database URL with the listener's own `application_name`, so an operator (or a test)
/// sees which connection it is in `pg_stat_activity`.
fn listener_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed
                .query_pairs_mut()
                .append_pair("application_name", "lshub-revocations");
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// Polls for notifications while the set lives; on a broken connection, forgets the set,
/// reconnects, listens again and reloads.
fn listen(weak: &Weak<Revocations>, url: &str, mut conn: Option<diesel::PgConnection>) {
    loop {
        let Some(set) = weak.upgrade() else { return };
        let Some(c) = conn.as_mut() else {
            drop(set);
            std::thread::sleep(RECONNECT);
            conn = crate::db::connect(url).ok().and_then(|mut c| {
                let set = weak.upgrade()?;
                (crate::db::listen(&mut c, CHANNEL).is_ok() && set.reload(&mut c).is_ok())
                    .then_some(c)
            });
            if conn.is_some() {
                tracing::info!("revocation listener connected; the set is loaded");
            }
            continue;
        };
        if crate::db::ping_connection(c).is_err() {
            tracing::warn!("revocation listener lost its connection; refusing until reloaded");
            set.forget();
            conn = None;
            continue;
        }
        for notification in c.notifications_iter() {
            match notification {
                Ok(n) => set.apply(&n.payload),
                Err(e) => tracing::warn!(error = %e, "revocation notification unreadable"),
            }
        }
        drop(set);
        std::thread::sleep(POLL);
    }
}
