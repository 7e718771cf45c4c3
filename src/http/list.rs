//! The HTTP side of lists: common parameters, the page body and its `Link` header.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use diesel::pg::Pg;
use diesel::{PgConnection, QueryableByName};
use serde::Serialize;
use utoipa::ToSchema;

use super::etag::{self, PRIVATE_REVALIDATE};
use crate::auth::Principal;
use crate::db::list::{KeyType, Keyed, ListQuery, Order, Page, SortKey};
use crate::db::{self, PgPool};
use crate::error::ApiError;
use crate::models::audit;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size; more is 422.
pub const MAX_LIMIT: u32 = 200;
/// Longest `q`.
pub const MAX_Q: usize = 200;

/// Parameters every list takes.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// Page size.
    pub limit: Option<u32>,
    /// Where to resume.
    pub cursor: Option<String>,
    /// Sort key, `-` for descending.
    pub sort: Option<String>,
    /// Search text.
    pub q: Option<String>,
    /// Add `total` to the answer.
    pub include_total: Option<bool>,
    /// Include archived records (editors and admins).
    pub include_archived: Option<bool>,
}

impl ListParams {
    /// `q`, trimmed, when not blank.
    pub fn search(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    /// 422 for a `q` longer than [`MAX_Q`] characters (similarity work grows with it).
    pub fn check_q(&self) -> Result<(), ApiError> {
        match self.search() {
            Some(q) if q.chars().count() > MAX_Q => Err(ApiError::invalid(
                "/q",
                "too_long",
                format!("q is at most {MAX_Q} characters"),
            )),
            _ => Ok(()),
        }
    }
}

/// 422 outside 1..=200; the default is 50.
pub fn check_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(ApiError::invalid(
            "/limit",
            "out_of_range",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// A page of a list, as served.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageResponse<T> {
    /// The rows of this page.
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Every matching row, with `include_total=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

impl<T: Serialize> PageResponse<T> {
    /// Maps a loaded page's rows to their response type.
    pub fn from_page<R>(page: Page<R>, f: impl FnMut(R) -> T) -> Self {
        Self {
            data: page.data.into_iter().map(f).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
        }
    }

    /// Like [`Self::from_page`] for conversions that can fail.
    pub fn try_from_page<R>(
        page: Page<R>,
        f: impl FnMut(R) -> Result<T, ApiError>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            data: page.data.into_iter().map(f).collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
            total: page.total,
        })
    }

    /// 200 with the page, its `ETag`, and `Link: <...>; rel="next"` when there is a next page.
    fn respond(self, req: &HttpRequest, tag: &str) -> HttpResponse {
        let mut res = HttpResponse::Ok();
        res.insert_header((header::CACHE_CONTROL, PRIVATE_REVALIDATE));
        res.insert_header((header::ETAG, tag.to_owned()));
        if let Some(cursor) = &self.next_cursor {
            res.insert_header((
                header::LINK,
                format!("<{}>; rel=\"next\"", next_url(req, cursor)),
            ));
        }
        res.json(self)
    }
}

/// The request's own URL (relative) with `cursor` replaced.
fn next_url(req: &HttpRequest, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if k != "cursor" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("cursor", cursor);
    format!("{}?{}", req.path(), query.finish())
}

/// Serves a list page with an `ETag` made of the registry's change counter and the request
/// (path, query, role), answering 304 to a matching `If-None-Match` without running `load`:
/// polling an unchanged list costs one single-row read.
///
/// The counter is read before the page, so a tag can only be older than the page it labels,
/// never newer: a change committed in between costs one extra 200, never a stale 304.
pub async fn cached_page<T, F>(
    pool: &PgPool,
    req: &HttpRequest,
    principal: &Principal,
    load: F,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut diesel::PgConnection) -> Result<PageResponse<T>, ApiError> + Send + 'static,
{
    use sha2::{Digest, Sha256};
    let scope = Sha256::new()
        .chain_update(req.path())
        .chain_update([0])
        .chain_update(req.query_string())
        .chain_update([0])
        .chain_update(principal.role.as_str())
        .finalize();
    let scope = hex::encode(&scope[..8]);
    let headers = req.headers().clone();
    let (tag, page) = db::run(pool, move |conn| {
        let tag = format!("\"{}-{scope}\"", audit::change_counter(conn)?);
        if etag::none_match_hits(&headers, &tag) {
            return Ok((tag, None));
        }
        Ok((tag, Some(load(conn)?)))
    })
    .await?;
    Ok(match page {
        Some(page) => page.respond(req, &tag),
        None => HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .insert_header((header::CACHE_CONTROL, PRIVATE_REVALIDATE))
            .finish(),
    })
}

/// Serves a list query: a page as JSON (with ETag, `Link`, optional `total`), or with
/// `Accept: text/csv` every matching row (or `limit` rows) as streamed CSV. `convert` turns a
/// batch of rows into responses in a fixed number of queries.
pub async fn serve_list<T, Resp, F>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    params: &ListParams,
    mut query: ListQuery,
    csv_columns: &'static [&'static str],
    convert: F,
) -> Result<HttpResponse, ApiError>
where
    T: QueryableByName<Pg> + Keyed + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(&mut PgConnection, Vec<T>) -> Result<Vec<Resp>, ApiError> + Clone + Send + 'static,
{
    params.check_q()?;
    let csv = super::csv::wants_csv(req);
    if csv && matches!(query.order, Order::Relevance { .. }) {
        // Relevance re-scores every match for each batch (quadratic over an export); an export
        // of a search comes in id (creation) order instead, which an index serves.
        let by_id = SortKey {
            name: "id",
            expr: query.id_expr,
            ty: KeyType::Uuid,
            nullable: false,
            tie: query.id_expr,
        };
        query.order = Order::Key {
            key: by_id,
            desc: false,
        };
    }
    // A CSV export has no page limit unless `limit` is given, and then any positive one.
    query.limit = match (csv, params.limit) {
        (true, None) => None,
        (true, Some(0)) => {
            return Err(ApiError::invalid(
                "/limit",
                "out_of_range",
                "limit must be 1 or more",
            ))
        }
        (true, Some(n)) => Some(n),
        (false, limit) => Some(check_limit(limit)?),
    };
    let cursor = params.cursor.clone();
    if csv {
        let name = query.resource;
        return super::csv::export(req, pool, query, cursor, name, csv_columns, convert);
    }
    let include_total = params.include_total.unwrap_or(false);
    cached_page(pool, req, principal, move |conn| {
        let page = query.load::<T>(conn, cursor.as_deref(), include_total)?;
        let data = convert(conn, page.data)?;
        Ok(PageResponse {
            data,
            next_cursor: page.next_cursor,
            total: page.total,
        })
    })
    .await
}
