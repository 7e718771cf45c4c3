//! The HTTP layer: one module per resource, plus the shared pieces (bodies, ETags, lists).

/// `common()` for a list's query struct: the parameters every list shares, read from the
/// struct's fields of the same names (each list declares them for its OpenAPI parameters).
macro_rules! list_params {
    ($query:ty) => {
        impl $query {
            fn common(&self) -> $crate::http::list::ListParams {
                $crate::http::list::ListParams {
                    limit: self.limit,
                    cursor: self.cursor.clone(),
                    sort: self.sort.clone(),
                    q: self.q.clone(),
                    include_total: self.include_total,
                    include_archived: self.include_archived,
                }
            }
        }
    };
}

/// The operations every record shares (create, read, update, archive, restore, history), as
/// thin handlers over `record`'s generic functions. A macro only because
/// OpenAPI annotations need each path as a literal; the behaviour lives in the functions.
macro_rules! record_handlers {
    (
        resource: $resource:ty,
        tag: $tag:literal,
        collection: $collection:literal,
        item: $item:literal,
        restore: $restore_path:literal,
        history: $history_path:literal,
        response: $response:ty,
        input: $input:ty,
        patch_roles: $patch_description:literal,
        patch_x_roles: $patch_x_roles:tt,
        summaries: ($s_create:literal, $s_get:literal, $s_update:literal, $s_archive:literal, $s_restore:literal, $s_history:literal),
        handlers: ($create:ident, $get:ident, $update:ident, $archive:ident, $restore:ident, $history:ident) $(,)?
    ) => {
        #[doc = $s_create]
        #[utoipa::path(
            post, path = $collection, tag = $tag,
            summary = $s_create,
            description = "Roles: editor, admin.",
            request_body(content = $input, content_type = "application/json"),
            security(("bearer" = [])),
            extensions(("x-roles" = json!(["editor", "admin"]))),
            responses(
                (status = 201, description = "Created", body = $response,
                 headers(("Location" = String, description = "The new record's URL"),
                         ("ETag" = String, description = "`\"<version>\"`"))),
                (status = 400, response = $crate::http::problems::BadRequest),
                (status = 401, response = $crate::http::problems::Unauthorized),
                (status = 403, response = $crate::http::problems::Forbidden),
                (status = 409, response = $crate::http::problems::Conflict),
                (status = 413, response = $crate::http::problems::PayloadTooLarge),
                (status = 415, response = $crate::http::problems::UnsupportedMediaType),
                (status = 422, response = $crate::http::problems::Unprocessable),
                (status = 503, response = $crate::http::problems::Unavailable),
            )
        )]
        pub async fn $create(
            pool: $crate::http::organisation::Pool,
            principal: $crate::auth::Principal,
            req: actix_web::HttpRequest,
            body: actix_web::web::Bytes,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::http::record::create::<$resource>(&pool, &principal, &req, (), body).await
        }

        #[doc = $s_get]
        #[utoipa::path(
            get, path = $item, tag = $tag,
            summary = $s_get,
            description = "Roles: viewer, partner, editor, admin. Honours `If-None-Match` (304).",
            params(("id" = uuid::Uuid, Path, description = "Record id"), $crate::http::record::GetParams),
            security(("bearer" = [])),
            extensions(("x-roles" = json!(["viewer", "partner", "editor", "admin"]))),
            responses(
                (status = 200, description = "The record", body = $response,
                 headers(("ETag" = String, description = "`\"<version>\"`"))),
                (status = 304, description = "Not modified since the ETag in If-None-Match"),
                (status = 400, response = $crate::http::problems::BadRequest),
                (status = 401, response = $crate::http::problems::Unauthorized),
                (status = 403, response = $crate::http::problems::Forbidden),
                (status = 404, response = $crate::http::problems::NotFound),
                (status = 503, response = $crate::http::problems::Unavailable),
            )
        )]
        pub async fn $get(
            pool: $crate::http::organisation::Pool,
            principal: $crate::auth::Principal,
            req: actix_web::HttpRequest,
            id: actix_web::web::Path<uuid::Uuid>,
            query: actix_web::web::Query<$crate::http::record::GetParams>,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::http::record::get::<$resource>(&pool, &principal, &req, (), id.into_inner(), query.into_inner())
                .await
        }

        #[doc = $s_update]
        #[utoipa::path(
            patch, path = $item, tag = $tag,
            summary = $s_update,
            description = $patch_description,
            params(("id" = uuid::Uuid, Path, description = "Record id"),
                   ("If-Match" = String, Header, description = "The ETag of the version being changed")),
            request_body(content(($input = "application/merge-patch+json"), ($input = "application/json"))),
            security(("bearer" = [])),
            extensions(("x-roles" = json!($patch_x_roles))),
            responses(
                (status = 200, description = "Updated", body = $response,
                 headers(("ETag" = String, description = "`\"<version>\"`"))),
                (status = 400, response = $crate::http::problems::BadRequest),
                (status = 401, response = $crate::http::problems::Unauthorized),
                (status = 403, response = $crate::http::problems::Forbidden),
                (status = 404, response = $crate::http::problems::NotFound),
                (status = 409, response = $crate::http::problems::Conflict),
                (status = 412, response = $crate::http::problems::PreconditionFailed),
                (status = 413, response = $crate::http::problems::PayloadTooLarge),
                (status = 415, response = $crate::http::problems::UnsupportedMediaType),
                (status = 422, response = $crate::http::problems::Unprocessable),
                (status = 428, response = $crate::http::problems::PreconditionRequired),
                (status = 503, response = $crate::http::problems::Unavailable),
            )
        )]
        pub async fn $update(
            pool: $crate::http::organisation::Pool,
            principal: $crate::auth::Principal,
            req: actix_web::HttpRequest,
            id: actix_web::web::Path<uuid::Uuid>,
            body: actix_web::web::Bytes,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::http::record::update::<$resource>(&pool, &principal, &req, (), id.into_inner(), body).await
        }

        #[doc = $s_archive]
        #[utoipa::path(
            delete, path = $item, tag = $tag,
            summary = $s_archive,
            description = "Roles: editor, admin. Archives: the record leaves lists and reads until restored. Requires If-Match.",
            params(("id" = uuid::Uuid, Path, description = "Record id"),
                   ("If-Match" = String, Header, description = "The ETag of the current version")),
            security(("bearer" = [])),
            extensions(("x-roles" = json!(["editor", "admin"]))),
            responses(
                (status = 204, description = "Archived",
                 headers(("ETag" = String, description = "The archived version's ETag"))),
                (status = 400, response = $crate::http::problems::BadRequest),
                (status = 401, response = $crate::http::problems::Unauthorized),
                (status = 403, response = $crate::http::problems::Forbidden),
                (status = 404, response = $crate::http::problems::NotFound),
                (status = 412, response = $crate::http::problems::PreconditionFailed),
                (status = 428, response = $crate::http::problems::PreconditionRequired),
                (status = 503, response = $crate::http::problems::Unavailable),
            )
        )]
        pub async fn $archive(
            pool: $crate::http::organisation::Pool,
            principal: $crate::auth::Principal,
            req: actix_web::HttpRequest,
            id: actix_web::web::Path<uuid::Uuid>,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::http::record::remove::<$resource>(&pool, &principal, &req, (), id.into_inner()).await
        }

        #[doc = $s_restore]
        #[utoipa::path(
            post, path = $restore_path, tag = $tag,
            summary = $s_restore,
            description = "Roles: editor, admin. Requires If-Match (the archived version's ETag).",
            params(("id" = uuid::Uuid, Path, description = "Record id"),
                   ("If-Match" = String, Header, description = "The ETag of the archived version")),
            security(("bearer" = [])),
            extensions(("x-roles" = json!(["editor", "admin"]))),
            responses(
                (status = 200, description = "Restored", body = $response,
                 headers(("ETag" = String, description = "`\"<version>\"`"))),
                (status = 400, response = $crate::http::problems::BadRequest),
                (status = 401, response = $crate::http::problems::Unauthorized),
                (status = 403, response = $crate::http::problems::Forbidden),
                (status = 404, response = $crate::http::problems::NotFound),
                (status = 409, response = $crate::http::problems::Conflict),
                (status = 412, response = $crate::http::problems::PreconditionFailed),
                (status = 428, response = $crate::http::problems::PreconditionRequired),
                (status = 503, response = $crate::http::problems::Unavailable),
            )
        )]
        pub async fn $restore(
            pool: $crate::http::organisation::Pool,
            principal: $crate::auth::Principal,
            req: actix_web::HttpRequest,
            id: actix_web::web::Path<uuid::Uuid>,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::http::record::restore::<$resource>(&pool, &principal, &req, (), id.into_inner()).await
        }

        #[doc = $s_history]
        #[utoipa::path(
            get, path = $history_path, tag = $tag,
            summary = $s_history,
            description = "Roles: editor, admin. Every change: who, when, which request, the fields before and after.",
            params(("id" = uuid::Uuid, Path, description = "Record id"), $crate::http::record::HistoryParams),
            security(("bearer" = [])),
            extensions(("x-roles" = json!(["editor", "admin"]))),
            responses(
                (status = 200, description = "A page of audit events (or, with `Accept: text/csv`, all of them as CSV)",
                 content(($crate::http::list::PageResponse<$crate::http::record::AuditEvent> = "application/json"),
                         (String = "text/csv")),
                 headers(("ETag" = String, description = "Changes whenever the registry changes"))),
                (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
                (status = 400, response = $crate::http::problems::BadRequest),
                (status = 401, response = $crate::http::problems::Unauthorized),
                (status = 403, response = $crate::http::problems::Forbidden),
                (status = 404, response = $crate::http::problems::NotFound),
                (status = 422, response = $crate::http::problems::Unprocessable),
                (status = 429, response = $crate::http::problems::TooManyRequests),
                (status = 503, response = $crate::http::problems::Unavailable),
            )
        )]
        pub async fn $history(
            pool: $crate::http::organisation::Pool,
            principal: $crate::auth::Principal,
            req: actix_web::HttpRequest,
            id: actix_web::web::Path<uuid::Uuid>,
            query: actix_web::web::Query<$crate::http::record::HistoryParams>,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::http::record::history::<$resource>(&pool, &principal, &req, (), id.into_inner(), query.into_inner())
                .await
        }
    };
}

pub mod activities;
pub mod areas;
pub mod auth;
pub mod body;
pub mod companies;
pub mod csv;
pub mod dated;
pub mod etag;
pub mod goals;
pub mod health;
pub mod irccs;
pub mod links;
pub mod list;
pub mod middleware;
pub mod organisation;
pub mod organisations;
pub mod partners;
pub mod problems;
pub mod record;
pub mod universities;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Resource, Responder};

use crate::error::ApiError;

/// A path and its methods. Unlike bare route macros, it answers other methods with 405 and
/// an `Allow` header listing those registered.
pub struct Routes {
    resource: Resource,
    allow: Vec<&'static str>,
}

impl Routes {
    /// Starts the routes of `path`.
    pub fn new(path: &str) -> Self {
        Self {
            resource: web::resource(path),
            allow: Vec::new(),
        }
    }

    fn method<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.allow.push(match method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PATCH => "PATCH",
            Method::PUT => "PUT",
            Method::HEAD => "HEAD",
            _ => "DELETE",
        });
        self.resource = self.resource.route(web::method(method).to(handler));
        self
    }

    /// `GET`, and `HEAD` by the same handler (actix drops the body of HEAD answers).
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::GET, handler.clone())
            .method(Method::HEAD, handler)
    }

    /// `POST`.
    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::POST, handler)
    }

    /// `PATCH`.
    pub fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::PATCH, handler)
    }

    /// `DELETE`.
    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::DELETE, handler)
    }

    /// The finished resource.
    pub fn build(self) -> impl HttpServiceFactory {
        let allow = self.allow.join(", ");
        self.resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        }))
    }
}

/// The four paths of a record resource: collection, record, restore, history.
macro_rules! record_routes {
    ($scope:expr, $path:literal, $module:ident, $list:ident, $create:ident, $get:ident, $update:ident,
     $archive:ident, $restore:ident, $history:ident) => {
        $scope
            .service(
                Routes::new($path)
                    .get($module::$list)
                    .post($module::$create)
                    .build(),
            )
            .service(
                Routes::new(concat!($path, "/{id}"))
                    .get($module::$get)
                    .patch($module::$update)
                    .delete($module::$archive)
                    .build(),
            )
            .service(
                Routes::new(concat!($path, "/{id}/restore"))
                    .post($module::$restore)
                    .build(),
            )
            .service(
                Routes::new(concat!($path, "/{id}/history"))
                    .get($module::$history)
                    .build(),
            )
    };
}

/// Every route of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let api = web::scope("/api/v1")
        .service(Routes::new("/auth/token").post(auth::issue_token).build())
        .service(Routes::new("/auth/revoke").post(auth::revoke_token).build())
        .service(Routes::new("/me").get(auth::get_me).build())
        .service(
            Routes::new("/organisations")
                .get(organisations::list_organisations)
                .build(),
        )
        .service(
            Routes::new("/organisations/{id}")
                .get(organisations::get_organisation)
                .build(),
        );
    let api = record_routes!(
        api,
        "/companies",
        companies,
        list_companies,
        create_company,
        get_company,
        update_company,
        archive_company,
        restore_company,
        company_history
    );
    let api = record_routes!(
        api,
        "/irccs",
        irccs,
        list_irccs,
        create_irccs,
        get_irccs,
        update_irccs,
        archive_irccs,
        restore_irccs,
        irccs_history
    );
    let api = record_routes!(
        api,
        "/universities",
        universities,
        list_universities,
        create_university,
        get_university,
        update_university,
        archive_university,
        restore_university,
        university_history
    );
    let api = record_routes!(
        api,
        "/partners",
        partners,
        list_partners,
        create_partner,
        get_partner,
        update_partner,
        archive_partner,
        restore_partner,
        partner_history
    );
    let api = api.service(Routes::new("/areas").get(areas::list_areas).build());
    let api = record_routes!(
        api,
        "/goals",
        goals,
        list_goals,
        create_goal,
        get_goal,
        update_goal,
        archive_goal,
        restore_goal,
        goal_history
    );
    let api = record_routes!(
        api,
        "/activities",
        activities,
        list_activities,
        create_activity,
        get_activity,
        update_activity,
        archive_activity,
        restore_activity,
        activity_history
    );
    let api = api
        .service(
            Routes::new("/goal-activity-links")
                .get(links::list_goal_activity_links)
                .post(links::create_goal_activity_link)
                .build(),
        )
        .service(
            Routes::new("/goal-activity-links/{id}")
                .get(links::get_goal_activity_link)
                .patch(links::update_goal_activity_link)
                .delete(links::delete_goal_activity_link)
                .build(),
        )
        .service(
            Routes::new("/goals/{id}/activities")
                .get(links::list_goal_activities)
                .build(),
        )
        .service(
            Routes::new("/goals/{id}/partners")
                .get(dated::list_goal_partners)
                .post(dated::create_goal_partner)
                .build(),
        )
        .service(
            Routes::new("/goals/{id}/partners/{link_id}")
                .get(dated::get_goal_partner)
                .patch(dated::update_goal_partner)
                .delete(dated::delete_goal_partner)
                .build(),
        )
        .service(
            Routes::new("/activities/{id}/participants")
                .get(dated::list_participants)
                .post(dated::create_participant)
                .build(),
        )
        .service(
            Routes::new("/activities/{id}/participants/{link_id}")
                .get(dated::get_participant)
                .patch(dated::update_participant)
                .delete(dated::delete_participant)
                .build(),
        )
        .service(
            Routes::new("/organisations/{id}/engagements")
                .get(dated::list_engagements)
                .build(),
        )
        .service(
            Routes::new("/activities/{id}/goals")
                .get(links::list_activity_goals)
                .build(),
        );
    cfg.service(Routes::new("/healthz").get(health::healthz).build())
        .service(Routes::new("/readyz").get(health::readyz).build())
        .service(
            Routes::new("/openapi.json")
                .get(crate::openapi::serve_openapi)
                .build(),
        )
        .service(api);
}
