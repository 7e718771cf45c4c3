//! Dated links of organisations: the partners of a goal and the participants of an activity.
//!
//! A link holds on day D when (`since` is null or `since` ≤ D) and (`until` is null or D ≤
//! `until`); lists take `as_of=DATE`. Two periods of one organisation in one goal or activity
//! with one role may not overlap: the database's exclusion constraint answers 409. Each link is
//! a record (id, version, ETag, audit); `DELETE` removes it, its audit trail keeps it.
//! Partners may propose their own organisation as a participant and withdraw it; only editors
//! confirm or decline, and only editors write goal partners.

use std::marker::PhantomData;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::organisation::Pool;
use crate::auth::Principal;
use crate::db::{self, PgPool};
use crate::domain::strategy::{self, DatedDraft, DatedInput, GoalPartnerBody, ParticipantBody};
use crate::domain::{
    codes, GoalPartnerRole, OrganisationKind, ParticipantRole, ParticipationStatus, Role,
};
use crate::domain::{ActivityId, GoalId, LiveRecord, OrganisationId};
use crate::error::{stored, ApiError, FieldError};
use crate::http::machinery::etag::IfMatch;
use crate::http::machinery::list::{serve_list, ListKind, ListRequest, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{
    self, GetParams, Locked, Removal, Resource, EDITORS, PARTNERS_AND_EDITORS,
};
use crate::http::machinery::schema::request_bodies;
use crate::models::link::{
    self, DatedFilter, DatedKind, DatedLinkRow, GoalPartnerLinks, Linkable, ParticipantLinks,
};

/// The organisation end of a link, in brief.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationSummary {
    /// Organisation id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: OrganisationKind,
}

/// The goal or activity end of a link, in brief.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetSummary {
    /// Goal or activity id.
    pub id: Uuid,
    /// Its title.
    pub title: String,
}

fn organisation(row: &DatedLinkRow) -> Result<OrganisationSummary, ApiError> {
    Ok(OrganisationSummary {
        id: row.organisation_id,
        name: row.organisation_name.clone(),
        kind: stored(&row.organisation_kind)?,
    })
}

fn target(row: &DatedLinkRow) -> TargetSummary {
    TargetSummary {
        id: row.target_id,
        title: row.target_title.clone(),
    }
}

/// A strategic partner of a goal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoalPartner {
    /// Link id (UUID v7).
    pub id: Uuid,
    /// The goal.
    pub goal_id: Uuid,
    /// The partnering organisation.
    pub organisation_id: Uuid,
    /// `strategic_partner` or `other`.
    pub role: GoalPartnerRole,
    /// First day (null: since ever).
    pub since: Option<NaiveDate>,
    /// Last day, inclusive (null: open-ended).
    pub until: Option<NaiveDate>,
    /// A note, e.g. the department of the organisation that partners.
    pub note: Option<String>,
    /// The organisation, in brief.
    pub organisation: OrganisationSummary,
    /// The goal, in brief.
    pub goal: TargetSummary,
    /// When the link was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
}

/// An organisation taking part in an activity.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Participant {
    /// Link id (UUID v7).
    pub id: Uuid,
    /// The activity.
    pub activity_id: Uuid,
    /// The participating organisation.
    pub organisation_id: Uuid,
    /// Its part.
    pub role: ParticipantRole,
    /// `proposed`, `confirmed`, `declined` or `withdrawn`.
    pub status: ParticipationStatus,
    /// First day (null: since ever).
    pub since: Option<NaiveDate>,
    /// Last day, inclusive (null: open-ended).
    pub until: Option<NaiveDate>,
    /// A note.
    pub note: Option<String>,
    /// The organisation, in brief.
    pub organisation: OrganisationSummary,
    /// The activity, in brief.
    pub activity: TargetSummary,
    /// When the link was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
}

/// What a kind of dated link is made of.
pub trait LinkSpec: Send + 'static {
    /// Audit entity.
    const ENTITY: &'static str;
    /// The goal or activity table.
    /// The id of the goal or activity its links hang from.
    type Target: Linkable;
    /// Path segments: `/api/v1/{TARGET_PATH}/{id}/{SUB_PATH}/{link_id}`.
    const TARGET_PATH: &'static str;
    /// See [`Self::TARGET_PATH`].
    const SUB_PATH: &'static str;
    /// The allowed roles.
    const ROLES: &'static [&'static str];
    /// Its table, and the roles its lists filter by.
    type Kind: DatedKind;
    /// CSV columns of its lists: the response's members, nested objects flattened with `_`.
    const CSV_COLUMNS: &'static [&'static str];
    /// The link as served.
    type Response: Serialize + ToSchema + Send + 'static;
    /// Its body's one declaration (see [`crate::http::machinery::schema`]), whose members
    /// the validation every kind shares reads.
    type Body: DeserializeOwned + ToSchema + Default + Into<DatedInput> + 'static;
    /// The filters of its list.
    type Filters: DatedFilters;
    /// Builds the response.
    fn response(row: DatedLinkRow) -> Result<Self::Response, ApiError>;
    /// One link under `target`, with its ends.
    fn load_one(
        conn: &mut PgConnection,
        target: Uuid,
        id: Uuid,
    ) -> diesel::QueryResult<Option<DatedLinkRow>>;
    /// The organisation of a served link.
    fn organisation_id(link: &Self::Response) -> Uuid;
    /// The goal or activity of a served link.
    fn target_id(link: &Self::Response) -> Uuid;
    /// The version of a served link.
    fn version(link: &Self::Response) -> i64;
}

/// Goal partners.
pub struct GoalPartners;

impl LinkSpec for GoalPartners {
    const ENTITY: &'static str = "goal_partner";
    const TARGET_PATH: &'static str = "goals";
    const SUB_PATH: &'static str = "partners";
    const ROLES: &'static [&'static str] = &["strategic_partner", "other"];
    type Kind = GoalPartnerLinks;
    const CSV_COLUMNS: &'static [&'static str] = &[
        "id",
        "goal_id",
        "goal_title",
        "organisation_id",
        "organisation_name",
        "organisation_kind",
        "role",
        "since",
        "until",
        "note",
        "created_at",
        "updated_at",
        "version",
    ];
    type Target = GoalId;
    type Response = GoalPartner;
    type Filters = GoalPartnerFilters;
    type Body = GoalPartnerBody;

    fn organisation_id(link: &GoalPartner) -> Uuid {
        link.organisation_id
    }

    fn target_id(link: &GoalPartner) -> Uuid {
        link.goal_id
    }

    fn version(link: &GoalPartner) -> i64 {
        link.version
    }

    fn load_one(
        conn: &mut PgConnection,
        target: Uuid,
        id: Uuid,
    ) -> diesel::QueryResult<Option<DatedLinkRow>> {
        link::load_goal_partner(conn, target, id)
    }

    fn response(row: DatedLinkRow) -> Result<GoalPartner, ApiError> {
        Ok(GoalPartner {
            organisation: organisation(&row)?,
            goal: target(&row),
            id: row.id,
            goal_id: row.target_id,
            organisation_id: row.organisation_id,
            role: stored(&row.role)?,
            since: row.since,
            until: row.until,
            note: row.note,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// Activity participants.
pub struct Participants;

impl LinkSpec for Participants {
    const ENTITY: &'static str = "activity_participant";
    const TARGET_PATH: &'static str = "activities";
    const SUB_PATH: &'static str = "participants";
    const ROLES: &'static [&'static str] =
        &["lead", "co_organiser", "sponsor", "host", "participant"];
    type Kind = ParticipantLinks;
    const CSV_COLUMNS: &'static [&'static str] = &[
        "id",
        "activity_id",
        "activity_title",
        "organisation_id",
        "organisation_name",
        "organisation_kind",
        "role",
        "status",
        "since",
        "until",
        "note",
        "created_at",
        "updated_at",
        "version",
    ];
    type Target = ActivityId;
    type Response = Participant;
    type Filters = ParticipantFilters;
    type Body = ParticipantBody;

    fn organisation_id(link: &Participant) -> Uuid {
        link.organisation_id
    }

    fn target_id(link: &Participant) -> Uuid {
        link.activity_id
    }

    fn version(link: &Participant) -> i64 {
        link.version
    }

    fn load_one(
        conn: &mut PgConnection,
        target: Uuid,
        id: Uuid,
    ) -> diesel::QueryResult<Option<DatedLinkRow>> {
        link::load_participant(conn, target, id)
    }

    fn response(row: DatedLinkRow) -> Result<Participant, ApiError> {
        Ok(Participant {
            organisation: organisation(&row)?,
            activity: target(&row),
            status: stored(row.status.as_deref().unwrap_or("proposed"))?,
            id: row.id,
            activity_id: row.target_id,
            organisation_id: row.organisation_id,
            role: stored(&row.role)?,
            since: row.since,
            until: row.until,
            note: row.note,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

fn load<S: LinkSpec>(
    conn: &mut PgConnection,
    target: Uuid,
    id: Uuid,
) -> Result<DatedLinkRow, ApiError> {
    S::load_one(conn, target, id)?.ok_or_else(|| ApiError::not_found("link"))
}

/// 404 unless the goal or activity exists and is live.
/// The goal or activity a path's id names.
fn parent<S: LinkSpec>(id: Uuid) -> S::Target {
    S::Target::from_uuid(id)
}

fn ensure_target<S: LinkSpec>(conn: &mut PgConnection, target: S::Target) -> Result<(), ApiError> {
    if link::is_live(conn, target)? {
        Ok(())
    } else {
        Err(ApiError::not_found(<S::Target as LiveRecord>::NOUN))
    }
}

/// The filters of a dated-link list (besides `limit`, `cursor` and `include_archived`): the
/// same for both kinds but for `role`, whose values are the kind's, and `status`, which only
/// participants have.
pub trait DatedFilters: DeserializeOwned + IntoParams + Send + 'static {
    /// The kind's roles.
    type Role;
    /// The model's filter, with archived organisations' links when `include_archived`.
    fn filter(self, include_archived: bool) -> DatedFilter<Self::Role>;
}

/// Filters of a goal's partners.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GoalPartnerFilters {
    /// Only links that held on this day (`YYYY-MM-DD`); without it, every link.
    pub as_of: Option<NaiveDate>,
    /// Only this organisation.
    pub organisation_id: Option<Uuid>,
    /// Only this role.
    pub role: Option<GoalPartnerRole>,
}

impl DatedFilters for GoalPartnerFilters {
    type Role = GoalPartnerRole;
    fn filter(self, include_archived: bool) -> DatedFilter<GoalPartnerRole> {
        DatedFilter {
            include_archived,
            as_of: self.as_of,
            organisation_id: self.organisation_id,
            role: self.role,
            status: None,
        }
    }
}

/// Filters of an activity's participants.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ParticipantFilters {
    /// Only links that held on this day (`YYYY-MM-DD`); without it, every link.
    pub as_of: Option<NaiveDate>,
    /// Only this organisation.
    pub organisation_id: Option<Uuid>,
    /// Only this role.
    pub role: Option<ParticipantRole>,
    /// Only this status.
    pub status: Option<ParticipationStatus>,
}

impl DatedFilters for ParticipantFilters {
    type Role = ParticipantRole;
    fn filter(self, include_archived: bool) -> DatedFilter<ParticipantRole> {
        DatedFilter {
            include_archived,
            as_of: self.as_of,
            organisation_id: self.organisation_id,
            role: self.role,
            status: self.status,
        }
    }
}

/// Dated-link lists: in creation order.
impl<S: LinkSpec> ListKind for Dated<S> {
    const ARCHIVED: Option<&'static str> = Some("Include links of archived organisations.");
    const CSV_COLUMNS: &'static [&'static str] = S::CSV_COLUMNS;
}

/// `GET .../{id}/{partners|participants}`.
pub async fn list<S: LinkSpec>(
    pool: &PgPool,
    principal: &Principal,
    req: &HttpRequest,
    target: Uuid,
    query: ListRequest<Dated<S>, S::Filters>,
) -> Result<HttpResponse, ApiError>
where
    S::Filters: DatedFilters<Role = <S::Kind as DatedKind>::Role>,
{
    let (params, query) = query.into_parts();
    let include_archived =
        principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    db::run(pool, move |conn| {
        ensure_target::<S>(conn, parent::<S>(target))
    })
    .await?;
    let filter = query.filter(include_archived);
    serve_list(
        pool,
        principal,
        req,
        &params,
        link::dated_list_query::<S::Kind>(target, &filter, None),
        S::CSV_COLUMNS,
        |_conn, rows: Vec<DatedLinkRow>| rows.into_iter().map(S::response).collect(),
    )
    .await
}

request_bodies!(
    GoalPartnerBody => CreateGoalPartner, GoalPartnerPatch, fixed in Dated<GoalPartners>
);

request_bodies!(
    ParticipantBody => CreateParticipant, ParticipantPatch, fixed in Dated<Participants>
);

/// The dated links of kind `S` in the write pipeline: nested under their goal or activity,
/// deleted rather than archived, their organisation fixed. Participants are partners' to
/// propose and withdraw for their own organisation; everything else is the hub's.
pub struct Dated<S>(PhantomData<S>);

impl<S: LinkSpec> Resource for Dated<S> {
    const ENTITY: &'static str = S::ENTITY;
    const NOUN: &'static str = "link";
    const CREATE_ROLES: &'static [Role] = if S::Kind::TABLE.with_status {
        PARTNERS_AND_EDITORS
    } else {
        EDITORS
    };
    const UPDATE_ROLES: &'static [Role] = Self::CREATE_ROLES;
    // What a partner may send at all is narrowed further by `check_patch`.
    const PARTNER_MANAGED: &'static [&'static str] = &["status"];
    const REMOVAL: Removal = Removal::Delete;
    const NESTED: bool = true;
    const FIXED: &'static [&'static str] = &["organisation_id"];
    type Parent = S::Target;
    type Write = DatedDraft;
    type Response = S::Response;
    type Body = S::Body;

    fn location(target: S::Target, id: Uuid) -> String {
        format!("/api/v1/{}/{target}/{}/{id}", S::TARGET_PATH, S::SUB_PATH)
    }

    fn validate(body: Map<String, Json>) -> Result<DatedDraft, ApiError> {
        Ok(strategy::dated::<S::Body>(body)?)
    }

    fn check_parent(conn: &mut PgConnection, target: S::Target) -> Result<(), ApiError> {
        ensure_target::<S>(conn, target)
    }

    fn owner(
        conn: &mut PgConnection,
        target: S::Target,
        id: Uuid,
    ) -> Result<Option<OrganisationId>, ApiError> {
        Ok(S::load_one(conn, target.into(), id)?
            .map(|link| OrganisationId::new(link.organisation_id)))
    }

    /// A link belongs to the organisation it names: a partner proposes only its own.
    fn create_owner(
        _conn: &mut PgConnection,
        _target: S::Target,
        write: &DatedDraft,
    ) -> Result<Option<OrganisationId>, ApiError> {
        Ok(Some(write.organisation_id))
    }

    /// A partner proposes, and nothing but a proposal.
    fn check_create(principal: &Principal, body: &Map<String, Json>) -> Result<(), ApiError> {
        if principal.role != Role::Partner {
            return Ok(());
        }
        match body.get("status").and_then(Json::as_str) {
            None | Some("proposed") => Ok(()),
            Some(_) => Err(ApiError::Forbidden {
                detail: "a partner proposes; only the hub confirms or declines".into(),
                errors: vec![FieldError::new(
                    "/status",
                    "hub_managed",
                    "a partner's participation starts as proposed",
                )],
            }),
        }
    }

    /// A partner may only withdraw: `{"status": "withdrawn"}`.
    fn check_patch(principal: &Principal, patch: &Map<String, Json>) -> Result<(), ApiError> {
        if principal.role != Role::Partner {
            return Ok(());
        }
        let withdraws =
            patch.len() == 1 && patch.get("status").and_then(Json::as_str) == Some("withdrawn");
        if withdraws {
            return Ok(());
        }
        Err(ApiError::Forbidden {
            detail: "a partner may only withdraw its participation: {\"status\": \"withdrawn\"}"
                .into(),
            errors: patch
                .keys()
                .map(|k| FieldError::new(format!("/{k}"), "hub_managed", "managed by the hub"))
                .collect(),
        })
    }

    /// A partner's participation starts `proposed`, an editor's `confirmed`; the organisation
    /// must be live.
    fn prepare(
        conn: &mut PgConnection,
        principal: &Principal,
        write: &mut DatedDraft,
    ) -> Result<(), ApiError> {
        if S::Kind::TABLE.with_status && write.status.is_none() {
            write.status = Some(if principal.role == Role::Partner {
                ParticipationStatus::Proposed.as_str()
            } else {
                ParticipationStatus::Confirmed.as_str()
            });
        }
        if !link::is_live(conn, write.organisation_id)? {
            return Err(ApiError::invalid(
                "/organisation_id",
                codes::UNKNOWN_VALUE,
                "no live organisation with this id",
            ));
        }
        Ok(())
    }

    /// A link's changes show in its goal's or activity's history and its organisation's.
    fn related(link: &S::Response) -> Vec<Uuid> {
        vec![S::target_id(link), S::organisation_id(link)]
    }

    fn lock(conn: &mut PgConnection, target: S::Target, id: Uuid) -> Result<Locked, ApiError> {
        link::lock_dated(conn, S::Kind::TABLE, target.into(), id)?
            .map(Locked::live)
            .ok_or_else(|| ApiError::not_found(Self::NOUN))
    }

    fn insert(
        conn: &mut PgConnection,
        target: S::Target,
        write: &DatedDraft,
    ) -> Result<Uuid, ApiError> {
        let id = Uuid::now_v7();
        link::insert_dated(conn, S::Kind::TABLE, id, target.into(), write, db::now())?;
        Ok(id)
    }

    fn update(
        conn: &mut PgConnection,
        id: Uuid,
        _expected_version: i64,
        write: &DatedDraft,
    ) -> Result<(), ApiError> {
        // A status cleared by the patch (`null`) is the default again: the editors', since a
        // partner's only patch is a withdrawal (`check_patch`).
        let mut write = write.clone();
        if S::Kind::TABLE.with_status && write.status.is_none() {
            write.status = Some(ParticipationStatus::Confirmed.as_str());
        }
        Ok(link::update_dated(
            conn,
            S::Kind::TABLE,
            id,
            &write,
            db::now(),
        )?)
    }

    fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), ApiError> {
        Ok(link::delete_dated(conn, S::Kind::TABLE, id)?)
    }

    fn load(
        conn: &mut PgConnection,
        target: S::Target,
        id: Uuid,
        _include_archived: bool,
    ) -> Result<S::Response, ApiError> {
        S::response(load::<S>(conn, target.into(), id)?)
    }

    fn version(link: &S::Response) -> i64 {
        S::version(link)
    }
}

/// Path of a link.
#[derive(Debug, Deserialize)]
pub struct LinkPath {
    /// The goal or activity.
    pub id: Uuid,
    /// The link.
    pub link_id: Uuid,
}

macro_rules! dated_link_handlers {
    ($spec:ty, $tag:literal, $collection:literal, $item:literal, $response:ty, $create_body:ty, $patch_body:ty,
     $target:literal, $write_notes:literal,
     $list:ident, $create:ident, $get:ident, $update:ident, $delete:ident) => {
        #[doc = concat!("List the ", $target, "'s links (`as_of` for those that held on a day).")]
        #[utoipa::path(
            get, path = $collection, tag = $tag,
            description = "Without `as_of`, every link; with it, those that held that day.",
            params(("id" = Uuid, Path, description = "Goal or activity id"),
                   ListRequest<Dated<$spec>, <$spec as LinkSpec>::Filters>),
            security(("bearer" = [])),
            responses(
                (status = 200, description = "A page of links (or CSV)",
                 content((PageResponse<$response> = "application/json"), (String = "text/csv")),
                 headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                         ("ETag" = String, description = "Changes whenever the registry changes"))),
                (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
                (status = 429, response = problems::TooManyRequests),
            )
        )]
        pub async fn $list(
            pool: Pool,
            principal: Principal,
            req: HttpRequest,
            id: web::Path<Uuid>,
            query: ListRequest<Dated<$spec>, <$spec as LinkSpec>::Filters>,
        ) -> Result<HttpResponse, ApiError> {
            list::<$spec>(&pool, &principal, &req, id.into_inner(), query).await
        }

        #[doc = concat!("Add a link to the ", $target, ".")]
        #[utoipa::path(
            post, path = $collection, tag = $tag,
            description = $write_notes,
            params(("id" = Uuid, Path, description = "Goal or activity id")),
            request_body(content = $create_body, content_type = "application/json"),
            security(("bearer" = [])),
            responses(
                (status = 201, description = "Linked", body = $response,
                 headers(("Location" = String, description = "The link's URL"), ("ETag" = String, description = "`\"<version>\"`"))),
                (status = 409, response = problems::Conflict),
            )
        )]
        pub async fn $create(
            call: record::Call,
            id: web::Path<Uuid>,
            body: web::Bytes,
        ) -> Result<HttpResponse, ApiError> {
            record::create::<Dated<$spec>>(&call, parent::<$spec>(id.into_inner()), body).await
        }

        #[doc = concat!("Read one of the ", $target, "'s links.")]
        #[utoipa::path(
            get, path = $item, tag = $tag,
            description = "Honours `If-None-Match` (304).",
            params(("id" = Uuid, Path, description = "Goal or activity id"), ("link_id" = Uuid, Path, description = "Link id")),
            security(("bearer" = [])),
            responses(
                (status = 200, description = "The link", body = $response, headers(("ETag" = String, description = "`\"<version>\"`"))),
                (status = 304, description = "Not modified"),
            )
        )]
        pub async fn $get(
            call: record::Call,
            path: web::Path<LinkPath>,
        ) -> Result<HttpResponse, ApiError> {
            let params = GetParams::default();
            record::get::<Dated<$spec>>(&call, parent::<$spec>(path.id), path.link_id, params).await
        }

        #[doc = concat!("Change one of the ", $target, "'s links (JSON Merge Patch).")]
        #[utoipa::path(
            patch, path = $item, tag = $tag,
            description = $write_notes,
            params(("id" = Uuid, Path, description = "Goal or activity id"), ("link_id" = Uuid, Path, description = "Link id"),
                   IfMatch),
            request_body(content(($patch_body = "application/merge-patch+json"), ($patch_body = "application/json"))),
            security(("bearer" = [])),
            responses(
                (status = 200, description = "Changed", body = $response, headers(("ETag" = String, description = "`\"<version>\"`"))),
                (status = 409, response = problems::Conflict),
            )
        )]
        pub async fn $update(
            call: record::Call,
            path: web::Path<LinkPath>,
            body: web::Bytes,
        ) -> Result<HttpResponse, ApiError> {
            record::update::<Dated<$spec>>(&call, parent::<$spec>(path.id), path.link_id, body).await
        }

        #[doc = concat!("Remove one of the ", $target, "'s links.")]
        #[utoipa::path(
            delete, path = $item, tag = $tag,
            description = "Removes the link; its audit trail keeps it. Requires If-Match.",
            params(("id" = Uuid, Path, description = "Goal or activity id"), ("link_id" = Uuid, Path, description = "Link id"),
                   IfMatch),
            security(("bearer" = [])),
            responses(
                (status = 204, description = "Removed"),
            )
        )]
        pub async fn $delete(
            call: record::Call,
            path: web::Path<LinkPath>,
        ) -> Result<HttpResponse, ApiError> {
            record::remove::<Dated<$spec>>(&call, parent::<$spec>(path.id), path.link_id).await
        }
    };
}

dated_link_handlers!(
    GoalPartners,
    "goals",
    "/api/v1/goals/{id}/partners",
    "/api/v1/goals/{id}/partners/{link_id}",
    GoalPartner,
    CreateGoalPartner,
    GoalPartnerPatch,
    "goal",
    "",
    list_goal_partners,
    create_goal_partner,
    get_goal_partner,
    update_goal_partner,
    delete_goal_partner
);

dated_link_handlers!(
    Participants, "activities", "/api/v1/activities/{id}/participants", "/api/v1/activities/{id}/participants/{link_id}",
    Participant, CreateParticipant, ParticipantPatch, "activity",
    "A partner acts for its own organisation only: it proposes (status `proposed`) and withdraws (`{\"status\": \"withdrawn\"}`). Only editors confirm or decline.",
    list_participants, create_participant, get_participant, update_participant, delete_participant
);

/// The links of kind `S` of an organisation (of live goals and activities), `as_of` a day if
/// given: one query, whatever their number.
pub fn engagements_of<S: LinkSpec>(
    conn: &mut PgConnection,
    organisation: Uuid,
    as_of: Option<NaiveDate>,
) -> Result<Vec<S::Response>, ApiError> {
    link::engagements_query::<S::Kind>(organisation, as_of)
        .load::<DatedLinkRow>(conn, None, false)?
        .data
        .into_iter()
        .map(S::response)
        .collect()
}
