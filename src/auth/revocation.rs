//! Disabled users and revoked API clients, refused on every replica within a second and
//! without a database round trip per request: an in-memory set, loaded from the tables and
//! kept current by PostgreSQL `NOTIFY` on `lshub_revocations` (sent by triggers when a change
//! commits), which the process's one listener ([`crate::db::listener`]) follows.
//!
//! When the listener's connection drops, the set is unknown until it has reconnected and
//! reloaded from the tables: meanwhile each authenticated request reads its own principal's
//! row ([`read_while_unknown`], one primary-key query), so a notification missed meanwhile
//! never leaves a revoked principal admitted, and nobody is refused for the listener's sake.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{PoisonError, RwLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use diesel::{PgConnection, QueryResult};
use uuid::Uuid;

use super::{Principal, PrincipalKind};
use crate::db::listener::Follower;
use crate::db::{self, PgPool};
use crate::error::ApiError;
use crate::models::{client, user};

/// The channel the triggers announce on (`+<id>` refused, `-<id>` admitted again).
const CHANNEL: &str = "lshub_revocations";

/// The revoked principals, `None` while unknown.
#[derive(Debug, Default)]
pub struct Revocations {
    revoked: RwLock<Option<HashSet<Uuid>>>,
}

/// What the database said of one request's principal, read while the set was unknown.
#[derive(Debug, Clone, Copy)]
struct ReadForRequest {
    id: Uuid,
    revoked: bool,
}

impl Revocations {
    /// Whether the set is known (loaded, and followed by the listener).
    pub fn known(&self) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether `id` is revoked, as the set says; `None` while the set is unknown.
    pub fn revoked(&self, id: Uuid) -> Option<bool> {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|revoked| revoked.contains(&id))
    }

    /// 401 when `principal` is revoked, by what the database said for this request while the
    /// set was unknown ([`read_while_unknown`]), else by the set; 503 when neither knows (the
    /// database could not be read).
    pub fn check(&self, req: &HttpRequest, principal: &Principal) -> Result<(), ApiError> {
        let read = req
            .extensions()
            .get::<ReadForRequest>()
            .filter(|read| read.id == principal.id)
            .map(|read| read.revoked);
        match read.or_else(|| self.revoked(principal.id)) {
            Some(true) => Err(ApiError::invalid_token(
                "this user is disabled, or this client revoked",
            )),
            Some(false) => Ok(()),
            None => Err(ApiError::unavailable(
                "the service cannot tell who may call it; retry",
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

/// Whether `principal` is revoked, read from its table (one primary-key query).
fn revoked_in_database(conn: &mut PgConnection, principal: &Principal) -> QueryResult<bool> {
    match principal.kind {
        PrincipalKind::User => user::is_disabled(conn, principal.id),
        PrincipalKind::Client => client::is_revoked(conn, principal.id),
    }
}

/// While the set is unknown (the listener reconnecting), reads the request's principal's
/// revocation from the database before anything authenticates it, so that
/// [`Revocations::check`] answers as the set would have (the rate limiter, the first to
/// authenticate, runs inside this). With the set known it costs nothing; a request without a
/// valid token is left to the authentication that follows (401).
pub async fn read_while_unknown(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let unknown = req
        .app_data::<web::Data<Revocations>>()
        .is_some_and(|set| !set.known());
    if unknown {
        let principal = super::verified_principal(req.request()).ok();
        let pool = req.app_data::<web::Data<PgPool>>().cloned();
        if let (Some(principal), Some(pool)) = (principal, pool) {
            let id = principal.id;
            match db::run(&pool, move |conn| {
                Ok(revoked_in_database(conn, &principal)?)
            })
            .await
            {
                Ok(revoked) => {
                    req.extensions_mut().insert(ReadForRequest { id, revoked });
                }
                // Authentication then answers 503: nobody can say whether it is revoked.
                Err(e) => tracing::warn!(error = %e, "cannot read a revocation"),
            }
        }
    }
    next.call(req).await
}
