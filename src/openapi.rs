//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::PROBLEM_TYPES;
use crate::http::{companies, list, problems, record};

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
        crate::http::organisation::ProvinceCode,
        list::PageResponse<companies::CompanyResponse>,
        list::PageResponse<record::AuditEvent>,
    )),
    modifiers(&BearerAuth, &RouteTable),
    tags(
        (name = "auth", description = "Tokens and the caller"),
        (name = "companies", description = "Companies of the registry"),
        (name = "irccs", description = "Clinical Care and Research Institutes (IRCCS)"),
        (name = "universities", description = "Universities and their subject rankings"),
        (name = "partners", description = "Institutional partners"),
        (name = "organisations", description = "Every kind of organisation, read-only"),
        (name = "goals", description = "Strategic goals and the areas of action"),
        (name = "activities", description = "Activities and the goals they serve"),
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
         Each operation lists the roles allowed to call it in `x-roles`.",
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

struct BearerAuth;

impl Modify for BearerAuth {
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
