//! The organisation identity shared by every kind, and the operations that need no detail
//! table: archive, restore, the lock taken before an update.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use diesel::sql_types::{Float, Nullable};

use crate::db::list::{Filter, KeyType, Keyed, ListQuery, Order, SortKey, Value};
use crate::db::schema::organisations;
use crate::db::StoreError;
use crate::domain::organisation::OrganisationDraft;
use crate::domain::{OrganisationId, OrganisationKind, Province, Tag};

/// An `organisations` row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = organisations, check_for_backend(diesel::pg::Pg))]
pub struct OrganisationRow {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub name_key: String,
    pub legal_name: Option<String>,
    pub description: Option<String>,
    pub website: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address_street: Option<String>,
    pub address_city: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_province: Option<String>,
    pub address_country: String,
    pub tags: Vec<String>,
    pub in_mind: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub archived_at: Option<DateTime<Utc>>,
}

impl OrganisationRow {
    /// The value of a shared sort key (`name`, `created_at`, `updated_at`).
    pub fn sort_value(&self, key: &str) -> Option<Value> {
        match key {
            "name" => Some(Value::Text(self.name_key.clone())),
            "created_at" => Some(Value::Time(self.created_at)),
            "updated_at" => Some(Value::Time(self.updated_at)),
            _ => None,
        }
    }
}

/// Sort by folded name (every organisation list's default).
pub const SORT_NAME: SortKey = SortKey {
    name: "name",
    expr: "o.name_key",
    ty: KeyType::Text,
    nullable: false,
    tie: "o.id",
};
/// Sort by creation time.
pub const SORT_CREATED: SortKey = SortKey {
    name: "created_at",
    expr: "o.created_at",
    ty: KeyType::Time,
    nullable: false,
    tie: "o.id",
};
/// Sort by last change.
pub const SORT_UPDATED: SortKey = SortKey {
    name: "updated_at",
    expr: "o.updated_at",
    ty: KeyType::Time,
    nullable: false,
    tie: "o.id",
};

/// The folded name + legal name column `q` searches and ranks by.
pub const SEARCH_COLUMN: &str = "o.search_key";

/// What every organisation list filters on, whatever its kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrganisationFilter {
    /// Archived records too.
    pub include_archived: bool,
    /// Only this province.
    pub province: Option<Province>,
    /// Only inside (true) or outside (false) MIND.
    pub in_mind: Option<bool>,
    /// Matches of `q` (trimmed, not blank) by substring or trigram word similarity.
    pub search: Option<String>,
}

impl OrganisationFilter {
    /// Its conditions, over the organisations as `o`.
    pub fn conditions(&self) -> Vec<Filter> {
        let mut filters = Vec::new();
        if !self.include_archived {
            filters.push(Filter::Raw("o.archived_at IS NULL"));
        }
        if let Some(province) = &self.province {
            filters.push(Filter::Eq(
                "o.address_province",
                Value::Text(province.as_str().to_owned()),
            ));
        }
        if let Some(in_mind) = self.in_mind {
            filters.push(Filter::Eq("o.in_mind", Value::Bool(in_mind)));
        }
        if let Some(q) = &self.search {
            filters.push(Filter::Search {
                id: "o.id",
                table: "organisations",
                column: "search_key",
                q: q.clone(),
            });
        }
        filters
    }
}

/// A kind's detail table as its list reads it: the join and the kind's own filter.
/// [`list_query`] is written once against it.
pub trait KindTable: DetailRow {
    /// The list's name, binding its cursors (and naming its CSV export).
    const RESOURCE: &'static str;
    /// The organisations joined to the detail table as `d`.
    const FROM: &'static str;
    /// The detail table alone (its conditions still name it `d`).
    const TABLE: &'static str;
    /// What the kind's list filters on besides [`OrganisationFilter`].
    type Filter;
    /// The detail column, unique across the kind's records (live or archived), that names a
    /// record besides its name: a company's VAT number, a university's ROR id.
    const NATURAL_KEY: Option<&'static str> = None;
    /// The kind's own conditions, over `o` and `d`.
    fn conditions(filter: &Self::Filter) -> Vec<Filter>;
}

/// The list of `kind`, whose detail table is `D`: the shared filter and the kind's own.
pub fn list_query<D: KindTable>(
    kind: OrganisationKind,
    shared: &OrganisationFilter,
    own: &D::Filter,
    order: Order,
    limit: Option<u32>,
) -> ListQuery {
    let mut filters = vec![Filter::Eq("o.kind", Value::Text(kind.as_str().to_owned()))];
    filters.extend(shared.conditions());
    filters.extend(D::conditions(own));
    ListQuery {
        resource: D::RESOURCE,
        select: "SELECT o.*, d.*",
        from: D::FROM,
        id_expr: "o.id",
        filters,
        order,
        limit,
    }
}

/// What the cross-kind list filters on besides [`OrganisationFilter`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnyKindFilter {
    /// Only this kind.
    pub kind: Option<OrganisationKind>,
    /// Only organisations carrying every one of these tags; empty is no filter.
    pub tags: Vec<Tag>,
}

impl AnyKindFilter {
    /// Its conditions, over the organisations as `o`.
    pub fn conditions(&self) -> Vec<Filter> {
        let mut filters = Vec::new();
        if let Some(kind) = self.kind {
            filters.push(Filter::Eq("o.kind", Value::Text(kind.as_str().to_owned())));
        }
        if !self.tags.is_empty() {
            let tags = self.tags.iter().map(|t| t.as_str().to_owned()).collect();
            filters.push(Filter::Contains("o.tags", Value::TextArray(tags)));
        }
        filters
    }
}

/// The list across kinds, of the identities alone (rows are [`OrgRecord<NoDetail>`]).
pub fn any_kind_list_query(
    shared: &OrganisationFilter,
    own: &AnyKindFilter,
    order: Order,
    limit: Option<u32>,
) -> ListQuery {
    let mut filters = shared.conditions();
    filters.extend(own.conditions());
    ListQuery {
        resource: "organisations",
        select: "SELECT o.*",
        from: "FROM organisations o",
        id_expr: "o.id",
        filters,
        order,
        limit,
    }
}

/// A kind's detail row, as far as lists need it: its sort keys' values.
pub trait DetailRow {
    /// The value of a kind-specific sort key, `None` when NULL or not a key of this kind.
    fn sort_value(&self, key: &str) -> Option<Value>;
}

/// An organisation with its kind's detail row, and (in searches) its relevance.
#[derive(Debug, Clone, QueryableByName)]
pub struct OrgRecord<D> {
    /// The shared identity.
    #[diesel(embed)]
    pub organisation: OrganisationRow,
    /// The kind's own columns.
    #[diesel(embed)]
    pub detail: D,
    /// Relevance to `q`, when searched.
    #[diesel(sql_type = Nullable<Float>)]
    pub score: Option<f32>,
}

impl<D: DetailRow> Keyed for OrgRecord<D> {
    fn id(&self) -> Uuid {
        self.organisation.id
    }

    fn sort_value(&self, key: &str) -> Option<Value> {
        self.organisation
            .sort_value(key)
            .or_else(|| self.detail.sort_value(key))
    }

    fn score(&self) -> Option<f32> {
        self.score
    }
}

/// One organisation of a kind with its detail row, read by a statement diesel prepares once
/// per connection and reuses (the list engine's dynamic SQL is for lists).
pub trait PointRead: Sized {
    /// The organisation `id` with its detail, unless absent (or archived, unless
    /// `include_archived`).
    fn load_one(
        conn: &mut PgConnection,
        id: Uuid,
        include_archived: bool,
    ) -> QueryResult<Option<OrgRecord<Self>>>;

    /// The live organisations among `ids` with their details, in no particular order (a bulk
    /// write's, in one statement).
    fn load_many(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<Vec<OrgRecord<Self>>>;
}

/// Implements [`PointRead`] for the detail row `$row` of table `$table`.
macro_rules! point_read {
    ($row:ty, $table:ident) => {
        impl $crate::models::organisation::PointRead for $row {
            fn load_one(
                conn: &mut diesel::PgConnection,
                id: uuid::Uuid,
                include_archived: bool,
            ) -> diesel::QueryResult<Option<$crate::models::organisation::OrgRecord<Self>>> {
                use $crate::db::schema::{organisations, $table};
                use $crate::models::organisation::{OrgRecord, OrganisationRow};
                organisations::table
                    .inner_join($table::table)
                    .filter(organisations::id.eq(id))
                    // A bound flag rather than two statements: one prepared statement serves both.
                    .filter(
                        organisations::archived_at
                            .is_null()
                            .or(include_archived.into_sql::<diesel::sql_types::Bool>()),
                    )
                    .select((OrganisationRow::as_select(), <$row>::as_select()))
                    .first::<(OrganisationRow, $row)>(conn)
                    .optional()
                    .map(|found| {
                        found.map(|(organisation, detail)| OrgRecord {
                            organisation,
                            detail,
                            score: None,
                        })
                    })
            }

            fn load_many(
                conn: &mut diesel::PgConnection,
                ids: &[uuid::Uuid],
            ) -> diesel::QueryResult<Vec<$crate::models::organisation::OrgRecord<Self>>> {
                use $crate::db::schema::{organisations, $table};
                use $crate::models::organisation::{OrgRecord, OrganisationRow};
                organisations::table
                    .inner_join($table::table)
                    .filter(organisations::id.eq_any(ids))
                    .filter(organisations::archived_at.is_null())
                    .select((OrganisationRow::as_select(), <$row>::as_select()))
                    .load::<(OrganisationRow, $row)>(conn)
                    .map(|found| {
                        found
                            .into_iter()
                            .map(|(organisation, detail)| OrgRecord {
                                organisation,
                                detail,
                                score: None,
                            })
                            .collect()
                    })
            }
        }
    };
}
pub(crate) use point_read;

/// A kind's detail as written: the row built from its validated draft, inserted with a new
/// organisation and rewritten whole on every update.
pub trait DetailWrite {
    /// The kind's validated own members.
    type Draft;

    /// Inserts the detail of new organisation `id`.
    fn insert(conn: &mut PgConnection, id: Uuid, draft: &Self::Draft) -> QueryResult<()>;

    /// Rewrites the detail of organisation `id`.
    fn update(conn: &mut PgConnection, id: Uuid, draft: &Self::Draft) -> QueryResult<()>;

    /// Inserts the details of many new organisations in one statement (a bulk load's).
    fn insert_all(conn: &mut PgConnection, rows: &[(Uuid, &Self::Draft)]) -> QueryResult<()>;

    /// Rewrites the details of many organisations in a fixed number of statements (an
    /// import's updates): a detail row is keyed by its organisation and referenced only by its
    /// own list rows, so it is replaced whole, as `update` rewrites it whole.
    fn update_all(conn: &mut PgConnection, rows: &[(Uuid, &Self::Draft)]) -> QueryResult<()>;
}

/// Implements [`DetailWrite`] for the detail row `$row` of table `$table`, a single row built
/// by `$row::of(id, draft)`.
macro_rules! detail_write {
    ($row:ty, $table:ident, $draft:ty) => {
        impl $crate::models::organisation::DetailWrite for $row {
            type Draft = $draft;

            fn insert(
                conn: &mut diesel::PgConnection,
                id: uuid::Uuid,
                draft: &$draft,
            ) -> diesel::QueryResult<()> {
                diesel::insert_into($table::table)
                    .values(&<$row>::of(id, draft))
                    .execute(conn)
                    .map(|_| ())
            }

            fn update(
                conn: &mut diesel::PgConnection,
                id: uuid::Uuid,
                draft: &$draft,
            ) -> diesel::QueryResult<()> {
                diesel::update($table::table.find(id))
                    .set(&<$row>::of(id, draft))
                    .execute(conn)
                    .map(|_| ())
            }

            fn insert_all(
                conn: &mut diesel::PgConnection,
                rows: &[(uuid::Uuid, &$draft)],
            ) -> diesel::QueryResult<()> {
                let rows: Vec<$row> = rows.iter().map(|(id, d)| <$row>::of(*id, d)).collect();
                diesel::insert_into($table::table)
                    .values(&rows)
                    .execute(conn)
                    .map(|_| ())
            }

            fn update_all(
                conn: &mut diesel::PgConnection,
                rows: &[(uuid::Uuid, &$draft)],
            ) -> diesel::QueryResult<()> {
                let ids: Vec<uuid::Uuid> = rows.iter().map(|(id, _)| *id).collect();
                diesel::delete($table::table.filter($table::organisation_id.eq_any(&ids)))
                    .execute(conn)?;
                <Self as $crate::models::organisation::DetailWrite>::insert_all(conn, rows)
            }
        }
    };
}
pub(crate) use detail_write;

/// No detail: the cross-kind view lists identities alone.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct NoDetail {}

impl DetailRow for NoDetail {
    fn sort_value(&self, _key: &str) -> Option<Value> {
        None
    }
}

/// The kind of an organisation, live or archived.
pub fn kind_of(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<String>> {
    organisations::table
        .find(id)
        .select(organisations::kind)
        .first(conn)
        .optional()
}

/// The columns every kind writes, from a validated draft.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = organisations, treat_none_as_null = true)]
pub struct OrganisationFields {
    pub name: String,
    pub legal_name: Option<String>,
    pub description: Option<String>,
    pub website: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address_street: Option<String>,
    pub address_city: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_province: Option<String>,
    pub address_country: String,
    pub tags: Vec<String>,
    pub in_mind: bool,
}

impl From<&OrganisationDraft> for OrganisationFields {
    fn from(d: &OrganisationDraft) -> Self {
        Self {
            name: d.name.clone(),
            legal_name: d.legal_name.clone(),
            description: d.description.clone(),
            website: d.website.clone(),
            email: d.email.clone(),
            phone: d.phone.clone(),
            address_street: d.address_street.clone(),
            address_city: d.address_city.clone(),
            address_postal_code: d.address_postal_code.clone(),
            address_province: d.address_province.clone(),
            address_country: d.address_country.clone(),
            tags: d.tags.clone(),
            in_mind: d.in_mind,
        }
    }
}

/// Inserts the identity row of a new organisation; returns its id.
pub fn insert(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    fields: &OrganisationDraft,
    now: DateTime<Utc>,
) -> QueryResult<Uuid> {
    let id = Uuid::now_v7();
    diesel::insert_into(organisations::table)
        .values((
            organisations::id.eq(id),
            organisations::kind.eq(kind.as_str()),
            OrganisationFields::from(fields),
            organisations::created_at.eq(now),
            organisations::updated_at.eq(now),
            organisations::version.eq(1_i64),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Locks a live-or-archived organisation of `kind` for update and returns its version and
/// archive time, or 404.
pub fn lock(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    id: Uuid,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    organisations::table
        .filter(organisations::id.eq(id))
        .filter(organisations::kind.eq(kind.as_str()))
        .select((organisations::version, organisations::archived_at))
        .for_update()
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found(kind.as_str()))
}

/// Writes the shared columns and bumps the version, guarded by the expected version; returns
/// the new version, or 412 when another write got there first.
pub fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected_version: i64,
    fields: &OrganisationDraft,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    diesel::update(organisations::table)
        .filter(organisations::id.eq(id))
        .filter(organisations::version.eq(expected_version))
        .set((
            OrganisationFields::from(fields),
            organisations::updated_at.eq(now),
            organisations::version.eq(organisations::version + 1),
        ))
        .returning(organisations::version)
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::Stale)
}

/// Sets or clears `archived_at` with the version guard; returns the new version.
pub fn set_archived(
    conn: &mut PgConnection,
    id: Uuid,
    expected_version: i64,
    archived_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    diesel::update(organisations::table)
        .filter(organisations::id.eq(id))
        .filter(organisations::version.eq(expected_version))
        .set((
            organisations::archived_at.eq(archived_at),
            organisations::updated_at.eq(now),
            organisations::version.eq(organisations::version + 1),
        ))
        .returning(organisations::version)
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::Stale)
}

/// True when any organisation (of any kind) has this id: partners' organisations are checked
/// with it.
pub fn exists(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        organisations::table.filter(organisations::id.eq(id)),
    ))
    .get_result(conn)
}

/// 404 unless an organisation of `kind` (live or archived) has this id.
pub fn ensure_exists(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    id: Uuid,
) -> Result<(), StoreError> {
    let found: bool = diesel::select(diesel::dsl::exists(
        organisations::table
            .filter(organisations::id.eq(id))
            .filter(organisations::kind.eq(kind.as_str())),
    ))
    .get_result(conn)?;
    if found {
        Ok(())
    } else {
        Err(StoreError::not_found(kind.as_str()))
    }
}

/// The live organisation of `kind` whose folded name is `name`'s, if any (names are unique per
/// kind among live records, ignoring case, accents and spacing).
pub fn live_id_by_name(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    name: &str,
) -> QueryResult<Option<OrganisationId>> {
    organisations::table
        .filter(organisations::kind.eq(kind.as_str()))
        .filter(organisations::name_key.eq(crate::db::lshub_fold(name)))
        .filter(organisations::archived_at.is_null())
        .select(organisations::id)
        .first(conn)
        .optional()
        .map(|id| id.map(OrganisationId::new))
}

/// Inserts many new organisations of `kind` with their details, created at `now`, in a
/// statement a table; their ids, in order. The caller writes their audit events.
pub fn insert_rows<D: DetailWrite>(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    now: DateTime<Utc>,
    rows: &[(&OrganisationDraft, &D::Draft)],
) -> QueryResult<Vec<Uuid>> {
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let identities: Vec<_> = rows
        .iter()
        .zip(&ids)
        .map(|((fields, _), id)| {
            (
                organisations::id.eq(*id),
                organisations::kind.eq(kind.as_str()),
                OrganisationFields::from(*fields),
                organisations::created_at.eq(now),
                organisations::updated_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(organisations::table)
        .values(&identities)
        .execute(conn)?;
    let details: Vec<(Uuid, &D::Draft)> =
        ids.iter().copied().zip(rows.iter().map(|r| r.1)).collect();
    D::insert_all(conn, &details)?;
    Ok(ids)
}

/// Inserts many new organisations of `kind` with their details, as [`insert_rows`] does, with
/// one `create` audit event each whose changes `describe` gives; their ids, in order. For the
/// synthetic load: the API's creates and imports go through the write pipeline.
pub fn insert_all<D: DetailWrite>(
    conn: &mut PgConnection,
    actor: &super::audit::Actor,
    kind: OrganisationKind,
    now: DateTime<Utc>,
    rows: &[(OrganisationDraft, D::Draft)],
    describe: impl Fn(&OrganisationDraft) -> serde_json::Value,
) -> QueryResult<Vec<OrganisationId>> {
    let refs: Vec<_> = rows.iter().map(|(f, d)| (f, d)).collect();
    let ids = insert_rows::<D>(conn, kind, now, &refs)?;
    super::audit::record_all(
        conn,
        actor,
        crate::domain::AuditAction::Create,
        kind.as_str(),
        ids.iter()
            .zip(rows)
            .map(|(id, (fields, _))| super::audit::Event {
                entity_id: *id,
                related: Vec::new(),
                // A new organisation starts at the column's default version.
                version: Some(1),
                changes: describe(fields),
            })
            .collect(),
    )?;
    Ok(ids.into_iter().map(OrganisationId::new).collect())
}

/// Rewrites the shared columns of many organisations of `kind` in one statement, each guarded
/// by its expected version and bumping it; 412 unless every one was still at its version.
pub fn update_rows(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    now: DateTime<Utc>,
    rows: &[(Uuid, i64, &OrganisationDraft)],
) -> Result<(), StoreError> {
    use diesel::upsert::excluded;
    use organisations as o;
    // An upsert on the primary key is the one batched UPDATE diesel writes: every row exists,
    // so each proposed row only carries the new values (and its expected version) to `SET`.
    let values: Vec<_> = rows
        .iter()
        .map(|(id, version, fields)| {
            (
                o::id.eq(*id),
                o::kind.eq(kind.as_str()),
                OrganisationFields::from(*fields),
                o::created_at.eq(now),
                o::updated_at.eq(now),
                o::version.eq(*version),
            )
        })
        .collect();
    let upsert = diesel::insert_into(o::table)
        .values(&values)
        .on_conflict(o::id)
        .do_update()
        .set((
            (
                o::name.eq(excluded(o::name)),
                o::legal_name.eq(excluded(o::legal_name)),
                o::description.eq(excluded(o::description)),
                o::website.eq(excluded(o::website)),
                o::email.eq(excluded(o::email)),
                o::phone.eq(excluded(o::phone)),
                o::address_street.eq(excluded(o::address_street)),
            ),
            (
                o::address_city.eq(excluded(o::address_city)),
                o::address_postal_code.eq(excluded(o::address_postal_code)),
                o::address_province.eq(excluded(o::address_province)),
                o::address_country.eq(excluded(o::address_country)),
                o::tags.eq(excluded(o::tags)),
                o::in_mind.eq(excluded(o::in_mind)),
                o::updated_at.eq(excluded(o::updated_at)),
                o::version.eq(o::version + 1),
            ),
        ));
    // The upsert's `WHERE` is `FilterDsl`'s, which the prelude does not bring in.
    let guarded = diesel::query_dsl::methods::FilterDsl::filter(
        upsert,
        o::version
            .eq(excluded(o::version))
            .and(o::kind.eq(kind.as_str())),
    );
    let written = guarded.execute(conn)?;
    if written == rows.len() {
        Ok(())
    } else {
        Err(StoreError::Stale)
    }
}

/// Locks the live organisations of `kind` among `ids` for update; their versions.
pub fn lock_all(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, i64)>> {
    organisations::table
        .filter(organisations::id.eq_any(ids))
        .filter(organisations::kind.eq(kind.as_str()))
        .filter(organisations::archived_at.is_null())
        .select((organisations::id, organisations::version))
        .for_update()
        .load(conn)
}

/// A name looked up among the live organisations of a kind.
#[derive(Debug, Clone, QueryableByName)]
pub struct NameMatch {
    /// The name's folded form, the one names are unique in.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub key: String,
    /// The live organisation of the kind with that folded name, if any.
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub id: Option<Uuid>,
}

/// For each of `names`, in order, its folded form and the live organisation of `kind` that has
/// it: one statement however many names (an import's), each an index lookup.
pub fn match_names(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    names: &[String],
) -> QueryResult<Vec<NameMatch>> {
    use diesel::sql_types::{Array, Text};
    diesel::sql_query(
        "SELECT lshub_fold(n.name) AS key, o.id \
         FROM unnest($1::text[]) WITH ORDINALITY AS n(name, position) \
         LEFT JOIN organisations o \
           ON o.kind = $2 AND o.archived_at IS NULL AND o.name_key = lshub_fold(n.name) \
         ORDER BY n.position",
    )
    .bind::<Array<Text>, _>(names)
    .bind::<Text, _>(kind.as_str())
    .load(conn)
}

/// An organisation found by its kind's natural key.
#[derive(Debug, Clone, QueryableByName)]
pub struct KeyMatch {
    /// The key, as stored.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub key: String,
    /// The organisation.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    /// Whether it is archived (the key stays taken).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub archived: bool,
}

/// The organisations of the kind `D` details whose natural key is one of `keys` (none when the
/// kind has no natural key), in one statement.
pub fn match_natural_keys<D: KindTable>(
    conn: &mut PgConnection,
    keys: &[String],
) -> QueryResult<Vec<KeyMatch>> {
    let Some(column) = D::NATURAL_KEY else {
        return Ok(Vec::new());
    };
    // `column` and `FROM` are the kind's constants, never input.
    diesel::sql_query(format!(
        "SELECT d.{column} AS key, o.id, o.archived_at IS NOT NULL AS archived {} \
         WHERE d.{column} = ANY($1)",
        D::FROM
    ))
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(keys)
    .load(conn)
}

/// True when the registry holds no organisation, live or archived.
pub fn none(conn: &mut PgConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::not(diesel::dsl::exists(
        organisations::table.select(organisations::id),
    )))
    .get_result(conn)
}

/// The live organisation of `kind` first by folded name, if any.
pub fn first_live(
    conn: &mut PgConnection,
    kind: OrganisationKind,
) -> QueryResult<Option<OrganisationId>> {
    organisations::table
        .filter(organisations::kind.eq(kind.as_str()))
        .filter(organisations::archived_at.is_null())
        .order(organisations::name_key)
        .select(organisations::id)
        .first(conn)
        .optional()
        .map(|id| id.map(OrganisationId::new))
}
