//! IRCCS (Clinical Care and Research Institutes): the `irccs` detail row and its writes.

use diesel::prelude::*;
use uuid::Uuid;

use super::organisation::{DetailRow, SORT_CREATED, SORT_NAME, SORT_UPDATED};
use crate::db::list::{KeyType, SortKey, Value};
use crate::db::schema::irccs;

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

/// Inserts the detail row of a new IRCCS.
pub fn insert(conn: &mut PgConnection, detail: &IrccsDetail) -> QueryResult<()> {
    diesel::insert_into(irccs::table)
        .values(detail)
        .execute(conn)
        .map(|_| ())
}

/// Rewrites the detail row.
pub fn update(conn: &mut PgConnection, detail: &IrccsDetail) -> QueryResult<()> {
    diesel::update(irccs::table.find(detail.organisation_id))
        .set(detail)
        .execute(conn)
        .map(|_| ())
}
