//! `Idempotency-Key` on the API's POSTs: a retry with the same key and request from the same
//! principal gets the first answer again, with `Idempotent-Replayed: true`, and writes nothing
//! twice; the answers are kept in PostgreSQL (`models::idempotency`), so every replica replays
//! them, and a restart forgets none.
//!
//! Which answers are kept, and why: final ones, so that a replay is what the first request
//! would answer again. That is every 2xx and every 4xx except 401, 403, 409 and 429, which
//! depend on the moment (a token, a role, a name another record holds, a rate) rather than on
//! the request. A 5xx, a timeout, a panic or a dropped connection releases the key, so that the
//! retry runs afresh. An answer that showed a secret once (its handler marks it
//! [`ShownOnce`]) is never kept: only that it happened, and its `Location`; a retry learns so
//! with a 409.

use std::time::Duration;

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::middleware::RequestLimits;
use crate::db::{self, PgPool};
use crate::error::ApiError;
use crate::models::idempotency::{self as model, Answer, Attempt, Claimed, Horizon, KeyRow};

/// The request header naming the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The answer header of a replay.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// The OpenAPI pattern of a key: what [`parse_key`] accepts.
pub const KEY_PATTERN: &str = "^[!-~]{1,255}$";

/// The headers of an answer that a replay repeats: what a client acts on (the media type, the
/// new record's URL and version) and how it may cache it.
const REPLAYED_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::ETAG,
    header::CACHE_CONTROL,
];

/// A response extension by which a handler says that its answer shows a secret once (a new API
/// client's secret, a rotated one, a one-time set-password token): the middleware then never
/// stores it, and a retry under its key is 409.
#[derive(Debug, Clone, Copy)]
pub struct ShownOnce;

/// Marks `res` as showing a secret once (see [`ShownOnce`]).
pub fn shown_once(mut res: HttpResponse) -> HttpResponse {
    res.extensions_mut().insert(ShownOnce);
    res
}

/// The middleware's settings.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencySettings {
    /// How long an answer is kept.
    pub ttl: Duration,
    /// The most of a body buffered to hash it: above every endpoint's own limit, so that a
    /// body over an endpoint's limit still gets that endpoint's own 413.
    pub max_body: usize,
}

/// Whether the request is one the key applies to: a POST under `/api/v1` outside `/auth/`
/// (the OAuth endpoints are RFC 6749's, and a token is no record to write twice).
fn applies(req: &ServiceRequest) -> bool {
    req.method() == Method::POST
        && req.path().starts_with("/api/v1/")
        && !req.path().starts_with("/api/v1/auth/")
        && req.headers().contains_key(IDEMPOTENCY_KEY)
}

/// The key, if it is one header of 1 to 255 visible ASCII characters (400 otherwise).
pub fn parse_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::malformed(
            "send one Idempotency-Key header, not several",
        ));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(ApiError::malformed(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces)"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// One attempt at a request under a key, owned (the model's [`Attempt`] borrows). The
/// request's extensions hold it while the attempt holds the key, so that a write can mark the
/// key in its own transaction ([`written`]).
#[derive(Debug, Clone)]
pub struct Keyed {
    principal_id: Uuid,
    key: String,
    request_hash: [u8; 32],
    claim: Uuid,
}

impl Keyed {
    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            principal_id: self.principal_id,
            key: &self.key,
            request_hash: &self.request_hash,
            claim: self.claim,
        }
    }
}

/// SHA-256 of what makes two requests the same: method, path with query, body. Neither the
/// method nor the path can hold a NUL, so the separators keep the parts apart.
fn request_hash(req: &ServiceRequest, body: &[u8]) -> [u8; 32] {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |pq| pq.as_str());
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update([0]);
    hasher.update(target);
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().into()
}

/// Reads the whole body, up to `limit` bytes (413 beyond).
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, ApiError> {
    let too_large = || ApiError::PayloadTooLarge("the request body is too large".into());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::malformed(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// `now - span`, or the dawn of time when that underflows.
fn before(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| now.checked_sub_signed(span))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether an answer is final for its key, and so kept (see the module's documentation).
fn is_final(status: StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error()
            && !matches!(
                status,
                StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::CONFLICT
                    | StatusCode::TOO_MANY_REQUESTS
            ))
}

/// The middleware (inside `request_context`, so its answers carry the request id and its
/// time counts against the whole-request timeout).
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if !applies(&req) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    // Without a principal there is nobody to keep a key for: the handler answers 401, as it
    // does without a key.
    let Ok(principal) = crate::auth::authenticate(req.request()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let (keyed, pool) = match prepare(&mut req, principal.id).await {
        Ok(prepared) => prepared,
        Err(err) => return Ok(req.error_response(err)),
    };
    let (ttl, timeout) = durations(&req);
    let now = db::now();
    let horizon = Horizon {
        expired_before: before(now, ttl),
        abandoned_before: before(now, timeout),
    };
    let claiming = keyed.clone();
    let claimed = db::run(&pool, move |conn| {
        Ok(model::claim(conn, claiming.attempt(), now, horizon)?)
    })
    .await;
    match claimed {
        Ok(Claimed::Held) => {}
        Ok(Claimed::Taken(row)) => {
            let answer = answer_again(row, &keyed.request_hash);
            return Ok(match answer {
                Ok(replay) => req.into_response(replay),
                Err(err) => req.error_response(err),
            });
        }
        Ok(Claimed::Contended) => return Ok(req.error_response(ApiError::IdempotencyKeyInFlight)),
        Err(err) => return Ok(req.error_response(err)),
    }

    req.extensions_mut().insert(keyed.clone());
    let mut held = Held {
        pool: pool.clone(),
        keyed: Some(keyed),
    };
    // An error here (or the future dropped by the timeout, or a panic) releases the key.
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !is_final(status) {
        held.release().await;
        return Ok(res);
    }
    let shown_once = res.response().extensions().get::<ShownOnce>().is_some();
    let (http_req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let kept: Vec<(&HeaderName, &HeaderValue)> = head
        .headers()
        .iter()
        .filter(|(name, _)| {
            // A secret's answer keeps only where the record is, which is no secret.
            REPLAYED_HEADERS.contains(name) && (!shown_once || *name == header::LOCATION)
        })
        .collect();
    let headers = Json::Array(
        kept.into_iter()
            .filter_map(|(name, value)| {
                Some(serde_json::json!([name.as_str(), value.to_str().ok()?]))
            })
            .collect(),
    );
    let (response, stored_body) = if shown_once {
        (head.set_body(body).map_into_boxed_body(), None)
    } else {
        match body::to_bytes(body).await {
            Ok(bytes) => (
                head.set_body(bytes.clone()).map_into_boxed_body(),
                Some(bytes),
            ),
            Err(err) => {
                held.release().await;
                let err = ApiError::internal(format!("an answer could not be read: {err}"));
                return Ok(ServiceResponse::from_err(err, http_req));
            }
        }
    };
    held.complete(status, headers, stored_body, shown_once)
        .await;
    Ok(ServiceResponse::new(http_req, response))
}

/// Records, inside the transaction of the write that `req` made, that its key's request
/// succeeded and where its record is. Should the process die between that commit and storing
/// the answer, a retry learns so (409 with the record's place) instead of writing again; when
/// the answer is stored, it replaces this.
pub fn written(
    conn: &mut diesel::PgConnection,
    keyed: Option<&Keyed>,
    status: StatusCode,
    location: &str,
) -> Result<(), ApiError> {
    let Some(keyed) = keyed else {
        return Ok(());
    };
    let headers = serde_json::json!([[header::LOCATION.as_str(), location]]);
    let answer = Answer {
        status: i16::try_from(status.as_u16()).unwrap_or(i16::MAX),
        headers: &headers,
        body: None,
        shown_once: true,
    };
    // Taken over (this request outlived the whole-request timeout and a retry holds the key
    // now): committing as well would write twice, so the write rolls back.
    if model::complete(conn, keyed.attempt(), answer, db::now())? {
        Ok(())
    } else {
        Err(ApiError::IdempotencyKeyInFlight)
    }
}

/// The key and the pool, after buffering the body (put back for the handler) and hashing the
/// request: 400 for a bad key, 413 for a body over the limit.
async fn prepare(
    req: &mut ServiceRequest,
    principal_id: Uuid,
) -> Result<(Keyed, web::Data<PgPool>), ApiError> {
    let key = parse_key(req.headers())?
        .ok_or_else(|| ApiError::internal("the idempotency middleware ran without a key"))?;
    let settings = *req
        .app_data::<web::Data<IdempotencySettings>>()
        .ok_or_else(|| ApiError::internal("IdempotencySettings missing from app data"))?
        .get_ref();
    let pool = req
        .app_data::<web::Data<PgPool>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("the app has no database pool"))?;
    let body = read_body(req, settings.max_body).await?;
    let request_hash = request_hash(req, &body);
    req.set_payload(Payload::from(body));
    Ok((
        Keyed {
            principal_id,
            key,
            request_hash,
            claim: Uuid::now_v7(),
        },
        pool,
    ))
}

/// How long answers are kept, and how long a request may take (after which its claim counts
/// as abandoned: the request has timed out, or its process died).
fn durations(req: &ServiceRequest) -> (Duration, Duration) {
    let ttl = req
        .app_data::<web::Data<IdempotencySettings>>()
        .map_or(Duration::from_secs(86_400), |s| s.ttl);
    let timeout = req
        .app_data::<web::Data<RequestLimits>>()
        .map_or(Duration::from_secs(30), |l| l.timeout);
    (ttl, timeout)
}

/// What a retry gets from the row of an earlier attempt: 422 for another request, 409 while
/// it is in flight or when its answer showed a secret, or the answer again.
fn answer_again(row: KeyRow, request_hash: &[u8]) -> Result<HttpResponse, ApiError> {
    if row.request_hash != request_hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let Some(status) = row
        .completed_at
        .and(row.status)
        .and_then(|s| u16::try_from(s).ok())
    else {
        return Err(ApiError::IdempotencyKeyInFlight);
    };
    let status = StatusCode::from_u16(status).map_err(ApiError::internal)?;
    let headers: Vec<(String, String)> = match row.headers {
        Some(json) => serde_json::from_value(json).map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    if row.shown_once {
        let location = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(header::LOCATION.as_str()))
            .map(|(_, at)| format!("; the record is at {at}"))
            .unwrap_or_default();
        return Err(ApiError::IdempotentAnswerNotStored(format!(
            "the first request with this Idempotency-Key succeeded ({}) and its answer was not \
             kept (it showed a secret once, which is never stored, or the server stopped before \
             keeping it), so it cannot be replayed{location}",
            status.as_u16()
        )));
    }
    let mut replay = HttpResponse::build(status);
    for (name, value) in headers {
        replay.append_header((name, value));
    }
    replay.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    Ok(replay.body(row.body.unwrap_or_default()))
}

/// A key this attempt holds: completed with the answer, or released so that a retry runs
/// afresh, also when the request is cut short (dropped by the timeout, a panic).
struct Held {
    pool: web::Data<PgPool>,
    keyed: Option<Keyed>,
}

impl Held {
    /// Stores the answer. When that fails the key stays claimed, so a retry is 409 until the
    /// claim counts as abandoned, rather than at once a second write.
    async fn complete(
        &mut self,
        status: StatusCode,
        headers: Json,
        body: Option<web::Bytes>,
        shown_once: bool,
    ) {
        let Some(keyed) = self.keyed.take() else {
            return;
        };
        let status = i16::try_from(status.as_u16()).unwrap_or(i16::MAX);
        let stored = db::run(&self.pool, move |conn| {
            let answer = Answer {
                status,
                headers: &headers,
                body: body.as_deref(),
                shown_once,
            };
            Ok(model::complete(conn, keyed.attempt(), answer, db::now())?)
        })
        .await;
        match stored {
            Ok(true) => {}
            Ok(false) => tracing::warn!("an idempotency key was taken over before its answer"),
            Err(err) => tracing::warn!(error = %err, "an idempotent answer could not be stored"),
        }
    }

    /// Gives the key up now.
    async fn release(&mut self) {
        if let Some(keyed) = self.keyed.take() {
            release(&self.pool, keyed).await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(keyed) = self.keyed.take() else {
            return;
        };
        // Cut short: nothing here may block, so the release runs as its own task. Were the
        // runtime itself gone, the claim would count as abandoned after the request timeout.
        let pool = self.pool.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { release(&pool, keyed).await });
            }
            Err(_) => tracing::warn!("an idempotency key is left to expire as abandoned"),
        }
    }
}

async fn release(pool: &PgPool, keyed: Keyed) {
    let released = db::run(pool, move |conn| Ok(model::release(conn, keyed.attempt())?)).await;
    if let Err(err) = released {
        tracing::warn!(error = %err, "an idempotency key could not be released");
    }
}

/// Deletes the keys older than `ttl`; how many.
pub async fn purge_expired(pool: &PgPool, ttl: Duration) -> Result<usize, ApiError> {
    let expired_before = before(db::now(), ttl);
    db::run(pool, move |conn| {
        Ok(model::delete_expired(conn, expired_before)?)
    })
    .await
}

/// Purges expired keys now and then for as long as the server runs (the claim ignores them
/// meanwhile): every hour, or more often for a shorter `ttl`.
pub async fn sweep_expired(pool: web::Data<PgPool>, ttl: Duration) {
    let period = (ttl / 24).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match purge_expired(&pool, ttl).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "expired idempotency keys deleted"),
            Err(err) => tracing::warn!(error = %err, "expired idempotency keys not deleted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                IDEMPOTENCY_KEY,
                HeaderValue::from_bytes(value).expect("header value"),
            );
        }
        map
    }

    #[test]
    fn a_key_is_one_header_of_visible_ascii_as_its_pattern_says() {
        assert_eq!(parse_key(&headers(&[])).expect("none"), None);
        assert_eq!(
            parse_key(&headers(&[b"8e03978e-40d5-43e8"])).expect("ok"),
            Some("8e03978e-40d5-43e8".to_owned())
        );
        let pattern = regex::Regex::new(KEY_PATTERN).expect("pattern");
        let longest = "k".repeat(MAX_KEY_LEN);
        for good in ["!~", "\"{quoted}\"", longest.as_str()] {
            assert!(parse_key(&headers(&[good.as_bytes()])).is_ok(), "{good}");
            assert!(pattern.is_match(good), "{good}");
        }
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in ["", "a b", "caf\u{e9}", "tab\there", too_long.as_str()] {
            assert!(parse_key(&headers(&[bad.as_bytes()])).is_err(), "{bad:?}");
            assert!(!pattern.is_match(bad), "the pattern admits {bad:?}");
        }
        assert!(parse_key(&headers(&[b"a", b"b"])).is_err(), "two keys");
    }

    #[test]
    fn final_answers_are_kept_and_momentary_ones_are_not() {
        for kept in [200, 201, 204, 400, 404, 412, 413, 415, 422, 428] {
            assert!(
                is_final(StatusCode::from_u16(kept).expect("status")),
                "{kept}"
            );
        }
        for not in [401, 403, 409, 429, 500, 503] {
            assert!(
                !is_final(StatusCode::from_u16(not).expect("status")),
                "{not}"
            );
        }
    }
}
