//! The one write pipeline, for every writable resource: records (organisations of each kind,
//! goals, activities), goal–activity links and dated links, top-level or nested under a
//! parent. Create, read, update (JSON Merge Patch under If-Match), archive or delete, restore
//! and history are written once here, each write committing with its audit event. A resource
//! supplies only its storage, validation and the rules that are its own through [`Resource`].
//!
//! Checks run in the contract's order: 401 (the extractor), 403 role, 404 (parent, then the
//! resource), 403 ownership, 415, 400, 428, 412, 422, 409.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::body::{self, Shape};
use super::etag;
use super::list::{serve_list, ListKind, ListParams};
use super::schema;
use crate::auth::Principal;
use crate::db::{self, PgPool};
use crate::domain::{AuditAction, OrganisationId, Role};
use crate::error::{ApiError, FieldError};
use crate::models::audit::{self, Actor};

/// Editors and admins: the hub's staff.
pub const EDITORS: &[Role] = &[Role::Editor, Role::Admin];
/// Partners (for what their organisation owns) and the hub's staff.
pub const PARTNERS_AND_EDITORS: &[Role] = &[Role::Partner, Role::Editor, Role::Admin];

/// What `DELETE` does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Sets `archived_at` (204 with the new ETag); `restore` brings it back.
    Archive,
    /// Removes the row (204); its audit trail keeps it.
    Delete,
}

/// A row locked for a write: its version, and when it was archived.
#[derive(Debug, Clone, Copy)]
pub struct Locked {
    /// The version the write must find (its ETag).
    pub version: i64,
    /// Archived rows are 404 to every write but `restore`.
    pub archived_at: Option<DateTime<Utc>>,
}

impl Locked {
    /// A row that cannot be archived.
    pub fn live(version: i64) -> Self {
        Self {
            version,
            archived_at: None,
        }
    }
}

/// A kind of writable resource: what the shared pipeline needs from it. The defaults describe
/// a top-level record that only editors write and that nobody owns.
pub trait Resource: Send + 'static {
    /// The audit `entity`, e.g. `company`, `goal_partner`.
    const ENTITY: &'static str;
    /// The noun of its 404s.
    const NOUN: &'static str = Self::ENTITY;
    /// Who may create one.
    const CREATE_ROLES: &'static [Role] = EDITORS;
    /// Who may patch one (a partner: only what its organisation owns, see [`Self::owner`]).
    const UPDATE_ROLES: &'static [Role] = EDITORS;
    /// Members a partner may change on what it owns.
    const PARTNER_MANAGED: &'static [&'static str] = &[];
    /// Archive or delete.
    const REMOVAL: Removal = Removal::Archive;
    /// Members set at creation that no patch changes (a link's ends). One list for both sides
    /// of the contract: the patch schema leaves them out, and [`Self::patch_shape`] refuses a
    /// patch naming one (422 `read_only`, even with the current value, as for `id`).
    const FIXED: &'static [&'static str] = &[];
    /// A boolean body member that says whether it is archived (a user's `disabled`), if it has
    /// one: a patch that flips it archives or restores the record exactly as `DELETE` and
    /// `restore` do (their checks, audit event and version bump). Such a patch reaches an
    /// archived record; any other patch of one is 404, as every other write of it.
    const ARCHIVE_MEMBER: Option<&'static str> = None;
    /// Whether it lives under a parent that must exist (its 404 precedes the body's checks).
    const NESTED: bool = false;
    /// What it lives under: `()` at the top level, the parent's id when nested.
    type Parent: Copy + Send + Sync + 'static;
    /// A validated body, ready to write.
    type Write: Clone + PartialEq + Send + 'static;
    /// The resource as served.
    type Response: Serialize + ToSchema + Send + 'static;
    /// Its body's one declaration (see [`super::schema`]): bodies decode into it, and its
    /// schema gives the create and merge-patch schemas and the [`Shape`].
    type Body: DeserializeOwned + ToSchema + Default + 'static;

    /// Members a body may carry, and those that are read-only: [`Self::Body`]'s, and the
    /// response's others.
    fn shape() -> &'static Shape {
        schema::shape::<Self::Body, Self::Response>()
    }
    /// Members a patch may carry: [`Self::shape`]'s less [`Self::FIXED`].
    fn patch_shape() -> &'static Shape {
        schema::patch_shape::<Self::Body, Self::Response>(Self::FIXED)
    }
    /// Its URL.
    fn location(parent: Self::Parent, id: Uuid) -> String;
    /// Decodes and validates a whole body (a create body, or the current state with a patch
    /// merged in).
    fn validate(body: Map<String, Json>) -> Result<Self::Write, ApiError>;
    /// 404 unless the parent exists and is live.
    fn check_parent(_conn: &mut PgConnection, _parent: Self::Parent) -> Result<(), ApiError> {
        Ok(())
    }
    /// The organisation that owns it, if any: a partner acting for it may write it.
    fn owner(
        _conn: &mut PgConnection,
        _parent: Self::Parent,
        _id: Uuid,
    ) -> Result<Option<OrganisationId>, ApiError> {
        Ok(None)
    }
    /// The organisation a new one will belong to, if any, from its parent (a nested
    /// resource's owner) or its validated body (the organisation it names): a partner may
    /// create only what its own organisation will own (403), checked in the write's
    /// transaction.
    fn create_owner(
        _conn: &mut PgConnection,
        _parent: Self::Parent,
        _write: &Self::Write,
    ) -> Result<Option<OrganisationId>, ApiError> {
        Ok(None)
    }
    /// The records a change to it also concerns, whose histories show the change too (a link's
    /// ends).
    fn related(_record: &Self::Response) -> Vec<Uuid> {
        Vec::new()
    }
    /// What the create's answer shows once beside the record and never again (a new API
    /// client's secret), if anything: that answer is marked `idempotency::ShownOnce`, so it
    /// is never kept for an `Idempotency-Key` replay.
    fn reveal(_write: &Self::Write) -> Option<Map<String, Json>> {
        None
    }
    /// The caller's own limits on removing record `id` (403), checked first.
    fn check_remove(_principal: &Principal, _id: Uuid) -> Result<(), ApiError> {
        Ok(())
    }
    /// The caller's own limits on a create body, before its shape is checked (403).
    fn check_create(_principal: &Principal, _body: &Map<String, Json>) -> Result<(), ApiError> {
        Ok(())
    }
    /// The caller's own limits on a patch, before `If-Match` is checked (403).
    fn check_patch(_principal: &Principal, _patch: &Map<String, Json>) -> Result<(), ApiError> {
        Ok(())
    }
    /// Completes a validated create body: defaults that depend on the caller, and references
    /// that must point at live rows (422).
    fn prepare(
        _conn: &mut PgConnection,
        _principal: &Principal,
        _write: &mut Self::Write,
    ) -> Result<(), ApiError> {
        Ok(())
    }
    /// Locks it for a write (404 when absent).
    fn lock(conn: &mut PgConnection, parent: Self::Parent, id: Uuid) -> Result<Locked, ApiError>;
    /// Inserts a new one; returns its id.
    fn insert(
        conn: &mut PgConnection,
        parent: Self::Parent,
        write: &Self::Write,
    ) -> Result<Uuid, ApiError>;
    /// Inserts many new ones (an import's); their ids, in order. A storage that can writes
    /// them in a statement a table.
    fn insert_all(
        conn: &mut PgConnection,
        parent: Self::Parent,
        writes: &[&Self::Write],
    ) -> Result<Vec<Uuid>, ApiError> {
        writes
            .iter()
            .map(|write| Self::insert(conn, parent, write))
            .collect()
    }
    /// Rewrites many, each under its version guard (412), as [`Self::update`] does one (an
    /// import's updates). A storage that can writes them in a statement a table.
    fn update_all(
        conn: &mut PgConnection,
        changes: &[(Uuid, i64, &Self::Write)],
    ) -> Result<(), ApiError> {
        changes
            .iter()
            .try_for_each(|(id, version, write)| Self::update(conn, *id, *version, write))
    }
    /// Rewrites it and bumps its version, if it is still at `expected_version` (412).
    fn update(
        conn: &mut PgConnection,
        id: Uuid,
        expected_version: i64,
        write: &Self::Write,
    ) -> Result<(), ApiError>;
    /// Sets or clears `archived_at` under the version guard; returns the new version
    /// ([`Removal::Archive`] resources).
    fn set_archived(
        _conn: &mut PgConnection,
        _id: Uuid,
        _expected_version: i64,
        _archived_at: Option<DateTime<Utc>>,
    ) -> Result<i64, ApiError> {
        Err(ApiError::internal(format!(
            "{} cannot be archived",
            Self::ENTITY
        )))
    }
    /// Removes it ([`Removal::Delete`] resources).
    fn delete(_conn: &mut PgConnection, _id: Uuid) -> Result<(), ApiError> {
        Err(ApiError::internal(format!(
            "{} cannot be deleted",
            Self::ENTITY
        )))
    }
    /// Loads one (404 when absent, or archived unless `include_archived`).
    fn load(
        conn: &mut PgConnection,
        parent: Self::Parent,
        id: Uuid,
        include_archived: bool,
    ) -> Result<Self::Response, ApiError>;
    /// Loads many live ones, in the order of `ids` (404 when one is absent or archived). A
    /// storage that can reads them in a fixed number of statements.
    fn load_all(
        conn: &mut PgConnection,
        parent: Self::Parent,
        ids: &[Uuid],
    ) -> Result<Vec<Self::Response>, ApiError> {
        ids.iter()
            .map(|id| Self::load(conn, parent, *id, false))
            .collect()
    }
    /// Locks many live ones for a write; their versions, in the order of `ids` (404 when one
    /// is absent or archived).
    fn lock_all(
        conn: &mut PgConnection,
        parent: Self::Parent,
        ids: &[Uuid],
    ) -> Result<Vec<i64>, ApiError> {
        ids.iter()
            .map(|id| match Self::lock(conn, parent, *id)? {
                Locked {
                    archived_at: None,
                    version,
                } => Ok(version),
                Locked { .. } => Err(ApiError::not_found(Self::NOUN)),
            })
            .collect()
    }
    /// Its version (its ETag).
    fn version(record: &Self::Response) -> i64;

    /// It as a PATCH's merge target: its members less the read-only ones.
    fn writable(record: &Self::Response) -> Result<Map<String, Json>, ApiError> {
        let mut map = to_object(record)?;
        map.retain(|k, _| !Self::shape().is_read_only(k));
        Ok(map)
    }
}

/// The record as a JSON object, for audit diffs and merge patches.
pub fn to_object<T: Serialize>(record: &T) -> Result<Map<String, Json>, ApiError> {
    match serde_json::to_value(record).map_err(ApiError::internal)? {
        Json::Object(map) => Ok(map),
        _ => Err(ApiError::internal(
            "a record did not serialise to an object",
        )),
    }
}

/// The author of the current request's writes. Read on the request's task, where the request
/// id lives, before the write moves to the blocking pool.
pub fn actor(principal: &Principal) -> Actor {
    Actor {
        id: Some(principal.id),
        kind: principal.kind.as_str(),
        request_id: crate::telemetry::current_request_id(),
    }
}

/// The URL of a top-level record in `collection`.
pub fn top_level(collection: &str, id: Uuid) -> String {
    format!("/api/v1/{collection}/{id}")
}

/// What every operation of the pipeline starts from: the pool, the caller (whose role the
/// extractor has checked against the route's declaration) and the request (its headers, for
/// `If-Match`, `If-None-Match` and content negotiation). Handlers take it as one extractor.
#[derive(Clone)]
pub struct Call {
    pool: web::Data<PgPool>,
    principal: Principal,
    req: HttpRequest,
}

impl Call {
    /// The pool, the caller and the request.
    pub fn parts(&self) -> (&PgPool, &Principal, &HttpRequest) {
        (&self.pool, &self.principal, &self.req)
    }
}

impl actix_web::FromRequest for Call {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // The caller first: a request the route does not admit is refused before anything else.
        let call = crate::auth::principal_of(req).and_then(|principal| {
            let pool = req
                .app_data::<web::Data<PgPool>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("the app has no database pool"))?;
            Ok(Self {
                pool,
                principal,
                req: req.clone(),
            })
        });
        std::future::ready(call)
    }
}

/// Inserts a resource with its audit event (call inside a transaction).
pub fn insert_new<R: Resource>(
    conn: &mut PgConnection,
    actor: &Actor,
    parent: R::Parent,
    write: &R::Write,
) -> Result<(Uuid, R::Response), ApiError> {
    insert_all_new::<R>(conn, actor, parent, &[write])?
        .pop()
        .ok_or_else(|| ApiError::internal("an insert returned no record"))
}

/// Inserts resources with one audit event each (call inside a transaction), in a fixed number
/// of statements where the storage allows ([`Resource::insert_all`], [`Resource::load_all`]):
/// a create and an import's rows are written alike.
pub fn insert_all_new<R: Resource>(
    conn: &mut PgConnection,
    actor: &Actor,
    parent: R::Parent,
    writes: &[&R::Write],
) -> Result<Vec<(Uuid, R::Response)>, ApiError> {
    let ids = R::insert_all(conn, parent, writes)?;
    let records = R::load_all(conn, parent, &ids)?;
    let events = ids
        .iter()
        .zip(&records)
        .map(|(id, record)| {
            let after = Json::Object(to_object(record)?);
            Ok(audit::Event {
                entity_id: *id,
                related: R::related(record),
                version: Some(R::version(record)),
                changes: audit::diff(None, Some(&after)),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    audit::record_all(conn, actor, AuditAction::Create, R::ENTITY, events)?;
    Ok(ids.into_iter().zip(records).collect())
}

/// One change of an update: the record locked at `version`, as it was, and what it becomes.
pub struct Change<'a, R: Resource> {
    /// The record.
    pub id: Uuid,
    /// The version it was locked at.
    pub version: i64,
    /// It before the change.
    pub before: &'a R::Response,
    /// It after, validated.
    pub write: &'a R::Write,
}

/// Applies changes under their version guards, with one audit event each (call inside a
/// transaction, the rows locked); the records after, in order. A patch and an import's rows
/// are written alike.
pub fn apply_changes<R: Resource>(
    conn: &mut PgConnection,
    actor: &Actor,
    parent: R::Parent,
    changes: &[Change<'_, R>],
) -> Result<Vec<R::Response>, ApiError> {
    let rewrites: Vec<(Uuid, i64, &R::Write)> =
        changes.iter().map(|c| (c.id, c.version, c.write)).collect();
    R::update_all(conn, &rewrites)?;
    let ids: Vec<Uuid> = changes.iter().map(|c| c.id).collect();
    let records = R::load_all(conn, parent, &ids)?;
    let events = changes
        .iter()
        .zip(&records)
        .map(|(change, record)| {
            let before = Json::Object(to_object(change.before)?);
            let after = Json::Object(to_object(record)?);
            Ok(audit::Event {
                entity_id: change.id,
                related: R::related(record),
                version: Some(R::version(record)),
                changes: audit::diff(Some(&before), Some(&after)),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    audit::record_all(conn, actor, AuditAction::Update, R::ENTITY, events)?;
    Ok(records)
}

/// The body of a create, decoded and validated: 415, 400, 403 (the caller's limits), 422.
fn create_body<R: Resource>(
    principal: &Principal,
    headers: &header::HeaderMap,
    body: &[u8],
) -> Result<R::Write, ApiError> {
    body::check_media_type(headers, body::JSON)?;
    validate_create::<R>(principal, body::parse_object(body)?)
}

/// A create body, validated: 403 (the caller's limits), 422. An import's new rows are
/// validated by it too.
pub fn validate_create<R: Resource>(
    principal: &Principal,
    mut map: Map<String, Json>,
) -> Result<R::Write, ApiError> {
    R::check_create(principal, &map)?;
    R::shape().check(&map)?;
    // A create body's `null` counts as absent, as a patch's clears to the default: an optional
    // member takes its default, a required one is still required.
    map.retain(|_, value| !value.is_null());
    R::validate(map)
}

/// A record's members, or a body's.
pub type Members = Map<String, Json>;

/// Whether `write` leaves the record whose writable members are `unpatched` as it is (a
/// member cleared to its default, such as `null` for an empty list, changes nothing): such a
/// patch writes nothing.
pub fn unchanged<R: Resource>(unpatched: Map<String, Json>, write: &R::Write) -> bool {
    R::validate(unpatched).is_ok_and(|current| current == *write)
}

/// A patch checked against the patch shape (422) and merged into the record: the record's
/// writable members before and after. A PATCH and an import's rows that apply to existing
/// records are merged by it.
pub fn merged<R: Resource>(
    current: &R::Response,
    patch: Map<String, Json>,
) -> Result<(Members, Members), ApiError> {
    R::patch_shape().check(&patch)?;
    let unpatched = R::writable(current)?;
    let mut patched = Json::Object(unpatched.clone());
    body::merge_patch(&mut patched, &Json::Object(patch));
    match patched {
        Json::Object(patched) => Ok((unpatched, patched)),
        _ => Err(ApiError::internal("merge patch produced a non-object")),
    }
}

/// `POST` on the collection: 201 with `Location` and `ETag`.
pub async fn create<R: Resource>(
    call: &Call,
    parent: R::Parent,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (pool, principal, req) = call.parts();
    let actor = actor(principal);
    let principal = principal.clone();
    let headers = req.headers().clone();
    let key = req.extensions().get::<super::idempotency::Keyed>().cloned();
    // A top-level body is checked before a connection is taken; a nested one after its
    // parent's 404, which the contract puts first.
    let mut checked = if R::NESTED {
        None
    } else {
        Some(create_body::<R>(&principal, &headers, &body)?)
    };
    let (id, record) = db::transaction(pool, move |conn| {
        R::check_parent(conn, parent)?;
        let mut write = match checked.take() {
            Some(write) => write,
            None => create_body::<R>(&principal, &headers, &body)?,
        };
        if principal.role == Role::Partner {
            match R::create_owner(conn, parent, &write)? {
                Some(owner) if principal.organisation_id != Some(owner) => {
                    return Err(ApiError::forbidden(format!(
                        "a partner may create only what its own organisation owns; this {} \
                         would not be its own",
                        R::NOUN
                    )))
                }
                _ => {}
            }
        }
        R::prepare(conn, &principal, &mut write)?;
        let (id, record) = insert_new::<R>(conn, &actor, parent, &write)?;
        super::idempotency::written(
            conn,
            key.as_ref(),
            StatusCode::CREATED,
            &R::location(parent, id),
        )?;
        Ok((id, (record, R::reveal(&write))))
    })
    .await?;
    let (record, revealed) = record;
    let mut builder = HttpResponse::Created();
    let created = etag::tag(&mut builder, R::version(&record))
        .insert_header((header::LOCATION, R::location(parent, id)));
    Ok(match revealed {
        Some(shown_once) => {
            let mut answer = to_object(&record)?;
            answer.extend(shown_once);
            super::idempotency::shown_once(created.json(answer))
        }
        None => created.json(record),
    })
}

/// Query of a single-record read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// Answer archived records too (editors and admins; 403 for others).
    pub include_archived: Option<bool>,
}

/// `GET` of one: 200 with `ETag`, or 304 on a matching `If-None-Match` (from memory while
/// nothing has changed since this replica read it: [`etag::cached_record`]).
pub async fn get<R: Resource>(
    call: &Call,
    parent: R::Parent,
    id: Uuid,
    params: GetParams,
) -> Result<HttpResponse, ApiError> {
    let (pool, principal, req) = call.parts();
    let include_archived =
        principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    etag::cached_record(pool, req, include_archived, move |conn| {
        R::check_parent(conn, parent)?;
        let record = R::load(conn, parent, id, include_archived)?;
        let version = R::version(&record);
        Ok((record, version))
    })
    .await
}

/// 403 when a partner's patch changes a field outside `allowed` (the hub manages the rest).
pub fn check_partner_fields(
    principal: &Principal,
    before: &Map<String, Json>,
    after: &Map<String, Json>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    if principal.role != Role::Partner {
        return Ok(());
    }
    let mut errors: Vec<FieldError> = after
        .keys()
        .chain(before.keys())
        // A member the patch removed with `null` was null or absent before if it is unchanged.
        .filter(|k| {
            !allowed.contains(&k.as_str())
                && before.get(*k).unwrap_or(&Json::Null) != after.get(*k).unwrap_or(&Json::Null)
        })
        .map(|k| {
            FieldError::new(
                format!("/{k}"),
                "hub_managed",
                format!("`{k}` is managed by the hub"),
            )
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    errors.dedup_by(|a, b| a.field == b.field);
    Err(ApiError::Forbidden {
        detail: "a partner may change only its organisation's self-managed fields".into(),
        errors,
    })
}

/// 403 unless a partner acts for the organisation that owns it (the role check let only
/// partners of resources they may write this far).
fn check_owner<R: Resource>(
    conn: &mut PgConnection,
    principal: &Principal,
    parent: R::Parent,
    id: Uuid,
) -> Result<(), ApiError> {
    if principal.role != Role::Partner {
        return Ok(());
    }
    match R::owner(conn, parent, id)? {
        Some(owner) if principal.organisation_id == Some(owner) => Ok(()),
        _ => Err(ApiError::forbidden(format!(
            "a partner may change only what its own organisation owns; this {} is not its own",
            R::NOUN
        ))),
    }
}

/// Locks it for a write: 404 when it (or its parent) is absent or archived.
fn lock_live<R: Resource>(
    conn: &mut PgConnection,
    parent: R::Parent,
    id: Uuid,
) -> Result<Locked, ApiError> {
    R::check_parent(conn, parent)?;
    let locked = R::lock(conn, parent, id)?;
    if locked.archived_at.is_some() {
        return Err(ApiError::not_found(R::NOUN));
    }
    Ok(locked)
}

/// `PATCH` of one: JSON Merge Patch under `If-Match`. The row is locked first, so concurrent
/// patches with one ETag serialise and all but one get 412. A patch that changes nothing
/// writes nothing: no new version, no audit event. A patch that flips
/// [`Resource::ARCHIVE_MEMBER`] archives or restores it as `DELETE` and `restore` do, with
/// their audit events, beside the update event of its other changes.
pub async fn update<R: Resource>(
    call: &Call,
    parent: R::Parent,
    id: Uuid,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (pool, principal, req) = call.parts();
    let headers = req.headers().clone();
    let actor = actor(principal);
    let principal = principal.clone();
    let record = db::transaction(pool, move |conn| {
        let mut locked = match R::ARCHIVE_MEMBER {
            None => lock_live::<R>(conn, parent, id)?,
            // Reached when archived, as the patch may restore it (checked below).
            Some(_) => {
                R::check_parent(conn, parent)?;
                R::lock(conn, parent, id)?
            }
        };
        check_owner::<R>(conn, &principal, parent, id)?;
        body::check_media_type(&headers, body::MERGE_PATCH)?;
        let patch = body::parse_object(&body)?;
        R::check_patch(&principal, &patch)?;
        if let Some(member) = R::ARCHIVE_MEMBER {
            // `null` clears it to its default: live. An archived record takes only a restore,
            // as `DELETE` of it is 404 too.
            let restores = matches!(patch.get(member), Some(Json::Bool(false) | Json::Null));
            if locked.archived_at.is_some() && !restores {
                return Err(ApiError::not_found(R::NOUN));
            }
            if patch.get(member) == Some(&Json::Bool(true)) {
                R::check_remove(&principal, id)?;
            }
        }
        etag::check_version(&etag::required_if_match(&headers)?, locked.version)?;
        let mut current = R::load(conn, parent, id, R::ARCHIVE_MEMBER.is_some())?;
        let (unpatched, patched) = merged::<R>(&current, patch)?;
        if patched == unpatched {
            return Ok(current);
        }
        check_partner_fields(&principal, &unpatched, &patched, R::PARTNER_MANAGED)?;
        // Whether it ends archived, and the record before with only that changed: what the
        // rest of the patch is compared with.
        let (archive, others_unpatched) = match R::ARCHIVE_MEMBER {
            Some(member) => {
                let mut others = unpatched.clone();
                match patched.get(member) {
                    Some(value) => others.insert(member.to_owned(), value.clone()),
                    None => others.remove(member),
                };
                (
                    Some(patched.get(member) == Some(&Json::Bool(true))),
                    Some(others),
                )
            }
            None => (None, None),
        };
        // The fixed members were refused above, so the merged record keeps them as they are.
        let write = R::validate(patched)?;
        if unchanged::<R>(unpatched, &write) {
            return Ok(current);
        }
        let flip = archive.filter(|archived| *archived != locked.archived_at.is_some());
        // A restore first and an archive last, so that the update in between writes a live
        // record as every other update does.
        if flip == Some(false) {
            locked.version = switch_archived::<R>(conn, &actor, parent, id, &locked, None)?;
            locked.archived_at = None;
            current = R::load(conn, parent, id, false)?;
        }
        if others_unpatched.is_none_or(|others| !unchanged::<R>(others, &write)) {
            let change = Change::<R> {
                id,
                version: locked.version,
                before: &current,
                write: &write,
            };
            current = apply_changes::<R>(conn, &actor, parent, &[change])?
                .pop()
                .ok_or_else(|| ApiError::internal("an update returned no record"))?;
            locked.version = R::version(&current);
        }
        if flip == Some(true) {
            switch_archived::<R>(conn, &actor, parent, id, &locked, Some(db::now()))?;
            current = R::load(conn, parent, id, true)?;
        }
        Ok(current)
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::Ok(), R::version(&record)).json(record))
}

/// `DELETE` of one (If-Match): archives (204 with the new ETag) or removes (204), as the
/// resource's [`Removal`] says.
pub async fn remove<R: Resource>(
    call: &Call,
    parent: R::Parent,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    R::check_remove(call.parts().1, id)?;
    let version =
        locked_write::<R, _>(
            call,
            parent,
            id,
            true,
            move |conn, actor, locked| match R::REMOVAL {
                Removal::Archive => {
                    let archived = Some(db::now());
                    switch_archived::<R>(conn, actor, parent, id, &locked, archived).map(Some)
                }
                Removal::Delete => {
                    let record = R::load(conn, parent, id, false)?;
                    R::delete(conn, id)?;
                    let changes = audit::diff(Some(&Json::Object(to_object(&record)?)), None);
                    let related = R::related(&record);
                    let event = audit::Event {
                        entity_id: id,
                        related,
                        version: Some(R::version(&record)),
                        changes,
                    };
                    audit::record(conn, actor, AuditAction::Delete, R::ENTITY, event)?;
                    Ok(None)
                }
            },
        )
        .await?;
    Ok(match version {
        Some(version) => etag::tag(&mut HttpResponse::NoContent(), version).finish(),
        None => HttpResponse::NoContent().finish(),
    })
}

/// Runs `write` in one transaction with the row locked and `If-Match` checked against its
/// version (428, 412): 404 first when its parent is absent, or when it is archived and
/// `live_only`.
pub async fn locked_write<R: Resource, T: Send + 'static>(
    call: &Call,
    parent: R::Parent,
    id: Uuid,
    live_only: bool,
    write: impl FnOnce(&mut PgConnection, &Actor, Locked) -> Result<T, ApiError>
        + Clone
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let headers = call.req.headers().clone();
    let actor = actor(&call.principal);
    let principal = call.principal.clone();
    let pool = &call.pool;
    db::transaction(pool, move |conn| {
        let locked = if live_only {
            lock_live::<R>(conn, parent, id)?
        } else {
            R::check_parent(conn, parent)?;
            R::lock(conn, parent, id)?
        };
        // Every write of one checks its owner, whichever routes admit partners to it.
        check_owner::<R>(conn, &principal, parent, id)?;
        etag::check_version(&etag::required_if_match(&headers)?, locked.version)?;
        write.clone()(conn, &actor, locked)
    })
    .await
}

/// Archives (`to` a time) or restores (`to` None) a locked row under its version guard, with
/// its audit event; returns the new version.
fn switch_archived<R: Resource>(
    conn: &mut PgConnection,
    actor: &Actor,
    parent: R::Parent,
    id: Uuid,
    locked: &Locked,
    to: Option<DateTime<Utc>>,
) -> Result<i64, ApiError> {
    let version = R::set_archived(conn, id, locked.version, to)?;
    let action = if to.is_some() {
        AuditAction::Archive
    } else {
        AuditAction::Restore
    };
    let changes = serde_json::json!({
        "before": {"archived_at": locked.archived_at},
        "after": {"archived_at": to},
    });
    let related = R::related(&R::load(conn, parent, id, true)?);
    let event = audit::Event {
        entity_id: id,
        related,
        version: Some(version),
        changes,
    };
    audit::record(conn, actor, action, R::ENTITY, event)?;
    Ok(version)
}

/// `POST .../restore` (If-Match): un-archives; 409 if live or if what made it unique (a name)
/// is now taken.
pub async fn restore<R: Resource>(
    call: &Call,
    parent: R::Parent,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let record = locked_write::<R, _>(call, parent, id, false, move |conn, actor, locked| {
        if locked.archived_at.is_none() {
            return Err(ApiError::conflict("the record is not archived", None));
        }
        switch_archived::<R>(conn, actor, parent, id, &locked, None)?;
        R::load(conn, parent, id, false)
    })
    .await?;
    Ok(etag::tag(&mut HttpResponse::Ok(), R::version(&record)).json(record))
}

pub use crate::models::audit::AuditEvent;

/// Audit trails, as lists: newest first, no sort or search of their own.
pub struct History;

impl ListKind for History {
    const ARCHIVED: Option<&'static str> = Some(
        "Accepted as on every GET; a history always covers archived records, whose trail matters most.",
    );
    const CSV_COLUMNS: &'static [&'static str] = AUDIT_CSV_COLUMNS;
}

/// CSV columns of an audit trail (`changes` as its JSON text).
pub const AUDIT_CSV_COLUMNS: &[&str] = &[
    "id",
    "at",
    "actor_id",
    "actor_kind",
    "action",
    "entity",
    "entity_id",
    "request_id",
    "changes",
    "related",
];

/// `GET .../{id}/history`: its audit trail (editors and admins).
pub async fn history<R: Resource>(
    call: &Call,
    parent: R::Parent,
    id: Uuid,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let (pool, principal, req) = call.parts();
    principal.check_include_archived(params.include_archived.unwrap_or(false))?;
    db::run(pool, move |conn| {
        R::load(conn, parent, id, true).map(|_| ())
    })
    .await?;
    serve_list(
        pool,
        principal,
        req,
        &params,
        audit::history_query(id, None),
        AUDIT_CSV_COLUMNS,
        |_conn, rows: Vec<AuditEvent>| Ok(rows),
    )
    .await
}
