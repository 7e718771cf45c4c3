//! The problem responses shared by every operation in the OpenAPI document, so each handler
//! lists the statuses it really returns without pasting their descriptions.

use utoipa::ToResponse;

use crate::error::Problem;

/// Malformed request: body not JSON (or not an object), bad query or path parameter, invalid cursor.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(pub Problem);

/// No bearer token (`WWW-Authenticate: Bearer realm="lshub"`), or an invalid one (`error="invalid_token"`).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "RFC 6750 challenge"))
)]
pub struct Unauthorized(pub Problem);

/// The caller's role, or ownership of the record, does not allow this.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(pub Problem);

/// No such record (or it is archived and the caller may not see archived records).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// Conflicts with existing state: a name or VAT number already taken, restoring a live record.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(pub Problem);

/// `If-Match` names a version that is no longer current.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PreconditionFailed(pub Problem);

/// The body is larger than the endpoint accepts (64 KiB for JSON bodies).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem);

/// The body's media type is not accepted here.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnsupportedMediaType(pub Problem);

/// Invalid values, unknown or read-only fields; `errors[]` lists each with a JSON Pointer.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unprocessable(pub Problem);

/// A write that needs `If-Match` came without one (or with `*`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PreconditionRequired(pub Problem);

/// The database is unreachable or busy; retry after `Retry-After` seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait"))
)]
pub struct Unavailable(pub Problem);

/// Too many requests of this kind at once (e.g. CSV exports); retry after `Retry-After` seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait"))
)]
pub struct TooManyRequests(pub Problem);
