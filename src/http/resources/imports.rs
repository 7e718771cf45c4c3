//! `/api/v1/imports`: bulk import of one kind of organisation (editors and admins).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

use super::{companies::Companies, irccs::Irccs, partners::Partners, universities::Universities};
use crate::db;
use crate::error::ApiError;
use crate::http::machinery::import::{
    self, Importable, OnConflict, Options, RowAction, RowOutcome, IMPORT_BODY_LIMIT,
};
use crate::http::machinery::record::{actor, Call};

/// The kinds an import takes, named as their collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// `/api/v1/companies` (matched by `vat_number`, else by name).
    Companies,
    /// `/api/v1/irccs` (matched by name).
    Irccs,
    /// `/api/v1/universities` (matched by `ror_id`, else by name).
    Universities,
    /// `/api/v1/partners` (matched by name).
    Partners,
}

/// Query of an import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The kind of every row.
    #[param(inline)]
    pub kind: ImportKind,
    /// Validate every row and report what would happen, writing nothing (default false).
    pub dry_run: Option<bool>,
    /// What a row that names an existing record does: `error` (the default) refuses the
    /// import with 409; `update` applies the row to the record as a JSON Merge Patch.
    #[param(inline)]
    pub on_conflict: Option<OnConflict>,
}

/// The rows of an import, in `application/json`: each a create body of the kind (with
/// `on_conflict=update`, a row naming an existing record is a merge patch of it).
#[derive(Debug, ToSchema)]
#[schema(as = ImportRows, value_type = Vec<Object>)]
pub struct ImportRows(#[allow(dead_code)] Vec<Map<String, Json>>);

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    /// The kind imported.
    pub kind: ImportKind,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Rows in the body.
    pub rows: usize,
    /// Rows that created a record.
    pub created: usize,
    /// Rows that changed a record.
    pub updated: usize,
    /// Rows that named a record and changed nothing.
    pub unchanged: usize,
    /// The request's id, which every audit event of the import carries
    /// (`GET /api/v1/audit-events?request_id=...`).
    pub request_id: Option<String>,
    /// Each row's outcome, in body order.
    pub results: Vec<RowOutcome>,
}

/// Import many organisations of one kind.
#[utoipa::path(
    post, path = "/api/v1/imports", tag = "imports",
    summary = "Import many organisations of one kind",
    description = "The body is a JSON array of rows, each a create body of `kind` \
        (`application/json`), or CSV with a header row (`text/csv`) naming the columns of the \
        kind's CSV export: nested members flattened as `address_city`, lists joined with `;`, \
        a ranking as `area:rank:source:year`, an empty cell null. Read-only columns of the \
        export (`id`, `kind`, `created_at`, `updated_at`, `version`, `archived_at`) are \
        ignored, so an export re-imports as it is. At most 50,000 rows and 32 MiB.\n\n\
        Every row is validated as its single-record write would be, and the import is all or \
        nothing in one transaction: any error refuses it whole, with each error's `field` a \
        JSON Pointer into the rows (`/rows/12/vat_number`; rows count from 0, a CSV's header \
        not counted; `/columns/3` for a CSV column that is not a member). A row names an \
        existing record by its natural key (a company's `vat_number`, a university's \
        `ror_id`) when it has one, else by its name (ignoring case, accents and spacing). \
        With `on_conflict=error` (the default) such a row is an error; with `update` it is \
        applied to the record as a JSON Merge Patch (an empty CSV cell clears its member). A \
        row naming an archived record, two rows naming one record, and a name another record \
        has are errors (`duplicate`). When every error is a `duplicate` the answer is 409, \
        else 422.\n\n\
        Each created or changed record gets its audit event, as a single write would, all \
        under the request's id (`request_id` in the answer); a row that changes nothing \
        writes nothing. `dry_run=true` validates and reports without writing.",
    params(ImportParams),
    request_body(
        description = "The rows: a JSON array of objects, or CSV with the export's columns.",
        content(
            (ImportRows = "application/json"),
            (String = "text/csv"),
        )
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the import did (or would do)", body = ImportReport),
        (status = 409, response = crate::http::machinery::problems::Conflict),
    )
)]
pub async fn create_import(
    call: Call,
    query: web::Query<ImportParams>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = query.into_inner();
    let body = payload
        .to_bytes_limited(IMPORT_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "an import body is at most {} MiB",
                IMPORT_BODY_LIMIT / (1024 * 1024)
            ))
        })?
        .map_err(|e| ApiError::malformed(format!("the body could not be read: {e}")))?;
    let options = Options {
        dry_run: params.dry_run.unwrap_or(false),
        on_conflict: params.on_conflict.unwrap_or_default(),
    };
    let results = match params.kind {
        ImportKind::Companies => run::<Companies>(&call, &body, options).await?,
        ImportKind::Irccs => run::<Irccs>(&call, &body, options).await?,
        ImportKind::Universities => run::<Universities>(&call, &body, options).await?,
        ImportKind::Partners => run::<Partners>(&call, &body, options).await?,
    };
    let count = |action| results.iter().filter(|r| r.action == action).count();
    let report = ImportReport {
        kind: params.kind,
        dry_run: options.dry_run,
        rows: results.len(),
        created: count(RowAction::Created),
        updated: count(RowAction::Updated),
        unchanged: count(RowAction::Unchanged),
        request_id: crate::telemetry::current_request_id(),
        results,
    };
    Ok(HttpResponse::Ok().json(report))
}

/// Reads the rows as kind `R`'s and imports them in one transaction.
async fn run<R: Importable>(
    call: &Call,
    body: &web::Bytes,
    options: Options,
) -> Result<Vec<RowOutcome>, ApiError> {
    let (pool, principal, req) = call.parts();
    // Parsing thousands of rows is work for the blocking pool, not for an async worker.
    let (headers, body) = (req.headers().clone(), body.clone());
    let (rows, found) = web::block(move || import::read_rows(&headers, &body, R::shape()))
        .await
        .map_err(ApiError::internal)??;
    let actor = actor(principal);
    let principal = principal.clone();
    db::transaction(pool, move |conn| {
        import::import::<R>(conn, &actor, &principal, &rows, &found, options)
    })
    .await
}
