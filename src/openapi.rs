//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::PROBLEM_TYPES;
use crate::http::{
    activities, areas, auth, companies, dated, goals, health, irccs, links, list, organisations,
    partners, problems, record, universities,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "lshub",
        description = description(),
        license(name = "Apache-2.0")
    ),
    paths(
        health::healthz,
        health::readyz,
        auth::issue_token,
        auth::revoke_token,
        auth::get_me,
        companies::list_companies,
        companies::create_company,
        companies::get_company,
        companies::update_company,
        companies::archive_company,
        companies::restore_company,
        companies::company_history,
        irccs::list_irccs,
        irccs::create_irccs,
        irccs::get_irccs,
        irccs::update_irccs,
        irccs::archive_irccs,
        irccs::restore_irccs,
        irccs::irccs_history,
        universities::list_universities,
        universities::create_university,
        universities::get_university,
        universities::update_university,
        universities::archive_university,
        universities::restore_university,
        universities::university_history,
        partners::list_partners,
        partners::create_partner,
        partners::get_partner,
        partners::update_partner,
        partners::archive_partner,
        partners::restore_partner,
        partners::partner_history,
        organisations::list_organisations,
        organisations::get_organisation,
        areas::list_areas,
        goals::list_goals,
        goals::create_goal,
        goals::get_goal,
        goals::update_goal,
        goals::archive_goal,
        goals::restore_goal,
        goals::goal_history,
        activities::list_activities,
        activities::create_activity,
        activities::get_activity,
        activities::update_activity,
        activities::archive_activity,
        activities::restore_activity,
        activities::activity_history,
        links::list_goal_activity_links,
        links::create_goal_activity_link,
        links::get_goal_activity_link,
        links::update_goal_activity_link,
        links::delete_goal_activity_link,
        links::list_goal_activities,
        links::list_activity_goals,
        dated::list_goal_partners,
        dated::create_goal_partner,
        dated::get_goal_partner,
        dated::update_goal_partner,
        dated::delete_goal_partner,
        dated::list_participants,
        dated::create_participant,
        dated::get_participant,
        dated::update_participant,
        dated::delete_participant,
        dated::list_engagements,
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
        list::PageResponse<companies::CompanyResponse>,
        list::PageResponse<record::AuditEvent>,
    )),
    modifiers(&BearerAuth),
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

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    extensions(("x-roles" = json!(["anonymous"]))),
    responses((status = 200, description = "This document")))]
pub async fn serve_openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
