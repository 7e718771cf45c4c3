//! Companies: the `companies` detail row and its queries.

use diesel::prelude::*;
use diesel::sql_types::{Float, Nullable};
use uuid::Uuid;

use super::organisation::OrganisationRow;
use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value};
use crate::db::schema::companies;
use crate::domain::OrganisationKind;
use crate::error::ApiError;

/// A `companies` row; written whole on create and update.
#[derive(
    Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = companies, primary_key(organisation_id), treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct CompanyDetail {
    pub organisation_id: Uuid,
    pub vat_number: Option<String>,
    pub sector: String,
    pub device_segment: Option<String>,
    pub ateco_code: Option<String>,
    pub employees: Option<i32>,
    pub revenue_eur: Option<i64>,
    pub rd_investment_eur: Option<i64>,
    pub exports_eur: Option<i64>,
    pub founded_year: Option<i32>,
    pub assolombarda_member: bool,
}

/// A company as listed and read: identity, detail and (in searches) its relevance.
#[derive(Debug, Clone, QueryableByName)]
pub struct CompanyRecord {
    #[diesel(embed)]
    pub organisation: OrganisationRow,
    #[diesel(embed)]
    pub company: CompanyDetail,
    #[diesel(sql_type = Nullable<Float>)]
    pub score: Option<f32>,
}

impl Keyed for CompanyRecord {
    fn id(&self) -> Uuid {
        self.organisation.id
    }

    fn sort_value(&self, key: &str) -> Option<Value> {
        let c = &self.company;
        match key {
            "employees" => c.employees.map(|v| Value::Int(v.into())),
            "revenue_eur" => c.revenue_eur.map(Value::Int),
            "founded_year" => c.founded_year.map(|v| Value::Int(v.into())),
            other => self.organisation.sort_value(other),
        }
    }

    fn score(&self) -> Option<f32> {
        self.score
    }
}

/// The sort keys `GET /companies` offers; each is served by an index.
pub const SORT_KEYS: &[SortKey] = &[
    SortKey {
        name: "name",
        expr: "o.name_key",
        ty: KeyType::Text,
        nullable: false,
        tie: "o.id",
    },
    SortKey {
        name: "created_at",
        expr: "o.created_at",
        ty: KeyType::Time,
        nullable: false,
        tie: "o.id",
    },
    SortKey {
        name: "updated_at",
        expr: "o.updated_at",
        ty: KeyType::Time,
        nullable: false,
        tie: "o.id",
    },
    SortKey {
        name: "employees",
        expr: "c.employees::bigint",
        ty: KeyType::Int,
        nullable: true,
        tie: "c.organisation_id",
    },
    SortKey {
        name: "revenue_eur",
        expr: "c.revenue_eur",
        ty: KeyType::Int,
        nullable: true,
        tie: "c.organisation_id",
    },
    SortKey {
        name: "founded_year",
        expr: "c.founded_year::bigint",
        ty: KeyType::Int,
        nullable: true,
        tie: "c.organisation_id",
    },
];

/// The folded name + legal name column `q` searches.
pub const SEARCH_COLUMN: &str = "o.search_key";

/// A company list over `filters` (the kind condition is added here).
pub fn list_query(mut filters: Vec<Filter>, order: Order, limit: Option<u32>) -> ListQuery {
    filters.insert(0, Filter::Raw("o.kind = 'company'"));
    ListQuery {
        resource: "companies",
        select: "SELECT o.*, c.*",
        from: "FROM organisations o JOIN companies c ON c.organisation_id = o.id",
        id_expr: "o.id",
        filters,
        order,
        limit,
    }
}

/// One company by id, archived ones included only when asked.
pub fn find(
    conn: &mut PgConnection,
    id: Uuid,
    include_archived: bool,
) -> Result<CompanyRecord, ApiError> {
    let mut filters = vec![Filter::Eq("o.id", Value::Uuid(id))];
    if !include_archived {
        filters.push(Filter::Raw("o.archived_at IS NULL"));
    }
    let order = Order::Key {
        key: SORT_KEYS[0],
        desc: false,
    };
    list_query(filters, order, Some(1))
        .load::<CompanyRecord>(conn, None, false)?
        .data
        .pop()
        .ok_or_else(|| ApiError::not_found(OrganisationKind::Company.as_str()))
}

/// Inserts the detail row of a new company.
pub fn insert_detail(conn: &mut PgConnection, detail: &CompanyDetail) -> QueryResult<()> {
    diesel::insert_into(companies::table)
        .values(detail)
        .execute(conn)
        .map(|_| ())
}

/// Rewrites the detail row.
pub fn update_detail(conn: &mut PgConnection, detail: &CompanyDetail) -> QueryResult<()> {
    diesel::update(companies::table.find(detail.organisation_id))
        .set(detail)
        .execute(conn)
        .map(|_| ())
}
