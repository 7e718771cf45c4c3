//! One error type for the whole API, rendered as RFC 9457 problem+json in one place.
//!
//! [`PROBLEM_TYPES`] is the catalogue: each problem type's status, code, title and header are
//! declared there once, and one `match` (`ApiError::answer`) gives each variant its row.
//! Internal causes are logged with the request id and never sent to the client.

use std::borrow::Cow;
use std::time::Duration;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::telemetry::current_request_id;

/// Media type of every error body except the token endpoint's (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One reason a field was refused: where (a JSON Pointer), a stable code, and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending member, e.g. `/address/province`.
    pub field: String,
    /// Stable machine-readable code, e.g. `required`, `unknown_field`, `invalid_check_digit`.
    pub code: Cow<'static, str>,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// A field error at `field` (a JSON Pointer).
    pub fn new(
        field: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document, as every error except the token endpoint's is sent.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:lshub:problem:validation",
    "title": "Validation failed",
    "status": 422,
    "detail": "The request body has invalid fields.",
    "request_id": "01938f6c-8b1e-7c4a-9d7e-3f1a2b3c4d5e",
    "errors": [{"field": "/vat_number", "code": "invalid_check_digit", "message": "the check digit does not match"}]
}))]
pub struct Problem {
    /// `urn:lshub:problem:<code>`, one of the catalogue in the README.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// The request's `X-Request-Id`, to quote when reporting a problem.
    pub request_id: Option<String>,
    /// Per-field reasons (validation, unknown or read-only fields, conflicts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An OAuth 2.0 error response (RFC 6749 §5.2), which standard client libraries parse.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// RFC 6749 error code: `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`.
    pub error: &'static str,
    /// Human-readable explanation.
    pub error_description: String,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `malformed`: the request cannot be parsed (bad JSON, bad query or path parameter).
    #[error("{0}")]
    Malformed(String),
    /// 400 `invalid_cursor`: the cursor is corrupt or was issued for another list or filter set.
    #[error("the cursor is invalid or belongs to another query")]
    InvalidCursor,
    /// 400 `invalid_one_time_token`: a one-time token (to set a password) that is unknown,
    /// used, replaced by a newer one, expired, or whose user is disabled.
    #[error("{0}")]
    InvalidOneTimeToken(String),
    /// 401 `unauthorized`: no credentials (`invalid_token` false) or a bad token (true).
    #[error("{detail}")]
    Unauthorized { invalid_token: bool, detail: String },
    /// 403 `forbidden`: the caller's role or ownership does not allow this.
    #[error("{detail}")]
    Forbidden {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`, with the path's `Allow` list.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// 409 `duplicate`: the write conflicts with existing state (a unique name or VAT, a link).
    #[error("{detail}")]
    Conflict {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 409 `idempotency_key_in_flight`: the first request under this `Idempotency-Key` has not
    /// answered yet.
    #[error("the first request with this Idempotency-Key is still in progress; retry after it has answered")]
    IdempotencyKeyInFlight,
    /// 409 `idempotency_answer_not_stored`: the first answer under this `Idempotency-Key` showed
    /// a secret, which is never stored, so it cannot be replayed.
    #[error("{0}")]
    IdempotentAnswerNotStored(String),
    /// 422 `idempotency_key_reused`: this `Idempotency-Key` came before with another request.
    #[error("this Idempotency-Key was used for another request (method, path, query or body); use a new key for a new request")]
    IdempotencyKeyReused,
    /// 412 `precondition_failed`: `If-Match` names a version that is no longer current.
    #[error("the record changed since the version named in If-Match")]
    PreconditionFailed,
    /// 413 `payload_too_large`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415 `unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422 `validation`: the body parses but its values are refused.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 428 `precondition_required`: a write that needs `If-Match` came without one.
    #[error("this request requires an If-Match header with the record's current ETag")]
    PreconditionRequired,
    /// 429 `rate_limited`: too many requests of this kind at once; retry after `retry_after`.
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after: Duration,
    },
    /// 503 `unavailable`: the database is unreachable or saturated; retry after a moment.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after: Duration,
    },
    /// 503 `unavailable` after a serialization failure or deadlock (SQLSTATE 40001/40P01);
    /// `db::transaction` retries these a few times before answering.
    #[error("the database is busy with conflicting writes; retry")]
    Contention,
    /// 500 `internal`: a bug or an unexpected failure; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// 400/401 at the token endpoint, in RFC 6749's shape.
    #[error("{description}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
    /// 429 at the token endpoint, in RFC 6749's shape (`error` `rate_limited`, the catalogue's
    /// code for the same answer elsewhere), with `Retry-After`.
    #[error("{description}")]
    OAuthRateLimited {
        description: String,
        retry_after: Duration,
    },
}

/// A problem type of the catalogue; everything about it is its row of [`PROBLEM_TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The request cannot be parsed.
    Malformed,
    /// A corrupt cursor, or one issued for another query.
    InvalidCursor,
    /// A one-time token that is unknown, used, replaced, expired, or its user's disabled.
    InvalidOneTimeToken,
    /// No token, or a bad one.
    Unauthorized,
    /// Role, ownership, or a hub-managed field.
    Forbidden,
    /// Absent (or archived, for a caller who may not see archived records).
    NotFound,
    /// The path has no such method.
    MethodNotAllowed,
    /// Conflicts with existing state.
    Duplicate,
    /// A retry while the first request under its `Idempotency-Key` is in flight.
    IdempotencyKeyInFlight,
    /// A retry of a request that succeeded but whose answer was not kept: it showed a secret,
    /// or the server stopped between the write's commit and keeping the answer.
    IdempotentAnswerNotStored,
    /// `If-Match` names an old version.
    PreconditionFailed,
    /// The body is too large.
    PayloadTooLarge,
    /// The body's media type is not accepted.
    UnsupportedMediaType,
    /// The body parses but its values are refused.
    Validation,
    /// An `Idempotency-Key` sent before with another request.
    IdempotencyKeyReused,
    /// A write without `If-Match`.
    PreconditionRequired,
    /// Too many requests of this kind at once.
    RateLimited,
    /// The database is unreachable or busy.
    Unavailable,
    /// A bug. Stays last: the table's length is taken from it.
    Internal,
}

/// A header that every answer of a problem type carries; its value comes from the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraHeader {
    /// `Retry-After` in seconds (RFC 9110 §10.2.3).
    RetryAfter,
    /// `Allow`: the path's methods (RFC 9110 §15.5.6), sent when they are known.
    Allow,
    /// `WWW-Authenticate`: the RFC 6750 §3 challenge.
    WwwAuthenticate,
}

impl ExtraHeader {
    /// The header's name.
    pub fn name(self) -> HeaderName {
        match self {
            Self::RetryAfter => header::RETRY_AFTER,
            Self::Allow => header::ALLOW,
            Self::WwwAuthenticate => header::WWW_AUTHENTICATE,
        }
    }
}

/// Everything a client sees of one problem type except `detail` and `errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    /// The kind this row describes.
    pub kind: ProblemKind,
    /// The HTTP status.
    pub status: StatusCode,
    /// The catalogue code: the type is `urn:lshub:problem:<code>`.
    pub code: &'static str,
    /// The problem document's `title`.
    pub title: &'static str,
    /// The header every answer of this type carries, if any.
    pub header: Option<ExtraHeader>,
}

impl ProblemType {
    /// The problem document's `type`.
    pub fn type_uri(&self) -> String {
        format!("urn:lshub:problem:{}", self.code)
    }
}

const fn row(
    kind: ProblemKind,
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    header: Option<ExtraHeader>,
) -> ProblemType {
    ProblemType {
        kind,
        status,
        code,
        title,
        header,
    }
}

/// The problem catalogue, one row per [`ProblemKind`] in its order (checked when compiling) and
/// in the README's (checked by a test). The OpenAPI description lists its codes from here.
#[rustfmt::skip]
pub const PROBLEM_TYPES: [ProblemType; ProblemKind::Internal as usize + 1] = {
    use ExtraHeader as H;
    use ProblemKind as K;
    use StatusCode as S;
    [
        row(K::Malformed,            S::BAD_REQUEST,            "malformed",              "Malformed request",      None),
        row(K::InvalidCursor,        S::BAD_REQUEST,            "invalid_cursor",         "Invalid cursor",         None),
        row(K::InvalidOneTimeToken,  S::BAD_REQUEST,            "invalid_one_time_token", "Invalid one-time token", None),
        row(K::Unauthorized,         S::UNAUTHORIZED,           "unauthorized",           "Unauthorized",           Some(H::WwwAuthenticate)),
        row(K::Forbidden,            S::FORBIDDEN,              "forbidden",              "Forbidden",              None),
        row(K::NotFound,             S::NOT_FOUND,              "not_found",              "Not found",              None),
        row(K::MethodNotAllowed,     S::METHOD_NOT_ALLOWED,     "method_not_allowed",     "Method not allowed",     Some(H::Allow)),
        row(K::Duplicate,            S::CONFLICT,               "duplicate",              "Conflict",               None),
        row(K::IdempotencyKeyInFlight, S::CONFLICT,            "idempotency_key_in_flight", "Idempotency key in flight", None),
        row(K::IdempotentAnswerNotStored, S::CONFLICT,            "idempotency_answer_not_stored", "Answer not stored",     None),
        row(K::PreconditionFailed,   S::PRECONDITION_FAILED,    "precondition_failed",    "Precondition failed",    None),
        row(K::PayloadTooLarge,      S::PAYLOAD_TOO_LARGE,      "payload_too_large",      "Payload too large",      None),
        row(K::UnsupportedMediaType, S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type", None),
        row(K::Validation,           S::UNPROCESSABLE_ENTITY,   "validation",             "Validation failed",      None),
        row(K::IdempotencyKeyReused, S::UNPROCESSABLE_ENTITY,   "idempotency_key_reused", "Idempotency key reused", None),
        row(K::PreconditionRequired, S::PRECONDITION_REQUIRED,  "precondition_required",  "Precondition required",  None),
        row(K::RateLimited,          S::TOO_MANY_REQUESTS,      "rate_limited",           "Too many requests",      Some(H::RetryAfter)),
        row(K::Unavailable,          S::SERVICE_UNAVAILABLE,    "unavailable",            "Service unavailable",    Some(H::RetryAfter)),
        row(K::Internal,             S::INTERNAL_SERVER_ERROR,  "internal",               "Internal server error",  None),
    ]
};

// Row `i` describes the kind whose discriminant is `i`, so a kind finds its row by index.
const _: () = {
    let mut i = 0;
    while i < PROBLEM_TYPES.len() {
        assert!(
            PROBLEM_TYPES[i].kind as usize == i,
            "PROBLEM_TYPES must list the kinds in ProblemKind's order"
        );
        i += 1;
    }
};

impl ProblemKind {
    /// This kind's row of the catalogue.
    pub const fn problem_type(self) -> ProblemType {
        PROBLEM_TYPES[self as usize]
    }
}

/// `WWW-Authenticate` when no credentials came (RFC 6750 §3.1: no `error`).
const BEARER_CHALLENGE: &str = "Bearer realm=\"lshub\"";
/// `WWW-Authenticate` for a token that is present but unusable.
const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"lshub\", error=\"invalid_token\"";
/// `WWW-Authenticate` for `invalid_client` at the token endpoint (RFC 6749 §5.2).
const CLIENT_CHALLENGE: &str = "Basic realm=\"lshub\"";
/// How long a client waits after a serialization failure or deadlock outlasted the retries.
const CONTENTION_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How a variant is answered: a problem document of one catalogue type, or RFC 6749's shape.
enum Answer<'a> {
    /// A problem document, with the value of the type's header if it has one.
    Problem(ProblemKind, Option<HeaderValue>),
    /// The token endpoint's error (RFC 6749 §5.2), which standard OAuth clients parse.
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: &'a str,
        retry_after: Option<Duration>,
    },
}

impl ApiError {
    /// 400 `malformed` with a detail.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::Malformed(detail.into())
    }

    /// 403 for a role that may not make this request.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 404 for a missing record of the named entity.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("no {what} with that id"))
    }

    /// 409 with one field that conflicts.
    pub fn conflict(detail: impl Into<String>, field: Option<&str>) -> Self {
        let detail = detail.into();
        let errors = field
            .map(|f| vec![FieldError::new(f, "duplicate", detail.clone())])
            .unwrap_or_default();
        Self::Conflict { detail, errors }
    }

    /// 422 with a single field error.
    pub fn invalid(
        field: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// 503: the database could not be reached in time.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable {
            detail: detail.into(),
            retry_after: Duration::from_secs(2),
        }
    }

    /// 500 with a cause that is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// 401 for a token that is missing.
    pub fn missing_credentials() -> Self {
        Self::Unauthorized {
            invalid_token: false,
            detail: "this endpoint requires a bearer access token".into(),
        }
    }

    /// 401 for a token that is present but unusable. The reason is logged, not sent: one
    /// answer for every refusal, so a forger learns nothing of which check a token failed
    /// (RFC 6750 §3.1 asks for `invalid_token`, nothing finer).
    pub fn invalid_token(reason: &str) -> Self {
        tracing::info!(reason, "access token refused");
        Self::Unauthorized {
            invalid_token: true,
            detail: "the access token is invalid, expired or revoked".into(),
        }
    }

    /// An RFC 6749 error from the token endpoint.
    pub fn oauth(error: &'static str, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::OAuth {
            status,
            error,
            description: description.into(),
        }
    }

    /// The one match from a variant to its row of [`PROBLEM_TYPES`] (and its header's value).
    fn answer(&self) -> Answer<'_> {
        use ProblemKind as K;
        let problem = Answer::Problem;
        match self {
            Self::Malformed(_) => problem(K::Malformed, None),
            Self::InvalidCursor => problem(K::InvalidCursor, None),
            Self::InvalidOneTimeToken(_) => problem(K::InvalidOneTimeToken, None),
            Self::Unauthorized { invalid_token, .. } => problem(
                K::Unauthorized,
                Some(HeaderValue::from_static(if *invalid_token {
                    INVALID_TOKEN_CHALLENGE
                } else {
                    BEARER_CHALLENGE
                })),
            ),
            Self::Forbidden { .. } => problem(K::Forbidden, None),
            Self::NotFound(_) => problem(K::NotFound, None),
            // actix's own 405 does not say which methods the path has: then no `Allow`.
            Self::MethodNotAllowed { allow } => problem(
                K::MethodNotAllowed,
                Some(allow)
                    .filter(|a| !a.is_empty())
                    .and_then(|a| HeaderValue::from_str(a).ok()),
            ),
            Self::Conflict { .. } => problem(K::Duplicate, None),
            Self::IdempotencyKeyInFlight => problem(K::IdempotencyKeyInFlight, None),
            Self::IdempotentAnswerNotStored(_) => problem(K::IdempotentAnswerNotStored, None),
            Self::IdempotencyKeyReused => problem(K::IdempotencyKeyReused, None),
            Self::PreconditionFailed => problem(K::PreconditionFailed, None),
            Self::PayloadTooLarge(_) => problem(K::PayloadTooLarge, None),
            Self::UnsupportedMediaType(_) => problem(K::UnsupportedMediaType, None),
            Self::Validation(_) => problem(K::Validation, None),
            Self::PreconditionRequired => problem(K::PreconditionRequired, None),
            Self::RateLimited { retry_after, .. } => {
                problem(K::RateLimited, Some(seconds(*retry_after)))
            }
            Self::Unavailable { retry_after, .. } => {
                problem(K::Unavailable, Some(seconds(*retry_after)))
            }
            Self::Contention => problem(K::Unavailable, Some(seconds(CONTENTION_RETRY_AFTER))),
            Self::Internal(_) => problem(K::Internal, None),
            Self::OAuth {
                status,
                error,
                description,
            } => Answer::OAuth {
                status: *status,
                error,
                description,
                retry_after: None,
            },
            Self::OAuthRateLimited {
                description,
                retry_after,
            } => Answer::OAuth {
                status: StatusCode::TOO_MANY_REQUESTS,
                error: "rate_limited",
                description,
                retry_after: Some(*retry_after),
            },
        }
    }

    /// The `detail` sent to the client: never the internal cause of a 500.
    fn public_detail(&self) -> String {
        match self {
            Self::Internal(_) => {
                "an unexpected error occurred; quote the request_id when reporting it".into()
            }
            Self::Validation(_) => "the request has invalid fields; see errors".into(),
            other => other.to_string(),
        }
    }
}

/// Parses a value the database constrains (a kind, a sector, a role): a mismatch is a bug
/// between the migrations and the code, so a 500, not a client error.
pub fn stored<T: std::str::FromStr<Err = crate::domain::Invalid>>(
    value: &str,
) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|e: crate::domain::Invalid| ApiError::internal(e.message))
}

/// Builds a problem body for a status that has no richer error (actix's own responses).
pub fn problem_for_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no resource at this path".into()),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the request body is too large".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("unsupported Content-Type".into())
        }
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed {
            allow: String::new(),
        },
        StatusCode::UNAUTHORIZED => ApiError::missing_credentials(),
        StatusCode::FORBIDDEN => ApiError::forbidden("forbidden"),
        StatusCode::REQUEST_TIMEOUT
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => {
            ApiError::unavailable("the request could not be completed in time")
        }
        s if s.is_client_error() => {
            ApiError::malformed(s.canonical_reason().unwrap_or("bad request").to_lowercase())
        }
        _ => ApiError::internal(format!("unhandled status {status}")),
    }
}

/// A `Retry-After` value: whole seconds, at least one.
fn seconds(wait: Duration) -> HeaderValue {
    HeaderValue::from(wait.as_secs().max(1))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.answer() {
            Answer::Problem(kind, _) => kind.problem_type().status,
            Answer::OAuth { status, .. } => status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = current_request_id();
        if let Self::Internal(cause) = self {
            tracing::error!(error = %cause, request_id = request_id.as_deref().unwrap_or("-"), "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        // RFC 9111 §5.2.2.5: error answers, like every authenticated answer, must not be reused.
        res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        let (kind, header_value) = match self.answer() {
            Answer::Problem(kind, value) => (kind, value),
            Answer::OAuth {
                status,
                error,
                description,
                retry_after,
            } => {
                if let Some(wait) = retry_after {
                    res.insert_header((header::RETRY_AFTER, seconds(wait)));
                }
                if status == StatusCode::UNAUTHORIZED {
                    res.insert_header((
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(CLIENT_CHALLENGE),
                    ));
                }
                return res.json(OAuthErrorBody {
                    error,
                    error_description: description.to_owned(),
                    request_id,
                });
            }
        };
        let problem = kind.problem_type();
        if let (Some(extra), Some(value)) = (problem.header, header_value) {
            res.insert_header((extra.name(), value));
        }
        let errors = match self {
            Self::Validation(errors)
            | Self::Forbidden { errors, .. }
            | Self::Conflict { errors, .. } => errors.clone(),
            _ => Vec::new(),
        };
        let body = Problem {
            type_: problem.type_uri(),
            title: problem.title.into(),
            status: problem.status.as_u16(),
            detail: self.public_detail(),
            request_id,
            errors,
        };
        res.content_type(PROBLEM_JSON).json(body)
    }
}

/// What a named constraint means to a client: the field it guards and the message.
struct ConstraintMeaning {
    name: &'static str,
    field: &'static str,
    message: &'static str,
}

/// Unique, exclusion and check constraints the API maps to 409/422 instead of 500.
const CONSTRAINTS: &[ConstraintMeaning] = &[
    ConstraintMeaning {
        name: "organisations_live_name_key",
        field: "/name",
        message: "another live record of this kind already has this name (ignoring case, accents and spacing)",
    },
    ConstraintMeaning {
        name: "companies_vat_number_key",
        field: "/vat_number",
        message: "another company (possibly archived) already has this VAT number",
    },
    ConstraintMeaning {
        name: "universities_ror_id_key",
        field: "/ror_id",
        message: "another university (possibly archived) already has this ROR id",
    },
    ConstraintMeaning {
        name: "goals_live_code_key",
        field: "/code",
        message: "another live goal already has this code",
    },
    ConstraintMeaning {
        name: "goal_activity_links_pair_key",
        field: "/activity_id",
        message: "this activity is already linked to this goal",
    },
    ConstraintMeaning {
        name: "goal_activity_links_one_primary",
        field: "/role",
        message: "this activity already has a primary goal",
    },
    ConstraintMeaning {
        name: "goal_partners_no_overlap",
        field: "/since",
        message: "the period overlaps another of this organisation with the same role here",
    },
    ConstraintMeaning {
        name: "activity_participants_no_overlap",
        field: "/since",
        message: "the period overlaps another of this organisation with the same role here",
    },
    ConstraintMeaning {
        name: "users_email_key",
        field: "/email",
        message: "a user with this e-mail already exists",
    },
];

/// The SQLSTATEs (PostgreSQL, Appendix A) that the API tells apart.
pub mod sqlstate {
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const EXCLUSION_VIOLATION: &str = "23P01";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    pub const QUERY_CANCELED: &str = "57014";
}

/// A body refused by the domain's rules: 422 with every problem at its member.
impl From<crate::domain::rules::Rejected> for ApiError {
    fn from(rejected: crate::domain::rules::Rejected) -> Self {
        Self::Validation(
            rejected
                .0
                .into_iter()
                .map(|p| FieldError::new(p.field, p.code, p.message))
                .collect(),
        )
    }
}

impl From<crate::db::StoreError> for ApiError {
    fn from(err: crate::db::StoreError) -> Self {
        use crate::db::StoreError;
        match err {
            StoreError::Query(e) => e.into(),
            StoreError::NotFound(entity) => Self::NotFound(format!("no {entity} with that id")),
            StoreError::Stale => Self::PreconditionFailed,
            StoreError::InvalidCursor => Self::InvalidCursor,
            StoreError::Parameter {
                field,
                code,
                message,
            } => Self::invalid(field, code, message),
        }
    }
}

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        use sqlstate::*;
        let DieselError::DatabaseError(kind, info) = &err else {
            return match err {
                DieselError::NotFound => Self::NotFound("not found".into()),
                other => Self::internal(other),
            };
        };
        // Detected by libpq, not sent by the server: there is no SQLSTATE to read.
        if matches!(
            kind,
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
        ) {
            tracing::warn!(error = %err, "database connection lost");
            return Self::unavailable("the database connection was lost; retry");
        }
        let meaning = info
            .constraint_name()
            .and_then(|name| CONSTRAINTS.iter().find(|c| c.name == name));
        // diesel reads the SQLSTATE into a kind for a dozen codes; the API tells more apart.
        match (info.sqlstate(), meaning) {
            (Some(UNIQUE_VIOLATION | EXCLUSION_VIOLATION), Some(c)) => {
                Self::conflict(c.message, Some(c.field))
            }
            (Some(UNIQUE_VIOLATION | EXCLUSION_VIOLATION), None) => {
                Self::conflict("the record conflicts with an existing one", None)
            }
            (Some(CHECK_VIOLATION | FOREIGN_KEY_VIOLATION), Some(c)) => {
                Self::invalid(c.field, "constraint", c.message)
            }
            // `db::transaction` retries these before answering 503.
            (Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED), _) => Self::Contention,
            (Some(LOCK_NOT_AVAILABLE), _) => {
                Self::unavailable("the record is busy with another write; retry")
            }
            (Some(QUERY_CANCELED), _) => Self::unavailable("the query took too long; retry later"),
            _ => Self::internal(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use diesel::result::DatabaseErrorInformation;

    use actix_web::body::MessageBody;
    use serde_json::Value;

    /// An error of each kind the API answers; `None` for a kind reserved in the catalogue.
    fn example(kind: ProblemKind) -> Option<ApiError> {
        use ProblemKind as K;
        Some(match kind {
            K::Malformed => ApiError::malformed("not JSON"),
            K::InvalidCursor => ApiError::InvalidCursor,
            K::InvalidOneTimeToken => ApiError::InvalidOneTimeToken("used".into()),
            K::Unauthorized => ApiError::missing_credentials(),
            K::Forbidden => ApiError::forbidden("editors only"),
            K::NotFound => ApiError::not_found("company"),
            K::MethodNotAllowed => ApiError::MethodNotAllowed {
                allow: "GET, HEAD, POST".into(),
            },
            K::Duplicate => ApiError::conflict("taken", Some("/name")),
            K::PreconditionFailed => ApiError::PreconditionFailed,
            K::PayloadTooLarge => ApiError::PayloadTooLarge("too large".into()),
            K::UnsupportedMediaType => ApiError::UnsupportedMediaType("not JSON".into()),
            K::Validation => ApiError::invalid("/vat_number", "invalid_check_digit", "no"),
            K::IdempotencyKeyInFlight => ApiError::IdempotencyKeyInFlight,
            K::IdempotentAnswerNotStored => {
                ApiError::IdempotentAnswerNotStored("the secret was shown once".into())
            }
            K::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            K::PreconditionRequired => ApiError::PreconditionRequired,
            K::RateLimited => ApiError::RateLimited {
                detail: "too many exports".into(),
                retry_after: Duration::from_secs(7),
            },
            K::Unavailable => ApiError::unavailable("down"),
            K::Internal => ApiError::internal("a bug"),
        })
    }

    struct Rendered {
        status: StatusCode,
        headers: actix_web::http::header::HeaderMap,
        body: Value,
    }

    fn render(err: &ApiError) -> Rendered {
        let res = err.error_response();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().try_into_bytes().expect("a complete body");
        Rendered {
            status,
            headers,
            body: serde_json::from_slice(&bytes).expect("a JSON body"),
        }
    }

    impl Rendered {
        fn header(&self, name: HeaderName) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
    }

    const EXTRA_HEADERS: [ExtraHeader; 3] = [
        ExtraHeader::RetryAfter,
        ExtraHeader::Allow,
        ExtraHeader::WwwAuthenticate,
    ];

    #[test]
    fn every_kind_renders_its_row() {
        for row in PROBLEM_TYPES {
            let Some(err) = example(row.kind) else {
                continue;
            };
            let r = render(&err);
            assert_eq!(r.status, row.status, "{}", row.code);
            assert_eq!(err.status_code(), row.status, "{}", row.code);
            assert_eq!(r.header(header::CONTENT_TYPE), Some(PROBLEM_JSON));
            assert_eq!(r.header(header::CACHE_CONTROL), Some("no-store"));
            assert_eq!(
                r.body["type"],
                format!("urn:lshub:problem:{}", row.code),
                "{}",
                row.code
            );
            assert_eq!(r.body["title"], row.title);
            assert_eq!(r.body["status"], row.status.as_u16());
            for extra in EXTRA_HEADERS {
                assert_eq!(
                    r.header(extra.name()).is_some(),
                    row.header == Some(extra),
                    "{} and {:?}",
                    row.code,
                    extra
                );
            }
        }
    }

    #[test]
    fn the_catalogue_has_one_row_per_code() {
        for (i, row) in PROBLEM_TYPES.iter().enumerate() {
            assert!(
                PROBLEM_TYPES[..i]
                    .iter()
                    .all(|other| other.code != row.code),
                "{} twice",
                row.code
            );
            assert!(row.status.is_client_error() || row.status.is_server_error());
        }
    }

    #[test]
    fn header_values_come_from_the_error() {
        let r = render(&ApiError::missing_credentials());
        assert_eq!(
            r.header(header::WWW_AUTHENTICATE),
            Some("Bearer realm=\"lshub\"")
        );
        let r = render(&ApiError::invalid_token("expired"));
        assert_eq!(
            r.header(header::WWW_AUTHENTICATE),
            Some("Bearer realm=\"lshub\", error=\"invalid_token\"")
        );
        let r = render(&ApiError::MethodNotAllowed {
            allow: "GET, HEAD".into(),
        });
        assert_eq!(r.header(header::ALLOW), Some("GET, HEAD"));
        // actix's own 405 does not know the path's methods.
        let r = render(&problem_for_status(StatusCode::METHOD_NOT_ALLOWED));
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.header(header::ALLOW), None);

        let retry_after = |err: ApiError| {
            let r = render(&err);
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.body["type"], "urn:lshub:problem:unavailable");
            r.header(header::RETRY_AFTER).map(str::to_owned)
        };
        assert_eq!(
            retry_after(ApiError::unavailable("down")).as_deref(),
            Some("2")
        );
        assert_eq!(retry_after(ApiError::Contention).as_deref(), Some("1"));
        let short = ApiError::Unavailable {
            detail: "soon".into(),
            retry_after: Duration::from_millis(300),
        };
        assert_eq!(
            retry_after(short).as_deref(),
            Some("1"),
            "at least a second"
        );
        let r = render(&ApiError::RateLimited {
            detail: "too many".into(),
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(r.header(header::RETRY_AFTER), Some("7"));
    }

    #[test]
    fn bodies_carry_detail_and_errors_but_never_an_internal_cause() {
        let r = render(&ApiError::conflict("taken", Some("/name")));
        assert_eq!(r.body["detail"], "taken");
        assert_eq!(
            r.body["errors"],
            serde_json::json!([{"field": "/name", "code": "duplicate", "message": "taken"}])
        );
        let r = render(&ApiError::invalid(
            "/vat_number",
            "invalid_check_digit",
            "no",
        ));
        assert_eq!(
            r.body["detail"],
            "the request has invalid fields; see errors"
        );
        assert_eq!(r.body["errors"][0]["code"], "invalid_check_digit");
        let r = render(&ApiError::not_found("company"));
        assert_eq!(r.body["detail"], "no company with that id");
        assert!(r.body.get("errors").is_none(), "no empty errors member");
        let r = render(&ApiError::internal("password=hunter2 in a stack trace"));
        assert!(!r.body.to_string().contains("hunter2"));
        assert_eq!(r.body["request_id"], Value::Null, "outside a request");
    }

    #[test]
    fn the_token_endpoint_answers_in_rfc_6749s_shape() {
        let r = render(&ApiError::oauth("invalid_grant", "bad login"));
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.header(header::CONTENT_TYPE), Some("application/json"));
        assert_eq!(r.header(header::CACHE_CONTROL), Some("no-store"));
        assert_eq!(r.header(header::WWW_AUTHENTICATE), None);
        assert_eq!(
            r.body,
            serde_json::json!({"error": "invalid_grant", "error_description": "bad login", "request_id": null})
        );
        let err = ApiError::oauth("invalid_client", "unknown client");
        assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED);
        let r = render(&err);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.header(header::WWW_AUTHENTICATE),
            Some("Basic realm=\"lshub\"")
        );
        assert_eq!(r.body["error"], "invalid_client");
    }

    /// The README's catalogue table lists the same codes and statuses, in the same order.
    #[test]
    fn the_readme_lists_the_catalogue() {
        let readme = include_str!("../README.md");
        let listed: Vec<(String, u16)> = readme
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let status = cells.get(2)?.parse().ok()?;
                Some((code.to_owned(), status))
            })
            .collect();
        let table: Vec<(String, u16)> = PROBLEM_TYPES
            .iter()
            .map(|p| (p.code.to_owned(), p.status.as_u16()))
            .collect();
        assert_eq!(listed, table);
    }

    /// Each shared problem response in the OpenAPI document declares the header that the
    /// table gives the problem types of its status.
    #[test]
    fn the_openapi_problem_responses_declare_the_tables_headers() {
        use utoipa::OpenApi;
        let spec = serde_json::to_value(crate::openapi::ApiDoc::openapi()).expect("spec");
        let components = &spec["components"]["responses"];
        let mut checked = 0;
        for operation in spec["paths"]
            .as_object()
            .expect("paths")
            .values()
            .flat_map(|item| item.as_object().expect("path item").values())
        {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                let response = match response["$ref"].as_str() {
                    Some(r) => &components[r.trim_start_matches("#/components/responses/")],
                    None => response,
                };
                if response["content"].get(PROBLEM_JSON).is_none() {
                    continue;
                }
                for row in PROBLEM_TYPES.iter().filter(|p| p.status.as_str() == status) {
                    if let Some(extra) = row.header {
                        let declared = response["headers"].as_object().is_some_and(|h| {
                            h.keys()
                                .any(|k| k.eq_ignore_ascii_case(extra.name().as_str()))
                        });
                        assert!(declared, "{status} ({}) lacks {:?}", row.code, extra);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 0);
    }

    /// What diesel hands over for a PostgreSQL error: a message and maybe a constraint.
    struct Reported {
        sqlstate: &'static str,
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for Reported {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
        fn sqlstate(&self) -> Option<&str> {
            Some(self.sqlstate)
        }
    }

    /// A database error as diesel hands it over: the kind it chose from the SQLSTATE, and the
    /// SQLSTATE itself.
    fn database_error(
        kind: DatabaseErrorKind,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> ApiError {
        use sqlstate::*;
        let sqlstate = match kind {
            DatabaseErrorKind::UniqueViolation => UNIQUE_VIOLATION,
            DatabaseErrorKind::ExclusionViolation => EXCLUSION_VIOLATION,
            DatabaseErrorKind::CheckViolation => CHECK_VIOLATION,
            DatabaseErrorKind::ForeignKeyViolation => FOREIGN_KEY_VIOLATION,
            DatabaseErrorKind::SerializationFailure => SERIALIZATION_FAILURE,
            _ => "XX000",
        };
        reported(kind, sqlstate, message, constraint)
    }

    fn reported(
        kind: DatabaseErrorKind,
        sqlstate: &'static str,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> ApiError {
        ApiError::from(DieselError::DatabaseError(
            kind,
            Box::new(Reported {
                sqlstate,
                message,
                constraint,
            }),
        ))
    }

    fn fields(err: &ApiError) -> Vec<(&str, &str)> {
        match err {
            ApiError::Conflict { errors, .. } | ApiError::Validation(errors) => errors
                .iter()
                .map(|e| (e.field.as_str(), e.code.as_ref()))
                .collect(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn exclusion_violations_are_told_apart_by_constraint_name() {
        for name in [
            "goal_partners_no_overlap",
            "activity_participants_no_overlap",
        ] {
            let err = database_error(
                DatabaseErrorKind::ExclusionViolation,
                "conflicting key value violates exclusion constraint",
                Some(name),
            );
            assert_eq!(err.status_code(), StatusCode::CONFLICT);
            assert_eq!(fields(&err), [("/since", "duplicate")], "{name}");
            assert_eq!(
                err.to_string(),
                "the period overlaps another of this organisation with the same role here"
            );
        }
        let unknown = database_error(
            DatabaseErrorKind::ExclusionViolation,
            "conflicting key value violates exclusion constraint",
            Some("rooms_no_double_booking"),
        );
        assert_eq!(unknown.status_code(), StatusCode::CONFLICT);
        assert!(fields(&unknown).is_empty());
        assert_eq!(
            unknown.to_string(),
            "the record conflicts with an existing one"
        );
    }

    #[test]
    fn unique_check_and_foreign_key_violations_use_the_same_table() {
        let err = database_error(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint",
            Some("companies_vat_number_key"),
        );
        assert_eq!(fields(&err), [("/vat_number", "duplicate")]);
        let err = database_error(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint",
            Some("something_else_key"),
        );
        assert_eq!(err.status_code(), StatusCode::CONFLICT);
        assert!(fields(&err).is_empty());
        let err = database_error(
            DatabaseErrorKind::CheckViolation,
            "new row violates check constraint",
            Some("goal_activity_links_one_primary"),
        );
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&err), [("/role", "constraint")]);
        // A check the API does not explain is a bug between the code and the migrations.
        let err = database_error(
            DatabaseErrorKind::CheckViolation,
            "new row violates check constraint",
            Some("companies_device_segment_only_for_devices"),
        );
        assert!(matches!(err, ApiError::Internal(_)));
    }

    #[test]
    fn contention_and_timeouts_are_recognised_by_sqlstate() {
        use sqlstate::*;
        let unknown = DatabaseErrorKind::Unknown;
        // The SQLSTATE decides, whatever the (translatable) message says.
        let answer = |code, message| reported(unknown, code, message, None);
        assert!(matches!(
            database_error(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access",
                None
            ),
            ApiError::Contention
        ));
        assert!(matches!(
            answer(DEADLOCK_DETECTED, "interblocage détecté"),
            ApiError::Contention
        ));
        let lock = answer(
            LOCK_NOT_AVAILABLE,
            "annulation de la requête à cause du délai",
        );
        assert!(matches!(lock, ApiError::Unavailable { .. }));
        assert_eq!(
            lock.to_string(),
            "the record is busy with another write; retry"
        );
        let slow = answer(
            QUERY_CANCELED,
            "canceling statement due to statement timeout",
        );
        assert!(matches!(slow, ApiError::Unavailable { .. }));
        assert_eq!(slow.to_string(), "the query took too long; retry later");
        assert!(matches!(
            database_error(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
                None
            ),
            ApiError::Unavailable { .. }
        ));
        // The English text of a contention error with another SQLSTATE is no contention.
        assert!(matches!(
            answer("42P01", "deadlock detected"),
            ApiError::Internal(_)
        ));
        assert!(matches!(
            ApiError::from(DieselError::NotFound),
            ApiError::NotFound(_)
        ));
    }

    /// Every constraint the table explains exists in the migrations.
    #[test]
    fn the_constraints_named_exist_in_the_migrations() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let sql: String = std::fs::read_dir(dir)
            .expect("migrations")
            .map(|entry| {
                std::fs::read_to_string(entry.expect("entry").path().join("up.sql"))
                    .unwrap_or_default()
            })
            .collect();
        for c in CONSTRAINTS {
            assert!(sql.contains(c.name), "{} is in no migration", c.name);
        }
    }
}
