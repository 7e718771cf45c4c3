//! One `LISTEN` connection per process, for everything a replica keeps in memory for speed and
//! PostgreSQL keeps in step (the revocation set, the change counter): each is a [`Follower`] of
//! a channel, loaded from the tables when the connection is made and told of the notifications
//! that arrive, which a thread asks for every [`POLL`].
//!
//! When the connection drops, a notification may be missed: every follower forgets its state
//! (and answers from the database, or refuses, as it chooses) until the connection is back, its
//! channels listened to again, and its state reloaded.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::{PgConnection, QueryResult};

/// How often the listener asks for pending notifications: the bound on a follower's delay.
pub const POLL: Duration = Duration::from_millis(200);
/// The listener connection's `application_name`, as `pg_stat_activity` shows it.
pub const APPLICATION_NAME: &str = "lshub-listener";

/// State a replica keeps in memory and PostgreSQL keeps current by `NOTIFY`.
pub trait Follower: Send + Sync + 'static {
    /// The channel it follows (a constant of ours, never input).
    fn channel(&self) -> &'static str;
    /// Loads its state from the tables: when the connection is made, and after every reconnect.
    fn reload(&self, conn: &mut PgConnection) -> QueryResult<()>;
    /// Takes the payloads that arrived on its channel since the last poll, in order (never
    /// empty).
    fn notified(&self, conn: &mut PgConnection, payloads: &[String]) -> QueryResult<()>;
    /// Forgets its state: notifications may be missed until the next reload.
    fn forget(&self);
}

/// Connects now, when the database answers (so the followers start loaded), and follows on a
/// thread that ends when every follower has been dropped; after the connection drops, it waits
/// `reconnect` before connecting again.
pub fn start(database_url: &str, reconnect: Duration, followers: Vec<Arc<dyn Follower>>) {
    let url = listener_url(database_url);
    let conn = crate::db::connect(&url)
        .ok()
        .and_then(|mut c| subscribe(&mut c, &followers).ok().map(|()| c));
    let weak: Vec<Weak<dyn Follower>> = followers.iter().map(Arc::downgrade).collect();
    drop(followers);
    std::thread::Builder::new()
        .name(APPLICATION_NAME.into())
        .spawn(move || follow(&weak, &url, reconnect, conn))
        .map_err(|e| tracing::error!(error = %e, "cannot start the database listener"))
        .ok();
}

/// Listens to every follower's channel and loads each.
fn subscribe(conn: &mut PgConnection, followers: &[Arc<dyn Follower>]) -> QueryResult<()> {
    for follower in followers {
        crate::db::listen(conn, follower.channel())?;
    }
    followers.iter().try_for_each(|f| f.reload(conn))
}

/// The database URL with the listener's own `application_name`, so an operator (or a test)
/// sees which connection it is in `pg_stat_activity`.
fn listener_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed
                .query_pairs_mut()
                .append_pair("application_name", APPLICATION_NAME);
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// Polls for notifications while a follower lives; on a broken connection (or a follower that
/// cannot take what arrived), every follower forgets, and the thread reconnects, listens again
/// and reloads.
fn follow(
    weak: &[Weak<dyn Follower>],
    url: &str,
    reconnect: Duration,
    mut conn: Option<PgConnection>,
) {
    loop {
        let followers: Vec<Arc<dyn Follower>> = weak.iter().filter_map(Weak::upgrade).collect();
        if followers.is_empty() {
            return;
        }
        let Some(c) = conn.as_mut() else {
            drop(followers);
            std::thread::sleep(reconnect);
            let followers: Vec<Arc<dyn Follower>> = weak.iter().filter_map(Weak::upgrade).collect();
            conn = crate::db::connect(url)
                .ok()
                .and_then(|mut c| subscribe(&mut c, &followers).ok().map(|()| c));
            if conn.is_some() {
                tracing::info!("database listener connected; its followers are loaded");
            }
            continue;
        };
        let mut arrived: Vec<(String, String)> = Vec::new();
        let alive = crate::db::ping(c).is_ok() && {
            for notification in c.notifications_iter() {
                match notification {
                    Ok(n) => arrived.push((n.channel, n.payload)),
                    Err(e) => tracing::warn!(error = %e, "a notification is unreadable"),
                }
            }
            followers.iter().all(|follower| {
                let payloads: Vec<String> = arrived
                    .iter()
                    .filter(|(channel, _)| channel == follower.channel())
                    .map(|(_, payload)| payload.clone())
                    .collect();
                payloads.is_empty() || follower.notified(c, &payloads).is_ok()
            })
        };
        if !alive {
            tracing::warn!("database listener lost its connection; its followers forget");
            followers.iter().for_each(|f| f.forget());
            conn = None;
            continue;
        }
        drop(followers);
        std::thread::sleep(POLL);
    }
}
