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

/// 304 when `If-None-Match` names the current version.
pub fn not_modified(req: &HttpRequest, version: i64) -> Option<HttpResponse> {
    none_match_hits(req.headers(), &etag(version))
        .then(|| tag(&mut HttpResponse::NotModified(), version).finish())
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
/// from memory; another replica sees the write within one listener poll, its `NOTIFY`).
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
            Some((counter, pool))
        })
        .flatten();
    let res = next.call(req).await?;
    if let Some((counter, pool)) = followed {
        if res.status().is_success() && counter.current().is_some() {
            // A failed read leaves the counter to the listener, which the write's NOTIFY moves.
            if let Ok(value) = db::run(&pool, |conn| Ok(audit::change_counter(conn)?)).await {
                counter.observe(value);
            }
        }
    }
    Ok(res)
}
