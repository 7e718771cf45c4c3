//! Writes of the link tables: goal–activity links, and the dated links of organisations (goal
//! partners, activity participants). Their reads go through the list engine (`db::list`).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::list::{Keyed, Value};
use crate::db::schema::{
    activities, activity_participants, goal_activity_links, goal_partners, goals, organisations,
};
use crate::domain::strategy::DatedDraft;
use crate::domain::{ActivityId, GoalId, LiveRecord, OrganisationId};

/// A goal–activity link with its ends in brief, as lists and reads give it.
#[derive(Debug, Clone, Queryable, QueryableByName)]
pub struct GoalActivityLinkRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub goal_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub activity_id: Uuid,
    #[diesel(sql_type = Text)]
    pub role: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub note: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
    #[diesel(sql_type = Int4)]
    pub goal_code: i32,
    #[diesel(sql_type = Text)]
    pub goal_title: String,
    #[diesel(sql_type = Text)]
    pub activity_title: String,
    #[diesel(sql_type = Text)]
    pub activity_status: String,
}

impl Keyed for GoalActivityLinkRow {
    fn id(&self) -> Uuid {
        self.id
    }
    fn sort_value(&self, _key: &str) -> Option<Value> {
        Some(Value::Uuid(self.id))
    }
}

/// Goal–activity link `id` with its ends, by a statement diesel prepares once per connection.
pub fn load_goal_activity_link(
    conn: &mut PgConnection,
    id: Uuid,
) -> QueryResult<Option<GoalActivityLinkRow>> {
    goal_activity_links::table
        .inner_join(goals::table)
        .inner_join(activities::table)
        .filter(goal_activity_links::id.eq(id))
        .select((
            goal_activity_links::id,
            goal_activity_links::goal_id,
            goal_activity_links::activity_id,
            goal_activity_links::role,
            goal_activity_links::note,
            goal_activity_links::created_at,
            goal_activity_links::updated_at,
            goal_activity_links::version,
            goals::code,
            goals::title,
            activities::title,
            activities::status,
        ))
        .first(conn)
        .optional()
}

/// A dated link of either table with its organisation and its goal or activity in brief.
#[derive(Debug, Clone, Queryable, QueryableByName)]
pub struct DatedLinkRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// The goal or activity.
    #[diesel(sql_type = SqlUuid)]
    pub target_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub organisation_id: Uuid,
    #[diesel(sql_type = Text)]
    pub role: String,
    /// Participants only.
    #[diesel(sql_type = Nullable<Text>)]
    pub status: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    pub since: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub until: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    pub note: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
    #[diesel(sql_type = Text)]
    pub organisation_name: String,
    #[diesel(sql_type = Text)]
    pub organisation_kind: String,
    #[diesel(sql_type = Text)]
    pub target_title: String,
}

impl Keyed for DatedLinkRow {
    fn id(&self) -> Uuid {
        self.id
    }
    fn sort_value(&self, _key: &str) -> Option<Value> {
        Some(Value::Uuid(self.id))
    }
}

/// Dated link `id` of table `$table` under `$target` (column `$target_column` of table
/// `$target_table`), with its ends, by a statement diesel prepares once per connection.
macro_rules! dated_point_read {
    ($name:ident, $table:ident, $target_column:ident, $target_table:ident, $status:expr) => {
        #[doc = concat!("Link `id` of `", stringify!($table), "` under `target`, with its ends.")]
        pub fn $name(
            conn: &mut PgConnection,
            target: Uuid,
            id: Uuid,
        ) -> QueryResult<Option<DatedLinkRow>> {
            $table::table
                .inner_join(organisations::table)
                .inner_join($target_table::table)
                .filter($table::id.eq(id))
                .filter($table::$target_column.eq(target))
                .select((
                    $table::id,
                    $table::$target_column,
                    $table::organisation_id,
                    $table::role,
                    $status,
                    $table::since,
                    $table::until,
                    $table::note,
                    $table::created_at,
                    $table::updated_at,
                    $table::version,
                    organisations::name,
                    organisations::kind,
                    $target_table::title,
                ))
                .first(conn)
                .optional()
        }
    };
}

dated_point_read!(
    load_goal_partner,
    goal_partners,
    goal_id,
    goals,
    None::<String>.into_sql::<Nullable<Text>>()
);
dated_point_read!(
    load_participant,
    activity_participants,
    activity_id,
    activities,
    activity_participants::status.nullable()
);

/// A goal–activity link as written.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = goal_activity_links)]
pub struct NewGoalActivityLink<'a> {
    /// UUID v7.
    pub id: Uuid,
    /// The goal.
    pub goal_id: Uuid,
    /// The activity.
    pub activity_id: Uuid,
    /// `primary` or `supporting`.
    pub role: &'a str,
    /// A note.
    pub note: Option<&'a str>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Same as `created_at`.
    pub updated_at: DateTime<Utc>,
}

/// Inserts a goal–activity link.
pub fn insert_goal_activity_link(
    conn: &mut PgConnection,
    link: &NewGoalActivityLink<'_>,
) -> QueryResult<()> {
    diesel::insert_into(goal_activity_links::table)
        .values(link)
        .execute(conn)
        .map(|_| ())
}

/// Locks a goal–activity link for a write; its version, `None` when absent.
pub fn lock_goal_activity_link(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<i64>> {
    goal_activity_links::table
        .filter(goal_activity_links::id.eq(id))
        .select(goal_activity_links::version)
        .for_update()
        .first(conn)
        .optional()
}

/// Rewrites a goal–activity link's role and note, bumping its version (the caller holds its
/// lock).
pub fn update_goal_activity_link(
    conn: &mut PgConnection,
    id: Uuid,
    role: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(goal_activity_links::table.filter(goal_activity_links::id.eq(id)))
        .set((
            goal_activity_links::role.eq(role),
            goal_activity_links::note.eq(note),
            goal_activity_links::updated_at.eq(now),
            goal_activity_links::version.eq(goal_activity_links::version + 1),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Removes a goal–activity link.
pub fn delete_goal_activity_link(conn: &mut PgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(goal_activity_links::table.filter(goal_activity_links::id.eq(id)))
        .execute(conn)
        .map(|_| ())
}

/// A table of dated links: which table, which column names its goal or activity, and whether
/// its links carry a status. Its names are constants of ours, never input.
#[derive(Debug, Clone, Copy)]
pub struct DatedTable {
    /// `goal_partners` or `activity_participants`.
    pub table: &'static str,
    /// `goal_id` or `activity_id`.
    pub target_column: &'static str,
    /// Participants have a `status`.
    pub with_status: bool,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// Locks link `id` of `target` for a write; its version, `None` when absent.
pub fn lock_dated(
    conn: &mut PgConnection,
    t: DatedTable,
    target: Uuid,
    id: Uuid,
) -> QueryResult<Option<i64>> {
    diesel::sql_query(format!(
        "SELECT version FROM {} WHERE id = $1 AND {} = $2 FOR UPDATE",
        t.table, t.target_column
    ))
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(target)
    .get_result::<Version>(conn)
    .optional()
    .map(|v| v.map(|v| v.version))
}

/// Inserts dated link `id` of `target`.
pub fn insert_dated(
    conn: &mut PgConnection,
    t: DatedTable,
    id: Uuid,
    target: Uuid,
    write: &DatedDraft,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let status = if t.with_status { ", status" } else { "" };
    let status_value = if t.with_status { ", $9" } else { "" };
    let insert = diesel::sql_query(format!(
        "INSERT INTO {} (id, {}, organisation_id, role, since, until, note, created_at, updated_at{status}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8{status_value})",
        t.table, t.target_column,
    ))
    .into_boxed::<diesel::pg::Pg>()
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(target)
    .bind::<SqlUuid, _>(write.organisation_id.uuid())
    .bind::<Text, _>(write.role.clone())
    .bind::<Nullable<Date>, _>(write.since)
    .bind::<Nullable<Date>, _>(write.until)
    .bind::<Nullable<Text>, _>(write.note.clone())
    .bind::<Timestamptz, _>(now);
    match write.status.filter(|_| t.with_status) {
        Some(status) => insert.bind::<Text, _>(status).execute(conn),
        None => insert.execute(conn),
    }
    .map(|_| ())
}

/// Rewrites dated link `id` (all but its organisation), bumping its version (the caller holds
/// its lock).
pub fn update_dated(
    conn: &mut PgConnection,
    t: DatedTable,
    id: Uuid,
    write: &DatedDraft,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let status = if t.with_status { ", status = $7" } else { "" };
    let update = diesel::sql_query(format!(
        "UPDATE {} SET role = $1, since = $2, until = $3, note = $4, updated_at = $5, \
         version = version + 1{status} WHERE id = $6",
        t.table
    ))
    .into_boxed::<diesel::pg::Pg>()
    .bind::<Text, _>(write.role.clone())
    .bind::<Nullable<Date>, _>(write.since)
    .bind::<Nullable<Date>, _>(write.until)
    .bind::<Nullable<Text>, _>(write.note.clone())
    .bind::<Timestamptz, _>(now)
    .bind::<SqlUuid, _>(id);
    match write.status.filter(|_| t.with_status) {
        Some(status) => update.bind::<Text, _>(status).execute(conn),
        None => update.execute(conn),
    }
    .map(|_| ())
}

/// Removes dated link `id`.
pub fn delete_dated(conn: &mut PgConnection, t: DatedTable, id: Uuid) -> QueryResult<()> {
    diesel::sql_query(format!("DELETE FROM {} WHERE id = $1", t.table))
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .map(|_| ())
}

/// A record a link may point at, by its id's kind: the table [`is_live`] looks in.
pub trait Linkable: LiveRecord {
    /// `organisations`, `goals` or `activities`.
    const TABLE: &'static str;
}

impl Linkable for OrganisationId {
    const TABLE: &'static str = "organisations";
}

impl Linkable for GoalId {
    const TABLE: &'static str = "goals";
}

impl Linkable for ActivityId {
    const TABLE: &'static str = "activities";
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Bool)]
    found: bool,
}

/// Whether row `id` of `end` exists and is not archived.
pub fn is_live<I: Linkable>(conn: &mut PgConnection, id: I) -> QueryResult<bool> {
    diesel::sql_query(format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE id = $1 AND archived_at IS NULL) AS found",
        I::TABLE
    ))
    .bind::<SqlUuid, _>(id.into())
    .get_result::<Found>(conn)
    .map(|f| f.found)
}

/// Whether goal `goal` and activity `activity` are linked.
pub fn goal_activity_linked(
    conn: &mut PgConnection,
    goal: GoalId,
    activity: ActivityId,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        goal_activity_links::table
            .filter(goal_activity_links::goal_id.eq(goal.uuid()))
            .filter(goal_activity_links::activity_id.eq(activity.uuid())),
    ))
    .get_result(conn)
}

/// Whether activity `activity` has its primary goal.
pub fn has_primary_goal(conn: &mut PgConnection, activity: ActivityId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        goal_activity_links::table
            .filter(goal_activity_links::activity_id.eq(activity.uuid()))
            .filter(goal_activity_links::role.eq("primary")),
    ))
    .get_result(conn)
}

/// Whether organisation `organisation` partners goal `goal` in `role` (in any period).
pub fn goal_partnered(
    conn: &mut PgConnection,
    goal: GoalId,
    organisation: OrganisationId,
    role: &str,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        goal_partners::table
            .filter(goal_partners::goal_id.eq(goal.uuid()))
            .filter(goal_partners::organisation_id.eq(organisation.uuid()))
            .filter(goal_partners::role.eq(role)),
    ))
    .get_result(conn)
}
