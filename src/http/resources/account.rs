//! What users and API clients share over HTTP: who manages them, and their lists.

use actix_web::{HttpRequest, HttpResponse};
use diesel::pg::Pg;
use diesel::QueryableByName;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::list::Keyed;
use crate::db::PgPool;
use crate::domain::Role;
use crate::error::ApiError;
use crate::http::machinery::list::{serve_list, ListKind, ListParams};
use crate::models::account::{self, AccountFilter, AccountTable};

/// Only admins manage users and API clients.
pub const ADMINS: &[Role] = &[Role::Admin];

/// Filters of the accounts lists (`GET /users`, `GET /clients`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountFilters {
    /// Only accounts of this role.
    pub role: Option<Role>,
    /// Only the accounts acting for this organisation.
    pub organisation_id: Option<Uuid>,
}

/// An accounts list of `t`, kind `K`: in creation order, inactive ones with
/// `include_archived=true`, each row served as `serve`.
pub async fn list<K, Row, Resp>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    (params, filters): (ListParams, AccountFilters),
    t: AccountTable,
    serve: fn(Row) -> Result<Resp, ApiError>,
) -> Result<HttpResponse, ApiError>
where
    K: ListKind,
    Row: QueryableByName<Pg> + Keyed + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let filter = AccountFilter {
        include_inactive: principal
            .check_include_archived(params.include_archived.unwrap_or(false))?,
        role: filters.role,
        organisation_id: filters.organisation_id,
    };
    serve_list(
        pool,
        principal,
        req,
        &params,
        account::list_query(t, &filter, None),
        K::CSV_COLUMNS,
        move |_conn, rows: Vec<Row>| rows.into_iter().map(serve).collect(),
    )
    .await
}
