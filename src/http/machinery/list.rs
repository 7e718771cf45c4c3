//! The HTTP side of lists: the parameters every list shares (one declaration, for the server
//! and for the OpenAPI document), the page body and its `Link` header.

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use diesel::pg::Pg;
use diesel::{PgConnection, QueryableByName};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Required, Schema};
use utoipa::{IntoParams, ToSchema};

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
/// What `q` may hold: anything but NUL.
pub const Q_PATTERN: &str = "^[^\\x00]*$";
/// What a cursor is made of: URL-safe base64 without padding.
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// Parameters every list takes (or, for `sort`, `q`, `include_total` and `include_archived`,
/// those whose [`ListKind`] says so).
#[derive(Debug, Clone, Default, Deserialize)]
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

    /// 422 for a `q` longer than [`MAX_Q`] characters (similarity work grows with it), or
    /// with a NUL character (which PostgreSQL text cannot hold).
    pub fn check_q(&self) -> Result<(), ApiError> {
        match self.search() {
            Some(q) if q.chars().count() > MAX_Q => Err(ApiError::invalid(
                "/q",
                "too_long",
                format!("q is at most {MAX_Q} characters"),
            )),
            Some(q) if q.contains('\0') => Err(ApiError::invalid(
                "/q",
                crate::domain::codes::INVALID_FORMAT,
                "q contains no NUL character",
            )),
            _ => Ok(()),
        }
    }

    /// The order of a list of kind `K`: `sort` among its keys (the first is the default), or
    /// relevance over `search_column` when `q` comes without `sort`.
    pub fn order<K: ListKind>(&self, search_column: &'static str) -> Result<Order, ApiError> {
        Ok(Order::parse(
            self.sort.as_deref(),
            K::SORTS,
            K::SORTS.first().map_or("id", |k| k.name),
            self.search().map(|q| (search_column, q)),
        )?)
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

/// Which of the shared list parameters a list takes, and what they mean there. Every list
/// takes `limit` and `cursor`; the server reads, and the OpenAPI document declares, exactly
/// what this says ([`ListRequest`]).
pub trait ListKind {
    /// The `sort` keys, the default first. A list with keys also takes `sort`, `q` and
    /// `include_total`; one without comes in a fixed order and takes none of them.
    const SORTS: &'static [SortKey] = &[];
    /// What `q` matches, e.g. "name and legal name".
    const SEARCHES: &'static str = "";
    /// The description of `include_archived`; `None` when the list does not take it.
    const ARCHIVED: Option<&'static str> = None;
    /// The CSV columns of its answer with `Accept: text/csv`: the response's members, nested
    /// objects flattened with `_`.
    const CSV_COLUMNS: &'static [&'static str] = &[];
    /// Whether it answers `Accept: text/csv` (a feed does not: it is read page by page).
    const EXPORTS: bool = true;
}

/// A list's query string: the shared parameters its [`ListKind`] takes, and its own filters
/// `F` (a struct that denies unknown fields). Any other parameter, or a value of the wrong
/// type, is 400 `malformed`; values of the right type that the list refuses are 422 later.
#[derive(Debug)]
pub struct ListRequest<K, F> {
    /// The shared parameters.
    pub params: ListParams,
    /// The list's own filters.
    pub filters: F,
    kind: PhantomData<K>,
}

impl<K: ListKind, F> ListRequest<K, F> {
    /// The shared parameters and the filters.
    pub fn into_parts(self) -> (ListParams, F) {
        (self.params, self.filters)
    }

    /// Names of the shared parameters lists of kind `K` take.
    pub fn shared_names() -> Vec<&'static str> {
        let mut names = vec!["limit", "cursor"];
        if !K::SORTS.is_empty() {
            names.extend(["sort", "q", "include_total"]);
        }
        if K::ARCHIVED.is_some() {
            names.push("include_archived");
        }
        names
    }
}

impl<K: ListKind, F: DeserializeOwned + IntoParams> ListRequest<K, F> {
    /// Splits and decodes a query string.
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let shared = Self::shared_names();
        let mut common = url::form_urlencoded::Serializer::new(String::new());
        let mut own = url::form_urlencoded::Serializer::new(String::new());
        let mut own_keys = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if shared.contains(&&*k) {
                common.append_pair(&k, &v);
            } else {
                own.append_pair(&k, &v);
                own_keys.push(k.into_owned());
            }
        }
        let malformed = |e: actix_web::error::QueryPayloadError| {
            ApiError::malformed(format!("invalid query string: {e}"))
        };
        let params = web::Query::<ListParams>::from_query(&common.finish())
            .map_err(malformed)?
            .into_inner();
        let filters = web::Query::<F>::from_query(&own.finish())
            .map_err(|e| {
                // serde names only `F`'s fields; name every parameter the list takes instead.
                let names: Vec<String> = F::into_params(|| Some(ParameterIn::Query))
                    .into_iter()
                    .map(|p| p.name)
                    .collect();
                match own_keys.iter().find(|k| !names.contains(k)) {
                    Some(unknown) => {
                        let mut all: Vec<String> = shared.iter().map(|s| (*s).to_owned()).collect();
                        all.extend(names);
                        ApiError::malformed(format!(
                            "unknown query parameter `{unknown}`; this list takes {}",
                            all.join(", ")
                        ))
                    }
                    None => malformed(e),
                }
            })?
            .into_inner();
        Ok(Self {
            params,
            filters,
            kind: PhantomData,
        })
    }
}

impl<K: ListKind, F: DeserializeOwned + IntoParams> FromRequest for ListRequest<K, F> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::parse(req.query_string()))
    }
}

fn query_parameter(name: &str, description: String, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(RefOr::T(Schema::Object(schema.build()))))
        .build()
}

/// The shared parameters of a list of kind `K`, as the OpenAPI document declares them.
pub fn shared_parameters<K: ListKind>() -> Vec<Parameter> {
    let mut params = vec![
        query_parameter(
            "limit",
            if K::EXPORTS {
                format!(
                    "Page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT}; beyond, 422). With \
                     `Accept: text/csv`: every matching row unless given, and then any number \
                     from 1."
                )
            } else {
                format!("Page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT}; beyond, 422).")
            },
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(MAX_LIMIT))
                .default(Some(json!(DEFAULT_LIMIT))),
        ),
        query_parameter(
            "cursor",
            "`next_cursor` of the previous page (opaque). Valid only with the list, sort, search \
             and filters it was issued for; otherwise 400 `invalid_cursor`."
                .to_owned(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(CURSOR_PATTERN)),
        ),
    ];
    if let Some((default, others)) = K::SORTS.split_first() {
        let names: Vec<&str> = K::SORTS.iter().map(|k| k.name).collect();
        let mut others: Vec<String> = others.iter().map(|k| format!("`{}`", k.name)).collect();
        others.insert(0, format!("`{}` (default)", default.name));
        let nulls = if K::SORTS.iter().any(|k| k.nullable) {
            " NULLs sort last both ways."
        } else {
            ""
        };
        params.push(query_parameter(
            "sort",
            format!(
                "One of {}, `-` prefixed for descending; with `q` and no `sort`, by relevance. \
                 `id` breaks ties.{nulls}",
                others.join(", ")
            ),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^-?({})$", names.join("|")))),
        ));
        params.push(query_parameter(
            "q",
            format!(
                "Search {} (case, accents and small typos do not matter). At most {MAX_Q} \
                 characters, no NUL; blank is no search. A search that matches too much to \
                 rank within the server's search time bound (`LSHUB_SEARCH_TIMEOUT_MS`, 500 ms \
                 by default) is 422 `search_too_broad` at `/q`: add characters, another word \
                 or a filter. A CSV export of a search is not bounded.",
                K::SEARCHES
            ),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_Q))
                .pattern(Some(Q_PATTERN)),
        ));
        params.push(query_parameter(
            "include_total",
            "Add `total` (a count of every match) to the answer.".to_owned(),
            ObjectBuilder::new().schema_type(Type::Boolean),
        ));
    }
    if let Some(description) = K::ARCHIVED {
        params.push(query_parameter(
            "include_archived",
            format!("{description} Editors and admins; 403 for other roles."),
            ObjectBuilder::new().schema_type(Type::Boolean),
        ));
    }
    params
}

impl<K: ListKind, F: IntoParams> IntoParams for ListRequest<K, F> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = shared_parameters::<K>();
        params.extend(F::into_params(|| Some(ParameterIn::Query)));
        params
    }
}

/// The filters of a list that has none of its own.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoFilters {}

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
}

/// A page body: what [`cached_answer`] serves, with a `Link` to its next page.
pub trait Paged: Serialize {
    /// The cursor of the next page, if any.
    fn next_cursor(&self) -> Option<&str>;
}

impl<T: Serialize> Paged for PageResponse<T> {
    fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }
}

/// 200 with the page, its `ETag`, and `Link: <...>; rel="next"` when there is a next page.
fn respond(page: &impl Paged, req: &HttpRequest, tag: &str) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, PRIVATE_REVALIDATE));
    res.insert_header((header::ETAG, tag.to_owned()));
    if let Some(cursor) = page.next_cursor() {
        res.insert_header((
            header::LINK,
            format!("<{}>; rel=\"next\"", next_url(req, cursor)),
        ));
    }
    res.json(page)
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
/// polling an unchanged list costs no database round trip while the listener follows the
/// counter ([`audit::ChangeCounter`]), and one single-row read while it is down.
pub async fn cached_page<T, F>(
    pool: &PgPool,
    req: &HttpRequest,
    principal: &Principal,
    load: F,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnMut(&mut diesel::PgConnection) -> Result<PageResponse<T>, ApiError> + Send + 'static,
{
    cached_answer(pool, req, principal, by_counter(), load).await
}

/// A read of what a page depends on, for its `ETag`.
pub type ReadState = fn(&mut diesel::PgConnection) -> diesel::QueryResult<String>;

/// The `ETag` state of an answer derived from the registry alone: the change counter.
pub fn by_counter() -> TagState<ReadState> {
    TagState::Counter
}

/// What a cached answer's `ETag` is made of.
pub enum TagState<S> {
    /// The registry's change counter, followed in memory: a matching poll needs no connection.
    Counter,
    /// Something only the database can say (the change feed's fence), read before the page.
    Read(S),
}

/// [`cached_page`] for a page whose content may depend on more than the change counter:
/// `state` says what it depends on.
pub async fn cached_answer<P, S, F>(
    pool: &PgPool,
    req: &HttpRequest,
    principal: &Principal,
    state: TagState<S>,
    load: F,
) -> Result<HttpResponse, ApiError>
where
    P: Paged + Send + 'static,
    S: FnMut(&mut diesel::PgConnection) -> diesel::QueryResult<String> + Send + 'static,
    F: FnMut(&mut diesel::PgConnection) -> Result<P, ApiError> + Send + 'static,
{
    cached(pool, req, principal, None, state, load, |page, req, tag| {
        Ok(respond(&page, req, tag))
    })
    .await
}

/// The one ETag path of answers derived from the registry (lists, statistics, the change
/// feed): the tag is `state` (the change counter, unless the answer depends on more) and a
/// digest of the request (path, query, role, and `variant`, the representation when one path
/// serves several, e.g. `csv`). A matching `If-None-Match` answers 304 without running `load`
/// (and, for the counter while the listener follows it, without a connection); otherwise
/// `respond` turns the loaded body into the answer, given the tag.
///
/// The state is read before the body, so a tag can only be older than the body it labels,
/// never newer: a change committed in between costs one extra 200. A poll may get a 304 for
/// another replica's change committed less than one listener poll ago
/// (`db::listener::POLL`): the staleness bound.
pub async fn cached<B, S, F, R>(
    pool: &PgPool,
    req: &HttpRequest,
    principal: &Principal,
    variant: Option<&str>,
    mut state: TagState<S>,
    mut load: F,
    respond: R,
) -> Result<HttpResponse, ApiError>
where
    B: Send + 'static,
    S: FnMut(&mut diesel::PgConnection) -> diesel::QueryResult<String> + Send + 'static,
    F: FnMut(&mut diesel::PgConnection) -> Result<B, ApiError> + Send + 'static,
    R: FnOnce(B, &HttpRequest, &str) -> Result<HttpResponse, ApiError>,
{
    use sha2::{Digest, Sha256};
    let mut scope = Sha256::new()
        .chain_update(req.path())
        .chain_update([0])
        .chain_update(req.query_string())
        .chain_update([0])
        .chain_update(principal.role.as_str());
    if let Some(variant) = variant {
        scope = scope.chain_update([0]).chain_update(variant);
    }
    let scope = hex::encode(&scope.finalize()[..8]);
    let tag_of = move |state: &str| format!("\"{state}-{scope}\"");
    let headers = req.headers().clone();
    // The counter as the listener last read it: a matching poll is answered from memory,
    // without a connection. While the listener is down it is unknown, and read below.
    let followed = match state {
        TagState::Counter => etag::followed_counter(req),
        TagState::Read(_) => None,
    };
    if let Some(tag) = followed.map(|counter| tag_of(&counter.to_string())) {
        if etag::none_match_hits(&headers, &tag) {
            return Ok(etag::not_modified(tag));
        }
    }
    // An answer tagged by the counter may come from a streaming replica, which then tags it
    // with its own counter (the followed one is the primary's, maybe ahead of the replica's
    // replay). The change feed's fence is the primary's own.
    let by_counter = matches!(state, TagState::Counter);
    let mut work = move |conn: &mut diesel::PgConnection, source: db::Source| {
        let known = followed.filter(|_| source == db::Source::Primary);
        let tag = match (known, &mut state) {
            (Some(counter), _) => tag_of(&counter.to_string()),
            (None, TagState::Counter) => tag_of(&audit::change_counter(conn)?.to_string()),
            (None, TagState::Read(read)) => tag_of(&read(conn)?),
        };
        if known.is_none() && etag::none_match_hits(&headers, &tag) {
            return Ok((tag, None));
        }
        Ok((tag, Some(load(conn)?)))
    };
    let (tag, body) = if by_counter {
        db::read(pool, &etag::reader(req), work).await?
    } else {
        db::run(pool, move |conn| work(conn, db::Source::Primary)).await?
    };
    match body {
        Some(body) => respond(body, req, &tag),
        None => Ok(etag::not_modified(tag)),
    }
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
        let page = query.load_page::<T>(conn, cursor.as_deref(), include_total)?;
        let data = convert(conn, page.data)?;
        Ok(PageResponse {
            data,
            next_cursor: page.next_cursor,
            total: page.total,
        })
    })
    .await
}
