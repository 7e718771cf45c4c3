//! Companies: the `companies` detail row and its writes.

use diesel::prelude::*;
use uuid::Uuid;

use super::organisation::{DetailRow, SORT_CREATED, SORT_NAME, SORT_UPDATED};
use crate::db::list::{KeyType, SortKey, Value};
use crate::db::schema::companies;
use crate::domain::organisation::CompanyDraft;

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
