//! Disabled users and revoked API clients, refused on every replica within a second and
//! without a database round trip per request: an in-memory set, loaded from the tables and
//! kept current by PostgreSQL `NOTIFY` on `lshub_revocations` (sent by triggers when a change
//! commits), which the process's one listener ([`crate::db::listener`]) follows.
//!
//! When the listener's connection drops, the set is unknown until it has reconnected and
//! reloaded from the tables: meanwhile every authenticated request is 503 (a missed
//! notification never leaves a revoked principal admitted).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{PoisonError, RwLock};

use diesel::{PgConnection, QueryResult};
use uuid::Uuid;

use crate::db::listener::Follower;
use crate::error::ApiError;
use crate::models::{client, user};

/// The channel the triggers announce on (`+<id>` refused, `-<id>` admitted again).
const CHANNEL: &str = "lshub_revocations";

/// The revoked principals, `None` while unknown.
#[derive(Debug, Default)]
pub struct Revocations {
    revoked: RwLock<Option<HashSet<Uuid>>>,
}

impl Revocations {
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
}

impl Follower for Revocations {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    fn reload(&self, conn: &mut PgConnection) -> QueryResult<()> {
        let mut revoked: HashSet<Uuid> = user::disabled_ids(conn)?.into_iter().collect();
        revoked.extend(client::revoked_ids(conn)?);
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = Some(revoked);
        Ok(())
    }

    fn notified(&self, _conn: &mut PgConnection, payloads: &[String]) -> QueryResult<()> {
        payloads.iter().for_each(|p| self.apply(p));
        Ok(())
    }

    fn forget(&self) {
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}
