//! What every organisation kind shares over HTTP: the common fields in and out, their
//! validation, and the archive / restore / history operations, which need no detail table.

use std::sync::OnceLock;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::{PgConnection, QueryableByName};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::list::{Filter, ListQuery, Order, SortKey, Value};
use crate::db::PgPool;
use crate::domain::{self, Invalid, OrganisationKind, Role};
use crate::error::{stored, ApiError};
use crate::http::machinery::body::Errors;
use crate::http::machinery::list::{ListKind, ListParams};
use crate::http::machinery::record::{top_level, Locked, Resource, EDITORS, PARTNERS_AND_EDITORS};
use crate::models::organisation::{
    self as org_model, DetailRow, OrgRecord, OrganisationFields, OrganisationRow, PointRead,
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
            kind: stored(&row.kind)?,
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

/// A postal address as written; every member optional. Blank members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// Street and number, up to 200 characters.
    #[schema(value_type = Option<crate::http::machinery::schema::Text<0, 200>>, inline)]
    pub street: Option<String>,
    /// City, up to 100 characters.
    #[schema(value_type = Option<crate::http::machinery::schema::Text<0, 100>>, inline)]
    pub city: Option<String>,
    /// Postal code: exactly 5 digits when the country is `IT` (the default); otherwise 2 to 12
    /// letters, digits, spaces and dashes, stored uppercase.
    #[schema(value_type = Option<domain::PostalCode>, inline)]
    pub postal_code: Option<String>,
    /// Italian province code (any case; stored uppercase). Only for Italian addresses: with
    /// another `country` it is refused.
    #[schema(value_type = Option<domain::Province>, inline)]
    pub province: Option<String>,
    /// ISO 3166-1 alpha-2 code (any case; stored uppercase); absent or `null` means `IT`.
    #[schema(value_type = Option<domain::CountryCode>, inline)]
    pub country: Option<String>,
}

/// The members every organisation has, as written: the shared part of each kind's body
/// (flattened into `CompanyBody`, `IrccsBody`, `UniversityBody` and `PartnerBody`). Blank
/// optional members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct OrganisationBody {
    /// Display name: 2 to 200 characters once runs of spaces are collapsed, no control
    /// characters. Unique per kind among live records, ignoring case, accents, spacing and dash
    /// variants (409 `duplicate` otherwise).
    #[schema(required, value_type = Option<domain::Name>, inline)]
    pub name: Option<String>,
    /// Registered legal name, up to 300 characters.
    #[schema(value_type = Option<crate::http::machinery::schema::Text<0, 300>>, inline)]
    pub legal_name: Option<String>,
    /// Free-text description, up to 5,000 characters.
    #[schema(value_type = Option<crate::http::machinery::schema::Text<0, 5000>>, inline)]
    pub description: Option<String>,
    /// An `http` or `https` URL with a host name.
    #[schema(value_type = Option<domain::Website>, inline)]
    pub website: Option<String>,
    /// Contact e-mail (its domain is stored lowercase).
    #[schema(value_type = Option<domain::Email>, inline)]
    pub email: Option<String>,
    /// Contact phone: an optional `+`, then 6 to 15 digits with spaces, dots, dashes or
    /// parentheses between them.
    #[schema(value_type = Option<domain::Phone>, inline)]
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<AddressInput>,
    /// Up to 30 tags, each at most 50 characters without `;`, unique ignoring case.
    #[serde(default)]
    #[schema(value_type = crate::http::machinery::schema::Tags, inline)]
    pub tags: Vec<String>,
    /// Located in the Milano Innovation District (MIND); default false.
    #[serde(default)]
    pub in_mind: bool,
}

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

impl OrganisationBody {
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

/// A province filter: an Italian province code in any case (`MI`, `mi`). Unknown codes are
/// 422, like a province in a body.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct ProvinceCode(String);

impl ProvinceCode {
    /// The code as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl utoipa::PartialSchema for ProvinceCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "An Italian province code (the two letters of a car plate, e.g. `MI`, `MB`, \
                 `LO`): one of the 107 in use, in any case.",
            ))
            .pattern(Some(domain::geo::province_pattern()))
            .examples(["MI"])
            .into()
    }
}

impl ToSchema for ProvinceCode {}

/// Organisation lists: by their kind's keys, searching name and legal name.
impl<R: OrgResource> ListKind for R {
    const SORTS: &'static [SortKey] = <R as OrgResource>::SORT_KEYS;
    const SEARCHES: &'static str = "name and legal name";
    const ARCHIVED: Option<&'static str> = Some("Include archived records.");
}

/// The filters every organisation list shares (`q`, `province`, `in_mind`, archived).
pub fn common_filters(
    principal: &Principal,
    params: &ListParams,
    province: Option<&ProvinceCode>,
    in_mind: Option<bool>,
) -> Result<Vec<Filter>, ApiError> {
    let mut filters = Vec::new();
    if !principal.check_include_archived(params.include_archived.unwrap_or(false))? {
        filters.push(Filter::Raw("o.archived_at IS NULL"));
    }
    if let Some(province) = province {
        let p = domain::Province::parse(province.as_str())
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
    /// Members a partner may change on its own organisation.
    const PARTNER_MANAGED: &'static [&'static str];
    /// The `sort` keys the list offers (the first is the default).
    const SORT_KEYS: &'static [SortKey];
    /// CSV columns, in order: the response's members, nested objects flattened with `_`.
    const CSV_COLUMNS: &'static [&'static str];
    /// The detail row as read.
    type Row: QueryableByName<Pg> + DetailRow + PointRead + Send + 'static;
    /// The kind's detail, validated, as written.
    type Detail: Clone + Send + 'static;
    /// The record as served.
    type Response: Serialize + ToSchema + Send + 'static;
    /// The kind's body: [`OrganisationBody`] flattened in, and the kind's own members.
    type Body: DeserializeOwned + ToSchema + Default + 'static;

    /// Validates the kind's own members (the shared ones are validated apart).
    fn validate_detail(body: Self::Body, errors: &mut Errors) -> Result<Self::Detail, ApiError>;
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
    let record = <R::Row as PointRead>::load_one(conn, id, include_archived)?
        .ok_or_else(|| ApiError::not_found(R::KIND.as_str()))?;
    R::responses(conn, vec![record])?
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
    province: Option<&ProvinceCode>,
    in_mind: Option<bool>,
    filters: Vec<Filter>,
) -> Result<HttpResponse, ApiError> {
    let mut all = common_filters(principal, &params, province, in_mind)?;
    all.extend(filters);
    let order = params.order::<R>(SEARCH_COLUMN)?;
    let query = list_query::<R>(all, order, None);
    crate::http::machinery::list::serve_list(
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

/// The folded name + legal name column `q` searches, with its relevance.
pub const SEARCH_COLUMN: &str = "o.search_key";

/// Decodes and validates a whole body (create, or a merged patch) of kind `R`.
///
/// The shared members are decoded apart from the kind's own: behind `#[serde(flatten)]` a
/// member that does not decode loses its path, and every problem must name its member.
pub fn validate_body<R: OrgResource>(
    body: serde_json::Map<String, Json>,
) -> Result<(OrganisationFields, R::Detail), ApiError> {
    static COMMON: OnceLock<Vec<String>> = OnceLock::new();
    let common_members =
        COMMON.get_or_init(crate::http::machinery::schema::member_names::<OrganisationBody>);
    let (common, own) = crate::http::machinery::body::split(body, common_members);
    let mut errors = Errors::default();
    let common: OrganisationBody = errors.decode(common);
    let own: R::Body = errors.decode(own);
    let fields = common.validate(&mut errors);
    let detail = R::validate_detail(own, &mut errors)?;
    errors.finish()?;
    Ok((fields, detail))
}

impl<R: OrgResource> Resource for R {
    const ENTITY: &'static str = R::KIND.as_str();
    const UPDATE_ROLES: &'static [Role] = if R::PARTNER_MANAGED.is_empty() {
        EDITORS
    } else {
        PARTNERS_AND_EDITORS
    };
    const PARTNER_MANAGED: &'static [&'static str] = R::PARTNER_MANAGED;
    type Parent = ();
    type Write = (OrganisationFields, R::Detail);
    type Response = R::Response;
    type Body = R::Body;

    fn location((): (), id: Uuid) -> String {
        top_level(R::COLLECTION, id)
    }

    fn validate(body: serde_json::Map<String, Json>) -> Result<Self::Write, ApiError> {
        validate_body::<R>(body)
    }

    /// An organisation is its own owner: a partner acts for exactly one.
    fn owner(_conn: &mut PgConnection, (): (), id: Uuid) -> Result<Option<Uuid>, ApiError> {
        Ok(Some(id))
    }

    fn lock(conn: &mut PgConnection, (): (), id: Uuid) -> Result<Locked, ApiError> {
        let (version, archived_at) = org_model::lock(conn, R::KIND, id)?;
        Ok(Locked {
            version,
            archived_at,
        })
    }

    fn insert(
        conn: &mut PgConnection,
        (): (),
        (fields, detail): &Self::Write,
    ) -> Result<Uuid, ApiError> {
        let id = org_model::insert(conn, R::KIND, fields, crate::db::now())?;
        R::insert_detail(conn, id, detail)?;
        Ok(id)
    }

    fn update(
        conn: &mut PgConnection,
        id: Uuid,
        expected_version: i64,
        (fields, detail): &Self::Write,
    ) -> Result<(), ApiError> {
        org_model::update(conn, id, expected_version, fields, crate::db::now())?;
        R::update_detail(conn, id, detail)?;
        Ok(())
    }

    fn set_archived(
        conn: &mut PgConnection,
        id: Uuid,
        expected_version: i64,
        archived_at: Option<DateTime<Utc>>,
    ) -> Result<i64, ApiError> {
        Ok(org_model::set_archived(
            conn,
            id,
            expected_version,
            archived_at,
            crate::db::now(),
        )?)
    }

    fn load(
        conn: &mut PgConnection,
        (): (),
        id: Uuid,
        include_archived: bool,
    ) -> Result<R::Response, ApiError> {
        load::<R>(conn, id, include_archived)
    }

    fn version(record: &R::Response) -> i64 {
        R::version(record)
    }
}
