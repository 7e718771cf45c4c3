//! What every organisation kind shares over HTTP: the common fields in and out, their
//! validation, and the archive / restore / history operations, which need no detail table.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::{PgConnection, QueryableByName};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::list::SortKey;
use crate::db::PgPool;
use crate::domain::organisation::{self, KindBody, OrganisationDraft};
use crate::domain::OrganisationId;
use crate::domain::{self, OrganisationKind, Role};
use crate::error::{stored, ApiError};
use crate::http::machinery::import::{Importable, NaturalKey};
use crate::http::machinery::list::{ListKind, ListParams};
use crate::http::machinery::record::{top_level, Locked, Resource, EDITORS, PARTNERS_AND_EDITORS};
use crate::models::organisation::{
    self as org_model, DetailWrite, KeyMatch, KindTable, NameMatch, OrgRecord, OrganisationFilter,
    OrganisationRow, PointRead,
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
    const CSV_COLUMNS: &'static [&'static str] = <R as OrgResource>::CSV_COLUMNS;
}

/// The filter every organisation list shares (`q`, `province`, `in_mind`, archived): 403 for
/// `include_archived` from a role that may not see archived records, 422 for an unknown
/// province.
pub fn organisation_filter(
    principal: &Principal,
    params: &ListParams,
    province: Option<&ProvinceCode>,
    in_mind: Option<bool>,
) -> Result<OrganisationFilter, ApiError> {
    let include_archived =
        principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    let province = province
        .map(|p| domain::Province::parse(p.as_str()))
        .transpose()
        .map_err(|e| ApiError::invalid("/province", e.code, e.message))?;
    Ok(OrganisationFilter {
        include_archived,
        province,
        in_mind,
        search: params.search().map(str::to_owned),
    })
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
    /// Members a partner may change on its own organisation.
    const PARTNER_MANAGED: &'static [&'static str];
    /// The `sort` keys the list offers (the first is the default).
    const SORT_KEYS: &'static [SortKey];
    /// CSV columns, in order: the response's members, nested objects flattened with `_`.
    const CSV_COLUMNS: &'static [&'static str];
    /// The member that names a record besides its name (the detail table's
    /// [`KindTable::NATURAL_KEY`]), for imports.
    const NATURAL_KEY: Option<NaturalKey> = None;
    /// The detail row as read, and written from the kind's draft.
    type Row: QueryableByName<Pg>
        + KindTable
        + PointRead
        + DetailWrite<Draft = <Self::Body as KindBody>::Draft>
        + Send
        + 'static;
    /// The record as served.
    type Response: Serialize + ToSchema + Send + 'static;
    /// The kind's body ([`OrganisationBody`](organisation::OrganisationBody) flattened in, and the kind's own members), whose
    /// rules live in the domain.
    type Body: KindBody + ToSchema + 'static;

    /// Turns a page of rows into responses, in a fixed number of queries whatever its size.
    fn responses(
        conn: &mut PgConnection,
        rows: Vec<OrgRecord<Self::Row>>,
    ) -> Result<Vec<Self::Response>, ApiError>;
    /// The record's version.
    fn version(record: &Self::Response) -> i64;
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
/// `own` is the kind's own filter, already checked; the shared one (`q`, `province`,
/// `in_mind`, archived) is checked and added here.
pub async fn list<R: OrgResource>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    params: ListParams,
    province: Option<&ProvinceCode>,
    in_mind: Option<bool>,
    own: <R::Row as KindTable>::Filter,
) -> Result<HttpResponse, ApiError> {
    let shared = organisation_filter(principal, &params, province, in_mind)?;
    let order = params.order::<R>(org_model::SEARCH_COLUMN)?;
    let query = org_model::list_query::<R::Row>(R::KIND, &shared, &own, order, None);
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

impl<R: OrgResource> Resource for R {
    const ENTITY: &'static str = R::KIND.as_str();
    const UPDATE_ROLES: &'static [Role] = if R::PARTNER_MANAGED.is_empty() {
        EDITORS
    } else {
        PARTNERS_AND_EDITORS
    };
    const PARTNER_MANAGED: &'static [&'static str] = R::PARTNER_MANAGED;
    type Parent = ();
    type Write = (OrganisationDraft, <R::Body as KindBody>::Draft);
    type Response = R::Response;
    type Body = R::Body;

    fn location((): (), id: Uuid) -> String {
        top_level(R::COLLECTION, id)
    }

    fn validate(body: serde_json::Map<String, Json>) -> Result<Self::Write, ApiError> {
        Ok(organisation::validate::<R::Body>(body)?)
    }

    /// An organisation is its own owner: a partner acts for exactly one.
    fn owner(
        _conn: &mut PgConnection,
        (): (),
        id: Uuid,
    ) -> Result<Option<OrganisationId>, ApiError> {
        Ok(Some(OrganisationId::new(id)))
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
        <R::Row as DetailWrite>::insert(conn, id, detail)?;
        Ok(id)
    }

    fn insert_all(
        conn: &mut PgConnection,
        (): (),
        writes: &[&Self::Write],
    ) -> Result<Vec<Uuid>, ApiError> {
        let rows: Vec<_> = writes
            .iter()
            .map(|(fields, detail)| (fields, detail))
            .collect();
        Ok(org_model::insert_rows::<R::Row>(
            conn,
            R::KIND,
            crate::db::now(),
            &rows,
        )?)
    }

    fn update_all(
        conn: &mut PgConnection,
        changes: &[(Uuid, i64, &Self::Write)],
    ) -> Result<(), ApiError> {
        let identities: Vec<_> = changes
            .iter()
            .map(|(id, version, (fields, _))| (*id, *version, fields))
            .collect();
        org_model::update_rows(conn, R::KIND, crate::db::now(), &identities)?;
        let details: Vec<_> = changes
            .iter()
            .map(|(id, _, (_, detail))| (*id, detail))
            .collect();
        <R::Row as DetailWrite>::update_all(conn, &details)?;
        Ok(())
    }

    fn lock_all(conn: &mut PgConnection, (): (), ids: &[Uuid]) -> Result<Vec<i64>, ApiError> {
        let versions: std::collections::HashMap<Uuid, i64> =
            org_model::lock_all(conn, R::KIND, ids)?
                .into_iter()
                .collect();
        ids.iter()
            .map(|id| {
                versions
                    .get(id)
                    .copied()
                    .ok_or_else(|| ApiError::not_found(R::KIND.as_str()))
            })
            .collect()
    }

    fn load_all(
        conn: &mut PgConnection,
        (): (),
        ids: &[Uuid],
    ) -> Result<Vec<R::Response>, ApiError> {
        let mut found: std::collections::HashMap<Uuid, OrgRecord<R::Row>> =
            <R::Row as PointRead>::load_many(conn, ids)?
                .into_iter()
                .map(|record| (record.organisation.id, record))
                .collect();
        let records = ids
            .iter()
            .map(|id| {
                found
                    .remove(id)
                    .ok_or_else(|| ApiError::not_found(R::KIND.as_str()))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        R::responses(conn, records)
    }

    fn update(
        conn: &mut PgConnection,
        id: Uuid,
        expected_version: i64,
        (fields, detail): &Self::Write,
    ) -> Result<(), ApiError> {
        org_model::update(conn, id, expected_version, fields, crate::db::now())?;
        <R::Row as DetailWrite>::update(conn, id, detail)?;
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

/// Organisations are imported by kind, matched by their natural key or their folded name.
impl<R: OrgResource> Importable for R {
    const NATURAL_KEY: Option<NaturalKey> = <R as OrgResource>::NATURAL_KEY;

    fn match_names(conn: &mut PgConnection, names: &[String]) -> Result<Vec<NameMatch>, ApiError> {
        Ok(org_model::match_names(conn, R::KIND, names)?)
    }

    fn match_keys(conn: &mut PgConnection, keys: &[String]) -> Result<Vec<KeyMatch>, ApiError> {
        Ok(org_model::match_natural_keys::<R::Row>(conn, keys)?)
    }
}
