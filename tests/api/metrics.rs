//! `/metrics`: the series in Prometheus' text format after real requests, rate-limit
//! refusals, webhook deliveries and a held-back feed; the scrape token; and a scrape while
//! PostgreSQL cannot be reached.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use diesel::connection::SimpleConnection;
use lshub::config::Secret;
use lshub::domain::Role;
use serde_json::json;
use uuid::Uuid;

use crate::auth::password_login;
use crate::helpers::*;
use crate::webhooks::{self, Receiver, Reply};

/// One sample line of the exposition: its series name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, parsed.
#[derive(Debug)]
pub struct Scrape {
    samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the text format (0.0.4): `name{label="value",...} value` lines, comments aside.
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a value");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("}"))),
                    None => (series, BTreeMap::new()),
                };
                Sample {
                    name: name.to_owned(),
                    labels,
                    value: match value {
                        "+Inf" => f64::INFINITY,
                        v => v.parse().unwrap_or_else(|_| panic!("a number: {line}")),
                    },
                }
            })
            .collect();
        Self { samples }
    }

    /// The value of the one sample of `name` with exactly `labels`.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert!(found.len() <= 1, "{name}{labels:?} twice: {found:?}");
        found.first().map(|s| s.value)
    }

    /// Like [`Self::value`], for a sample that must be there.
    #[track_caller]
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in {:#?}", self.names()))
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.samples.iter().map(|s| s.name.clone()).collect();
        names.dedup();
        names
    }

    /// Every value of `label` across the samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label=\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (_, '\\') => match chars.next().expect("an escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

const REQUESTS: &str = "lshub_http_request_duration_seconds_count";

pub async fn scrape(app: &TestApp) -> Scrape {
    let res = app.get("/metrics").send().await;
    res.assert_status(200);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4")
    );
    Scrape::parse(std::str::from_utf8(&res.body).expect("UTF-8"))
}

/// Scrapes until `done` holds (bounded), for what background work counts.
async fn scrape_until(app: &TestApp, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = Instant::now();
    loop {
        let now = scrape(app).await;
        if done(&now) {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still not there: {now:#?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn requests_are_counted_by_method_route_template_and_status() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/companies")
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    app.get(&format!("/api/v1/companies/{}", Uuid::now_v7()))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    for _ in 0..2 {
        app.get(&format!("/no/such/{}", Uuid::now_v7()))
            .send()
            .await
            .assert_problem(404, "not_found");
    }
    // A method a client made up, on a known path: 405, counted under one fixed method.
    app.request(Method::from_bytes(b"BREW").expect("a method"), "/healthz")
        .send()
        .await
        .assert_problem(405, "method_not_allowed");

    let first = scrape(&app).await;
    let get = |route, status| [("method", "GET"), ("route", route), ("status", status)];
    assert_eq!(first.get(REQUESTS, &get("/api/v1/companies", "200")), 1.0);
    assert_eq!(
        first.get(REQUESTS, &get("/api/v1/companies/{id}", "404")),
        1.0
    );
    assert_eq!(first.get(REQUESTS, &get("unmatched", "404")), 2.0);
    assert_eq!(
        first.get(
            REQUESTS,
            &[
                ("method", "other"),
                ("route", "/healthz"),
                ("status", "405")
            ]
        ),
        1.0
    );
    // The paths as sent and the invented method are in no label.
    let routes = first.label_values(REQUESTS, "route");
    assert_eq!(
        routes,
        [
            "/api/v1/companies",
            "/api/v1/companies/{id}",
            "/healthz",
            "unmatched"
        ],
        "{routes:?}"
    );
    assert!(!first
        .label_values(REQUESTS, "method")
        .contains(&"BREW".to_owned()));
    // A histogram: its +Inf bucket holds every request, and the sum is their latency.
    let bucket = first.get(
        "lshub_http_request_duration_seconds_bucket",
        &[
            ("method", "GET"),
            ("route", "unmatched"),
            ("status", "404"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(bucket, 2.0);
    assert!(
        first.get(
            "lshub_http_request_duration_seconds_sum",
            &get("unmatched", "404")
        ) > 0.0
    );

    // The scrape itself is counted once it has answered.
    let second = scrape(&app).await;
    assert_eq!(second.get(REQUESTS, &get("/metrics", "200")), 1.0);
    assert_eq!(second.get(REQUESTS, &get("unmatched", "404")), 2.0);
}

#[actix_web::test]
async fn the_pool_its_checkouts_and_the_feed_lag_are_read_at_scrape_time() {
    let app = TestApp::spawn().await;
    app.me_as(Role::Viewer).await.assert_status(200);
    let now = scrape(&app).await;
    // The helpers' pool holds 4.
    assert_eq!(now.get("lshub_db_pool_max_connections", &[]), 4.0);
    let open = now.get("lshub_db_pool_connections", &[]);
    let idle = now.get("lshub_db_pool_idle_connections", &[]);
    assert!((1.0..=4.0).contains(&open), "{open}");
    assert!(idle <= open, "{idle} idle of {open}");
    assert!(now.get("lshub_db_pool_checkout_wait_seconds_count", &[]) >= 1.0);
    assert_eq!(now.get("lshub_db_pool_checkout_timeouts_total", &[]), 0.0);
    assert_eq!(now.get("lshub_feed_lag_read_ok", &[]), 1.0);
    assert!(now.get("lshub_feed_lag_events", &[]) >= 0.0);
    assert!(now.get("lshub_feed_lag_seconds", &[]) >= 0.0);
}

#[actix_web::test]
async fn the_feed_lag_counts_committed_events_an_open_transaction_holds_back() {
    let app = TestApp::spawn().await;
    // A transaction with an id, left open: every event committed after it stays behind the
    // feed's fence until it ends.
    let mut holder = app.conn();
    holder
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .expect("an open transaction");
    app.create_company(webhooks::company("Held Back Farma"))
        .await;
    app.create_company(webhooks::company("Also Held Farma"))
        .await;
    let held = scrape(&app).await;
    assert!(held.get("lshub_feed_lag_events", &[]) >= 2.0, "{held:#?}");
    assert!(held.get("lshub_feed_lag_seconds", &[]) > 0.0);
    // The feed agrees: it serves neither yet.
    let feed = app.get("/api/v1/changes").role(Role::Viewer).send().await;
    feed.assert_status(200);
    assert_eq!(feed.json()["data"], json!([]));

    holder.batch_execute("ROLLBACK").expect("rollback");
    // Other tests' transactions share the cluster's fence: wait for them to pass too.
    let caught_up =
        scrape_until(&app, |s| s.value("lshub_feed_lag_events", &[]) == Some(0.0)).await;
    assert_eq!(caught_up.get("lshub_feed_lag_seconds", &[]), 0.0);
}

#[actix_web::test]
async fn rate_limit_rejections_are_counted_by_the_limit_that_refused() {
    let app = TestApp::spawn_with(|s| {
        let limits = &mut s.http.rate_limits;
        limits.per_minute = 1;
        limits.burst = 1;
        limits.full_cost = 1;
        limits.not_modified_cost = 1;
        limits.token_per_ip = 3;
        limits.token_per_username = 1;
        limits.token_window_secs = 60;
    })
    .await;
    let rejections =
        |s: &Scrape, policy| s.get("lshub_rate_limit_rejections_total", &[("policy", policy)]);
    // Every limit is there before anything is refused.
    let before = scrape(&app).await;
    for policy in ["api", "token-ip", "token-account"] {
        assert_eq!(rejections(&before, policy), 0.0, "{policy}");
    }

    app.me_as(Role::Viewer).await.assert_status(200);
    app.me_as(Role::Viewer)
        .await
        .assert_problem(429, "rate_limited");

    // One account's second attempt is refused by its own limit; a third and a fourth
    // account from the same address spend, then exceed, the address's.
    let viewer = email_for(Role::Viewer);
    assert_eq!(password_login(&app, &viewer, "wrong").await.status, 400);
    assert_eq!(password_login(&app, &viewer, "wrong").await.status, 429);
    assert_eq!(
        password_login(&app, "nobody@example.com", "wrong")
            .await
            .status,
        400
    );
    assert_eq!(
        password_login(&app, "noone@example.com", "wrong")
            .await
            .status,
        429
    );

    let after = scrape(&app).await;
    assert_eq!(rejections(&after, "api"), 1.0);
    assert_eq!(rejections(&after, "token-account"), 1.0);
    assert_eq!(rejections(&after, "token-ip"), 1.0);
    assert_eq!(
        after.label_values("lshub_rate_limit_rejections_total", "policy"),
        ["api", "token-account", "token-ip"]
    );
    // Refused before routing, the 429s still carry their route's template.
    let answers = |method: &str, route: &str, status: &str| {
        after.get(
            REQUESTS,
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(answers("GET", "/api/v1/me", "429"), 1.0);
    assert_eq!(answers("POST", "/api/v1/auth/token", "429"), 2.0);
    assert_eq!(answers("POST", "/api/v1/auth/token", "400"), 2.0);
}

#[actix_web::test]
async fn webhook_delivery_attempts_are_counted_by_outcome() {
    let app = webhooks::app_with(|_| {}).await;
    // The first attempt fails, its retry is delivered.
    let receiver = Receiver::start(vec![Reply::status(500)]);
    webhooks::subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    app.create_company(webhooks::company("Counted Farma")).await;
    receiver.wait_for(2, Duration::from_secs(30)).await;

    let deliveries =
        |s: &Scrape, outcome| s.value("lshub_webhook_deliveries_total", &[("outcome", outcome)]);
    let now = scrape_until(&app, |s| deliveries(s, "delivered") == Some(1.0)).await;
    assert_eq!(deliveries(&now, "failed"), Some(1.0));
    assert_eq!(deliveries(&now, "gone"), Some(0.0));
}

#[actix_web::test]
async fn a_request_cut_off_by_the_whole_request_timeout_is_counted_with_its_503() {
    use std::io::{Read, Write};
    let app = TestApp::spawn_with(|s| s.http.request_timeout_secs = 1).await;
    // A body announced and never sent: the handler waits for it until the timeout answers.
    // The socket blocks a thread of its own, not the test's runtime.
    let address = app.address.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /api/v1/companies HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        app.token(Role::Editor)
    );
    let status_line = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        stream.write_all(head.as_bytes()).expect("send the head");
        let mut status_line = [0u8; 12];
        stream.read_exact(&mut status_line).expect("an answer");
        status_line
    })
    .await
    .expect("the slow client");
    assert_eq!(&status_line, b"HTTP/1.1 503");

    let now = scrape(&app).await;
    // Its route is lost with the request the timeout dropped: one fixed value stands for it.
    assert_eq!(
        now.get(
            REQUESTS,
            &[("method", "POST"), ("route", "unknown"), ("status", "503")]
        ),
        1.0
    );
}

#[actix_web::test]
async fn with_a_scrape_token_set_only_that_bearer_token_may_scrape() {
    const TOKEN: &str = "scrape-token-0123456789";
    let app = TestApp::spawn_with(|s| s.http.metrics_token = Some(Secret::new(TOKEN))).await;

    let anonymous = app.get("/metrics").send().await;
    anonymous.assert_problem(401, "unauthorized");
    assert_eq!(
        anonymous.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"lshub\"")
    );
    for wrong in ["scrape-token-012345678", "scrape-token-01234567890", ""] {
        let res = app.get("/metrics").bearer(wrong).send().await;
        res.assert_problem(401, "unauthorized");
    }
    // An access token is no scrape token, whatever its role.
    let res = app.get("/metrics").role(Role::Admin).send().await;
    let body = res.assert_problem(401, "unauthorized");
    assert!(!body.to_string().contains(TOKEN));
    assert!(res
        .header("www-authenticate")
        .is_some_and(|v| v.contains("invalid_token")));

    let res = app.get("/metrics").bearer(TOKEN).send().await;
    res.assert_status(200);
    let now = Scrape::parse(std::str::from_utf8(&res.body).expect("UTF-8"));
    // The refusals were answered and counted like any request.
    assert_eq!(
        now.get(
            REQUESTS,
            &[("method", "GET"), ("route", "/metrics"), ("status", "401")]
        ),
        5.0
    );
}

#[actix_web::test]
async fn the_scrape_answers_while_the_database_is_unreachable() {
    let app = TestApp::spawn_with(|s| {
        s.db.database_url = "postgres://postgres@127.0.0.1:1/nothing".into();
        s.db.checkout_timeout_secs = 1;
    })
    .await;
    app.get("/healthz").send().await.assert_status(200);
    app.get("/readyz")
        .send()
        .await
        .assert_problem(503, "unavailable");

    let now = scrape(&app).await;
    let get = |route, status| [("method", "GET"), ("route", route), ("status", status)];
    assert_eq!(now.get(REQUESTS, &get("/healthz", "200")), 1.0);
    assert_eq!(now.get(REQUESTS, &get("/readyz", "503")), 1.0);
    assert!(now.get("lshub_db_pool_checkout_timeouts_total", &[]) >= 1.0);
    assert_eq!(now.get("lshub_db_pool_connections", &[]), 0.0);
    // The lag is left out, not shown as 0, and the scrape says why.
    assert_eq!(now.get("lshub_feed_lag_read_ok", &[]), 0.0);
    assert!(!now.has("lshub_feed_lag_events"));
    assert!(!now.has("lshub_feed_lag_seconds"));
}
