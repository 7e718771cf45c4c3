//! Institutional partners: the `partners` detail row and its writes.

use diesel::prelude::*;
use uuid::Uuid;

use super::organisation::{DetailRow, KindTable, SORT_CREATED, SORT_NAME, SORT_UPDATED};
use crate::db::list::{Filter, SortKey, Value};
use crate::db::schema::partners;
use crate::domain::organisation::PartnerDraft;
use crate::domain::{PartnerScope, PartnerType};

/// A `partners` row; written whole on create and update.
#[derive(
    Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = partners, primary_key(organisation_id), treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PartnerDetail {
    pub organisation_id: Uuid,
    pub partner_type: String,
    pub scope: Option<String>,
}

super::organisation::point_read!(PartnerDetail, partners);

impl DetailRow for PartnerDetail {
    fn sort_value(&self, _key: &str) -> Option<Value> {
        None
    }
}

/// What the partners list filters on besides the shared organisation filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartnerFilter {
    /// Only this type of partner.
    pub partner_type: Option<PartnerType>,
    /// Only this reach.
    pub scope: Option<PartnerScope>,
}

impl KindTable for PartnerDetail {
    const RESOURCE: &'static str = "partners";
    const TABLE: &'static str = "partners";
    const FROM: &'static str = "FROM organisations o JOIN partners d ON d.organisation_id = o.id";
    type Filter = PartnerFilter;

    fn conditions(filter: &PartnerFilter) -> Vec<Filter> {
        let mut filters = Vec::new();
        if let Some(t) = filter.partner_type {
            filters.push(Filter::Eq(
                "d.partner_type",
                Value::Text(t.as_str().to_owned()),
            ));
        }
        if let Some(s) = filter.scope {
            filters.push(Filter::Eq("d.scope", Value::Text(s.as_str().to_owned())));
        }
        filters
    }
}

/// The sort keys `GET /partners` offers.
pub const SORT_KEYS: &[SortKey] = &[SORT_NAME, SORT_CREATED, SORT_UPDATED];

impl PartnerDetail {
    /// The row of partner `id`.
    fn of(id: Uuid, d: &PartnerDraft) -> Self {
        Self {
            organisation_id: id,
            partner_type: d.partner_type.as_str().to_owned(),
            scope: d.scope.map(|s| s.as_str().to_owned()),
        }
    }
}

super::organisation::detail_write!(PartnerDetail, partners, PartnerDraft);
