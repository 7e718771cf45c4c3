//! `/api/v1/webhooks`: subscriptions to the change feed, pushed to a receiver (admins only).
//!
//! The subscription is a record of the one write pipeline (create, read, merge patch under
//! `If-Match`, delete, all audited); `crate::webhooks` delivers the feed to it.

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::account::ADMINS;
use crate::auth::Principal;
use crate::db;
use crate::domain::webhook::{self as rules, WebhookBody, WebhookDraft};
use crate::domain::{codes, AuditAction, DeliveryOutcome, DisabledReason, OrganisationKind};
use crate::error::{stored, ApiError};
use crate::http::machinery::body;
use crate::http::machinery::etag;
use crate::http::machinery::idempotency::shown_once;
use crate::http::machinery::list::{serve_list, ListKind, ListRequest, NoFilters, PageResponse};
use crate::http::machinery::problems;
use crate::http::machinery::record::{self, top_level, Call, Locked, Removal, Resource};
use crate::http::machinery::rotation;
use crate::http::machinery::schema::request_bodies;
use crate::models::audit;
use crate::models::webhook::{self as model, DeliveryRow, WebhookRow};
use crate::webhooks::{self as delivery, target::Refused, Deliverer};

/// A subscription, as read: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookResponse {
    /// The subscription's id (UUID v7).
    pub id: Uuid,
    /// Where events are posted.
    pub url: String,
    /// The event types sent (`*`: all).
    #[schema(value_type = Vec<rules::EventType>)]
    pub events: Vec<String>,
    /// Only organisations of these kinds (empty: every kind).
    pub kinds: Vec<OrganisationKind>,
    /// What it is for.
    pub description: Option<String>,
    /// Paused: nothing is sent until it is enabled again.
    pub disabled: bool,
    /// Why the hub disabled it: `gone` (the receiver answered 410) or `failing` (the last
    /// retry of an event failed); null when enabled, or disabled by an admin.
    pub disabled_reason: Option<DisabledReason>,
    /// Until when deliveries are also signed with the secret before the last rotation.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increments on every change; the `ETag` is `"<version>"`.
    pub version: i64,
}

impl TryFrom<WebhookRow> for WebhookResponse {
    type Error = ApiError;

    fn try_from(row: WebhookRow) -> Result<Self, ApiError> {
        let now = Utc::now();
        Ok(Self {
            id: row.id,
            url: row.url,
            events: row.events,
            kinds: row
                .kinds
                .iter()
                .map(|k| stored(k))
                .collect::<Result<_, _>>()?,
            description: row.description,
            disabled: row.disabled,
            disabled_reason: row.disabled_reason.as_deref().map(stored).transpose()?,
            previous_secret_valid_until: row.previous_valid_until.filter(|until| *until > now),
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// A subscription as the create (and a secret rotation) answers it: the secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// The signing secret (`whsec_` + base64 of 32 random bytes), for the receiver's Standard
    /// Webhooks library. Shown only in this answer.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

request_bodies!(WebhookBody => CreateWebhook, WebhookPatch);

/// A subscription as written: its draft, and on create its new secret.
#[derive(Debug, Clone)]
pub struct WebhookWrite {
    draft: WebhookDraft,
    secret: Option<String>,
}

/// Two writes are the same change when their drafts are: a secret is never patched.
impl PartialEq for WebhookWrite {
    fn eq(&self, other: &Self) -> bool {
        self.draft == other.draft
    }
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes, as Standard Webhooks'
/// libraries take it.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Subscriptions in the write pipeline: admins' to write; DELETE removes one with its
/// deliveries (the audit trail keeps it).
pub struct Webhooks;

impl Resource for Webhooks {
    const ENTITY: &'static str = delivery::ENTITY;
    const NOUN: &'static str = "webhook subscription";
    const CREATE_ROLES: &'static [crate::domain::Role] = ADMINS;
    const UPDATE_ROLES: &'static [crate::domain::Role] = ADMINS;
    const REMOVAL: Removal = Removal::Delete;
    type Parent = ();
    type Write = WebhookWrite;
    type Response = WebhookResponse;
    type Body = WebhookBody;

    fn location((): (), id: Uuid) -> String {
        top_level("webhooks", id)
    }

    fn validate(body: Map<String, Json>) -> Result<WebhookWrite, ApiError> {
        Ok(WebhookWrite {
            draft: rules::webhook(body)?,
            secret: None,
        })
    }

    fn prepare(
        _conn: &mut diesel::PgConnection,
        _principal: &Principal,
        write: &mut WebhookWrite,
    ) -> Result<(), ApiError> {
        write.secret = Some(new_secret());
        Ok(())
    }

    fn reveal(write: &WebhookWrite) -> Option<Map<String, Json>> {
        let secret = write.secret.as_ref()?;
        Some(Map::from_iter([(
            "secret".to_owned(),
            Json::String(secret.clone()),
        )]))
    }

    fn lock(conn: &mut diesel::PgConnection, (): (), id: Uuid) -> Result<Locked, ApiError> {
        model::lock(conn, id)?
            .map(Locked::live)
            .ok_or_else(|| ApiError::not_found(Self::NOUN))
    }

    fn insert(
        conn: &mut diesel::PgConnection,
        (): (),
        write: &WebhookWrite,
    ) -> Result<Uuid, ApiError> {
        let secret = write
            .secret
            .as_deref()
            .ok_or_else(|| ApiError::internal("a subscription created without a secret"))?;
        Ok(model::insert(conn, &write.draft, secret)?)
    }

    fn update(
        conn: &mut diesel::PgConnection,
        id: Uuid,
        expected: i64,
        write: &WebhookWrite,
    ) -> Result<(), ApiError> {
        Ok(model::update(conn, id, expected, &write.draft)?)
    }

    fn delete(conn: &mut diesel::PgConnection, id: Uuid) -> Result<(), ApiError> {
        Ok(model::delete(conn, id)?)
    }

    fn load(
        conn: &mut diesel::PgConnection,
        (): (),
        id: Uuid,
        _include_archived: bool,
    ) -> Result<WebhookResponse, ApiError> {
        model::find(conn, id)?
            .ok_or_else(|| ApiError::not_found(Self::NOUN))
            .and_then(WebhookResponse::try_from)
    }

    fn version(record: &WebhookResponse) -> i64 {
        record.version
    }
}

impl ListKind for Webhooks {
    const CSV_COLUMNS: &'static [&'static str] = &[
        "id",
        "url",
        "events",
        "kinds",
        "description",
        "disabled",
        "disabled_reason",
        "previous_secret_valid_until",
        "created_at",
        "updated_at",
        "version",
    ];
}

/// 422 at `/url` when the body names a target the server refuses (plain `http`, or a host
/// that is or resolves to a private address), before the pipeline writes it. Another
/// member's mistakes, and a url that is not one, are the pipeline's to report.
async fn check_target(call: &Call, bytes: &[u8]) -> Result<(), ApiError> {
    let Some(sent) = body::parse_object(bytes)
        .ok()
        .and_then(|map| map.get("url")?.as_str().map(str::to_owned))
    else {
        return Ok(());
    };
    let Ok(url) = rules::target(&sent) else {
        return Ok(());
    };
    let deliverer = deliverer_of(call)?;
    let wait = std::time::Duration::from_secs(2);
    deliverer
        .policy()
        .check_target(&url, wait)
        .await
        .map_err(|refused| {
            let code = match refused {
                Refused::NotHttps => codes::INVALID_FORMAT,
                Refused::Private(_) => codes::FORBIDDEN_TARGET,
            };
            ApiError::invalid("/url", code, refused.to_string())
        })
}

/// List webhook subscriptions.
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks",
    description = "In creation order; keyset-paginated.",
    params(ListRequest<Webhooks, NoFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of subscriptions (or CSV)",
         content((PageResponse<WebhookResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_webhooks(
    call: Call,
    query: ListRequest<Webhooks, NoFilters>,
) -> Result<HttpResponse, ApiError> {
    let (params, NoFilters {}) = query.into_parts();
    let (pool, principal, req) = call.parts();
    serve_list(
        pool,
        principal,
        req,
        &params,
        model::list_query(params.limit),
        Webhooks::CSV_COLUMNS,
        |_conn, rows: Vec<WebhookRow>| rows.into_iter().map(WebhookResponse::try_from).collect(),
    )
    .await
}

/// Create a webhook subscription.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks",
    summary = "Create a webhook subscription.",
    description = "The answer carries the signing secret, shown this once. The subscription is \
        sent the changes of transactions that begin after it is created. A `url` whose host \
        is or resolves to a loopback, private, link-local, shared (CGNAT) or metadata address \
        is 422 `forbidden_target` at `/url` (and is checked again at every delivery), unless \
        the server allows private targets; a host that does not resolve yet is accepted.",
    request_body(content = CreateWebhook, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookWithSecret,
         headers(("Location" = String, description = "The new subscription's URL"),
                 ("ETag" = String, description = "`\"<version>\"`"))),
    )
)]
pub async fn create_webhook(call: Call, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    check_target(&call, &body).await?;
    record::create::<Webhooks>(&call, (), body).await
}

pipeline_handler! {
    /// Read a webhook subscription.
    #[utoipa::path(
        get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
        summary = "Read a webhook subscription.",
        description = "Honours `If-None-Match` (304).",
        params(("id" = Uuid, Path, description = "Subscription id"), record::GetParams),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "The subscription", body = WebhookResponse,
             headers(("ETag" = String, description = "`\"<version>\"`"))),
            (status = 304, description = "Not modified since the ETag in If-None-Match"),
        )
    )]
    get_webhook(id: web::Path<Uuid>, query: web::Query<record::GetParams>)
        => get::<Webhooks>((), id.into_inner(), query.into_inner())
}

/// Update a webhook subscription (JSON Merge Patch).
#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    summary = "Update a webhook subscription (JSON Merge Patch).",
    description = "Its url, events, kinds, description and `disabled`. `disabled: false` \
        resumes delivery with the first event not yet delivered, at once. A new `url` is \
        checked as on create (422 `forbidden_target`). Requires If-Match.",
    params(("id" = Uuid, Path, description = "Subscription id"), etag::IfMatch),
    request_body(content((WebhookPatch = "application/merge-patch+json"), (WebhookPatch = "application/json"))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = WebhookResponse,
         headers(("ETag" = String, description = "`\"<version>\"`"))),
    )
)]
pub async fn update_webhook(
    call: Call,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    check_target(&call, &body).await?;
    record::update::<Webhooks>(&call, (), id.into_inner(), body).await
}

pipeline_handler! {
    /// Delete a webhook subscription.
    #[utoipa::path(
        delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
        summary = "Delete a webhook subscription.",
        description = "Nothing more is sent; its deliveries go with it (the audit log keeps \
            the subscription). Requires If-Match.",
        params(("id" = Uuid, Path, description = "Subscription id"), etag::IfMatch),
        security(("bearer" = [])),
        responses(
            (status = 204, description = "Deleted"),
        )
    )]
    delete_webhook(id: web::Path<Uuid>) => remove::<Webhooks>((), id.into_inner())
}

/// Rotate a webhook subscription's signing secret.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    summary = "Rotate a webhook subscription's signing secret.",
    description = "A new secret, shown this once. For `grace_seconds` (default 0) every \
        delivery carries two signatures in `webhook-signature`, the new secret's and the old \
        one's, so the receiver can switch without losing an event. Requires If-Match.",
    params(("id" = Uuid, Path, description = "Subscription id"), etag::IfMatch),
    request_body(content = rotation::RotateSecret, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rotated, with the new secret", body = WebhookWithSecret,
         headers(("ETag" = String, description = "`\"<version>\"`"))),
    )
)]
pub async fn rotate_webhook_secret(
    call: Call,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let grace = rotation::grace_of(call.parts().2, &body)?;
    let secret = new_secret();
    let written = secret.clone();
    let record =
        record::locked_write::<Webhooks, _>(&call, (), id, true, move |conn, actor, locked| {
            let until = Utc::now() + grace;
            let version = model::rotate_secret(conn, id, locked.version, &written, until)?;
            audit::record(
                conn,
                actor,
                AuditAction::Update,
                Webhooks::ENTITY,
                audit::Event {
                    entity_id: id,
                    related: Vec::new(),
                    version: Some(version),
                    changes: serde_json::json!({
                        "before": {"secret": "rotated"},
                        "after": {"secret": "new", "previous_secret_valid_until": until},
                    }),
                },
            )?;
            Webhooks::load(conn, (), id, false)
        })
        .await?;
    let version = record.version;
    Ok(shown_once(
        etag::tag(&mut HttpResponse::Ok(), version).json(WebhookWithSecret {
            webhook: record,
            secret,
        }),
    ))
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// The attempt's id (UUID v7).
    pub id: Uuid,
    /// The feed event sent: its number, the `webhook-id` and CloudEvents `id` (the same on
    /// every attempt at it).
    pub event_id: String,
    /// Its type, e.g. `company.updated`.
    #[schema(value_type = rules::EventType)]
    pub event_type: String,
    /// 1 for the first attempt at the event, one more for each retry (by hand too).
    pub attempt: i32,
    /// A retry by hand (`POST .../retry`), outside the schedule.
    pub manual: bool,
    /// `delivered` (a 2xx), `gone` (a 410: the subscription was disabled) or `failed`
    /// (another status, a redirect, a timeout, a refused or unreachable address).
    pub outcome: DeliveryOutcome,
    /// The receiver's status code, when it answered.
    pub status_code: Option<i32>,
    /// Why there was no answer, or why it did not count.
    pub error: Option<String>,
    /// Milliseconds from sending to the answer (or the failure).
    pub latency_ms: i32,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// When the event is tried again after this failed attempt; null when it was delivered,
    /// when no retry is left (the subscription was disabled), or for a retry by hand.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryRow> for DeliveryResponse {
    type Error = ApiError;

    fn try_from(row: DeliveryRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id,
            event_id: row.event_seq.to_string(),
            event_type: row.event_type,
            attempt: row.attempt,
            manual: row.manual,
            outcome: stored(&row.outcome)?,
            status_code: row.status_code,
            error: row.error,
            latency_ms: row.latency_ms,
            attempted_at: row.attempted_at,
            next_attempt_at: row.next_attempt_at,
        })
    }
}

/// A subscription's delivery attempts, as a list.
pub struct Deliveries;

impl ListKind for Deliveries {
    const CSV_COLUMNS: &'static [&'static str] = &[
        "id",
        "event_id",
        "event_type",
        "attempt",
        "manual",
        "outcome",
        "status_code",
        "error",
        "latency_ms",
        "attempted_at",
        "next_attempt_at",
    ];
}

/// The process's webhook sender.
fn deliverer_of(call: &Call) -> Result<web::Data<Deliverer>, ApiError> {
    call.parts()
        .2
        .app_data::<web::Data<Deliverer>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("the app has no webhook deliverer"))
}

/// List a subscription's delivery attempts.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    description = "Newest first; keyset-paginated. Every attempt, automatic or by hand.",
    params(("id" = Uuid, Path, description = "Subscription id"), ListRequest<Deliveries, NoFilters>),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of attempts (or CSV)",
         content((PageResponse<DeliveryResponse> = "application/json"), (String = "text/csv")),
         headers(("Link" = String, description = "`<...>; rel=\"next\"` when there is a next page"),
                 ("ETag" = String, description = "Changes whenever the registry changes or an attempt is made"))),
        (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
        (status = 429, response = problems::TooManyRequests),
    )
)]
pub async fn list_deliveries(
    call: Call,
    id: web::Path<Uuid>,
    query: ListRequest<Deliveries, NoFilters>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (params, NoFilters {}) = query.into_parts();
    // 404 first, as for a record's history.
    db::run(call.parts().0, move |conn| {
        Webhooks::load(conn, (), id, false).map(|_| ())
    })
    .await?;
    let (pool, principal, req) = call.parts();
    serve_list(
        pool,
        principal,
        req,
        &params,
        model::deliveries_query(id, params.limit),
        Deliveries::CSV_COLUMNS,
        |_conn, rows: Vec<DeliveryRow>| rows.into_iter().map(DeliveryResponse::try_from).collect(),
    )
    .await
}

/// Send a delivery's event again, by hand.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    summary = "Send a delivery's event again, by hand.",
    description = "Sends the attempt's event once more, now, with the same `webhook-id` and \
        fresh timestamp and signatures (also to a disabled subscription), and answers the \
        new attempt once the receiver has answered (within the delivery timeout). It is \
        recorded among the deliveries with `manual: true`; it does not move the \
        subscription's place in the feed nor its schedule.",
    params(("id" = Uuid, Path, description = "Subscription id"),
           ("delivery_id" = Uuid, Path, description = "The attempt whose event to send")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new attempt, whatever the receiver answered",
         body = DeliveryResponse),
    )
)]
pub async fn retry_delivery(
    call: Call,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery_id) = path.into_inner();
    let (webhook, event) = db::run(call.parts().0, move |conn| {
        let webhook = model::find(conn, id)?.ok_or_else(|| ApiError::not_found(Webhooks::NOUN))?;
        let sent = model::find_delivery(conn, id, delivery_id)?
            .ok_or_else(|| ApiError::not_found("delivery"))?;
        let event = model::event(conn, sent.event_id)?
            .ok_or_else(|| ApiError::internal("a delivery's event is gone"))?;
        Ok((webhook, event))
    })
    .await?;
    let deliverer = deliverer_of(&call)?;
    let outcome = deliverer.send(&webhook, &event).await;
    let now = Utc::now();
    let row = db::transaction(call.parts().0, move |conn| {
        delivery::record_attempt(conn, id, &event, &outcome, true, now, None)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeliveryResponse::try_from(row)?))
}
