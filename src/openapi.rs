//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes,
    SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use crate::error::PROBLEM_TYPES;
use crate::http::machinery::{list, problems, record};
use crate::http::resources::companies;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "lshub",
        description = description(),
        license(name = "Apache-2.0")
    ),
    components(
        responses(
            problems::BadRequest,
            problems::Unauthorized,
            problems::Forbidden,
            problems::NotFound,
            problems::Conflict,
            problems::PreconditionFailed,
            problems::PayloadTooLarge,
            problems::UnsupportedMediaType,
            problems::Unprocessable,
            problems::PreconditionRequired,
            problems::Unavailable,
            problems::TooManyRequests,
        ),
        schemas(
        crate::error::Problem,
        crate::error::FieldError,
        crate::error::OAuthErrorBody,
        crate::http::resources::organisation::ProvinceCode,
        crate::domain::ChangeEntity,
        list::PageResponse<companies::CompanyResponse>,
        list::PageResponse<record::AuditEvent>,
    )),
    // The route table first: Security offers its schemes on the operations it adds.
    modifiers(&RouteTable, &Security),
    tags(
        (name = "auth", description = "Tokens and the caller"),
        (name = "companies", description = "Companies of the registry"),
        (name = "irccs", description = "Clinical Care and Research Institutes (IRCCS)"),
        (name = "universities", description = "Universities and their subject rankings"),
        (name = "partners", description = "Institutional partners"),
        (name = "organisations", description = "Every kind of organisation, read-only"),
        (name = "goals", description = "Strategic goals and the areas of action"),
        (name = "activities", description = "Activities and the goals they serve"),
        (name = "users", description = "The people who log in (admins)"),
        (name = "clients", description = "API clients: machine integrations' credentials (admins)"),
        (name = "imports", description = "Bulk imports of organisations, all or nothing (editors, admins)"),
        (name = "stats", description = "Aggregates for dashboards: counts and sums under the lists' filters"),
        (name = "audit", description = "The audit trail: who changed what, when, under which request"),
        (name = "changes", description = "The change feed: every change of the registry in commit order, for mirrors"),
        (name = "webhooks", description = "The change feed pushed to receivers: subscriptions, signed deliveries, retries (admins)"),
        (name = "health", description = "Probes"),
    )
)]
pub struct ApiDoc;

/// The document's description, with the problem codes listed from the catalogue.
fn description() -> String {
    let codes: Vec<String> = PROBLEM_TYPES
        .iter()
        .map(|p| format!("`{}`", p.code))
        .collect();
    format!(
        "The Lombardia Life Sciences Hub's stakeholder registry.\n\n\
         Errors are RFC 9457 `application/problem+json` documents whose `type` is \
         `urn:lshub:problem:<code>`, with `code` one of: {}. `errors[].field` is a JSON \
         Pointer.\n\n\
         Each operation lists the roles allowed to call it in `x-roles`.\n\n\
         Rate limits (draft-ietf-httpapi-ratelimit-headers): every answer to a caller with a \
         valid token under `/api/v1` (the OAuth endpoints aside) spends points of its budget, \
         a `304 Not Modified` fewer than a full answer, and says what is left in \
         `RateLimit-Policy` (`\"api\";q=<points>;w=<seconds to refill>`) and `RateLimit` \
         (`\"api\";r=<points left>;t=<seconds until whole again>`); a spent budget is 429 \
         `rate_limited` with `Retry-After`. The token endpoint is limited per client IP and \
         per account, with the same headers.",
        codes.join(", ")
    )
}

/// Adds every operation of the route table, where each route is declared once.
struct RouteTable;

impl Modify for RouteTable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let routes = crate::http::routes::document();
        openapi.paths.paths.extend(routes.paths.paths);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.extend(routes.schemas);
    }
}

/// The token endpoint, as the `oauth2` scheme names it.
const TOKEN_URL: &str = "/api/v1/auth/token";

/// The security schemes: `bearer` (an access token in `Authorization`) and `oauth2` (how to
/// get one), offered as alternatives on every operation that needs a token, so Swagger UI's
/// Authorize and generated clients log in without hand edits.
struct Security;

impl Security {
    /// The scopes tokens carry (`auth::tokens::scope_for`): informational, the role decides.
    fn scopes() -> Scopes {
        Scopes::from_iter([
            ("registry:read", "Read everything (every role)"),
            (
                "registry:write:own",
                "Partners: their organisation's self-managed fields and participations",
            ),
            (
                "registry:write",
                "Create, update, archive and restore (editors, admins)",
            ),
            (
                "audit:read",
                "Histories and the audit trail (editors, admins)",
            ),
            ("admin", "Users and API clients (admins)"),
        ])
    }
}

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /api/v1/auth/token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [
                    Flow::Password(Password::with_refresh_url(
                        TOKEN_URL,
                        Self::scopes(),
                        TOKEN_URL,
                    )),
                    Flow::ClientCredentials(ClientCredentials::new(TOKEN_URL, Self::scopes())),
                ],
                "OAuth 2.0 token endpoint (RFC 6749), form-encoded or JSON. `password`: the \
                 hub's own admin tools (username = e-mail); its refresh token rotates on every \
                 use of the `refresh_token` grant. `clientCredentials`: machine integrations (API \
                 clients, `lshub client create`), authenticated by HTTP Basic or in the body; \
                 no refresh token. Scopes follow the caller's role and are \
                 informational: the role decides (`x-roles`). The access token goes in \
                 `Authorization: Bearer`.",
            )),
        );
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                if let Some(security) = &mut operation.security {
                    if security.contains(&bearer) {
                        security.push(SecurityRequirement::new("oauth2", Vec::<String>::new()));
                    }
                }
            }
        }
    }
}

/// The document as pretty JSON, as committed in `openapi/openapi.json`; built once.
pub fn document() -> String {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            ApiDoc::openapi()
                .to_pretty_json()
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        })
        .clone()
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn serve_openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
