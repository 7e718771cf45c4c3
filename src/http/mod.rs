//! The HTTP layer: one module per resource, plus the shared pieces (bodies, ETags, lists).

pub mod auth;
pub mod body;
pub mod companies;
pub mod csv;
pub mod etag;
pub mod health;
pub mod list;
pub mod middleware;
pub mod organisation;
pub mod problems;

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
        self.method(Method::GET, handler.clone()).method(Method::HEAD, handler)
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

/// Every route of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Routes::new("/healthz").get(health::healthz).build())
        .service(Routes::new("/readyz").get(health::readyz).build())
        .service(
            Routes::new("/openapi.json")
                .get(crate::openapi::serve_openapi)
                .build(),
        )
        .service(
            web::scope("/api/v1")
                .service(Routes::new("/auth/token").post(auth::issue_token).build())
                .service(Routes::new("/auth/revoke").post(auth::revoke_token).build())
                .service(Routes::new("/me").get(auth::get_me).build())
                .service(
                    Routes::new("/companies")
                        .get(companies::list_companies)
                        .post(companies::create_company)
                        .build(),
                )
                .service(
                    Routes::new("/companies/{id}")
                        .get(companies::get_company)
                        .patch(companies::update_company)
                        .delete(companies::archive_company)
                        .build(),
                )
                .service(
                    Routes::new("/companies/{id}/restore")
                        .post(companies::restore_company)
                        .build(),
                )
                .service(
                    Routes::new("/companies/{id}/history")
                        .get(companies::company_history)
                        .build(),
                ),
        );
}
