//! Access tokens: HS256 JWTs (RFC 9068 profile) with a `kid` derived from the key, so keys can
//! rotate and replicas agree; and opaque refresh tokens stored as digests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Principal, PrincipalKind};
use crate::config::{AuthSettings, MIN_JWT_SECRET_BYTES};
use crate::domain::OrganisationId;
use crate::domain::Role;
use crate::error::ApiError;

/// The one algorithm accepted (RFC 8725 §3.1: never let the token choose).
const ALGORITHM: Algorithm = Algorithm::HS256;
/// RFC 9068 §2.1: access tokens are typed, so an ID token or another JWT cannot pass for one.
const TOKEN_TYPE: &str = "at+jwt";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// Access-token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's or client's id.
    pub sub: String,
    /// `user` or `client`.
    pub kind: PrincipalKind,
    /// The caller's role.
    pub role: Role,
    /// A partner's organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
    /// Space-separated scopes granted by the role.
    pub scope: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Unique token id.
    pub jti: String,
}

impl Claims {
    /// The caller these claims describe.
    pub fn principal(&self) -> Result<Principal, ApiError> {
        let id =
            Uuid::parse_str(&self.sub).map_err(|_| ApiError::invalid_token("malformed subject"))?;
        Ok(Principal {
            id,
            kind: self.kind,
            role: self.role,
            organisation_id: self.org.map(OrganisationId::new),
        })
    }
}

/// The scopes a role's tokens carry (informational: roles decide, scopes describe).
pub fn scope_for(role: Role) -> &'static str {
    match role {
        Role::Viewer => "registry:read",
        Role::Partner => "registry:read registry:write:own",
        Role::Editor => "registry:read registry:write audit:read",
        Role::Admin => "registry:read registry:write audit:read admin",
    }
}

/// A signed access token and how long it lives.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The compact JWT.
    pub token: String,
    /// Seconds until expiry.
    pub expires_in: u64,
    /// Granted scopes.
    pub scope: String,
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    fn new(secret: &[u8]) -> Self {
        Self {
            kid: key_id(secret),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

/// `kid` of a key: a digest of it, so every replica with the same key names it alike and the
/// name reveals nothing of the key.
pub fn key_id(secret: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"lshub-kid:")
        .chain_update(secret)
        .finalize();
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// Why a token service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No signing key configured.
    #[error("LSHUB_JWT_SECRET is not set: `serve` needs a signing key of at least {MIN_JWT_SECRET_BYTES} bytes (or run `serve --demo`)")]
    Missing,
    /// The key is too short for HS256.
    #[error("{0} must be at least {MIN_JWT_SECRET_BYTES} bytes long")]
    TooShort(&'static str),
}

/// How many access tokens a replica remembers having verified ([`Verified`]): a few hundred
/// bytes each.
const VERIFIED_CAPACITY: usize = 1024;

/// Access tokens this replica verified lately, with the caller each names and when it expires,
/// so that a client's next request with the same token is not verified again: the signature,
/// the header and every claim but `exp` hold for good once they held (the keys are fixed for
/// the process; `nbf` and `iat` only pass more easily as time goes on), and `exp` is checked
/// at every use. Only tokens that verified are kept, so a flood of forged ones neither fills
/// it nor skips a check. Verifying was ~45% of a 304 poll's instructions (issue 12). Bounded
/// ([`crate::memo::Generations`]). No `Debug`: it holds bearer tokens.
struct Verified(crate::memo::Generations<(Principal, i64)>);

impl Verified {
    fn new(capacity: usize) -> Self {
        Self(crate::memo::Generations::with_capacity(capacity))
    }

    /// The caller `token` names, if it verified here and has not expired by `now`.
    fn get(&self, token: &str, now: i64) -> Option<Principal> {
        let (principal, exp) = self.0.get(token)?;
        // As `decode` checks `exp`: expired once it is more than the leeway in the past.
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
        (exp >= now - leeway).then_some(principal)
    }

    fn remember(&self, token: &str, principal: Principal, exp: i64) {
        self.0.put(token.to_owned(), (principal, exp));
    }
}

/// Issues and verifies access tokens.
pub struct TokenService {
    current: Key,
    previous: Option<Key>,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    refresh_ttl_secs: u64,
    set_password_ttl_secs: u64,
    validation: Validation,
    verified: Verified,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("kid", &self.current.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// Builds the service from settings; refuses missing or short keys.
    pub fn new(settings: &AuthSettings) -> Result<Self, KeyError> {
        let secret = settings.jwt_secret.as_ref().ok_or(KeyError::Missing)?;
        if secret.expose().len() < MIN_JWT_SECRET_BYTES {
            return Err(KeyError::TooShort("LSHUB_JWT_SECRET"));
        }
        let previous = match &settings.jwt_previous_secret {
            Some(p) if p.expose().len() < MIN_JWT_SECRET_BYTES => {
                return Err(KeyError::TooShort("LSHUB_JWT_PREVIOUS_SECRET"))
            }
            Some(p) => Some(Key::new(p.expose().as_bytes())),
            None => None,
        };
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            current: Key::new(secret.expose().as_bytes()),
            previous,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ttl_secs: settings.access_token_ttl.max(1),
            refresh_ttl_secs: settings.refresh_token_ttl.max(1),
            set_password_ttl_secs: settings.set_password_token_ttl.max(1),
            validation,
            verified: Verified::new(VERIFIED_CAPACITY),
        })
    }

    /// Refresh-token lifetime in seconds.
    pub fn refresh_ttl_secs(&self) -> u64 {
        self.refresh_ttl_secs
    }

    /// How long a set-password token works after it was issued.
    pub fn set_password_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.set_password_ttl_secs).unwrap_or(i64::MAX / 4))
    }

    /// The current key's id.
    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// Signs an access token for a caller.
    pub fn issue(
        &self,
        subject: Uuid,
        kind: PrincipalKind,
        role: Role,
        organisation_id: Option<Uuid>,
    ) -> Result<AccessToken, ApiError> {
        let now = Utc::now().timestamp();
        let scope = scope_for(role).to_owned();
        let claims = Claims {
            sub: subject.to_string(),
            kind,
            role,
            org: organisation_id,
            scope: scope.clone(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(self.ttl_secs).unwrap_or(i64::MAX / 2),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(self.current.kid.clone());
        let token = encode(&header, &claims, &self.current.encoding).map_err(ApiError::internal)?;
        Ok(AccessToken {
            token,
            expires_in: self.ttl_secs,
            scope,
        })
    }

    /// The caller an access token names, once [`Self::verify`] accepts it: from memory when
    /// this replica verified the same token before and it has not expired since.
    pub fn principal(&self, token: &str) -> Result<Principal, ApiError> {
        if let Some(principal) = self.verified.get(token, Utc::now().timestamp()) {
            return Ok(principal);
        }
        let claims = self.verify(token)?;
        let principal = claims.principal()?;
        self.verified.remember(token, principal.clone(), claims.exp);
        Ok(principal)
    }

    /// Verifies signature, algorithm, type, key id and the time, issuer and audience claims.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header = decode_header(token)
            .map_err(|_| ApiError::invalid_token("the access token is malformed"))?;
        if header.alg != ALGORITHM {
            return Err(ApiError::invalid_token("unexpected token algorithm"));
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(ApiError::invalid_token(
                "the token is not an access token (typ must be at+jwt)",
            ));
        }
        let key = match header.kid.as_deref() {
            Some(kid) if kid == self.current.kid => &self.current,
            Some(kid) if self.previous.as_ref().is_some_and(|p| p.kid == kid) => {
                self.previous.as_ref().unwrap_or(&self.current)
            }
            _ => return Err(ApiError::invalid_token("unknown signing key")),
        };
        let claims = decode::<Claims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let detail = match e.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired",
                    ErrorKind::ImmatureSignature => "the access token is not valid yet",
                    ErrorKind::InvalidAudience => "the access token is for another audience",
                    ErrorKind::InvalidIssuer => "the access token is from another issuer",
                    ErrorKind::InvalidSignature => "the access token's signature does not verify",
                    _ => "the access token is invalid",
                };
                ApiError::invalid_token(detail)
            })?;
        // The crate checks `exp` and `nbf` only. A token issued later than now was not issued
        // by this service as it claims (its clock is ours), so it is refused as `nbf` would be.
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
        if claims.iat > Utc::now().timestamp() + leeway {
            return Err(ApiError::invalid_token(
                "the access token is issued in the future",
            ));
        }
        Ok(claims)
    }
}

/// A new opaque refresh token (256 random bits) and the digest stored for it.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    new_opaque_token()
}

/// A new opaque one-time token (256 random bits, URL-safe base64) and the SHA-256 digest
/// stored for it: a refresh token, a set-password token.
pub fn new_opaque_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let digest = digest_token(&token);
    (token, digest)
}

/// The SHA-256 digest under which an opaque token is stored and looked up.
pub fn digest_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A random secret suitable for `LSHUB_JWT_SECRET` (demo mode).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::{Principal, PrincipalKind, Verified, LEEWAY_SECS};
    use crate::domain::Role;

    fn caller(n: u128) -> Principal {
        Principal {
            id: uuid::Uuid::from_u128(n),
            kind: PrincipalKind::User,
            role: Role::Viewer,
            organisation_id: None,
        }
    }

    #[test]
    fn a_remembered_token_answers_until_it_expires_as_decode_would_say() {
        let verified = Verified::new(8);
        verified.remember("t", caller(1), 1000);
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
        assert_eq!(verified.get("t", 1000).map(|p| p.id), Some(caller(1).id));
        assert!(
            verified.get("t", 1000 + leeway).is_some(),
            "within the leeway"
        );
        assert!(verified.get("t", 1001 + leeway).is_none(), "expired");
        assert!(verified.get("u", 10).is_none(), "never verified");
    }
}
