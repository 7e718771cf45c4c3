//! An API client as written: what the admin tools send to `/api/v1/clients`, and its rules.

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
        match (role, input.organisation_id) {
            (Role::Partner, None) => errors.push(
                "/organisation_id",
                Invalid::new(codes::REQUIRED, "a partner client acts for an organisation"),
            ),
            (r, Some(_)) if r != Role::Partner => errors.push(
                "/organisation_id",
                Invalid::new(
                    codes::INVALID_FORMAT,
                    "only a partner client acts for an organisation",
                ),
            ),
            _ => {}
        }
        ClientDraft {
            name,
            role,
            organisation_id: input.organisation_id.map(OrganisationId::new),
        }
    })
}
