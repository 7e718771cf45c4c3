//! Webhook deliveries: the change feed, sent to each subscription in feed order, at least once.
//!
//! Every `lshub serve` runs `workers` delivery loops. A loop claims a due subscription that has
//! an event past its cursor (`models::webhook::claim`: `SKIP LOCKED`, then a lease), reads the
//! events after the cursor, passes over those the subscription does not want, sends the first
//! it does, and records the attempt in the transaction that moves the cursor. Delivery is
//! ordered per subscription (a failing receiver holds back only its own events), and a crash
//! between the receiver's answer and that commit sends the event again with the same
//! `webhook-id`, which is what receivers deduplicate on.

pub mod message;
pub mod target;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::config::WebhookSettings;
use crate::db::{self, PgPool};
use crate::domain::webhook::subscribed;
use crate::domain::{AuditAction, DeliveryOutcome, DisabledReason, OrganisationKind};
use crate::error::ApiError;
use crate::metrics::{Counters, Metrics};
use crate::models::audit::{self, Actor};
use crate::models::webhook::{self as model, DeliveryRow, FeedEvent, Next, WebhookRow};
use target::{GuardedResolver, Policy};

/// The audit entity of subscriptions.
pub const ENTITY: &str = "webhook";

/// Events read past a cursor at a time: those a subscription does not want are passed over in
/// one claim.
const EVENTS_PER_CLAIM: i64 = 200;

/// How long a claim outlives the delivery timeout: time enough to record the attempt.
const LEASE_MARGIN_SECS: f64 = 5.0;

/// The longest wait a receiver's `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// Why there was no answer (or why a redirect was not followed).
    pub error: Option<String>,
    /// A `Retry-After` it sent with a 429 or 503.
    pub retry_after: Option<Duration>,
    /// From sending to the answer's head.
    pub latency: Duration,
}

impl Outcome {
    /// A 2xx.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// A 410: the receiver says the subscription is gone.
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }

    /// What it came to.
    pub fn outcome(&self) -> DeliveryOutcome {
        if self.delivered() {
            DeliveryOutcome::Delivered
        } else if self.gone() {
            DeliveryOutcome::Gone
        } else {
            DeliveryOutcome::Failed
        }
    }
}

/// Sends deliveries: the HTTP client behind the SSRF guard, and the retry schedule. One per
/// process, shared by the delivery loops and the retry-by-hand endpoint.
pub struct Deliverer {
    client: reqwest::Client,
    policy: Policy,
    settings: WebhookSettings,
    outcomes: Counters<DeliveryOutcome>,
}

impl Deliverer {
    /// The client: no redirects followed (a 3xx is a failed attempt), no proxy (it would
    /// reach what the guard refuses), the guard as its resolver, the delivery timeout; each
    /// attempt's outcome counted in `metrics`.
    pub fn new(settings: &WebhookSettings, metrics: &Metrics) -> Result<Self, reqwest::Error> {
        let policy = Policy {
            allow_private: settings.allow_private_targets,
        };
        let timeout = Duration::from_secs_f64(settings.timeout_secs.max(0.1));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::shared(policy))
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("lshub-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            policy,
            settings: settings.clone(),
            outcomes: metrics.deliveries(),
        })
    }

    /// The guard's policy, for checking a subscription's URL when it is written.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Sends `event` to `webhook`, signed with its live secrets. Every attempt, the delivery
    /// loops' and a retry by hand, comes through here, so this is where outcomes are counted.
    pub async fn send(&self, webhook: &WebhookRow, event: &FeedEvent) -> Outcome {
        let outcome = self.attempt(webhook, event).await;
        self.outcomes.inc(outcome.outcome());
        outcome
    }

    async fn attempt(&self, webhook: &WebhookRow, event: &FeedEvent) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| Outcome {
            status: None,
            error: Some(error),
            retry_after: None,
            latency: started.elapsed(),
        };
        let url = match url::Url::parse(&webhook.url) {
            Ok(url) => url,
            Err(e) => return failed(format!("not a valid address: {e}")),
        };
        if let Err(refused) = self.policy.check_url(&url) {
            return failed(refused.to_string());
        }
        let body = match serde_json::to_vec(&message::cloud_event(event)) {
            Ok(body) => body,
            Err(e) => return failed(format!("cannot encode the event: {e}")),
        };
        let now = Utc::now();
        let signed = match message::sign(
            &webhook.signing_secrets(now),
            &event.seq.to_string(),
            now,
            &body,
        ) {
            Ok(signed) => signed,
            Err(e) => return failed(format!("cannot sign the event: {e}")),
        };
        let answer = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, message::CONTENT_TYPE)
            .header("webhook-id", &signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", &signed.signature)
            .body(body)
            .send()
            .await;
        match answer {
            Err(e) => failed(describe(&e)),
            Ok(response) => {
                let status = response.status();
                let retry_after = matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                )
                .then(|| retry_after(response.headers(), now))
                .flatten();
                let error = status
                    .is_redirection()
                    .then(|| "redirects are not followed".to_owned());
                Outcome {
                    status: Some(status.as_u16()),
                    error,
                    retry_after,
                    latency: started.elapsed(),
                }
            }
        }
    }

    /// When to try again after `failures` failed attempts (this one included), or None when
    /// that was the last retry. A receiver's `Retry-After` replaces the schedule's delay.
    pub fn next_attempt(
        &self,
        failures: usize,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let scheduled = *self.settings.retry_schedule_secs.get(failures - 1)?;
        let delay = match outcome.retry_after {
            Some(asked) => asked.min(MAX_RETRY_AFTER),
            None => {
                let jitter = rand::thread_rng().gen_range(0.8..=1.2);
                Duration::from_secs_f64((scheduled * jitter).max(0.0))
            }
        };
        Some(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()))
    }
}

/// A transport error in a sentence, with its cause (reqwest's own message names only the
/// layer).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    (at - now).to_std().ok()
}

/// Starts this replica's delivery loops (none when `workers` is 0). Call inside the actix
/// runtime; the loops end with it.
pub fn start(pool: actix_web::web::Data<PgPool>, deliverer: actix_web::web::Data<Deliverer>) {
    for _ in 0..deliverer.settings.workers {
        actix_web::rt::spawn(deliver_forever(pool.clone(), deliverer.clone()));
    }
}

async fn deliver_forever(
    pool: actix_web::web::Data<PgPool>,
    deliverer: actix_web::web::Data<Deliverer>,
) {
    let idle = Duration::from_millis(deliverer.settings.poll_ms.max(10));
    loop {
        match deliver_next(&pool, &deliverer).await {
            Ok(true) => {}
            Ok(false) => actix_web::rt::time::sleep(idle).await,
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery loop");
                actix_web::rt::time::sleep(idle).await;
            }
        }
    }
}

/// One claim: passes over unwanted events and sends the first wanted one. False when no
/// subscription was due.
pub async fn deliver_next(pool: &PgPool, deliverer: &Deliverer) -> Result<bool, ApiError> {
    let lease = Uuid::now_v7();
    // Past the delivery timeout, so a lease runs out only for a worker that stalled (or
    // died) between sending and recording: its event is then sent again.
    let lease_secs = deliverer.settings.timeout_secs + LEASE_MARGIN_SECS;
    let claimed = db::run(pool, move |conn| {
        let Some(claim) = model::claim(conn, lease, lease_secs)? else {
            return Ok(None);
        };
        let webhook = model::find(conn, claim.webhook_id)?;
        let events = model::events_after(conn, claim.after_txid, claim.after_id, EVENTS_PER_CLAIM)?;
        Ok(webhook.map(|w| (claim, w, events)))
    })
    .await?;
    let Some((claim, webhook, events)) = claimed else {
        return Ok(false);
    };
    let kinds: Vec<OrganisationKind> = webhook
        .kinds
        .iter()
        .filter_map(|k| k.parse().ok())
        .collect();
    let wanted = events
        .iter()
        .position(|e| subscribed(&webhook.events, &kinds, &e.entity, &e.action));
    let Some(at) = wanted else {
        // Nothing wanted in this stretch: the cursor passes it (and the claim ends even when
        // the stretch turned out empty).
        let (txid, id) = events
            .last()
            .map_or((claim.after_txid, claim.after_id), |e| (e.txid, e.id));
        db::run(pool, move |conn| {
            model::release(conn, claim.webhook_id, lease, Next::Past(txid, id))?;
            Ok(())
        })
        .await?;
        return Ok(true);
    };
    let event = events[at].clone();
    let outcome = deliverer.send(&webhook, &event).await;
    let failures = usize::try_from(claim.failures).unwrap_or(0) + 1;
    let now = Utc::now();
    let (next, disable) = if outcome.delivered() {
        (Next::Past(event.txid, event.id), None)
    } else if outcome.gone() {
        (Next::Stop, Some(DisabledReason::Gone))
    } else {
        match deliverer.next_attempt(failures, &outcome, now) {
            Some(at) => (Next::RetryAt(at), None),
            None => (Next::Stop, Some(DisabledReason::Failing)),
        }
    };
    let webhook_id = webhook.id;
    db::transaction(pool, move |conn| {
        if !model::release(conn, webhook_id, lease, next)? {
            tracing::warn!(webhook = %webhook_id, "a webhook lease ran out before its attempt was recorded; the event will be sent again");
            return Ok(());
        }
        let retry_at = match next {
            Next::RetryAt(at) => Some(at),
            _ => None,
        };
        record_attempt(conn, webhook_id, &event, &outcome, false, now, retry_at)?;
        if let Some(reason) = disable {
            disable_for(conn, webhook_id, reason)?;
        }
        Ok(())
    })
    .await?;
    Ok(true)
}

/// Records an attempt at `event` (numbered on from the event's earlier ones); the row.
pub fn record_attempt(
    conn: &mut diesel::PgConnection,
    webhook: Uuid,
    event: &FeedEvent,
    outcome: &Outcome,
    manual: bool,
    at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> Result<DeliveryRow, ApiError> {
    let row = DeliveryRow {
        id: Uuid::now_v7(),
        webhook_id: webhook,
        event_id: event.id,
        event_seq: event.seq,
        event_type: crate::domain::webhook::event_name(&event.entity, &event.action),
        attempt: model::attempts_at(conn, webhook, event.id)? + 1,
        manual,
        outcome: outcome.outcome().as_str().to_owned(),
        status_code: outcome.status.map(i32::from),
        error: outcome.error.clone(),
        latency_ms: i32::try_from(outcome.latency.as_millis()).unwrap_or(i32::MAX),
        attempted_at: at,
        next_attempt_at,
    };
    model::insert_delivery(conn, &row)?;
    Ok(row)
}

/// Disables subscription `webhook` on the hub's account, with its audit event.
fn disable_for(
    conn: &mut diesel::PgConnection,
    webhook: Uuid,
    reason: DisabledReason,
) -> Result<(), ApiError> {
    let reason = reason.as_str();
    if let Some(version) = model::disable(conn, webhook, reason)? {
        tracing::warn!(webhook = %webhook, reason, "webhook subscription disabled");
        audit::record(
            conn,
            &Actor::system(),
            AuditAction::Update,
            ENTITY,
            audit::Event {
                entity_id: webhook,
                related: Vec::new(),
                version: Some(version),
                changes: serde_json::json!({
                    "before": {"disabled": false, "disabled_reason": null},
                    "after": {"disabled": true, "disabled_reason": reason},
                }),
            },
        )?;
    }
    Ok(())
}
