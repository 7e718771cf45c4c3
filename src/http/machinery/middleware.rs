//! The request middleware: request id, whole-request timeout, one log line per request, and
//! the guarantee that every error response is problem+json.

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, ResponseError};

use crate::auth::Principal;
use crate::error::{problem_for_status, ApiError, PROBLEM_JSON};
use crate::telemetry::with_request_id;

/// The `X-Request-Id` header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, also stored in request extensions for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Per-process request settings the middleware needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Whole-request timeout (actix itself only times out reading the head).
    pub timeout: Duration,
}

/// Echoes a well-formed `X-Request-Id` or makes one (a UUID v7, so ids sort by time).
fn request_id_for(req: &ServiceRequest) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::domain::RequestId::parse(v).is_ok())
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// The outermost middleware.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let id = request_id_for(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let timeout = req
        .app_data::<web::Data<RequestLimits>>()
        .map_or(Duration::from_secs(30), |l| l.timeout);
    // Inside the request's task every log line carries its id (`telemetry`), this one's too.
    with_request_id(id.clone(), async move {
        let method = req.method().clone();
        let path = req.path().to_owned();
        // The request cannot be cloned here (routing needs it unshared), so a timed-out request
        // answers through an error that renders itself with the request id.
        let outcome = match tokio::time::timeout(timeout, next.call(req)).await {
            Ok(Ok(res)) => Ok(ensure_problem_body(res.map_into_boxed_body())),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(TimedOut {
                request_id: id.clone(),
            }
            .into()),
        };
        let mut res = match outcome {
            Ok(res) => res,
            Err(err) => {
                tracing::warn!(
                    method = %method,
                    path,
                    status = err.as_response_error().status_code().as_u16(),
                    latency_ms = started.elapsed().as_millis() as u64,
                    "request failed"
                );
                return Err(err);
            }
        };
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(X_REQUEST_ID, value);
        }
        set_security_headers(res.headers_mut(), &path);
        let principal = res
            .request()
            .extensions()
            .get::<Principal>()
            .map(|p| p.id.to_string());
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            method = %method,
            path,
            status = res.status().as_u16(),
            latency_ms = %format_args!("{latency_ms:.2}"),
            principal = principal.as_deref().unwrap_or("-"),
            "request"
        );
        Ok(res)
    })
    .await
}

/// The policy of every answer but the docs: JSON is never a page, so nothing may run, load or
/// frame it (OWASP REST Security Cheat Sheet).
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Swagger UI's policy: its vendored scripts and styles from this origin and no inline script
/// (it has none); inline styles, which its React views set; `data:` for its CSS icons; fetches of
/// the spec and the token endpoint to this origin only.
const DOCS_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Where Swagger UI is served (`app.rs`).
const DOCS_PREFIX: &str = "/docs";

/// The headers every answer carries: `nosniff`, so a browser never reads a body as another
/// type than it says (a JSON error echoing input can't become HTML), and the path's
/// Content-Security-Policy.
fn set_security_headers(headers: &mut header::HeaderMap, path: &str) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let docs = path
        .strip_prefix(DOCS_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let policy = if docs { DOCS_POLICY } else { API_POLICY };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
}

/// Replaces any error body that is not already a problem (or an OAuth error) with one, so
/// actix's own 404/405/413 answers share the contract.
fn ensure_problem_body(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with(PROBLEM_JSON) || content_type.starts_with("application/json") {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let error = match (problem_for_status(status), allow) {
        (ApiError::MethodNotAllowed { .. }, Some(allow)) => ApiError::MethodNotAllowed {
            allow: allow.to_str().unwrap_or_default().to_owned(),
        },
        (error, _) => error,
    };
    let (req, _) = res.into_parts();
    ServiceResponse::new(req, error.error_response())
}

/// A request that outlived the whole-request timeout: 503 with the request id.
#[derive(Debug)]
struct TimedOut {
    request_id: String,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request did not complete in time")
    }
}

impl ResponseError for TimedOut {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut res = crate::telemetry::with_request_id_sync(self.request_id.clone(), || {
            ApiError::unavailable(self.to_string()).error_response()
        });
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            res.headers_mut().insert(X_REQUEST_ID, value);
        }
        // It answers past `request_context`, whose headers it must carry all the same.
        set_security_headers(res.headers_mut(), "");
        res
    }
}
