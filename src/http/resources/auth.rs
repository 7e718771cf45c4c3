//! `/api/v1/auth/token` (RFC 6749), `/api/v1/auth/revoke` (RFC 7009) and `/api/v1/me`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::{Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::tokens::{digest_token, new_refresh_token};
use crate::auth::{PasswordHasher, Principal, PrincipalKind, TokenService};
use crate::db;
use crate::domain::account::{self, SetPasswordBody};
use crate::domain::{AuditAction, Role};
use crate::error::{stored, ApiError, OAuthErrorBody};
use crate::http::machinery::body;
use crate::http::machinery::etag::PRIVATE_REVALIDATE;
use crate::http::machinery::problems;
use crate::http::machinery::rate_limit::{Account, TokenLimits};
use crate::models::audit::{self, Actor};
use crate::models::client::{self, ClientRow};
use crate::models::user::{self, UserRow};

/// The grants of the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `username` (the e-mail) and `password`: the hub's own admin tools.
    Password,
    /// `refresh_token`: rotates it.
    RefreshToken,
    /// An API client's `client_id` and `client_secret`, by HTTP Basic (`client_secret_basic`)
    /// or in the body (`client_secret_post`): machine integrations.
    ClientCredentials,
}

/// A token request, form-encoded (RFC 6749) or JSON. Members the grant does not use, and
/// unknown ones, are ignored (RFC 6749 §3.2); a member of the wrong type is 400
/// `invalid_request`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The grant; 400 `unsupported_grant_type` for others.
    #[schema(value_type = GrantType, required = true)]
    pub grant_type: Option<String>,
    /// The user's e-mail (password grant; required there).
    pub username: Option<String>,
    /// The user's password (password grant; required there).
    pub password: Option<String>,
    /// The refresh token (refresh_token grant; required there).
    pub refresh_token: Option<String>,
    /// Ignored: a token carries its role's scopes.
    pub scope: Option<String>,
    /// The API client's id (client_credentials grant, `client_secret_post`; or HTTP Basic).
    /// Accepted and not checked for the other grants, as public clients send it.
    pub client_id: Option<String>,
    /// The API client's secret (client_credentials grant, `client_secret_post`; or HTTP
    /// Basic, which RFC 6749 §2.3.1 prefers).
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// An opaque refresh token; each use returns a new one and retires the old.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes.
    pub scope: String,
}

/// The body of the token or revocation endpoint: form-encoded (RFC 6749 §3.2: each parameter
/// at most once) or JSON; any other media type, a malformed body or a member of the wrong type
/// is 400 `invalid_request` in RFC 6749's shape. `what` names the request in messages.
fn parse_oauth_body<T: DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/x-www-form-urlencoded" => {
            let mut map = serde_json::Map::new();
            for (k, v) in url::form_urlencoded::parse(body) {
                if map
                    .insert(
                        k.clone().into_owned(),
                        serde_json::Value::String(v.into_owned()),
                    )
                    .is_some()
                {
                    return Err(ApiError::oauth(
                        "invalid_request",
                        format!("parameter `{k}` was sent more than once"),
                    ));
                }
            }
            serde_json::from_value(serde_json::Value::Object(map))
                .map_err(|e| ApiError::oauth("invalid_request", e.to_string()))
        }
        "application/json" => serde_json::from_slice(body).map_err(|e| {
            ApiError::oauth(
                "invalid_request",
                format!("the body is not a valid {what}: {e}"),
            )
        }),
        _ => Err(ApiError::oauth(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )),
    }
}

fn required(value: Option<String>, name: &str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::oauth("invalid_request", format!("`{name}` is required")))
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn user_role(user: &UserRow) -> Result<Role, ApiError> {
    stored(&user.role)
}

/// Obtain an access token.
#[utoipa::path(
    post, path = "/api/v1/auth/token", tag = "auth",
    description = "OAuth 2.0 token endpoint. Grants: `password` (the hub's own admin tools; \
        username = e-mail), `refresh_token` (rotates: the old refresh token stops working, and \
        presenting it again revokes every token of its family) and `client_credentials` (an API \
        client, authenticated by HTTP Basic, `client_secret_basic`, or by `client_id` and \
        `client_secret` in the body, `client_secret_post`, never both; a partner client acts for \
        its organisation with a partner user's rights; no refresh token). Errors use RFC 6749's \
        shape. Rate limited per client IP and per account (the username, or the client id), \
        across replicas: every request naming a supported grant counts, before any password or \
        secret is checked; beyond a limit the answer is 429 `rate_limited`.",
    request_body(content((TokenRequest = "application/x-www-form-urlencoded"), (TokenRequest = "application/json"))),
    responses(
        (status = 200, description = "Tokens issued", body = TokenResponse,
         headers(("Cache-Control" = String, description = "`no-store`"),
                 ("RateLimit-Policy" = String, description = "The limits that apply: `\"token-ip\";q=<requests>;w=<seconds>` and, with a username or client id, `\"token-account\";q=..;w=..` (draft-ietf-httpapi-ratelimit-headers)"),
                 ("RateLimit" = String, description = "What is left of each: `\"token-ip\";r=<requests>;t=<seconds until whole again>`"))),
        (status = 400, description = "RFC 6749 §5.2 `error`: `invalid_request` (a missing, repeated or mistyped \
            parameter, or another media type), `invalid_grant` (wrong credentials, or a refresh token that is unknown, \
            expired, revoked or already used), or `unsupported_grant_type`",
         body = OAuthErrorBody, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, description = "RFC 6749 §5.2 `invalid_client`: no client credentials, an unknown \
            client, a wrong secret or a revoked client (`client_credentials`)",
         body = OAuthErrorBody, headers(("Cache-Control" = String, description = "`no-store`"),
                                        ("WWW-Authenticate" = String, description = "`Basic realm=\"lshub\"`"))),
        (status = 413, response = problems::PayloadTooLarge),
        (status = 429, description = "RFC 6749 shape, `error` `rate_limited`: too many token requests from this \
            client IP or for this username or client id",
         body = OAuthErrorBody, headers(("Cache-Control" = String, description = "`no-store`"),
                                        ("Retry-After" = u32, description = "Seconds to wait"),
                                        ("RateLimit-Policy" = String, description = "The limits that apply"),
                                        ("RateLimit" = String, description = "What is left of each (`r=0` for the one spent)"))),
        (status = 503, response = problems::Unavailable),
    )
)]
pub async fn issue_token(
    pool: Pool,
    tokens: web::Data<TokenService>,
    hasher: web::Data<PasswordHasher>,
    limits: web::Data<TokenLimits>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: TokenRequest = parse_oauth_body(&req, &body, "token request")?;
    let grant_type = required(request.grant_type.clone(), "grant_type")?;
    let grant =
        serde_json::from_value(serde_json::Value::String(grant_type.clone())).map_err(|_| {
            ApiError::oauth(
                "unsupported_grant_type",
                format!("grant type `{grant_type}` is not supported"),
            )
        })?;
    let credentials =
        (grant == GrantType::ClientCredentials).then(|| client_credentials(&req, &request));
    let account = match (grant, &credentials) {
        (GrantType::Password, _) => request
            .username
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(Account::User),
        (_, Some(Ok((id, _)))) => Some(Account::Client(id)),
        _ => None,
    };
    // Charged before any password or secret is verified: Argon2 is what a guesser would
    // make us spend.
    let budget = limits.charge(&pool, &req, account).await?;
    let mut res = match budget.retry_after() {
        Some(wait) => ApiError::OAuthRateLimited {
            description: format!("too many token requests; retry in {} s", wait.as_secs()),
            retry_after: wait,
        }
        .error_response(),
        None => grant_tokens(&pool, &tokens, &hasher, grant, request, credentials)
            .await
            .unwrap_or_else(|e| e.error_response()),
    };
    budget.insert_headers(res.headers_mut());
    Ok(res)
}

/// Runs one grant once the rate limits let it through.
async fn grant_tokens(
    pool: &Pool,
    tokens: &TokenService,
    hasher: &PasswordHasher,
    grant: GrantType,
    request: TokenRequest,
    credentials: Option<Result<(String, String), ApiError>>,
) -> Result<HttpResponse, ApiError> {
    let (refresh, digest) = new_refresh_token();
    let expires_at = Utc::now()
        + Duration::seconds(i64::try_from(tokens.refresh_ttl_secs()).unwrap_or(i64::MAX / 4));
    let issued = NewRefresh { digest, expires_at };
    let user = match grant {
        GrantType::Password => password_grant(pool, hasher, request, issued).await?,
        GrantType::RefreshToken => refresh_grant(pool, request, issued).await?,
        GrantType::ClientCredentials => {
            let credentials = credentials
                .unwrap_or_else(|| Err(ApiError::oauth("invalid_client", BAD_CLIENT)))?;
            let client = client_grant(pool, hasher, credentials).await?;
            let role = stored(&client.role)?;
            let access = tokens.issue(
                client.id,
                PrincipalKind::Client,
                role,
                client.organisation_id,
            )?;
            // RFC 6749 §4.4.3: no refresh token; the client asks again with its secret.
            return Ok(no_store(HttpResponse::Ok().json(TokenResponse {
                access_token: access.token,
                token_type: "Bearer",
                expires_in: access.expires_in,
                refresh_token: None,
                scope: access.scope,
            })));
        }
    };
    let role = user_role(&user)?;
    let access = tokens.issue(user.id, PrincipalKind::User, role, user.organisation_id)?;
    Ok(no_store(HttpResponse::Ok().json(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token: Some(refresh),
        scope: access.scope,
    })))
}

const BAD_LOGIN: &str = "invalid username or password";
const BAD_CLIENT: &str = "unknown client, wrong secret, or a revoked client";

/// The client's id and secret, from HTTP Basic (RFC 6749 §2.3.1: each form-urlencoded, then
/// `id:secret` in base64) or from the body; both at once is `invalid_request`, neither
/// `invalid_client`.
fn client_credentials(
    req: &HttpRequest,
    request: &TokenRequest,
) -> Result<(String, String), ApiError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        });
    let in_body = request.client_id.is_some() || request.client_secret.is_some();
    match (basic, in_body) {
        (Some(_), true) => Err(ApiError::oauth(
            "invalid_request",
            "authenticate the client one way: HTTP Basic or the body, not both",
        )),
        (Some(encoded), false) => {
            let decoded =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| ApiError::oauth("invalid_client", BAD_CLIENT))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| ApiError::oauth("invalid_client", BAD_CLIENT))?;
            let unescape = |part: &str| {
                url::form_urlencoded::parse(format!("v={part}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok((unescape(id), unescape(secret)))
        }
        (None, _) => match (&request.client_id, &request.client_secret) {
            (Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
            _ => Err(ApiError::oauth("invalid_client", BAD_CLIENT)),
        },
    }
}

/// Authenticates an API client; an unknown client, a wrong secret and a revoked client answer
/// alike (401 `invalid_client` with `WWW-Authenticate: Basic`) and take alike long.
async fn client_grant(
    pool: &Pool,
    hasher: &PasswordHasher,
    (id, secret): (String, String),
) -> Result<ClientRow, ApiError> {
    let found = match Uuid::parse_str(&id) {
        Ok(id) => {
            db::run(pool, move |conn| {
                client::find(conn, id).map_err(ApiError::from)
            })
            .await?
        }
        Err(_) => None,
    };
    let now = Utc::now();
    let hashes = found
        .as_ref()
        .map(|c| c.secret_hashes(now))
        .unwrap_or_default();
    let mut verified = false;
    if hashes.is_empty() {
        hasher.verify(None, secret).await?;
    } else {
        for hash in hashes {
            verified |= hasher.verify(Some(hash), secret.clone()).await?;
        }
    }
    match found {
        Some(client) if verified && client.revoked_at.is_none() => Ok(client),
        _ => Err(ApiError::oauth("invalid_client", BAD_CLIENT)),
    }
}

/// The refresh token a successful grant stores (its digest) and hands out.
struct NewRefresh {
    digest: Vec<u8>,
    expires_at: chrono::DateTime<Utc>,
}

/// Verifies e-mail and password; an unknown user, a wrong password and a disabled account
/// answer alike and take alike long.
async fn password_grant(
    pool: &Pool,
    hasher: &PasswordHasher,
    request: TokenRequest,
    issued: NewRefresh,
) -> Result<UserRow, ApiError> {
    let username = required(request.username, "username")?;
    let password = required(request.password, "password")?;
    let found = db::run(pool, move |conn| {
        user::find_by_email(conn, &username).map_err(ApiError::from)
    })
    .await?;
    let hash = found.as_ref().and_then(|u| u.password_hash.clone());
    let verified = hasher.verify(hash, password).await?;
    match found {
        Some(user) if verified && user.disabled_at.is_none() => {
            let user_id = user.id;
            db::run(pool, move |conn| {
                // A login starts a new family of refresh tokens.
                user::insert_refresh_token(
                    conn,
                    Uuid::now_v7(),
                    user_id,
                    &issued.digest,
                    issued.expires_at,
                )
                .map_err(ApiError::from)
            })
            .await?;
            Ok(user)
        }
        _ => Err(ApiError::oauth("invalid_grant", BAD_LOGIN)),
    }
}

enum Refresh {
    Rotated(UserRow),
    Refused(&'static str),
}

/// Rotates a refresh token. A token already rotated is a replay (RFC 9700 §4.14.2): its whole
/// family is revoked, and that revocation commits even though the request fails.
///
/// The new token is stored in the same transaction that retires the old one, so a replay can
/// never revoke the family between the two and leave the new token alive.
async fn refresh_grant(
    pool: &Pool,
    request: TokenRequest,
    issued: NewRefresh,
) -> Result<UserRow, ApiError> {
    let token = required(request.refresh_token, "refresh_token")?;
    let digest = digest_token(&token);
    let outcome = db::transaction(pool, move |conn| {
        let Some(row) = user::find_refresh_token_for_update(conn, &digest)? else {
            return Ok(Refresh::Refused("unknown refresh token"));
        };
        if row.revoked_at.is_some() {
            return Ok(Refresh::Refused("the refresh token has been revoked"));
        }
        if row.rotated_at.is_some() {
            user::revoke_family(conn, row.family_id)?;
            tracing::warn!(family = %row.family_id, "refresh token reused; family revoked");
            return Ok(Refresh::Refused(
                "the refresh token was already used; its session has been revoked",
            ));
        }
        if row.expires_at <= Utc::now() {
            return Ok(Refresh::Refused("the refresh token has expired"));
        }
        let user = user::find(conn, row.user_id)?
            .ok_or_else(|| ApiError::internal("refresh token without user"))?;
        if user.disabled_at.is_some() {
            user::revoke_family(conn, row.family_id)?;
            return Ok(Refresh::Refused("the account is disabled"));
        }
        user::mark_rotated(conn, row.id)?;
        user::insert_refresh_token(
            conn,
            row.family_id,
            user.id,
            &issued.digest,
            issued.expires_at,
        )?;
        Ok(Refresh::Rotated(user))
    })
    .await?;
    match outcome {
        Refresh::Rotated(user) => Ok(user),
        Refresh::Refused(why) => Err(ApiError::oauth("invalid_grant", why)),
    }
}

/// A revocation request (RFC 7009 §2.1), form-encoded or JSON. Other members, a member of the
/// wrong type or a missing `token` are 400 `invalid_request`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The refresh token to revoke.
    #[schema(value_type = String, required = true, min_length = 1)]
    pub token: Option<String>,
    /// `refresh_token` or `access_token`: a hint only, whatever its value.
    pub token_type_hint: Option<String>,
    /// A client's id (RFC 6749 §2.3.1); accepted, not checked: a refresh token names its
    /// own user.
    pub client_id: Option<String>,
    /// A client's secret (RFC 6749 §2.3.1); accepted, not checked.
    pub client_secret: Option<String>,
}

/// Revoke a refresh token.
#[utoipa::path(
    post, path = "/api/v1/auth/revoke", tag = "auth",
    description = "RFC 7009. Revokes the refresh token and every token rotated from the same login. \
        Answers 200 for unknown tokens too, so it reveals nothing. Access tokens are short-lived \
        JWTs and simply expire.",
    request_body(content((RevokeRequest = "application/x-www-form-urlencoded"), (RevokeRequest = "application/json"))),
    responses(
        (status = 200, description = "Revoked (or unknown)",
         headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "RFC 6749 §5.2 `error` `invalid_request`: no `token`, an unknown, repeated or \
            mistyped member, or another media type", body = OAuthErrorBody,
         headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 413, response = problems::PayloadTooLarge),
        (status = 503, response = problems::Unavailable),
    )
)]
pub async fn revoke_token(
    pool: Pool,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: RevokeRequest = parse_oauth_body(&req, &body, "revocation request")?;
    let token = required(request.token, "token")?;
    let digest = digest_token(&token);
    db::transaction(&pool, move |conn| {
        if let Some(row) = user::find_refresh_token_for_update(conn, &digest)? {
            user::revoke_family(conn, row.family_id)?;
        }
        Ok(())
    })
    .await?;
    Ok(no_store(HttpResponse::Ok().finish()))
}

/// Set a password with a one-time token.
#[utoipa::path(
    post, path = "/api/v1/auth/set-password", tag = "auth",
    description = "Unauthenticated: the one-time `token` (from the user's create answer, or from \
        `POST /api/v1/users/{id}/set-password-token`) sets the user's `password` (12 to 200 \
        characters), form-encoded or JSON. The token works once, within \
        `LSHUB_SET_PASSWORD_TOKEN_TTL` seconds of its issue (72 h by default), and only for an \
        enabled user; a newer token replaces it. The user's refresh tokens are revoked: a new \
        password ends its sessions. Errors are RFC 9457 problems: a token that is unknown, used, \
        replaced, expired or whose user is disabled is 400 `invalid_one_time_token` (one answer for \
        all, so it reveals nothing); a short password is 422 and leaves the token usable. Rate \
        limited per client IP, across replicas, in the token endpoint's own bucket (`token-ip`): \
        beyond it, 429 `rate_limited`.",
    request_body(content((SetPasswordBody = "application/x-www-form-urlencoded"), (SetPasswordBody = "application/json"))),
    responses(
        (status = 204, description = "The password is set; the token is spent",
         headers(("Cache-Control" = String, description = "`no-store`"),
                 ("RateLimit-Policy" = String, description = "`\"token-ip\";q=<requests>;w=<seconds>`"),
                 ("RateLimit" = String, description = "`\"token-ip\";r=<requests>;t=<seconds until whole again>`"))),
        (status = 400, response = problems::BadRequest),
        (status = 413, response = problems::PayloadTooLarge),
        (status = 415, response = problems::UnsupportedMediaType),
        (status = 422, response = problems::Unprocessable),
        (status = 429, response = problems::TooManyRequests),
        (status = 503, response = problems::Unavailable),
    )
)]
pub async fn set_password(
    pool: Pool,
    tokens: web::Data<TokenService>,
    hasher: web::Data<PasswordHasher>,
    limits: web::Data<TokenLimits>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let map = body::parse_json_or_form(req.headers(), &body)?;
    let (token, password) = account::set_password(map)?;
    // Charged before the token is looked up, as the token endpoint is before a password is
    // verified: a guesser of tokens is held to the same per-IP bucket.
    let budget = limits.charge(&pool, &req, None).await?;
    let mut res = match budget.retry_after() {
        Some(wait) => ApiError::RateLimited {
            detail: format!(
                "too many requests from this address; retry in {} s",
                wait.as_secs()
            ),
            retry_after: wait,
        }
        .error_response(),
        None => spend_set_password_token(&pool, &tokens, &hasher, token, password)
            .await
            .map_or_else(
                |e| e.error_response(),
                |()| HttpResponse::NoContent().finish(),
            ),
    };
    budget.insert_headers(res.headers_mut());
    Ok(no_store(res))
}

/// What every refused set-password token hears, whatever the reason, so none is revealed.
const BAD_SET_PASSWORD_TOKEN: &str =
    "the token is unknown, already used, replaced by a newer one, expired, or its user is disabled";

/// The user whose set-password token has `digest`, if the token still works (locked).
fn usable_set_password_token(
    conn: &mut diesel::PgConnection,
    digest: &[u8],
    ttl: Duration,
) -> Result<UserRow, ApiError> {
    let refused = || ApiError::InvalidOneTimeToken(BAD_SET_PASSWORD_TOKEN.into());
    let (user_id, issued_at) =
        user::find_set_password_token_for_update(conn, digest)?.ok_or_else(refused)?;
    if issued_at + ttl <= Utc::now() {
        return Err(refused());
    }
    match user::find(conn, user_id)? {
        Some(found) if found.disabled_at.is_none() => Ok(found),
        _ => Err(refused()),
    }
}

/// Checks the token, hashes the password (only for a token that works: Argon2 is what a
/// guesser would make us spend), then spends the token, sets the hash, revokes the user's
/// refresh tokens and audits, in one transaction that checks the token again.
async fn spend_set_password_token(
    pool: &Pool,
    tokens: &TokenService,
    hasher: &PasswordHasher,
    token: String,
    password: String,
) -> Result<(), ApiError> {
    let digest = digest_token(&token);
    let ttl = tokens.set_password_ttl();
    let peek = digest.clone();
    db::run(pool, move |conn| {
        usable_set_password_token(conn, &peek, ttl).map(|_| ())
    })
    .await?;
    let hash = hasher.hash(password).await?;
    let request_id = crate::telemetry::current_request_id();
    db::transaction(pool, move |conn| {
        let found = usable_set_password_token(conn, &digest, ttl)?;
        user::delete_set_password_token(conn, found.id)?;
        user::set_password_hash(conn, found.id, &hash)?;
        let revoked = user::revoke_refresh_tokens(conn, found.id)?;
        let actor = Actor {
            id: Some(found.id),
            kind: PrincipalKind::User.as_str(),
            request_id: request_id.clone(),
        };
        audit::record(
            conn,
            &actor,
            AuditAction::Update,
            "user",
            audit::Event {
                entity_id: found.id,
                related: Vec::new(),
                version: None,
                changes: serde_json::json!({
                    "before": {"password": found.password_hash.as_ref().map(|_| "set")},
                    "after": {"password": "set", "refresh_tokens_revoked": revoked},
                }),
            },
        )?;
        Ok(())
    })
    .await
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// User or client id.
    pub id: Uuid,
    /// `user` or `client`.
    pub kind: PrincipalKind,
    /// The user's e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The client's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The caller's role.
    pub role: Role,
    /// The organisation a partner acts for.
    pub organisation_id: Option<Uuid>,
}

/// Who am I?
#[utoipa::path(
    get, path = "/api/v1/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, response = problems::Unauthorized),
        (status = 503, response = problems::Unavailable),
    )
)]
pub async fn get_me(pool: Pool, principal: Principal) -> Result<HttpResponse, ApiError> {
    let id = principal.id;
    let (email, name) = match principal.kind {
        PrincipalKind::User => {
            let user = db::run(&pool, move |conn| {
                user::find(conn, id).map_err(ApiError::from)
            });
            (user.await?.map(|u| u.email), None)
        }
        PrincipalKind::Client => {
            let found = db::run(&pool, move |conn| {
                client::find(conn, id).map_err(ApiError::from)
            });
            (None, found.await?.map(|c| c.name))
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, PRIVATE_REVALIDATE))
        .json(MeResponse {
            id,
            kind: principal.kind,
            email,
            name,
            role: principal.role,
            organisation_id: principal.organisation_id.map(Uuid::from),
        }))
}
