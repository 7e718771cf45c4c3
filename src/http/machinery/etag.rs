//! Conditional requests (RFC 9110 §13): strong `ETag: "<version>"`, `If-None-Match` → 304,
//! `If-Match` required on writes (428 without it, 412 when stale).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, HttpResponse, HttpResponseBuilder};
use utoipa::IntoParams;

use crate::db::{self, PgPool};
use crate::error::ApiError;
use crate::models::audit::{self, ChangeCounter};

/// `If-Match` on a write, as the OpenAPI document declares it: what a client should send,
/// the strong `ETag` it was given (or a list of them). The server reads any value: without
/// one, or with `*`, it answers 428; with tags none of which is the current version (weak
/// tags never match), 412.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatch {
    /// The `ETag` of the version this write expects, as the server gave it (`"<version>"`):
    /// the current version (for a restore, the archived one). 428 without it or with `*`, 412
    /// when it is not the current version.
    #[param(
        rename = "If-Match",
        pattern = r#"^"[0-9]+"([ \t]*,[ \t]*"[0-9]+")*$"#,
        example = "\"1\""
    )]
    pub if_match: String,
}

/// The strong entity tag of a record version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Adds `ETag` and the authenticated-answer `Cache-Control` to a response.
pub fn tag(builder: &mut HttpResponseBuilder, version: i64) -> &mut HttpResponseBuilder {
    builder
        .insert_header((header::ETAG, etag(version)))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(PRIVATE_REVALIDATE),
        ))
}

/// `Cache-Control` of authenticated answers: private caches may keep them but must revalidate.
pub const PRIVATE_REVALIDATE: &str = "private, max-age=0, must-revalidate";

fn tags(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// True when `If-None-Match` names `current` (weak comparison, RFC 9110 §13.1.2) or is `*`.
pub fn none_match_hits(headers: &HeaderMap, current: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|value| tags(value).any(|t| t == "*" || t.trim_start_matches("W/") == current))
}

/// 304 with `tag` and the authenticated-answer `Cache-Control`.
pub fn not_modified(tag: String) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, PRIVATE_REVALIDATE))
        .finish()
}

/// The change counter as this replica follows it (by `LISTEN`), without a connection; `None`
/// while the listener is down, when only the database can say.
pub fn followed_counter(req: &HttpRequest) -> Option<i64> {
    req.app_data::<web::Data<ChangeCounter>>()
        .and_then(|counter| counter.current())
}

/// Who reads, for `db::read`: this process's replicas, and the caller (authenticated
/// before any handler runs), whose own writes its reads must see.
pub fn reader(req: &HttpRequest) -> db::Reader {
    use actix_web::HttpMessage;
    db::Reader {
        replicas: req.app_data::<web::Data<db::ReadReplicas>>().map_or_else(
            || std::sync::Arc::new(db::ReadReplicas::none()),
            |r| r.clone().into_inner(),
        ),
        caller: req
            .extensions()
            .get::<crate::auth::Principal>()
            .map(|p| p.id),
    }
}

/// How many records a replica remembers the version of ([`RecordTags`]): a few hundred bytes
/// each, so about a megabyte at most.
pub const RECORD_TAGS_CAPACITY: usize = 8192;

/// What a replica remembers of a record it read: its version, and the change counter as it
/// followed it just before the read.
#[derive(Debug, Clone, Copy)]
struct Remembered {
    version: i64,
    counter: i64,
}

/// The versions of records this replica read lately, so that a poll naming one is answered
/// 304 without the pool while nothing has committed anywhere since: the change counter moves
/// on every committed change (its trigger counts every audit event, and every write has one),
/// so while it stands still the record, its parent and whether it is archived are as they were
/// read. A record is remembered per path, and apart for `include_archived` reads, so an entry
/// read without it proves the record live. Bounded ([`crate::memo::Generations`]): what is not
/// read for a generation is forgotten and costs one database read when it is.
pub struct RecordTags(crate::memo::Generations<Remembered>);

impl Default for RecordTags {
    fn default() -> Self {
        Self::with_capacity(RECORD_TAGS_CAPACITY)
    }
}

impl RecordTags {
    /// Remembers at most `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(crate::memo::Generations::with_capacity(capacity))
    }

    fn key(req: &HttpRequest, include_archived: bool) -> String {
        let mut key = req.path().to_owned();
        if include_archived {
            key.push_str("?include_archived");
        }
        key
    }

    /// The version remembered under `key` when the counter is still `counter`.
    fn version(&self, key: &str, counter: i64) -> Option<i64> {
        self.0
            .get(key)
            .filter(|remembered| remembered.counter == counter)
            .map(|remembered| remembered.version)
    }

    fn remember(&self, key: String, remembered: Remembered) {
        self.0.put(key, remembered);
    }

    /// How many records it remembers (at most its capacity).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The one ETag path of single records: `ETag: "<version>"` (the tag `If-Match` checks), and
/// 304 to a matching `If-None-Match`. `load` reads the record and its version, applying every
/// rule of who may see it that the database knows (its parent live, archived only with
/// `include_archived`, which the caller has already checked against the role); nothing else
/// about the caller changes what it answers. A poll naming the version [`RecordTags`]
/// remembers for this path is answered from memory while the followed change counter is what
/// it was before that read; otherwise (the counter moved or unknown, the record not
/// remembered) the database answers, and its read is remembered under the counter as it was
/// just before it. Staleness bound: another replica's change within one listener poll
/// (`db::listener::POLL`), as for lists; none while the listener is down (nothing is answered
/// from memory then).
pub async fn cached_record<T, F>(
    pool: &PgPool,
    req: &HttpRequest,
    include_archived: bool,
    mut load: F,
) -> Result<HttpResponse, ApiError>
where
    T: serde::Serialize + Send + 'static,
    F: FnMut(&mut diesel::PgConnection) -> Result<(T, i64), ApiError> + Send + 'static,
{
    let memory = req
        .app_data::<web::Data<RecordTags>>()
        .zip(followed_counter(req));
    let key = RecordTags::key(req, include_archived);
    let polled = req.headers().contains_key(header::IF_NONE_MATCH);
    if let Some((tags, counter)) = memory.filter(|_| polled) {
        if let Some(version) = tags.version(&key, counter) {
            if none_match_hits(req.headers(), &etag(version)) {
                return Ok(not_modified(etag(version)));
            }
        }
    }
    // On a streaming replica, the counter is read there, before the record: the followed
    // counter is the primary's, which may be ahead of what the replica has replayed.
    let (record, version, replayed_counter) = db::read(pool, &reader(req), move |conn, source| {
        let counter = match source {
            db::Source::Replica => Some(audit::change_counter(conn)?),
            db::Source::Primary => None,
        };
        let (record, version) = load(conn)?;
        Ok((record, version, counter))
    })
    .await?;
    if let Some((tags, followed)) = memory {
        let counter = replayed_counter.unwrap_or(followed);
        tags.remember(key, Remembered { version, counter });
    }
    if none_match_hits(req.headers(), &etag(version)) {
        return Ok(not_modified(etag(version)));
    }
    Ok(tag(&mut HttpResponse::Ok(), version).json(record))
}

/// The version a write's `If-Match` names: 428 when absent or `*` (a lost update would pass
/// it), 412 when it names no version of ours (RFC 9110 §13.1.1: weak tags never match).
pub fn required_if_match(headers: &HeaderMap) -> Result<Vec<i64>, ApiError> {
    let value = match headers.get(header::IF_MATCH) {
        None => return Err(ApiError::PreconditionRequired),
        Some(v) => v.to_str().map_err(|_| ApiError::PreconditionFailed)?,
    };
    if tags(value).any(|t| t == "*") || tags(value).next().is_none() {
        return Err(ApiError::PreconditionRequired);
    }
    let versions: Vec<i64> = tags(value)
        .filter(|t| !t.starts_with("W/"))
        .filter_map(|t| t.strip_prefix('"')?.strip_suffix('"')?.parse().ok())
        .collect();
    Ok(versions)
}

/// 412 unless the current version is among those `If-Match` named.
pub fn check_version(named: &[i64], current: i64) -> Result<(), ApiError> {
    if named.contains(&current) {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed)
    }
}

/// After a write this replica answered, the change counter it follows in memory is read again
/// before the answer leaves: the client's next poll, here, sees its write (list ETags answer
/// from memory; another replica sees the write within one listener poll, its `NOTIFY`). With
/// streaming replicas, the primary's WAL position is read too, kept for the caller and
/// announced to the other processes: the caller's reads wait for a replica to replay it
/// (`db::replicas`).
pub async fn see_own_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.path().starts_with("/api/v1/")
        && !req.path().starts_with("/api/v1/auth/");
    let followed = write
        .then(|| {
            let counter = req.app_data::<web::Data<ChangeCounter>>()?.clone();
            let pool = req.app_data::<web::Data<PgPool>>()?.clone();
            let replicas = req.app_data::<web::Data<db::ReadReplicas>>()?.clone();
            Some((counter, pool, replicas))
        })
        .flatten();
    let res = next.call(req).await?;
    let Some((counter, pool, replicas)) = followed else {
        return Ok(res);
    };
    let follows = counter.current().is_some();
    if res.status().is_success() && (follows || replicas.any()) {
        let caller = reader(res.request()).caller;
        let positioned = replicas.any() && caller.is_some();
        // A failed read leaves the counter to the listener, which the write's NOTIFY moves; and
        // the caller's reads to the lag bound.
        let read = db::run(&pool, move |conn| {
            let value = audit::change_counter(conn)?;
            let position = caller
                .filter(|_| positioned)
                .map(|caller| db::replicas::announce_write(conn, caller))
                .transpose()?;
            Ok((value, position))
        })
        .await;
        if let Ok((value, position)) = read {
            if follows {
                counter.observe(value);
            }
            if let (Some(caller), Some(lsn)) = (caller, position) {
                replicas.wrote(caller, lsn);
            }
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::{RecordTags, Remembered};

    fn at(version: i64, counter: i64) -> Remembered {
        Remembered { version, counter }
    }

    #[test]
    fn a_remembered_version_answers_only_while_the_counter_stands_still() {
        let tags = RecordTags::with_capacity(8);
        tags.remember("/a".into(), at(3, 10));
        assert_eq!(tags.version("/a", 10), Some(3));
        assert_eq!(tags.version("/a", 11), None, "something committed since");
        assert_eq!(tags.version("/b", 10), None);
        tags.remember("/a".into(), at(4, 11));
        assert_eq!(tags.version("/a", 11), Some(4));
    }
}
