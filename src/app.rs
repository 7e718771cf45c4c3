//! Building the application: shared state, the `App` with every route and middleware, and the
//! HTTP server. `main` and the integration tests both start the service through [`server`].

use std::net::TcpListener;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpRequest, HttpServer};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::auth::revocation::Revocations;
use crate::auth::{PasswordHasher, TokenService};
use crate::config::{HttpSettings, Settings};
use crate::db::listener::{self, Follower};
use crate::db::{self, PgPool};
use crate::error::ApiError;
use crate::http::machinery::csv::ExportPermits;
use crate::http::machinery::etag::RecordTags;
use crate::http::machinery::idempotency::{self, IdempotencySettings, IDEMPOTENT_REPLAYED};
use crate::http::machinery::metrics::observe_requests;
use crate::http::machinery::middleware::{request_context, RequestLimits, X_REQUEST_ID};
use crate::http::machinery::rate_limit::{rate_limit, ApiLimiter, TokenLimits};
use crate::http::resources::metrics::ScrapeToken;
use crate::metrics::Metrics;
use crate::models::audit::ChangeCounter;
use crate::webhooks::Deliverer;

/// Largest JSON body accepted by ordinary endpoints (imports will have their own limit).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The most of a body the `Idempotency-Key` middleware buffers to hash it: well above every
/// endpoint's own limit (imports included), so each still answers its own 413.
pub const IDEMPOTENT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Why the service's state cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The signing keys are missing or too short.
    #[error(transparent)]
    Keys(#[from] crate::auth::tokens::KeyError),
    /// The webhook client cannot be built (no TLS roots).
    #[error("cannot build the webhook HTTP client: {0}")]
    Webhooks(reqwest::Error),
    /// The metrics registry refused a series (a name declared twice).
    #[error("cannot register the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What every handler may read.
#[derive(Clone)]
pub struct AppState {
    /// Database pool.
    pub pool: web::Data<PgPool>,
    /// Access-token issuer and verifier.
    pub tokens: web::Data<TokenService>,
    /// Argon2 behind its concurrency cap.
    pub hasher: web::Data<PasswordHasher>,
    /// Request limits.
    pub limits: web::Data<RequestLimits>,
    /// The cap on concurrent CSV exports.
    pub exports: web::Data<ExportPermits>,
    /// Disabled users and revoked clients, kept current by `LISTEN`.
    pub revocations: web::Data<Revocations>,
    /// The change counter behind list ETags, kept current by `LISTEN`.
    pub changes: web::Data<ChangeCounter>,
    /// The versions of records read lately, answering single-record polls while the counter
    /// stands still.
    pub record_tags: web::Data<RecordTags>,
    /// The streaming replicas GETs read from (none unless `LSHUB_DATABASE_READ_URL`).
    pub replicas: web::Data<db::ReadReplicas>,
    /// How `Idempotency-Key` answers are kept.
    pub idempotency: web::Data<IdempotencySettings>,
    /// The per-principal limit, in this replica's memory.
    pub api_limiter: web::Data<ApiLimiter>,
    /// The token endpoint's limits, in the database.
    pub token_limits: web::Data<TokenLimits>,
    /// Webhook deliveries' HTTP client and schedule.
    pub deliverer: web::Data<Deliverer>,
    /// This App's series, in its own registry.
    pub metrics: web::Data<Metrics>,
    /// What `/metrics` asks of a scraper.
    pub scrape_token: web::Data<ScrapeToken>,
}

impl AppState {
    /// State from settings (the pool connects lazily).
    pub fn new(settings: &Settings) -> Result<Self, StateError> {
        let revocations = web::Data::new(Revocations::default());
        let changes = web::Data::new(ChangeCounter::default());
        let metrics = Metrics::new()?;
        let replicas = db::ReadReplicas::new(&settings.db);
        db::ReadReplicas::monitor(&replicas, &settings.db.database_url);
        let mut followers: Vec<std::sync::Arc<dyn Follower>> = vec![
            revocations.clone().into_inner(),
            changes.clone().into_inner(),
        ];
        if replicas.any() {
            followers.push(replicas.clone());
        }
        listener::start(
            &settings.db.database_url,
            Duration::from_millis(settings.db.listener_reconnect_ms),
            followers,
        );
        Ok(Self {
            pool: web::Data::new(db::build_pool(&settings.db, metrics.pool_events())),
            tokens: web::Data::new(TokenService::new(&settings.auth)?),
            hasher: web::Data::new(PasswordHasher::new(settings.auth.password_hash_concurrency)),
            limits: web::Data::new(RequestLimits {
                timeout: Duration::from_secs(settings.http.request_timeout_secs.max(1)),
            }),
            exports: web::Data::new(ExportPermits::new(settings.http.max_csv_exports)),
            revocations,
            changes,
            record_tags: web::Data::new(RecordTags::default()),
            replicas: web::Data::from(replicas),
            idempotency: web::Data::new(IdempotencySettings {
                ttl: Duration::from_secs(settings.http.idempotency_ttl_secs.max(1)),
                max_body: IDEMPOTENT_BODY_LIMIT,
            }),
            api_limiter: web::Data::new(ApiLimiter::new(&settings.http.rate_limits, &metrics)),
            token_limits: web::Data::new(TokenLimits::new(&settings.http.rate_limits, &metrics)),
            deliverer: web::Data::new(
                Deliverer::new(&settings.http.webhooks, &metrics).map_err(StateError::Webhooks)?,
            ),
            scrape_token: web::Data::new(ScrapeToken::new(settings.http.metrics_token.as_ref())),
            metrics: web::Data::new(metrics),
        })
    }
}

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge("the JSON body is too large".into())
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("Content-Type must be application/json".into())
        }
        other => ApiError::malformed(format!("the body is not valid JSON: {other}")),
    }
    .into()
}

fn query_error(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::malformed(format!("invalid query string: {err}")).into()
}

fn path_error(err: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::malformed(format!("invalid path parameter: {err}")).into()
}

fn form_error(err: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    match err {
        UrlencodedError::Overflow { .. } => {
            ApiError::PayloadTooLarge("the form body is too large".into())
        }
        UrlencodedError::ContentType => ApiError::UnsupportedMediaType(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ),
        other => ApiError::malformed(format!("invalid form body: {other}")),
    }
    .into()
}

fn cors(settings: &HttpSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            X_REQUEST_ID,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::LINK,
            header::LOCATION,
            header::RETRY_AFTER,
            X_REQUEST_ID,
            IDEMPOTENT_REPLAYED,
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(3600);
    for origin in settings
        .cors_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        // `*` opens the API to every origin (tokens travel in headers, not cookies).
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// Starts serving on `listener`: the one place where the `App` is assembled. Also starts the
/// sweep of expired idempotency keys and the folding of the statistics rollup (so it must be
/// called inside the actix runtime).
pub fn server(
    listener: TcpListener,
    state: AppState,
    settings: &HttpSettings,
) -> std::io::Result<Server> {
    let http = settings.clone();
    actix_web::rt::spawn(idempotency::sweep_expired(
        state.pool.clone(),
        state.idempotency.ttl,
    ));
    crate::webhooks::start(state.pool.clone(), state.deliverer.clone());
    actix_web::rt::spawn(crate::http::resources::stats::fold_rollup(
        state.pool.clone(),
        crate::http::resources::stats::ROLLUP_FOLD_PERIOD,
    ));
    let cors_enabled = !http.cors_origins.is_empty();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.pool.clone())
            .app_data(state.tokens.clone())
            .app_data(state.hasher.clone())
            .app_data(state.limits.clone())
            .app_data(state.exports.clone())
            .app_data(state.revocations.clone())
            .app_data(state.changes.clone())
            .app_data(state.record_tags.clone())
            .app_data(state.replicas.clone())
            .app_data(state.idempotency.clone())
            .app_data(state.api_limiter.clone())
            .app_data(state.token_limits.clone())
            .app_data(state.deliverer.clone())
            .app_data(state.metrics.clone())
            .app_data(state.scrape_token.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_BODY_LIMIT)
                    .error_handler(json_error),
            )
            .app_data(
                web::FormConfig::default()
                    .limit(JSON_BODY_LIMIT)
                    .error_handler(form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::PayloadConfig::new(JSON_BODY_LIMIT))
            .configure(crate::http::routes)
            .service(SwaggerUi::new("/docs/{_:.*}").config(Config::from("/openapi.json")))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound(
                    "no resource at this path".into(),
                ))
            }))
            // Innermost: the counter is read again after the write's transaction committed.
            .wrap(from_fn(crate::http::machinery::etag::see_own_writes))
            // Then: a replay gets CORS headers, and the whole-request timeout and the
            // request id of `request_context` (outermost) cover the key's claim and release.
            .wrap(from_fn(idempotency::idempotency))
            // Inside CORS, so that a browser can read a 429 and its headers.
            .wrap(from_fn(rate_limit))
            // Before anything authenticates: while the listener reconnects, a request's
            // revocation is read from the database here.
            .wrap(from_fn(crate::auth::revocation::read_while_unknown))
            .wrap(Condition::new(cors_enabled, cors(&http)))
            .wrap(from_fn(request_context))
            // Outermost: the whole request's latency, and the status the client got.
            .wrap(from_fn(observe_requests))
    })
    // actix only times out the request head; the request middleware bounds the whole request.
    // The head gets no longer than the whole request, so a slowloris is cut off as soon.
    .client_request_timeout(Duration::from_secs(
        settings.request_timeout_secs.clamp(1, 10),
    ))
    .client_disconnect_timeout(Duration::from_secs(5))
    .keep_alive(Duration::from_secs(75))
    // SIGTERM/SIGINT: stop accepting, let in-flight requests finish for up to this long.
    .shutdown_timeout(settings.shutdown_timeout_secs)
    .listen(listener)?;
    if let Some(workers) = settings.workers {
        server = server.workers(workers.max(1));
    }
    Ok(server.run())
}
