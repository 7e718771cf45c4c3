//! `/metrics`: the service's series in Prometheus' text format, behind the scrape token when
//! one is set.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::organisation::Pool;
use crate::config::Secret;
use crate::db;
use crate::error::ApiError;
use crate::http::machinery::problems;
use crate::metrics::{Metrics, Reading};
use crate::models::change;

/// How long the feed-lag statement may run in PostgreSQL.
const FEED_LAG_STATEMENT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a scrape waits for the feed's lag, checkout included: a database that is down or a
/// pool that is exhausted costs the scrape this much, never its answer.
const FEED_LAG_WAIT: Duration = Duration::from_secs(1);

/// The token a scrape must present (`LSHUB_METRICS_TOKEN`), kept as its digest: comparing
/// digests in constant time says nothing of the token, not even its length. No `Debug`: not
/// even the digest goes to a log.
pub struct ScrapeToken {
    digest: Option<[u8; 32]>,
}

impl ScrapeToken {
    /// The token the settings name, if any.
    pub fn new(token: Option<&Secret>) -> Self {
        Self {
            digest: token.map(|t| Sha256::digest(t.expose().as_bytes()).into()),
        }
    }

    /// Whether `req` may scrape: always without a token set, else with that bearer token.
    fn admit(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(expected) = &self.digest else {
            return Ok(());
        };
        let given: [u8; 32] = Sha256::digest(crate::auth::bearer_token(req)?.as_bytes()).into();
        if bool::from(given.ct_eq(expected)) {
            Ok(())
        } else {
            Err(ApiError::invalid_token("not the metrics token"))
        }
    }
}

/// The service's series, in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    description = "Prometheus text exposition (version 0.0.4) of the series the README lists. \
        When the server's `LSHUB_METRICS_TOKEN` is set, requires `Authorization: Bearer` with \
        that token (not an access token); unset, it is open, and the path should be kept off \
        the public load balancer. Answers 200 while the database is down: the series kept in \
        memory, the pool's, and `lshub_feed_lag_read_ok 0` in place of the feed's lag.",
    responses(
        (status = 200, description = "The series", content_type = "text/plain; version=0.0.4",
            body = String),
        (status = 401, response = problems::Unauthorized),
    ))]
pub async fn get_metrics(
    req: HttpRequest,
    metrics: web::Data<Metrics>,
    token: web::Data<ScrapeToken>,
    pool: Pool,
    replicas: web::Data<db::ReadReplicas>,
) -> Result<HttpResponse, ApiError> {
    token.admit(&req)?;
    let lag = db::run(&pool, |conn| {
        Ok(change::feed_lag(conn, FEED_LAG_STATEMENT_TIMEOUT)?)
    });
    let feed = match tokio::time::timeout(FEED_LAG_WAIT, lag).await {
        Ok(Ok(lag)) => Some(lag),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: the feed's lag could not be read");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: the feed's lag was not read in time");
            None
        }
    };
    let state = pool.state();
    let text = metrics
        .render(&Reading {
            pool_max: pool.max_size(),
            pool_connections: state.connections,
            pool_idle: state.idle_connections,
            feed,
            replicas: replicas.status(),
        })
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text))
}
