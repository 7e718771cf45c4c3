//! Webhooks: subscriptions (admins), and the change feed delivered to a real receiver over
//! HTTP, signed per Standard Webhooks (verified with its reference library), as CloudEvents,
//! retried on its schedule, never to a private address unless allowed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use lshub::config::Settings;
use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .expect("ascii")
            .to_owned()
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct Script {
    received: Mutex<Vec<Received>>,
    replies: Mutex<VecDeque<Reply>>,
}

/// A webhook receiver on a free local port: it records every request and answers the
/// scripted replies in turn, then 200.
pub(crate) struct Receiver {
    pub(crate) url: String,
    script: Arc<Script>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub(crate) fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Script {
            received: Mutex::default(),
            replies: Mutex::new(replies.into()),
        });
        let shared = script.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(shared.clone()))
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            script,
            server: handle,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived (within `bound`).
    pub(crate) async fn wait_for(&self, n: usize, bound: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < bound,
                "{} of {n} deliveries after {bound:?}",
                got.len()
            );
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, script: web::Data<Script>) -> HttpResponse {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers() {
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    script.received.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let reply = script
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::status(200));
    actix_web::rt::time::sleep(reply.delay).await;
    let mut answer =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in reply.headers {
        answer.insert_header((name, value));
    }
    answer.finish()
}

/// An app that may send to the local receiver, retrying on a schedule of tenths of seconds.
pub(crate) async fn app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    TestApp::spawn_with(|s| {
        s.http.webhooks.allow_private_targets = true;
        s.http.webhooks.retry_schedule_secs = vec![0.2, 0.2, 0.2];
        s.http.webhooks.poll_ms = 50;
        adjust(s);
    })
    .await
}

pub(crate) async fn subscribe(app: &TestApp, body: Value) -> Value {
    let res = app
        .post("/api/v1/webhooks")
        .role(Role::Admin)
        .json(&body)
        .send()
        .await;
    res.assert_status(201);
    res.json()
}

fn verify(secret: &str, got: &Received) {
    standardwebhooks::Webhook::new(secret)
        .expect("a secret")
        .verify(&got.body, &got.headers)
        .unwrap_or_else(|e| panic!("the signature does not verify with {secret}: {e}"));
}

pub(crate) fn company(name: &str) -> Value {
    json!({"name": name, "sector": "biotech", "address": {"city": "Milano", "province": "MI"}})
}

async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/api/v1/webhooks/{webhook}/deliveries"))
        .role(Role::Admin)
        .send()
        .await;
    res.assert_status(200);
    res.json()["data"].as_array().unwrap().clone()
}

/// Waits until the subscription's newest attempt satisfies `done`.
async fn until_delivery(
    app: &TestApp,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let all = deliveries(app, webhook).await;
        if done(&all) {
            return all;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "deliveries: {all:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_change_is_delivered_as_a_signed_cloud_event_that_the_reference_library_verifies() {
    let app = app_with(|_| {}).await;
    let receiver = Receiver::start(Vec::new());
    let hook = subscribe(
        &app,
        json!({"url": receiver.url, "events": ["*"], "description": "mirror"}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(hook["disabled"], false);
    // Shown once: a read has no secret.
    let read = app
        .get(&format!(
            "/api/v1/webhooks/{}",
            hook["id"].as_str().unwrap()
        ))
        .role(Role::Admin)
        .send()
        .await;
    read.assert_status(200);
    assert!(read.json().get("secret").is_none());

    let created = app.create_company(company("Webhook Farma")).await;
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    let delivery = &got[0];
    verify(&secret, delivery);
    assert_eq!(
        delivery.header("content-type"),
        "application/cloudevents+json"
    );
    let event = delivery.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["source"], "/api/v1");
    assert_eq!(event["type"], "org.lshub.company.created");
    assert_eq!(event["subject"], created["id"]);
    assert_eq!(event["data"]["id"], created["id"]);
    assert_eq!(event["data"]["kind"], "company");
    assert_eq!(event["data"]["version"], 1);
    let changed: Vec<&str> = event["data"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(changed.contains(&"name"), "{changed:?}");
    // Names only: no value of the record travels.
    assert!(!String::from_utf8_lossy(&delivery.body).contains("Webhook Farma"));
    // The id is the feed's sequence, and the webhook-id.
    let feed = app
        .get("/api/v1/changes")
        .role(Role::Viewer)
        .send()
        .await
        .json();
    let seq = feed["data"].as_array().unwrap().last().unwrap()["seq"].clone();
    assert_eq!(event["id"], seq.to_string());
    assert_eq!(delivery.header("webhook-id"), seq.to_string());
    let stamp: i64 = delivery.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - stamp).abs() < 30);

    let all = until_delivery(&app, hook["id"].as_str().unwrap(), |d| !d.is_empty()).await;
    assert_eq!(all[0]["outcome"], "delivered");
    assert_eq!(all[0]["status_code"], 200);
    assert_eq!(all[0]["attempt"], 1);
    assert_eq!(all[0]["event_type"], "company.created");
    assert_eq!(all[0]["event_id"], seq.to_string());
    assert!(all[0]["latency_ms"].as_i64().unwrap() >= 0);
}

#[actix_web::test]
async fn events_and_kinds_filter_what_is_sent_in_feed_order() {
    let app = app_with(|_| {}).await;
    let receiver = Receiver::start(Vec::new());
    subscribe(
        &app,
        json!({"url": receiver.url, "events": ["company.updated", "goal.created"], "kinds": ["company"]}),
    )
    .await;
    let first = app.create_company(company("Filtro Uno")).await;
    let id = first["id"].as_str().unwrap();
    for (i, name) in ["Filtro Due", "Filtro Tre"].iter().enumerate() {
        app.patch(&format!("/api/v1/companies/{id}"))
            .role(Role::Editor)
            .header("If-Match", &format!("\"{}\"", i + 1))
            .merge_patch(&json!({"name": name}))
            .send()
            .await
            .assert_status(200);
    }
    let irccs = app
        .post("/api/v1/irccs")
        .role(Role::Editor)
        .json(
            &json!({"name": "IRCCS Filtro", "address": {"city": "Milano", "province": "MI"},
                      "specialisations": ["oncology"]}),
        )
        .send()
        .await;
    irccs.assert_status(201);
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), 2, "only the two company updates: {got:?}");
    let versions: Vec<i64> = got_after
        .iter()
        .map(|r| {
            let e = r.json();
            assert_eq!(e["type"], "org.lshub.company.updated");
            e["data"]["version"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(versions, [2, 3], "in feed order");
}

#[actix_web::test]
async fn failures_are_retried_on_the_schedule_honouring_retry_after_with_one_webhook_id() {
    let app = app_with(|_| {}).await;
    let receiver = Receiver::start(vec![
        Reply {
            status: 503,
            headers: vec![("Retry-After", "1".to_owned())],
            delay: Duration::ZERO,
        },
        Reply::status(500),
        Reply::status(200),
    ]);
    let hook = subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    let secret = hook["secret"].as_str().unwrap();
    app.create_company(company("Riprova")).await;
    let got = receiver.wait_for(3, Duration::from_secs(30)).await;
    let ids: Vec<String> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for r in &got {
        verify(secret, r);
    }
    // Retry-After: 1 was waited out; the scheduled 0.2 s (with jitter) came next.
    let waited = got[1].at - got[0].at;
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    let second = got[2].at - got[1].at;
    assert!(second < Duration::from_millis(900), "{second:?}");
    let all = until_delivery(&app, hook["id"].as_str().unwrap(), |d| d.len() == 3).await;
    let outcomes: Vec<(&str, i64, i64)> = all
        .iter()
        .map(|d| {
            (
                d["outcome"].as_str().unwrap(),
                d["status_code"].as_i64().unwrap(),
                d["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("delivered", 200, 3),
            ("failed", 500, 2),
            ("failed", 503, 1)
        ],
        "newest first"
    );
    assert!(all[2]["next_attempt_at"].is_string());
    assert!(all[0]["next_attempt_at"].is_null());
}

#[actix_web::test]
async fn a_410_disables_the_subscription_and_enabling_it_resumes_with_that_event() {
    let app = app_with(|_| {}).await;
    let receiver = Receiver::start(vec![Reply::status(410)]);
    let hook = subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    app.create_company(company("Sparita")).await;
    receiver.wait_for(1, Duration::from_secs(30)).await;
    let all = until_delivery(&app, &id, |d| !d.is_empty()).await;
    assert_eq!(all[0]["outcome"], "gone");
    let read = app
        .get(&format!("/api/v1/webhooks/{id}"))
        .role(Role::Admin)
        .send()
        .await
        .json();
    assert_eq!(read["disabled"], true);
    assert_eq!(read["disabled_reason"], "gone");
    assert_eq!(read["version"], 2);
    let history = app
        .get(&format!("/api/v1/audit-events?entity_id={id}"))
        .role(Role::Admin)
        .send()
        .await;
    history.assert_status(200);
    let events = history.json()["data"].as_array().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e["actor_kind"] == "system"
                && e["changes"]["after"]["disabled_reason"] == "gone"),
        "{events:?}"
    );
    // Disabled: the next change waits.
    app.create_company(company("In Attesa")).await;
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1);
    let enabled = app
        .patch(&format!("/api/v1/webhooks/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"disabled": false}))
        .send()
        .await;
    enabled.assert_status(200);
    assert!(enabled.json()["disabled_reason"].is_null());
    let got = receiver.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(
        got[1].header("webhook-id"),
        got[0].header("webhook-id"),
        "the same event again"
    );
    assert_ne!(got[2].header("webhook-id"), got[0].header("webhook-id"));
}

#[actix_web::test]
async fn after_the_last_retry_the_subscription_is_disabled_as_failing() {
    let app = app_with(|s| s.http.webhooks.retry_schedule_secs = vec![0.1]).await;
    let receiver = Receiver::start(vec![Reply::status(500), Reply::status(502)]);
    let hook = subscribe(
        &app,
        json!({"url": receiver.url, "events": ["company.created"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    app.create_company(company("Sempre Giù")).await;
    receiver.wait_for(2, Duration::from_secs(30)).await;
    let all = until_delivery(&app, &id, |d| d.len() == 2).await;
    assert!(
        all[0]["next_attempt_at"].is_null(),
        "no retry left: {all:?}"
    );
    let started = Instant::now();
    loop {
        let read = app
            .get(&format!("/api/v1/webhooks/{id}"))
            .role(Role::Admin)
            .send()
            .await
            .json();
        if read["disabled"] == true {
            assert_eq!(read["disabled_reason"], "failing");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn redirects_are_not_followed_and_a_slow_receiver_times_out() {
    let app = app_with(|s| s.http.webhooks.timeout_secs = 0.5).await;
    let elsewhere = Receiver::start(Vec::new());
    let receiver = Receiver::start(vec![
        Reply {
            status: 307,
            headers: vec![("Location", elsewhere.url.clone())],
            delay: Duration::ZERO,
        },
        Reply {
            status: 200,
            headers: Vec::new(),
            delay: Duration::from_secs(3),
        },
    ]);
    let hook = subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    app.create_company(company("Deviata")).await;
    let all = until_delivery(&app, hook["id"].as_str().unwrap(), |d| d.len() >= 3).await;
    let oldest = &all[all.len() - 1];
    assert_eq!(oldest["outcome"], "failed");
    assert_eq!(oldest["status_code"], 307);
    assert_eq!(oldest["error"], "redirects are not followed");
    let second = &all[all.len() - 2];
    assert!(second["status_code"].is_null());
    assert!(
        second["error"].as_str().unwrap().contains("timed out"),
        "{second}"
    );
    assert!(second["latency_ms"].as_i64().unwrap() < 2000, "{second}");
    assert_eq!(all[all.len() - 3]["outcome"], "delivered");
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}

#[actix_web::test]
async fn private_targets_are_refused_when_subscribing_and_when_delivering() {
    let app = TestApp::spawn_with(|s| s.http.webhooks.poll_ms = 50).await;
    for (url, code) in [
        ("http://example.org/hook", "invalid_format"),
        ("https://127.0.0.1/hook", "forbidden_target"),
        ("https://localhost:8443/hook", "forbidden_target"),
        ("https://[::1]/hook", "forbidden_target"),
        ("https://[::ffff:10.0.0.7]/hook", "forbidden_target"),
        (
            "https://169.254.169.254/latest/meta-data",
            "forbidden_target",
        ),
        ("https://100.64.1.1/", "forbidden_target"),
    ] {
        let res = app
            .post("/api/v1/webhooks")
            .role(Role::Admin)
            .json(&json!({"url": url, "events": ["*"]}))
            .send()
            .await;
        let problem = res.assert_problem(422, "validation");
        assert_field_error(&problem, "/url", code);
    }
    assert_eq!(app.count("webhooks"), 0);
    // A host that does not resolve yet is accepted: where it may go is decided when sending.
    let later = app
        .post("/api/v1/webhooks")
        .role(Role::Admin)
        .json(&json!({"url": "https://not-yet-registered.invalid/hook", "events": ["*"]}))
        .send()
        .await;
    later.assert_status(201);

    // A name that resolves to loopback is refused at delivery too (written past the API).
    let receiver = Receiver::start(Vec::new());
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let hook = later.json();
    let id = hook["id"].as_str().unwrap();
    app.conn()
        .batch_execute(&format!(
            "UPDATE webhooks SET url = 'https://localhost:{port}/hook' WHERE id = '{id}'"
        ))
        .unwrap();
    app.create_company(company("Rete Interna")).await;
    let all = until_delivery(&app, id, |d| !d.is_empty()).await;
    assert_eq!(all[0]["outcome"], "failed");
    assert!(
        all[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a public internet address"),
        "{}",
        all[0]
    );
    assert!(receiver.received().is_empty());
}

use diesel::connection::SimpleConnection;

#[actix_web::test]
async fn a_rotated_secret_signs_beside_the_old_one_during_its_grace_period() {
    let app = app_with(|_| {}).await;
    let receiver = Receiver::start(Vec::new());
    let hook = subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    let id = hook["id"].as_str().unwrap();
    let old = hook["secret"].as_str().unwrap();
    let rotated = app
        .post(&format!("/api/v1/webhooks/{id}/rotate-secret"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"grace_seconds": 3600}))
        .send()
        .await;
    rotated.assert_status(200);
    let rotated = rotated.json();
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_valid_until"].is_string());
    app.create_company(company("Doppia Firma")).await;
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verify(new, &got[0]);
    verify(old, &got[0]);
    // Without grace the old secret stops at once.
    app.post(&format!("/api/v1/webhooks/{id}/rotate-secret"))
        .role(Role::Admin)
        .header("If-Match", "\"2\"")
        .json(&json!({}))
        .send()
        .await
        .assert_status(200);
    app.create_company(company("Firma Sola")).await;
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 1);
}

#[actix_web::test]
async fn a_delivery_is_retried_by_hand_with_the_same_webhook_id() {
    let app = app_with(|_| {}).await;
    let receiver = Receiver::start(Vec::new());
    let hook = subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    let id = hook["id"].as_str().unwrap();
    app.create_company(company("A Mano")).await;
    let first = until_delivery(&app, id, |d| !d.is_empty()).await;
    let delivery = first[0]["id"].as_str().unwrap();
    let res = app
        .post(&format!(
            "/api/v1/webhooks/{id}/deliveries/{delivery}/retry"
        ))
        .role(Role::Admin)
        .send()
        .await;
    res.assert_status(200);
    let again = res.json();
    assert_eq!(again["manual"], true);
    assert_eq!(again["attempt"], 2);
    assert_eq!(again["outcome"], "delivered");
    assert_eq!(again["event_id"], first[0]["event_id"]);
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let unknown = uuid::Uuid::now_v7();
    app.post(&format!("/api/v1/webhooks/{id}/deliveries/{unknown}/retry"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn two_replicas_deliver_each_event_once_in_order() {
    let app = app_with(|s| s.http.webhooks.workers = 2).await;
    let other = app.replica(|s| {
        s.http.webhooks.allow_private_targets = true;
        s.http.webhooks.workers = 2;
        s.http.webhooks.poll_ms = 50;
    });
    let receiver = Receiver::start(Vec::new());
    subscribe(
        &app,
        json!({"url": receiver.url, "events": ["company.created"]}),
    )
    .await;
    for i in 0..12 {
        let target = if i % 2 == 0 { &app } else { &other };
        target
            .create_company(company(&format!("Replica {i:02}")))
            .await;
    }
    receiver.wait_for(12, Duration::from_secs(15)).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    let ids: Vec<i64> = got
        .iter()
        .map(|r| r.header("webhook-id").parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 12, "each once: {ids:?}");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in feed order (one writer at a time here)");
}

#[actix_web::test]
async fn subscriptions_are_admins_and_bad_bodies_write_nothing() {
    let app = app_with(|_| {}).await;
    for role in [Role::Viewer, Role::Partner, Role::Editor] {
        app.get("/api/v1/webhooks")
            .role(role)
            .send()
            .await
            .assert_problem(403, "forbidden");
        app.post("/api/v1/webhooks")
            .role(role)
            .json(&json!({"url": "https://example.org/", "events": ["*"]}))
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    for (body, field, code) in [
        (json!({"events": ["*"]}), "/url", "required"),
        (
            json!({"url": "", "events": ["*"]}),
            "/url",
            "invalid_format",
        ),
        (
            json!({"url": "ftp://example.org/", "events": ["*"]}),
            "/url",
            "invalid_format",
        ),
        (
            json!({"url": "https://u:p@example.org/", "events": ["*"]}),
            "/url",
            "invalid_format",
        ),
        (
            json!({"url": "https://example.org/"}),
            "/events",
            "required",
        ),
        (
            json!({"url": "https://example.org/", "events": []}),
            "/events",
            "too_short",
        ),
        (
            json!({"url": "https://example.org/", "events": ["company.exploded"]}),
            "/events/0",
            "unknown_value",
        ),
        (
            json!({"url": "https://example.org/", "events": ["goal_partner.archived"]}),
            "/events/0",
            "unknown_value",
        ),
        (
            json!({"url": "https://example.org/", "events": ["*", "*"]}),
            "/events/1",
            "duplicate_value",
        ),
        (
            json!({"url": "https://example.org/", "events": ["*"], "kinds": ["hospital"]}),
            "/kinds",
            "unknown_value",
        ),
        (
            json!({"url": "https://example.org/", "events": ["*"], "secret": "whsec_x"}),
            "/secret",
            "unknown_field",
        ),
    ] {
        let res = app
            .post("/api/v1/webhooks")
            .role(Role::Admin)
            .json(&body)
            .send()
            .await;
        let problem = res.assert_problem(422, "validation");
        assert_field_error(&problem, field, code);
    }
    assert_eq!(app.count("webhooks"), 0);
    let hook = subscribe(
        &app,
        json!({"url": "https://example.org/", "events": ["*"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    app.patch(&format!("/api/v1/webhooks/{id}"))
        .role(Role::Admin)
        .merge_patch(&json!({"description": "x"}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.patch(&format!("/api/v1/webhooks/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"events": ["nope"]}))
        .send()
        .await
        .assert_problem(422, "validation");
    let listed = app.get("/api/v1/webhooks").role(Role::Admin).send().await;
    listed.assert_status(200);
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 1);
    app.delete(&format!("/api/v1/webhooks/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    app.get(&format!("/api/v1/webhooks/{id}"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.count("webhook_cursors"), 0);
}

/// `lshub serve` over `app`'s database, delivering webhooks (its API is not used).
fn serve_binary(app: &TestApp) -> Binary {
    app.serve_binary(&[
        ("LSHUB_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
        ("LSHUB_WEBHOOK_TIMEOUT", "3"),
        ("LSHUB_WEBHOOK_POLL_MS", "50"),
        ("LSHUB_WEBHOOK_WORKERS", "1"),
    ])
}

#[actix_web::test]
async fn a_delivery_cut_short_by_kill_9_is_sent_again_after_the_restart() {
    // This app writes; only the binary delivers.
    let app = app_with(|s| s.http.webhooks.workers = 0).await;
    let receiver = Receiver::start(vec![Reply {
        status: 200,
        headers: Vec::new(),
        delay: Duration::from_secs(6),
    }]);
    let hook = subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    app.create_company(company("Interrotta")).await;
    let mut first = serve_binary(&app);
    receiver.wait_for(1, Duration::from_secs(20)).await;
    // SIGKILL while the receiver holds the request: the attempt is never recorded.
    first.kill();
    assert!(deliveries(&app, &id).await.is_empty());
    let mut second = serve_binary(&app);
    // Once the dead process's lease has run out (timeout + 5 s), the event goes again.
    let got = receiver.wait_for(2, Duration::from_secs(25)).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let all = until_delivery(&app, &id, |d| !d.is_empty()).await;
    second.kill();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["outcome"], "delivered");
    assert_eq!(all[0]["attempt"], 1);
}
