//! Probes: `/healthz` (process alive) and `/readyz` (database reachable).

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::organisation::Pool;
use crate::db;
use crate::error::ApiError;
use crate::http::machinery::problems;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers a query.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, response = problems::Unavailable),
    ))]
pub async fn readyz(pool: Pool) -> Result<HttpResponse, ApiError> {
    db::run(&pool, |conn| {
        db::ping(conn).map_err(|e| {
            // The cause goes to the log, not to anonymous callers.
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::unavailable("the database does not answer")
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(Health { status: "ok" }))
}
