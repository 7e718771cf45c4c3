//! Universities: the `universities` detail row and its rankings, a child collection written
//! and read with the university.

use std::collections::HashMap;

use diesel::prelude::*;
use uuid::Uuid;

use super::organisation::{
    DetailRow, DetailWrite, KindTable, SORT_CREATED, SORT_NAME, SORT_UPDATED,
};
use crate::db::list::{Filter, KeyType, SortKey, Value};
use crate::db::schema::{universities, university_rankings};
use crate::domain::organisation::UniversityDraft;
use crate::domain::{Ownership, RankingArea};

/// A `universities` row; written whole on create and update.
#[derive(
    Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = universities, primary_key(organisation_id), treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UniversityDetail {
    pub organisation_id: Uuid,
    pub ownership: Option<String>,
    pub has_medical_faculty: Option<bool>,
    pub students: Option<i32>,
    pub ror_id: Option<String>,
}

super::organisation::point_read!(UniversityDetail, universities);

impl DetailRow for UniversityDetail {
    fn sort_value(&self, key: &str) -> Option<Value> {
        match key {
            "students" => self.students.map(|v| Value::Int(v.into())),
            _ => None,
        }
    }
}

/// A `university_rankings` row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = university_rankings, check_for_backend(diesel::pg::Pg))]
pub struct RankingRow {
    pub university_id: Uuid,
    pub position: i16,
    pub area: String,
    pub rank: i32,
    pub source: String,
    pub year: i32,
}

/// What the universities list filters on besides the shared organisation filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UniversityFilter {
    /// Only public or only private universities.
    pub ownership: Option<Ownership>,
    /// Only universities with (true) or without (false) a medical faculty.
    pub has_medical_faculty: Option<bool>,
    /// Only universities ranked in this area, at most at this rank when given.
    pub ranking: Option<(RankingArea, Option<i64>)>,
}

impl KindTable for UniversityDetail {
    const RESOURCE: &'static str = "universities";
    const TABLE: &'static str = "universities";
    const FROM: &'static str =
        "FROM organisations o JOIN universities d ON d.organisation_id = o.id";
    type Filter = UniversityFilter;
    const NATURAL_KEY: Option<&'static str> = Some("ror_id");

    fn conditions(filter: &UniversityFilter) -> Vec<Filter> {
        let mut filters = Vec::new();
        if let Some(o) = filter.ownership {
            filters.push(Filter::Eq(
                "d.ownership",
                Value::Text(o.as_str().to_owned()),
            ));
        }
        if let Some(m) = filter.has_medical_faculty {
            filters.push(Filter::Eq("d.has_medical_faculty", Value::Bool(m)));
        }
        if let Some((area, rank)) = filter.ranking {
            filters.push(Filter::Template(
                // Served by the (area, rank, university_id) index on the rankings; without a
                // rank, the same statement with the largest one.
                "o.id IN (SELECT university_id FROM university_rankings WHERE area = ? AND rank <= ?)",
                vec![
                    Value::Text(area.as_str().to_owned()),
                    Value::Int(rank.unwrap_or(i64::from(i32::MAX))),
                ],
            ));
        }
        filters
    }
}

/// The sort keys `GET /universities` offers.
pub const SORT_KEYS: &[SortKey] = &[
    SORT_NAME,
    SORT_CREATED,
    SORT_UPDATED,
    SortKey {
        name: "students",
        expr: "d.students::bigint",
        ty: KeyType::Int,
        nullable: true,
        tie: "d.organisation_id",
    },
];

/// The rows of university `id`: its detail and its rankings.
fn rows_of(id: Uuid, d: &UniversityDraft) -> (UniversityDetail, Vec<RankingRow>) {
    let detail = UniversityDetail {
        organisation_id: id,
        ownership: d.ownership.map(|o| o.as_str().to_owned()),
        has_medical_faculty: d.has_medical_faculty,
        students: d.students,
        ror_id: d.ror_id.clone(),
    };
    let rankings = d
        .rankings
        .iter()
        .map(|r| RankingRow {
            university_id: id,
            position: r.position,
            area: r.area.as_str().to_owned(),
            rank: r.rank,
            source: r.source.clone(),
            year: r.year,
        })
        .collect();
    (detail, rankings)
}

impl DetailWrite for UniversityDetail {
    type Draft = UniversityDraft;

    fn insert(conn: &mut PgConnection, id: Uuid, draft: &UniversityDraft) -> QueryResult<()> {
        let (detail, rankings) = rows_of(id, draft);
        diesel::insert_into(universities::table)
            .values(&detail)
            .execute(conn)?;
        diesel::insert_into(university_rankings::table)
            .values(&rankings)
            .execute(conn)
            .map(|_| ())
    }

    fn insert_all(conn: &mut PgConnection, rows: &[(Uuid, &UniversityDraft)]) -> QueryResult<()> {
        let (details, rankings): (Vec<UniversityDetail>, Vec<Vec<RankingRow>>) =
            rows.iter().map(|(id, d)| rows_of(*id, d)).unzip();
        diesel::insert_into(universities::table)
            .values(&details)
            .execute(conn)?;
        diesel::insert_into(university_rankings::table)
            .values(&rankings.concat())
            .execute(conn)
            .map(|_| ())
    }

    fn update_all(conn: &mut PgConnection, rows: &[(Uuid, &UniversityDraft)]) -> QueryResult<()> {
        let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
        diesel::delete(
            university_rankings::table.filter(university_rankings::university_id.eq_any(&ids)),
        )
        .execute(conn)?;
        diesel::delete(universities::table.filter(universities::organisation_id.eq_any(&ids)))
            .execute(conn)?;
        Self::insert_all(conn, rows)
    }

    /// Rewrites the detail row and replaces the rankings whole.
    fn update(conn: &mut PgConnection, id: Uuid, draft: &UniversityDraft) -> QueryResult<()> {
        let (detail, rankings) = rows_of(id, draft);
        diesel::update(universities::table.find(id))
            .set(&detail)
            .execute(conn)?;
        diesel::delete(
            university_rankings::table.filter(university_rankings::university_id.eq(id)),
        )
        .execute(conn)?;
        diesel::insert_into(university_rankings::table)
            .values(&rankings)
            .execute(conn)
            .map(|_| ())
    }
}

/// The rankings of every university in `ids`, in one query, grouped by university in order.
pub fn rankings_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<RankingRow>>> {
    let rows: Vec<RankingRow> = university_rankings::table
        .filter(university_rankings::university_id.eq_any(ids))
        .order((
            university_rankings::university_id,
            university_rankings::position,
        ))
        .select(RankingRow::as_select())
        .load(conn)?;
    let mut grouped: HashMap<Uuid, Vec<RankingRow>> = HashMap::new();
    for row in rows {
        grouped.entry(row.university_id).or_default().push(row);
    }
    Ok(grouped)
}
