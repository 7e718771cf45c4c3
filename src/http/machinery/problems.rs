//! The problem responses shared by every operation in the OpenAPI document, so each handler
//! lists the statuses it really returns without pasting their descriptions.

use utoipa::ToResponse;

use crate::error::Problem;

/// Declares problem responses: each a `application/problem+json` body, with the headers it
/// names.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident $(, $header:literal: $ty:ty => $describe:literal)*;)*) => {
        $(
            $(#[$doc])*
            #[derive(ToResponse)]
            #[response(
                content_type = "application/problem+json",
                headers($(($header = $ty, description = $describe)),*)
            )]
            pub struct $name(pub Problem);
        )*
    };
}

problem_responses! {
    /// Malformed request: body not JSON (or not an object), bad query or path parameter, invalid cursor.
    BadRequest;
    /// No bearer token (`WWW-Authenticate: Bearer realm="lshub"`), or an invalid one (`error="invalid_token"`).
    Unauthorized, "WWW-Authenticate": String => "RFC 6750 challenge";
    /// The caller's role, or ownership of the record, does not allow this.
    Forbidden;
    /// No such record (or it is archived and the caller may not see archived records).
    NotFound;
    /// Conflicts with existing state: a name or VAT number already taken, restoring a live record; a retry under an `Idempotency-Key` whose first request is in flight, or whose answer was not kept (it showed a secret, or the server stopped before keeping it).
    Conflict;
    /// `If-Match` names a version that is no longer current.
    PreconditionFailed;
    /// The body is larger than the endpoint accepts (64 KiB for JSON bodies).
    PayloadTooLarge;
    /// The body's media type is not accepted here.
    UnsupportedMediaType;
    /// Invalid values, unknown or read-only fields (`errors[]` lists each with a JSON Pointer); an `Idempotency-Key` used before for another request.
    Unprocessable;
    /// A write that needs `If-Match` came without one (or with `*`).
    PreconditionRequired;
    /// The database is unreachable or busy; retry after `Retry-After` seconds.
    Unavailable, "Retry-After": u32 => "Seconds to wait";
    /// The caller's request budget is spent (per principal: a full answer costs more points than a 304), or too many requests of this kind run at once (CSV exports); retry after `Retry-After` seconds.
    TooManyRequests,
        "Retry-After": u32 => "Seconds to wait",
        "RateLimit-Policy": String => "The caller's limit, when its budget is spent: `\"api\";q=<points>;w=<seconds>` (draft-ietf-httpapi-ratelimit-headers)",
        "RateLimit": String => "What is left of it: `\"api\";r=0;t=<seconds until the budget is whole again>`";
}
