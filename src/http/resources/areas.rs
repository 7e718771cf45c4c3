//! `/api/v1/areas`: the areas of action (a reference list).

use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::domain::Area;
use crate::error::{stored, ApiError};
use crate::http::machinery::list::{cached_page, PageResponse};
use crate::models::area;

/// An area of action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AreaResponse {
    /// Its code, as goals and activities carry it.
    pub code: Area,
    /// Its name.
    pub name: String,
}

/// List the areas of action.
#[utoipa::path(
    get, path = "/api/v1/areas", tag = "goals",
    description = "The fixed reference list, in the brochure's order; one page.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every area", body = PageResponse<AreaResponse>,
         headers(("ETag" = String, description = "Send it back in If-None-Match"))),
        (status = 304, description = "Not modified"),
    )
)]
pub async fn list_areas(
    pool: Pool,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    cached_page(&pool, &req, &principal, |conn| {
        let data = area::all(conn)?
            .into_iter()
            .map(|(code, name)| {
                Ok(AreaResponse {
                    code: stored(&code)?,
                    name,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(PageResponse {
            data,
            next_cursor: None,
            total: None,
        })
    })
    .await
}
