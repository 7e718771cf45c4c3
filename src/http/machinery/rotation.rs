//! Secret rotations (API clients' and webhook subscriptions'): one body, one grace period.

use actix_web::HttpRequest;
use serde::Deserialize;
use utoipa::ToSchema;

use super::body;
use crate::error::ApiError;

/// A secret rotation: how long the old secret keeps working.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// Seconds the previous secret keeps working beside the new one, 0 (the default: it
    /// stops at once) to 2,592,000 (30 days).
    #[serde(default, deserialize_with = "crate::domain::rules::whole_number")]
    #[schema(minimum = 0, maximum = 2592000, format = Int32)]
    pub grace_seconds: i64,
}

/// The longest grace period a rotation may give the old secret.
pub const MAX_GRACE_SECS: i64 = 30 * 24 * 3600;

/// The grace period a rotation's body asks for (an empty body: none): 415, 400, 422.
pub fn grace_of(req: &HttpRequest, bytes: &[u8]) -> Result<chrono::Duration, ApiError> {
    body::check_media_type(req.headers(), body::JSON)?;
    if bytes.is_empty() {
        return Ok(chrono::Duration::zero());
    }
    let map = body::parse_object(bytes)?;
    let secs = crate::domain::rules::validate(map, |r: RotateSecret, errors| {
        errors
            .range("/grace_seconds", Some(r.grace_seconds), 0, MAX_GRACE_SECS)
            .unwrap_or(0)
    })?;
    Ok(chrono::Duration::seconds(secs))
}
