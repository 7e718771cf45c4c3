//! One error type for the whole API, rendered as RFC 9457 problem+json in one place.
//!
//! Each variant documents its status; internal causes are logged with the request id and never
//! sent to the client.

use std::borrow::Cow;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
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

    /// 401 for a token that is present but unusable.
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self::Unauthorized {
            invalid_token: true,
            detail: detail.into(),
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

    /// The problem catalogue entry: (`code`, title).
    pub fn code_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::Malformed(_) => ("malformed", "Malformed request"),
            Self::InvalidCursor => ("invalid_cursor", "Invalid cursor"),
            Self::Unauthorized { .. } => ("unauthorized", "Unauthorized"),
            Self::Forbidden { .. } => ("forbidden", "Forbidden"),
            Self::NotFound(_) => ("not_found", "Not found"),
            Self::MethodNotAllowed { .. } => ("method_not_allowed", "Method not allowed"),
            Self::Conflict { .. } => ("duplicate", "Conflict"),
            Self::PreconditionFailed => ("precondition_failed", "Precondition failed"),
            Self::PayloadTooLarge(_) => ("payload_too_large", "Payload too large"),
            Self::UnsupportedMediaType(_) => ("unsupported_media_type", "Unsupported media type"),
            Self::Validation(_) => ("validation", "Validation failed"),
            Self::PreconditionRequired => ("precondition_required", "Precondition required"),
            Self::RateLimited { .. } => ("rate_limited", "Too many requests"),
            Self::Unavailable { .. } | Self::Contention => ("unavailable", "Service unavailable"),
            Self::Internal(_) | Self::OAuth { .. } => ("internal", "Internal server error"),
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

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Malformed(_) | Self::InvalidCursor => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::Contention => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::OAuth { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = current_request_id();
        let status = self.status_code();
        if let Self::Internal(cause) = self {
            tracing::error!(error = %cause, request_id = request_id.as_deref().unwrap_or("-"), "internal error");
        }
        let mut res = HttpResponse::build(status);
        // RFC 9111 §5.2.2.5: error answers, like every authenticated answer, must not be reused.
        res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Self::OAuth {
            error, description, ..
        } = self
        {
            if status == StatusCode::UNAUTHORIZED {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"lshub\""),
                ));
            }
            return res.json(OAuthErrorBody {
                error,
                error_description: description.clone(),
                request_id,
            });
        }
        match self {
            Self::Unauthorized {
                invalid_token: true,
                ..
            } => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"lshub\", error=\"invalid_token\""),
                ));
            }
            Self::Unauthorized {
                invalid_token: false,
                ..
            } => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"lshub\""),
                ));
            }
            Self::MethodNotAllowed { allow } if !allow.is_empty() => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    res.insert_header((header::ALLOW, v));
                }
            }
            Self::Unavailable { retry_after, .. } | Self::RateLimited { retry_after, .. } => {
                res.insert_header((
                    header::RETRY_AFTER,
                    retry_after.as_secs().max(1).to_string(),
                ));
            }
            Self::Contention => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        let (code, title) = self.code_and_title();
        let errors = match self {
            Self::Validation(errors)
            | Self::Forbidden { errors, .. }
            | Self::Conflict { errors, .. } => errors.clone(),
            _ => Vec::new(),
        };
        let body = Problem {
            type_: format!("urn:lshub:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
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

/// Unique and check constraints the API maps to 409/422 instead of 500.
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
        name: "users_email_key",
        field: "/email",
        message: "a user with this e-mail already exists",
    },
];

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::NotFound => Self::NotFound("not found".into()),
            DieselError::DatabaseError(kind, info) => {
                let meaning = info
                    .constraint_name()
                    .and_then(|name| CONSTRAINTS.iter().find(|c| c.name == name));
                match (kind, meaning) {
                    (DatabaseErrorKind::UniqueViolation, Some(c)) => {
                        Self::conflict(c.message, Some(c.field))
                    }
                    (DatabaseErrorKind::ExclusionViolation, _) => Self::conflict(
                        "the period overlaps another of this organisation with the same role here",
                        Some("/since"),
                    ),
                    (DatabaseErrorKind::UniqueViolation, None) => {
                        Self::conflict("the record conflicts with an existing one", None)
                    }
                    (
                        DatabaseErrorKind::CheckViolation | DatabaseErrorKind::ForeignKeyViolation,
                        Some(c),
                    ) => Self::invalid(c.field, "constraint", c.message),
                    (
                        DatabaseErrorKind::ClosedConnection
                        | DatabaseErrorKind::UnableToSendCommand,
                        _,
                    ) => {
                        tracing::warn!(error = %err, "database connection lost");
                        Self::unavailable("the database connection was lost; retry")
                    }
                    (DatabaseErrorKind::SerializationFailure, _) => Self::Contention,
                    _ if is_deadlock(info.message()) => Self::Contention,
                    _ if info.message().contains("lock timeout") => {
                        Self::unavailable("the record is busy with another write; retry")
                    }
                    _ if info.message().contains("statement timeout") => {
                        Self::unavailable("the query took too long; retry later")
                    }
                    _ => Self::internal(err),
                }
            }
            _ => Self::internal(err),
        }
    }
}

fn is_deadlock(message: &str) -> bool {
    message.contains("deadlock detected")
}
