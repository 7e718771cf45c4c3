//! Authentication and authorisation: access tokens, passwords, and the caller as an extractor.

pub mod password;
pub mod revocation;
pub mod tokens;

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::OrganisationId;
use crate::domain::Role;
use crate::error::ApiError;

pub use password::PasswordHasher;
pub use tokens::{AccessToken, Claims, TokenService};

/// Whether the caller is a person or a machine client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person logged in through an admin tool.
    User,
    /// A machine client (OAuth2 client credentials).
    Client,
}

impl PrincipalKind {
    /// The value stored in `audit_events.actor_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
        }
    }
}

/// The authenticated caller, taken from a verified bearer token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user's or client's id (`sub`).
    pub id: Uuid,
    /// Person or machine.
    pub kind: PrincipalKind,
    /// What the caller may do.
    pub role: Role,
    /// The organisation a partner acts for.
    pub organisation_id: Option<OrganisationId>,
}

impl Principal {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not do this; it needs one of: {}",
                self.role,
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// `include_archived=true` is for editors and admins; for others it is 403.
    pub fn check_include_archived(&self, include_archived: bool) -> Result<bool, ApiError> {
        if include_archived && !self.role.can_edit() {
            return Err(ApiError::forbidden(
                "include_archived is for editors and admins",
            ));
        }
        Ok(include_archived)
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(principal_of(req))
    }
}

/// The caller of `req`, authenticated and admitted by the route's declared roles (401, 403).
pub fn principal_of(req: &HttpRequest) -> Result<Principal, ApiError> {
    authenticate(req).and_then(|principal| authorise(req, principal))
}

/// 403 unless the route declares the caller's role: the route table (`http::routes`) is the
/// one declaration of who may call what, and the OpenAPI `x-roles` come from it too. A route
/// that declares nothing lets nobody in (deny by default).
fn authorise(req: &HttpRequest, principal: Principal) -> Result<Principal, ApiError> {
    use crate::http::routes::{Access, RouteAccess};
    match req
        .app_data::<RouteAccess>()
        .and_then(|access| access.of(req.method()))
    {
        Some(Access::Roles(roles)) => principal.require(roles).map(|()| principal),
        Some(Access::Anonymous) => Ok(principal),
        None => {
            tracing::error!(path = req.path(), "a route without declared roles");
            Err(ApiError::forbidden("this route admits no role"))
        }
    }
}

/// The caller of `req` from its bearer token, verified and not revoked (401 otherwise), with
/// no role check: the rate limiter and the idempotency middleware key requests by it before
/// routing. The verdict is kept in the request's extensions, the principal or the 401, so the
/// token is verified, and a refusal logged, once per request.
pub fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    if let Some(existing) = req.extensions().get::<Principal>() {
        return Ok(existing.clone());
    }
    if let Some(Refused {
        invalid_token,
        detail,
    }) = req.extensions().get::<Refused>()
    {
        return Err(ApiError::Unauthorized {
            invalid_token: *invalid_token,
            detail: detail.clone(),
        });
    }
    let verdict = verified_principal(req).and_then(|principal| {
        req.app_data::<web::Data<revocation::Revocations>>()
            .ok_or_else(|| ApiError::internal("the revocation set is missing from app data"))?
            .check(req, &principal)?;
        Ok(principal)
    });
    match &verdict {
        Ok(principal) => {
            req.extensions_mut().insert(principal.clone());
        }
        Err(ApiError::Unauthorized {
            invalid_token,
            detail,
        }) => {
            req.extensions_mut().insert(Refused {
                invalid_token: *invalid_token,
                detail: detail.clone(),
            });
        }
        // A failure to check (the database, say) may pass on a second try.
        Err(_) => {}
    }
    verdict
}

/// A request's token refused, as [`authenticate`] answered it the first time.
#[derive(Debug, Clone)]
struct Refused {
    invalid_token: bool,
    detail: String,
}

/// The caller named by the request's bearer token, verified (401 otherwise), before any
/// revocation check.
fn verified_principal(req: &HttpRequest) -> Result<Principal, ApiError> {
    let tokens = req
        .app_data::<web::Data<TokenService>>()
        .ok_or_else(|| ApiError::internal("TokenService missing from app data"))?;
    tokens.principal(bearer_token(req)?)
}

/// The credential of the request's `Authorization: Bearer` header, unverified (401 without
/// one): an access token, or the scrape token `/metrics` compares.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(ApiError::missing_credentials)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_token("the Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        // RFC 6750 §3.1: another scheme is "no authentication information", so no error code.
        _ => Err(ApiError::missing_credentials()),
    }
}
