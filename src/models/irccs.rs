//! IRCCS (Clinical Care and Research Institutes): the `irccs` detail row and its writes.

use diesel::prelude::*;
use uuid::Uuid;

use super::organisation::{DetailRow, KindTable, SORT_CREATED, SORT_NAME, SORT_UPDATED};
use crate::db::list::{Filter, KeyType, SortKey, Value};
use crate::db::schema::irccs;
use crate::domain::organisation::IrccsDraft;
use crate::domain::{Ownership, Specialisation};

/// An `irccs` row; written whole on create and update.
#[derive(
    Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = irccs, primary_key(organisation_id), treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct IrccsDetail {
    pub organisation_id: Uuid,
    pub ownership: Option<String>,
    pub specialisations: Vec<String>,
    pub beds: Option<i32>,
    pub emergency_care: Option<bool>,
    pub serves_foreign_patients: Option<bool>,
}

super::organisation::point_read!(IrccsDetail, irccs);

impl DetailRow for IrccsDetail {
    fn sort_value(&self, key: &str) -> Option<Value> {
        match key {
            "beds" => self.beds.map(|v| Value::Int(v.into())),
            _ => None,
        }
    }
}

/// What the IRCCS list filters on besides the shared organisation filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IrccsFilter {
    /// Only IRCCS with this specialisation (among others).
    pub specialisation: Option<Specialisation>,
    /// Only public or only private IRCCS.
    pub ownership: Option<Ownership>,
}

impl KindTable for IrccsDetail {
    const RESOURCE: &'static str = "irccs";
    const TABLE: &'static str = "irccs";
    const FROM: &'static str = "FROM organisations o JOIN irccs d ON d.organisation_id = o.id";
    type Filter = IrccsFilter;

    fn conditions(filter: &IrccsFilter) -> Vec<Filter> {
        let mut filters = Vec::new();
        if let Some(s) = filter.specialisation {
            filters.push(Filter::Contains(
                "d.specialisations",
                Value::TextArray(vec![s.as_str().to_owned()]),
            ));
        }
        if let Some(o) = filter.ownership {
            filters.push(Filter::Eq(
                "d.ownership",
                Value::Text(o.as_str().to_owned()),
            ));
        }
        filters
    }
}

/// The sort keys `GET /irccs` offers.
pub const SORT_KEYS: &[SortKey] = &[
    SORT_NAME,
    SORT_CREATED,
    SORT_UPDATED,
    SortKey {
        name: "beds",
        expr: "d.beds::bigint",
        ty: KeyType::Int,
        nullable: true,
        tie: "d.organisation_id",
    },
];

impl IrccsDetail {
    /// The row of IRCCS `id`.
    fn of(id: Uuid, d: &IrccsDraft) -> Self {
        Self {
            organisation_id: id,
            ownership: d.ownership.map(|o| o.as_str().to_owned()),
            specialisations: d
                .specialisations
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            beds: d.beds,
            emergency_care: d.emergency_care,
            serves_foreign_patients: d.serves_foreign_patients,
        }
    }
}

super::organisation::detail_write!(IrccsDetail, irccs, IrccsDraft);
