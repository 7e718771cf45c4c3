//! The link tables: goal–activity links, and the dated links of organisations (goal partners,
//! activity participants). Point reads are diesel statements; lists go through the list
//! engine (`db::list`), in creation order.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value};
use crate::db::schema::{
    activities, activity_participants, goal_activity_links, goal_partners, goals, organisations,
};
use crate::domain::strategy::DatedDraft;
use crate::domain::{ActivityId, GoalId, LiveRecord, OrganisationId};
use crate::domain::{GoalLinkRole, GoalPartnerRole, ParticipantRole, ParticipationStatus};

/// Links come in creation order: their ids are UUID v7.
const BY_ID: SortKey = SortKey {
    name: "id",
    expr: "l.id",
    ty: KeyType::Uuid,
    nullable: false,
    tie: "l.id",
};

/// A list of links, the link table aliased `l`, in creation order.
fn in_creation_order(
    resource: &'static str,
    select: &'static str,
    from: &'static str,
    filters: Vec<Filter>,
    limit: Option<u32>,
) -> ListQuery {
    ListQuery {
        resource,
        select,
        from,
        id_expr: "l.id",
        filters,
        order: Order::Key {
            key: BY_ID,
            desc: false,
        },
        limit,
    }
}

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
}

/// What the goal–activity link lists filter on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalActivityLinkFilter {
    /// Links whose goal or activity is archived too.
    pub include_archived: bool,
    /// Only links of this goal.
    pub goal_id: Option<Uuid>,
    /// Only links of this activity.
    pub activity_id: Option<Uuid>,
    /// Only this role.
    pub role: Option<GoalLinkRole>,
}

/// The goal–activity links, each with its ends in brief.
pub fn goal_activity_links_query(filter: &GoalActivityLinkFilter, limit: Option<u32>) -> ListQuery {
    let mut filters = Vec::new();
    if !filter.include_archived {
        filters.push(Filter::Raw(
            "g.archived_at IS NULL AND a.archived_at IS NULL",
        ));
    }
    if let Some(goal) = filter.goal_id {
        filters.push(Filter::Eq("l.goal_id", Value::Uuid(goal)));
    }
    if let Some(activity) = filter.activity_id {
        filters.push(Filter::Eq("l.activity_id", Value::Uuid(activity)));
    }
    if let Some(role) = filter.role {
        filters.push(Filter::Eq("l.role", Value::Text(role.as_str().to_owned())));
    }
    in_creation_order(
        "goal_activity_links",
        "SELECT l.*, g.code AS goal_code, g.title AS goal_title, a.title AS activity_title, a.status AS activity_status",
        "FROM goal_activity_links l JOIN goals g ON g.id = l.goal_id JOIN activities a ON a.id = l.activity_id",
        filters,
        limit,
    )
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

/// A table of dated links: which table, which column names its goal or activity, whether its
/// links carry a status, and how its lists read a link with its ends. Only this module builds
/// one ([`GOAL_PARTNERS`], [`PARTICIPANTS`]): its names are constants of ours, never input.
#[derive(Debug, Clone, Copy)]
pub struct DatedTable {
    /// `goal_partners` or `activity_participants`.
    table: &'static str,
    /// `goal_id` or `activity_id`.
    target_column: &'static str,
    /// Participants have a `status`.
    pub with_status: bool,
    /// A link with its organisation and its goal or activity (`t`) in brief, as a
    /// [`DatedLinkRow`].
    select: &'static str,
    /// The link table (`l`) joined to its ends.
    from: &'static str,
    /// `l.<target column> = ?`.
    target_filter: &'static str,
}

/// The partners of goals.
pub const GOAL_PARTNERS: DatedTable = DatedTable {
    table: "goal_partners",
    target_column: "goal_id",
    with_status: false,
    select: "SELECT l.id, l.goal_id AS target_id, l.organisation_id, l.role, NULL::text AS status, \
        l.since, l.until, l.note, l.created_at, l.updated_at, l.version, o.name AS organisation_name, \
        o.kind AS organisation_kind, t.title AS target_title",
    from: "FROM goal_partners l JOIN organisations o ON o.id = l.organisation_id \
        JOIN goals t ON t.id = l.goal_id",
    target_filter: "l.goal_id = ?",
};

/// The participants of activities.
pub const PARTICIPANTS: DatedTable = DatedTable {
    table: "activity_participants",
    target_column: "activity_id",
    with_status: true,
    select: "SELECT l.id, l.activity_id AS target_id, l.organisation_id, l.role, l.status, \
        l.since, l.until, l.note, l.created_at, l.updated_at, l.version, o.name AS organisation_name, \
        o.kind AS organisation_kind, t.title AS target_title",
    from: "FROM activity_participants l JOIN organisations o ON o.id = l.organisation_id \
        JOIN activities t ON t.id = l.activity_id",
    target_filter: "l.activity_id = ?",
};

/// A kind of dated link: its table and the roles it takes, so a list of one kind can only be
/// filtered by that kind's roles.
pub trait DatedKind {
    /// Its table.
    const TABLE: DatedTable;
    /// Its roles.
    type Role: Copy + std::fmt::Debug + Send + 'static;
    /// A role as the table stores it.
    fn role(role: Self::Role) -> &'static str;
}

/// Goal partners, in [`GOAL_PARTNERS`].
pub struct GoalPartnerLinks;

impl DatedKind for GoalPartnerLinks {
    const TABLE: DatedTable = GOAL_PARTNERS;
    type Role = GoalPartnerRole;
    fn role(role: GoalPartnerRole) -> &'static str {
        role.as_str()
    }
}

/// Activity participants, in [`PARTICIPANTS`].
pub struct ParticipantLinks;

impl DatedKind for ParticipantLinks {
    const TABLE: DatedTable = PARTICIPANTS;
    type Role = ParticipantRole;
    fn role(role: ParticipantRole) -> &'static str {
        role.as_str()
    }
}

/// What a list of the dated links of one goal or activity filters on; `R` is its kind's roles.
#[derive(Debug, Clone, PartialEq)]
pub struct DatedFilter<R> {
    /// Links of archived organisations too.
    pub include_archived: bool,
    /// Only links that held on this day.
    pub as_of: Option<NaiveDate>,
    /// Only this organisation.
    pub organisation_id: Option<Uuid>,
    /// Only this role.
    pub role: Option<R>,
    /// Only this status (where the table has one).
    pub status: Option<ParticipationStatus>,
}

/// The dated links of kind `K` under `target`, each with its ends in brief.
pub fn dated_list_query<K: DatedKind>(
    target: Uuid,
    filter: &DatedFilter<K::Role>,
    limit: Option<u32>,
) -> ListQuery {
    let t = K::TABLE;
    let mut filters = vec![Filter::Template(t.target_filter, vec![Value::Uuid(target)])];
    if !filter.include_archived {
        filters.push(Filter::Raw("o.archived_at IS NULL"));
    }
    if let Some(day) = filter.as_of {
        filters.push(Filter::Template("l.valid @> ?", vec![Value::Date(day)]));
    }
    if let Some(org) = filter.organisation_id {
        filters.push(Filter::Eq("l.organisation_id", Value::Uuid(org)));
    }
    if let Some(role) = filter.role {
        filters.push(Filter::Eq("l.role", Value::Text(K::role(role).to_owned())));
    }
    if let Some(status) = filter.status.filter(|_| t.with_status) {
        filters.push(Filter::Eq(
            "l.status",
            Value::Text(status.as_str().to_owned()),
        ));
    }
    in_creation_order(t.table, t.select, t.from, filters, limit)
}

/// Every dated link of kind `K` of `organisation` whose goal or activity is live, those that
/// held on `as_of` if given.
pub fn engagements_query<K: DatedKind>(organisation: Uuid, as_of: Option<NaiveDate>) -> ListQuery {
    let t = K::TABLE;
    let mut filters = vec![
        Filter::Eq("l.organisation_id", Value::Uuid(organisation)),
        Filter::Raw("t.archived_at IS NULL"),
    ];
    if let Some(day) = as_of {
        filters.push(Filter::Template("l.valid @> ?", vec![Value::Date(day)]));
    }
    in_creation_order(t.table, t.select, t.from, filters, None)
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
