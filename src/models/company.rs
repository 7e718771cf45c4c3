//! Companies: the `companies` detail row and its writes.

use diesel::prelude::*;
use uuid::Uuid;

use super::organisation::{DetailRow, KindTable, SORT_CREATED, SORT_NAME, SORT_UPDATED};
use crate::db::list::{Filter, KeyType, SortKey, Value};
use crate::db::schema::companies;
use crate::domain::organisation::CompanyDraft;
use crate::domain::Sector;

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

super::organisation::point_read!(CompanyDetail, companies);

impl DetailRow for CompanyDetail {
    fn sort_value(&self, key: &str) -> Option<Value> {
        match key {
            "employees" => self.employees.map(|v| Value::Int(v.into())),
            "revenue_eur" => self.revenue_eur.map(Value::Int),
            "founded_year" => self.founded_year.map(|v| Value::Int(v.into())),
            _ => None,
        }
    }
}

/// What the companies list filters on besides the shared organisation filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompanyFilter {
    /// Only this sector.
    pub sector: Option<Sector>,
    /// At least and at most this many employees.
    pub employees: (Option<i64>, Option<i64>),
    /// Only Assolombarda members (true) or non-members (false).
    pub assolombarda_member: Option<bool>,
}

impl KindTable for CompanyDetail {
    const RESOURCE: &'static str = "companies";
    const TABLE: &'static str = "companies";
    const FROM: &'static str = "FROM organisations o JOIN companies d ON d.organisation_id = o.id";
    type Filter = CompanyFilter;
    const NATURAL_KEY: Option<&'static str> = Some("vat_number");

    fn conditions(filter: &CompanyFilter) -> Vec<Filter> {
        let mut filters = Vec::new();
        if let Some(sector) = filter.sector {
            filters.push(Filter::Eq(
                "d.sector",
                Value::Text(sector.as_str().to_owned()),
            ));
        }
        let (min, max) = filter.employees;
        if let Some(min) = min {
            filters.push(Filter::Gte("d.employees", Value::Int(min)));
        }
        if let Some(max) = max {
            filters.push(Filter::Lte("d.employees", Value::Int(max)));
        }
        if let Some(member) = filter.assolombarda_member {
            filters.push(Filter::Eq("d.assolombarda_member", Value::Bool(member)));
        }
        filters
    }
}

/// The sort keys `GET /companies` offers; each is served by an index.
pub const SORT_KEYS: &[SortKey] = &[
    SORT_NAME,
    SORT_CREATED,
    SORT_UPDATED,
    SortKey {
        name: "employees",
        expr: "d.employees::bigint",
        ty: KeyType::Int,
        nullable: true,
        tie: "d.organisation_id",
    },
    SortKey {
        name: "revenue_eur",
        expr: "d.revenue_eur",
        ty: KeyType::Int,
        nullable: true,
        tie: "d.organisation_id",
    },
    SortKey {
        name: "founded_year",
        expr: "d.founded_year::bigint",
        ty: KeyType::Int,
        nullable: true,
        tie: "d.organisation_id",
    },
];

impl CompanyDetail {
    /// The row of company `id`.
    fn of(id: Uuid, d: &CompanyDraft) -> Self {
        Self {
            organisation_id: id,
            vat_number: d.vat_number.clone(),
            sector: d.sector.as_str().to_owned(),
            device_segment: d.device_segment.map(|s| s.as_str().to_owned()),
            ateco_code: d.ateco_code.clone(),
            employees: d.employees,
            revenue_eur: d.revenue_eur,
            rd_investment_eur: d.rd_investment_eur,
            exports_eur: d.exports_eur,
            founded_year: d.founded_year,
            assolombarda_member: d.assolombarda_member,
        }
    }
}

super::organisation::detail_write!(CompanyDetail, companies, CompanyDraft);
