//! What every organisation kind shares over HTTP: the common fields in and out, their
//! validation, and the archive / restore / history operations, which need no detail table.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::{PgConnection, QueryableByName};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::body::{Errors, Field, Shape};
use super::etag;
use super::list::{cached_page, check_limit, ListParams, PageResponse};
use crate::auth::Principal;
use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value};
use crate::db::{self, PgPool};
use crate::domain::{self, Invalid, OrganisationKind};
use crate::error::{ApiError, FieldError};
use crate::models::audit::{self, Actor, AuditEventRow};
use crate::models::organisation::{
    self as org_model, DetailRow, OrgRecord, OrganisationFields, OrganisationRow,
};

/// A postal address.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Address {
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code (5 digits in Italy).
    pub postal_code: Option<String>,
    /// Italian province code, e.g. `MI`.
    #[schema(example = "MI")]
    pub province: Option<String>,
    /// ISO 3166-1 alpha-2 country code; `IT` unless set.
    #[schema(example = "IT")]
    pub country: String,
}

/// The fields every organisation has, as read.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrganisationView {
    /// UUID v7.
    pub id: Uuid,
    /// Which of the four kinds.
    pub kind: OrganisationKind,
    /// Display name, unique per kind among live records (ignoring case, accents, spacing).
    pub name: String,
    /// Registered legal name.
    pub legal_name: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// http(s) URL.
    pub website: Option<String>,
    /// Contact e-mail.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Address,
    /// Free tags.
    pub tags: Vec<String>,
    /// Located in the Milano Innovation District (MIND).
    pub in_mind: bool,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
    /// When it was archived; archived records are hidden unless `include_archived=true`.
    pub archived_at: Option<DateTime<Utc>>,
}

impl OrganisationView {
    /// The view of a row (the `kind` column is constrained to the four kinds).
    pub fn from_row(row: &OrganisationRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id,
            kind: row
                .kind
                .parse()
                .map_err(|e: Invalid| ApiError::internal(e.message))?,
            name: row.name.clone(),
            legal_name: row.legal_name.clone(),
            description: row.description.clone(),
            website: row.website.clone(),
            email: row.email.clone(),
            phone: row.phone.clone(),
            address: Address {
                street: row.address_street.clone(),
                city: row.address_city.clone(),
                postal_code: row.address_postal_code.clone(),
                province: row.address_province.clone(),
                country: row.address_country.clone(),
            },
            tags: row.tags.clone(),
            in_mind: row.in_mind,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            archived_at: row.archived_at,
        })
    }
}

/// A postal address as written; every member optional, `country` defaults to `IT`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct AddressInput {
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code (5 digits when the country is IT).
    pub postal_code: Option<String>,
    /// Italian province code (only for Italian addresses).
    pub province: Option<String>,
    /// ISO 3166-1 alpha-2; `null` or absent means `IT`.
    pub country: Option<String>,
}

/// The common fields of a create body (PATCH bodies are merge patches of the same shape).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct OrganisationInput {
    /// Required, 2..200 characters.
    pub name: Option<String>,
    /// Registered legal name.
    pub legal_name: Option<String>,
    /// Free-text description (up to 5,000 characters).
    pub description: Option<String>,
    /// http(s) URL.
    pub website: Option<String>,
    /// Contact e-mail.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<AddressInput>,
    /// Up to 30 tags, unique ignoring case.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Located in MIND; default false.
    #[serde(default)]
    pub in_mind: bool,
}

/// The shape of an address body.
pub static ADDRESS_SHAPE: Shape = Shape {
    fields: &[&[
        ("street", None),
        ("city", None),
        ("postal_code", None),
        ("province", None),
        ("country", None),
    ]],
    read_only: &[],
};

/// Members of every organisation body.
pub const COMMON_FIELDS: &[Field] = &[
    ("name", None),
    ("legal_name", None),
    ("description", None),
    ("website", None),
    ("email", None),
    ("phone", None),
    ("address", Some(&ADDRESS_SHAPE)),
    ("tags", None),
    ("in_mind", None),
];

/// Members clients read but never write.
pub const READ_ONLY: &[&str] = &[
    "id",
    "kind",
    "created_at",
    "updated_at",
    "version",
    "archived_at",
];

/// Common fields a partner may change on its own organisation; every other field is
/// hub-managed.
pub const PARTNER_MANAGED: &[&str] = &[
    "description",
    "website",
    "email",
    "phone",
    "address",
    "tags",
];

fn free_text(max: usize) -> impl Fn(&str) -> Result<String, Invalid> {
    move |s: &str| {
        let s = s.trim();
        if s.chars().count() > max {
            Err(Invalid::new(
                domain::codes::TOO_LONG,
                format!("at most {max} characters"),
            ))
        } else {
            Ok(s.to_owned())
        }
    }
}

impl OrganisationInput {
    /// Validates the common fields; problems go to `errors`.
    pub fn validate(self, errors: &mut Errors) -> OrganisationFields {
        let name = match self.name.as_deref().map(domain::Name::parse) {
            Some(Ok(name)) => name.into_inner(),
            Some(Err(e)) => {
                errors.push("/name", e);
                String::new()
            }
            None => {
                errors.push(
                    "/name",
                    Invalid::new(domain::codes::REQUIRED, "name is required"),
                );
                String::new()
            }
        };
        let address = self.address.unwrap_or_default();
        let country = errors
            .optional(
                "/address/country",
                address.country,
                domain::CountryCode::parse,
            )
            .unwrap_or_default();
        let postal_code = errors.optional("/address/postal_code", address.postal_code, |v| {
            domain::PostalCode::parse(v, &country)
        });
        let province = errors.optional("/address/province", address.province, |v| {
            if country.is_italy() {
                domain::Province::parse(v)
            } else {
                Err(Invalid::new(
                    domain::codes::INVALID_FORMAT,
                    "province applies to Italian addresses only",
                ))
            }
        });
        let tags = match domain::tags(&self.tags) {
            Ok(tags) => tags.into_iter().map(domain::Tag::into_inner).collect(),
            Err((index, e)) => {
                errors.push(&format!("/tags/{index}"), e);
                Vec::new()
            }
        };
        OrganisationFields {
            name,
            legal_name: errors.optional("/legal_name", self.legal_name, free_text(300)),
            description: errors.optional("/description", self.description, free_text(5000)),
            website: errors.optional("/website", self.website, |v| {
                domain::Website::parse(v).map(|w| w.into_inner())
            }),
            email: errors.optional("/email", self.email, |v| {
                domain::Email::parse(v).map(|e| e.into_inner())
            }),
            phone: errors.optional("/phone", self.phone, |v| {
                domain::Phone::parse(v).map(|p| p.into_inner())
            }),
            address_street: errors.optional("/address/street", address.street, free_text(200)),
            address_city: errors.optional("/address/city", address.city, free_text(100)),
            address_postal_code: postal_code.map(domain::PostalCode::into_inner),
            address_province: province.map(domain::Province::into_inner),
            address_country: country.into_inner(),
            tags,
            in_mind: self.in_mind,
        }
    }
}

/// 403 when a partner's patch changes a field outside `allowed` (the hub manages the rest).
pub fn check_partner_fields(
    principal: &Principal,
    before: &serde_json::Map<String, Json>,
    after: &serde_json::Map<String, Json>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    if principal.role != domain::Role::Partner {
        return Ok(());
    }
    let errors: Vec<FieldError> = after
        .keys()
        .chain(before.keys())
        .filter(|k| !allowed.contains(&k.as_str()) && before.get(*k) != after.get(*k))
        .map(|k| {
            FieldError::new(
                format!("/{k}"),
                "hub_managed",
                format!("`{k}` is managed by the hub"),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        let mut errors = errors;
        errors.dedup_by(|a, b| a.field == b.field);
        Err(ApiError::Forbidden {
            detail: "a partner may change only its organisation's self-managed fields".into(),
            errors,
        })
    }
}

/// The filters every organisation list shares (`q`, `province`, `in_mind`, archived).
pub fn common_filters(
    principal: &Principal,
    params: &ListParams,
    province: Option<&str>,
    in_mind: Option<bool>,
) -> Result<Vec<Filter>, ApiError> {
    let mut filters = Vec::new();
    if !principal.check_include_archived(params.include_archived.unwrap_or(false))? {
        filters.push(Filter::Raw("o.archived_at IS NULL"));
    }
    if let Some(province) = province {
        let p = domain::Province::parse(province)
            .map_err(|e| ApiError::invalid("/province", e.code, e.message))?;
        filters.push(Filter::Eq(
            "o.address_province",
            Value::Text(p.into_inner()),
        ));
    }
    if let Some(in_mind) = in_mind {
        filters.push(Filter::Eq("o.in_mind", Value::Bool(in_mind)));
    }
    if let Some(q) = params.search() {
        filters.push(Filter::Search {
            id: "o.id",
            table: "organisations",
            column: "search_key",
            q: q.to_owned(),
        });
    }
    Ok(filters)
}

/// `DELETE /{kind}/{id}`: archives (If-Match), 204 with the new ETag.
pub async fn archive(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    kind: OrganisationKind,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    principal.require_editor()?;
    let headers = req.headers().clone();
    let actor = Actor::from_principal(principal);
    let version = db::transaction(pool, move |conn| {
        let (current, archived_at) = org_model::lock(conn, kind, id)?;
        if archived_at.is_some() {
            return Err(ApiError::not_found(kind.as_str()));
        }
        etag::check_version(&etag::required_if_match(&headers)?, current)?;
        let now = crate::db::now();
        let version = org_model::set_archived(conn, id, current, Some(now), now)?;
        let changes =
            serde_json::json!({"before": {"archived_at": null}, "after": {"archived_at": now}});
        audit::record(conn, &actor, "archive", kind.as_str(), id, changes)?;
        Ok(version)
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::NoContent(), version).finish())
}

/// `POST /{kind}/{id}/restore`: un-archives (If-Match); 409 if live or its name is now taken.
pub async fn restore<R: OrgResource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let kind = R::KIND;
    principal.require_editor()?;
    let headers = req.headers().clone();
    let actor = Actor::from_principal(principal);
    let (record, version) = db::transaction(pool, move |conn| {
        let (current, archived_at) = org_model::lock(conn, kind, id)?;
        etag::check_version(&etag::required_if_match(&headers)?, current)?;
        let Some(archived_at) = archived_at else {
            return Err(ApiError::conflict("the record is not archived", None));
        };
        let now = crate::db::now();
        org_model::set_archived(conn, id, current, None, now)?;
        let changes = serde_json::json!({"before": {"archived_at": archived_at}, "after": {"archived_at": null}});
        audit::record(conn, &actor, "restore", kind.as_str(), id, changes)?;
        let record = load::<R>(conn, id, false)?;
        let version = R::version(&record);
        Ok((record, version))
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::Ok(), version).json(record))
}

/// An audit event as served.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Event id (UUID v7).
    pub id: Uuid,
    /// When the change committed.
    pub at: DateTime<Utc>,
    /// The user or client who made it; null for the system.
    pub actor_id: Option<Uuid>,
    /// `user`, `client` or `system`.
    pub actor_kind: String,
    /// `create`, `update`, `archive` or `restore`.
    pub action: String,
    /// The kind of record, e.g. `company`.
    pub entity: String,
    /// The record.
    pub entity_id: Uuid,
    /// The request that made the change.
    pub request_id: Option<String>,
    /// The changed fields: `{"before": {...}, "after": {...}}` (`before` is null on create).
    #[schema(value_type = Object)]
    pub changes: Json,
}

impl From<AuditEventRow> for AuditEvent {
    fn from(row: AuditEventRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            actor_id: row.actor_id,
            actor_kind: row.actor_kind,
            action: row.action,
            entity: row.entity,
            entity_id: row.entity_id,
            request_id: row.request_id,
            changes: row.changes,
        }
    }
}

/// Query of a history: a page of the record's audit trail, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Page size, 1..200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

const AUDIT_ID: SortKey = SortKey {
    name: "id",
    expr: "id",
    ty: KeyType::Uuid,
    nullable: false,
    tie: "id",
};

/// `GET /{kind}/{id}/history`: the record's audit trail (editors and admins).
pub async fn history(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    kind: OrganisationKind,
    id: Uuid,
    params: HistoryParams,
) -> Result<HttpResponse, ApiError> {
    principal.require_editor()?;
    db::run(pool, move |conn| org_model::ensure_exists(conn, kind, id)).await?;
    let query = ListQuery {
        resource: "audit_events",
        select: "SELECT *",
        from: "FROM audit_events",
        id_expr: "id",
        filters: vec![Filter::Eq("entity_id", Value::Uuid(id))],
        order: Order::Key {
            key: AUDIT_ID,
            desc: true,
        },
        limit: None,
    };
    let params = ListParams {
        limit: params.limit,
        cursor: params.cursor,
        ..ListParams::default()
    };
    serve_list(
        pool,
        principal,
        req,
        &params,
        query,
        AUDIT_CSV_COLUMNS,
        |_conn, rows: Vec<AuditEventRow>| Ok(rows.into_iter().map(AuditEvent::from).collect()),
    )
    .await
}

/// CSV columns of an audit trail (`changes` as its JSON text).
const AUDIT_CSV_COLUMNS: &[&str] = &[
    "id",
    "at",
    "actor_id",
    "actor_kind",
    "action",
    "entity",
    "entity_id",
    "request_id",
    "changes",
];

/// `Location` of a created record.
pub fn location(collection: &str, id: Uuid) -> (header::HeaderName, String) {
    (header::LOCATION, format!("/api/v1/{collection}/{id}"))
}

/// Shared state handlers read.
pub type Pool = web::Data<PgPool>;

/// What a kind of organisation adds to the shared machinery: its body shape, its detail row,
/// how it validates and how its rows become responses. Lists, CSV, create, read, update,
/// archive, restore and history are written once, in this module, against this trait.
pub trait OrgResource: Send + 'static {
    /// The kind.
    const KIND: OrganisationKind;
    /// The collection's path segment under `/api/v1`, e.g. `companies`.
    const COLLECTION: &'static str;
    /// `FROM organisations o JOIN <detail table> d ON d.organisation_id = o.id`.
    const FROM: &'static str;
    /// Members a body may carry (group 0 is [`COMMON_FIELDS`]).
    const SHAPE: &'static Shape;
    /// Members a partner may change on its own organisation.
    const PARTNER_MANAGED: &'static [&'static str];
    /// The `sort` keys the list offers (the first is the default).
    const SORT_KEYS: &'static [SortKey];
    /// CSV columns, in order: the response's members, nested objects flattened with `_`.
    const CSV_COLUMNS: &'static [&'static str];
    /// The detail row as read.
    type Row: QueryableByName<Pg> + DetailRow + Send + 'static;
    /// The kind's detail, validated, as written.
    type Detail: Clone + Send + 'static;
    /// The record as served.
    type Response: Serialize + Send + 'static;

    /// Decodes and validates the kind-specific members (group 1 of the shape).
    fn validate_detail(
        body: serde_json::Map<String, Json>,
        errors: &mut Errors,
    ) -> Result<Self::Detail, ApiError>;
    /// Turns a page of rows into responses, in a fixed number of queries whatever its size.
    fn responses(
        conn: &mut PgConnection,
        rows: Vec<OrgRecord<Self::Row>>,
    ) -> Result<Vec<Self::Response>, ApiError>;
    /// The record's version.
    fn version(record: &Self::Response) -> i64;
    /// Inserts the detail of a new record.
    fn insert_detail(
        conn: &mut PgConnection,
        id: Uuid,
        detail: &Self::Detail,
    ) -> diesel::QueryResult<()>;
    /// Rewrites the detail.
    fn update_detail(
        conn: &mut PgConnection,
        id: Uuid,
        detail: &Self::Detail,
    ) -> diesel::QueryResult<()>;
}

/// A list of kind `R` over `filters` (the kind condition is added here).
pub fn list_query<R: OrgResource>(
    mut filters: Vec<Filter>,
    order: Order,
    limit: Option<u32>,
) -> ListQuery {
    filters.insert(
        0,
        Filter::Eq("o.kind", Value::Text(R::KIND.as_str().to_owned())),
    );
    ListQuery {
        resource: R::COLLECTION,
        select: "SELECT o.*, d.*",
        from: R::FROM,
        id_expr: "o.id",
        filters,
        order,
        limit,
    }
}

/// One record of kind `R` by id; 404 when absent, or archived unless `include_archived`.
pub fn load<R: OrgResource>(
    conn: &mut PgConnection,
    id: Uuid,
    include_archived: bool,
) -> Result<R::Response, ApiError> {
    let mut filters = vec![Filter::Eq("o.id", Value::Uuid(id))];
    if !include_archived {
        filters.push(Filter::Raw("o.archived_at IS NULL"));
    }
    let order = Order::Key {
        key: org_model::SORT_NAME,
        desc: false,
    };
    let page =
        list_query::<R>(filters, order, Some(1)).load::<OrgRecord<R::Row>>(conn, None, false)?;
    R::responses(conn, page.data)?
        .pop()
        .ok_or_else(|| ApiError::not_found(R::KIND.as_str()))
}

/// `GET /{collection}`: a page as JSON, or with `Accept: text/csv` every matching row as CSV.
/// `filters` are the kind's own; the shared ones (`q`, `province`, `in_mind`, archived) are
/// added here.
pub async fn list<R: OrgResource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    params: ListParams,
    province: Option<&str>,
    in_mind: Option<bool>,
    filters: Vec<Filter>,
) -> Result<HttpResponse, ApiError> {
    let mut all = common_filters(principal, &params, province, in_mind)?;
    all.extend(filters);
    let order = Order::parse(
        params.sort.as_deref(),
        R::SORT_KEYS,
        R::SORT_KEYS.first().map_or("name", |k| k.name),
        params.search().map(|q| (SEARCH_COLUMN, q)),
    )?;
    let query = list_query::<R>(all, order, None);
    serve_list(
        pool,
        principal,
        req,
        &params,
        query,
        R::CSV_COLUMNS,
        R::responses,
    )
    .await
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
    let csv = super::csv::wants_csv(req);
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

/// The folded name + legal name column `q` searches, with its relevance.
pub const SEARCH_COLUMN: &str = "o.search_key";

/// Inserts a new record of kind `R` with its audit event (call inside a transaction).
pub fn insert_new<R: OrgResource>(
    conn: &mut PgConnection,
    actor: &Actor,
    fields: &OrganisationFields,
    detail: &R::Detail,
) -> Result<(Uuid, R::Response), ApiError> {
    let id = org_model::insert(conn, R::KIND, fields, crate::db::now())?;
    R::insert_detail(conn, id, detail)?;
    let record = load::<R>(conn, id, false)?;
    let changes = audit::diff(None, Some(&Json::Object(to_object(&record)?)));
    audit::record(conn, actor, "create", R::KIND.as_str(), id, changes)?;
    Ok((id, record))
}

/// Decodes and validates a whole body (create, or a merged patch) of kind `R`.
pub fn validate_body<R: OrgResource>(
    body: serde_json::Map<String, Json>,
) -> Result<(OrganisationFields, R::Detail), ApiError> {
    let (common, specific) = R::SHAPE.split(body, 0);
    let mut errors = Errors::default();
    let common: OrganisationInput = errors.decode(common);
    let fields = common.validate(&mut errors);
    let detail = R::validate_detail(specific, &mut errors)?;
    errors.finish()?;
    Ok((fields, detail))
}

fn to_object<T: Serialize>(record: &T) -> Result<serde_json::Map<String, Json>, ApiError> {
    match serde_json::to_value(record).map_err(ApiError::internal)? {
        Json::Object(map) => Ok(map),
        _ => Err(ApiError::internal(
            "a record did not serialise to an object",
        )),
    }
}

/// `POST /{collection}`: 201 with `Location` and `ETag`.
pub async fn create<R: OrgResource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require_editor()?;
    super::body::check_media_type(req.headers(), super::body::JSON)?;
    let map = super::body::parse_object(&body)?;
    R::SHAPE.check(&map)?;
    let (fields, detail) = validate_body::<R>(map)?;
    let actor = Actor::from_principal(principal);
    let record = db::transaction(pool, move |conn| {
        insert_new::<R>(conn, &actor, &fields, &detail)
    })
    .await;
    let (id, record) = record?;
    Ok(etag::tag(&mut HttpResponse::Created(), R::version(&record))
        .insert_header(location(R::COLLECTION, id))
        .json(record))
}

/// Query of a single-record read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// Answer archived records too (editors and admins; 403 for others).
    pub include_archived: Option<bool>,
}

/// `GET /{collection}/{id}`: 200 with `ETag`, or 304 on a matching `If-None-Match`.
pub async fn get<R: OrgResource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
    params: GetParams,
) -> Result<HttpResponse, ApiError> {
    let include_archived =
        principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    let record = db::run(pool, move |conn| load::<R>(conn, id, include_archived)).await?;
    let version = R::version(&record);
    if let Some(not_modified) = etag::not_modified(req, version) {
        return Ok(not_modified);
    }
    Ok(etag::tag(&mut HttpResponse::Ok(), version).json(record))
}

/// `PATCH /{collection}/{id}`: JSON Merge Patch under `If-Match`.
///
/// Checks run in the contract's order: role, existence, ownership, media type, JSON, the
/// partner's field rights, `If-Match` (428, 412), validation (422), conflicts (409). The row is
/// locked first, so concurrent patches with one ETag serialise and all but one get 412.
pub async fn update<R: OrgResource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    id: Uuid,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    use domain::Role;
    principal.require(&[Role::Partner, Role::Editor, Role::Admin])?;
    let headers = req.headers().clone();
    let actor = Actor::from_principal(principal);
    let principal = principal.clone();
    let record = db::transaction(pool, move |conn| {
        let (current_version, archived_at) = org_model::lock(conn, R::KIND, id)?;
        if archived_at.is_some() {
            return Err(ApiError::not_found(R::KIND.as_str()));
        }
        principal.require_owner_of(id)?;
        super::body::check_media_type(&headers, super::body::MERGE_PATCH)?;
        let patch = super::body::parse_object(&body)?;
        let versions = etag::required_if_match(&headers)?;
        etag::check_version(&versions, current_version)?;
        R::SHAPE.check(&patch)?;

        let current = load::<R>(conn, id, false)?;
        let before = to_object(&current)?;
        let mut writable = Json::Object(before.clone());
        if let Json::Object(map) = &mut writable {
            map.retain(|k, _| !READ_ONLY.contains(&k.as_str()));
        }
        let unpatched = writable.clone();
        super::body::merge_patch(&mut writable, &Json::Object(patch));
        if writable == unpatched {
            return Ok(current);
        }
        let (Json::Object(old), Json::Object(new)) = (&unpatched, &writable) else {
            return Err(ApiError::internal("merge patch produced a non-object"));
        };
        check_partner_fields(&principal, old, new, R::PARTNER_MANAGED)?;
        let (fields, detail) = validate_body::<R>(new.clone())?;

        org_model::update(conn, id, current_version, &fields, crate::db::now())?;
        R::update_detail(conn, id, &detail)?;
        let record = load::<R>(conn, id, false)?;
        let after = Json::Object(to_object(&record)?);
        audit::record(
            conn,
            &actor,
            "update",
            R::KIND.as_str(),
            id,
            audit::diff(Some(&Json::Object(before)), Some(&after)),
        )?;
        Ok(record)
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::Ok(), R::version(&record)).json(record))
}
