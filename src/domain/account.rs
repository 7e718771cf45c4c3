//! The accounts as written: what the admin tools send to `/api/v1/clients` and
//! `/api/v1/users`, and their rules.

use serde::Deserialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::rules::{self, required, Errors, Rejected};
use crate::domain::{codes, Invalid, OrganisationId, Role};

/// An API client as written (its body's one declaration): `POST /api/v1/clients` takes these
/// members (`CreateClient`), `PATCH` a merge patch of them (`ClientPatch`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ClientBody {
    /// What the client is, e.g. the partner system it serves: 2 to 200 characters.
    #[schema(required, value_type = Option<crate::domain::rules::Text<2, 200>>, inline)]
    pub name: Option<String>,
    /// The role whose rights the client has.
    #[schema(required)]
    pub role: Option<Role>,
    /// The organisation a partner client acts for: required for partners, refused for the
    /// other roles.
    pub organisation_id: Option<Uuid>,
}

/// An API client, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDraft {
    pub name: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
}

/// Decodes and validates a client body (a create, or a merged patch).
pub fn client(body: Map<String, Json>) -> Result<ClientDraft, Rejected> {
    rules::validate(body, |input: ClientBody, errors: &mut Errors| {
        let name = rules::title(errors, "/name", input.name, 200);
        let role = required(errors, "/role", input.role, Role::Viewer);
        ClientDraft {
            name,
            role,
            organisation_id: acts_for(errors, role, input.organisation_id),
        }
    })
}

/// The organisation an account of `role` acts for: a partner's, required; any other role's,
/// refused (422 at `/organisation_id`).
fn acts_for(
    errors: &mut Errors,
    role: Role,
    organisation_id: Option<Uuid>,
) -> Option<OrganisationId> {
    match (role, organisation_id) {
        (Role::Partner, None) => errors.push(
            "/organisation_id",
            Invalid::new(codes::REQUIRED, "a partner acts for an organisation"),
        ),
        (r, Some(_)) if r != Role::Partner => errors.push(
            "/organisation_id",
            Invalid::new(
                codes::INVALID_FORMAT,
                "only a partner acts for an organisation",
            ),
        ),
        _ => {}
    }
    organisation_id.map(OrganisationId::new)
}

/// A user as written (its body's one declaration): `POST /api/v1/users` takes these members
/// (`CreateUser`), `PATCH` a merge patch of them (`UserPatch`; the e-mail and the password
/// are fixed at creation).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct UserBody {
    /// The login name; unique, ignoring case (409 `duplicate` otherwise).
    #[schema(required, value_type = Option<crate::domain::Email>, inline)]
    pub email: Option<String>,
    /// The user's role.
    #[schema(required)]
    pub role: Option<Role>,
    /// The organisation a partner acts for: required for partners, refused for the other roles.
    pub organisation_id: Option<Uuid>,
    /// The initial password: 12 to 200 characters, taken as sent (never returned, stored as an
    /// Argon2 hash). Left out, the user gets no password: the create's answer shows a
    /// one-time `set_password_token` instead, with which the user sets its own at
    /// `POST /api/v1/auth/set-password`; until then it cannot log in.
    #[schema(min_length = 12, max_length = 200, pattern = "^[^\\x00]*$", write_only)]
    pub password: Option<String>,
    /// Whether the user is disabled (default `false`): it can neither log in nor refresh, and
    /// its access tokens stop within a second. A create may make it disabled from the start.
    /// In a patch, `true` disables it as `DELETE` does (an admin does not disable themselves:
    /// 403) and `false` (or `null`) enables it again as `restore` does; a patch of a disabled
    /// user must enable it (404 otherwise, as for any write of a disabled user).
    pub disabled: Option<bool>,
}

/// A user, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct UserDraft {
    pub email: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    /// The initial password, on create (none: a set-password token instead).
    pub password: Option<String>,
    /// Disabled.
    pub disabled: bool,
}

/// The rules of a password a user is given or sets: 12 to 200 characters (at `field`).
pub fn password(errors: &mut Errors, field: &str, password: Option<String>) -> Option<String> {
    password.filter(|p| {
        let n = p.chars().count();
        let fits = (12..=200).contains(&n);
        if !fits {
            errors.push(
                field,
                Invalid::new(codes::OUT_OF_RANGE, "12 to 200 characters"),
            );
        }
        fits
    })
}

/// Decodes and validates a user body (a create, or a merged patch).
pub fn user(body: Map<String, Json>) -> Result<UserDraft, Rejected> {
    rules::validate(body, |input: UserBody, errors: &mut Errors| {
        let email = match input.email.as_deref().map(crate::domain::Email::parse) {
            Some(Ok(email)) => email.into_inner(),
            Some(Err(e)) => {
                errors.push("/email", e);
                String::new()
            }
            None => {
                errors.push("/email", Invalid::new(codes::REQUIRED, "email is required"));
                String::new()
            }
        };
        let role = required(errors, "/role", input.role, Role::Viewer);
        UserDraft {
            email,
            role,
            organisation_id: acts_for(errors, role, input.organisation_id),
            password: password(errors, "/password", input.password),
            disabled: input.disabled.unwrap_or(false),
        }
    })
}

/// A user setting its password with a one-time token (`POST /api/v1/auth/set-password`).
/// Another member is 422 `unknown_field`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordBody {
    /// The one-time token from the user's create answer, or from
    /// `POST /api/v1/users/{id}/set-password-token`.
    #[schema(required, value_type = String, min_length = 1)]
    pub token: Option<String>,
    /// The new password: 12 to 200 characters, taken as sent.
    #[schema(
        required,
        value_type = String,
        min_length = 12,
        max_length = 200,
        pattern = "^[^\\x00]*$",
        write_only
    )]
    pub password: Option<String>,
}

/// A set-password request, validated: the token and the password.
pub fn set_password(mut body: Map<String, Json>) -> Result<(String, String), Rejected> {
    // Taken out before decoding, so that each is refused at its own pointer.
    let unknown: Vec<String> = body
        .keys()
        .filter(|k| !matches!(k.as_str(), "token" | "password"))
        .cloned()
        .collect();
    body.retain(|k, _| !unknown.contains(k));
    rules::validate(body, |input: SetPasswordBody, errors: &mut Errors| {
        for key in unknown {
            errors.push(
                &format!("/{key}"),
                Invalid::new(codes::UNKNOWN_FIELD, format!("unknown field `{key}`")),
            );
        }
        let token = input.token.filter(|t| !t.is_empty());
        if token.is_none() {
            errors.push("/token", Invalid::new(codes::REQUIRED, "token is required"));
        }
        if input.password.is_none() {
            errors.push(
                "/password",
                Invalid::new(codes::REQUIRED, "password is required"),
            );
        }
        (
            token.unwrap_or_default(),
            password(errors, "/password", input.password).unwrap_or_default(),
        )
    })
}
