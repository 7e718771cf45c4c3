//! API4 unrestricted resource consumption: bodies too large or too deep, pages too long,
//! clients too slow, and password guessing at the token endpoint are all refused early with a
//! clean 4xx (or the whole-request timeout's 503), and the service keeps answering.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lshub::config::{RateLimitSettings, Settings};
use lshub::domain::Role;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::password_login;
use crate::helpers::*;
use crate::rate_limits::{param, retry_after};

const COMPANIES: &str = "/api/v1/companies";

/// What a raw exchange over a socket got back, and how much of the request had been written
/// when the answer's head arrived. The slow writer goes on until the exchange is dropped.
struct Exchange {
    /// The status line and headers, or nothing when the server closed without answering.
    head: Option<String>,
    /// The request bytes written before the answer (or the close) came.
    sent: usize,
    /// The request's length.
    total: usize,
    reader: tokio::net::tcp::OwnedReadHalf,
    written: Arc<AtomicUsize>,
    writing: tokio::task::JoinHandle<()>,
}

impl Exchange {
    fn status(&self) -> Option<u16> {
        self.head
            .as_deref()
            .and_then(|h| h.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
    }

    /// Reads on until the server closes the connection (a minute at most), and returns how
    /// much of the request had been written by then.
    async fn written_when_closed(&mut self) -> usize {
        let mut buf = [0u8; 4096];
        let closing = async {
            while let Ok(n) = self.reader.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), closing)
            .await
            .expect("the server kept the connection open for a minute");
        self.written.load(Ordering::SeqCst)
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.writing.abort();
    }
}

/// Writes `prefix` at once, then `rest` one byte every `step`, as a slow (or malicious)
/// client would, while reading the answer's head. A guard of a minute fails the test if the
/// server neither answers nor closes.
async fn trickle(app: &TestApp, prefix: &[u8], rest: &[u8], step: Duration) -> Exchange {
    let address = app.address.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let written = Arc::new(AtomicUsize::new(0));
    let total = prefix.len() + rest.len();
    let writing = {
        let written = written.clone();
        let (prefix, rest) = (prefix.to_vec(), rest.to_vec());
        actix_web::rt::spawn(async move {
            if writer.write_all(&prefix).await.is_err() {
                return;
            }
            written.fetch_add(prefix.len(), Ordering::SeqCst);
            for byte in rest {
                actix_web::rt::time::sleep(step).await;
                if writer.write_all(&[byte]).await.is_err() {
                    return;
                }
                written.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let reading = async {
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(String::from_utf8_lossy(&received[..end]).into_owned());
            }
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    let head = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the server neither answered nor closed within a minute");
    Exchange {
        head,
        sent: written.load(Ordering::SeqCst),
        total,
        reader,
        written,
        writing,
    }
}

/// The head of a request to this app, with `headers` and the viewer's or editor's token.
fn request_head(app: &TestApp, method: &str, path: &str, headers: &[(&str, String)]) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n",
        app.address.trim_start_matches("http://"),
        app.token(Role::Editor)
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn with_request_timeout(secs: u64) -> impl FnOnce(&mut Settings) {
    move |s| s.http.request_timeout_secs = secs
}

/// The server keeps answering after what a test threw at it.
async fn still_serving(app: &TestApp) {
    app.get("/healthz").send().await.assert_status(200);
    app.get(COMPANIES)
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413_with_or_without_a_length() {
    let app = TestApp::spawn().await;
    let limit = lshub::app::JSON_BODY_LIMIT;
    let oversized =
        json!({"name": "Big S.p.A.", "sector": "biotech", "description": "x".repeat(limit)});
    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&oversized)
        .send()
        .await;
    res.assert_problem(413, "payload_too_large");
    let id = app
        .create_company(json!({"name": "Small S.p.A.", "sector": "biotech"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = app
        .patch(&format!("{COMPANIES}/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"description": "x".repeat(limit)}))
        .send()
        .await;
    res.assert_problem(413, "payload_too_large");
    let res = app
        .post("/api/v1/auth/token")
        .form(&[("grant_type", "password"), ("username", &"x".repeat(limit))])
        .send()
        .await;
    assert_eq!(res.status, 413, "{}", String::from_utf8_lossy(&res.body));

    // Chunked, no length announced: the limit holds while the body streams in.
    let head = request_head(
        &app,
        "POST",
        COMPANIES,
        &[
            ("Content-Type", "application/json".into()),
            ("Transfer-Encoding", "chunked".into()),
        ],
    );
    let mut request = head.into_bytes();
    let chunk = vec![b' '; 8192];
    for _ in 0..(limit / chunk.len() + 2) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let exchange = trickle(&app, &request, &[], Duration::ZERO).await;
    assert_eq!(exchange.status(), Some(413), "{:?}", exchange.head);
    assert_eq!(app.count("organisations WHERE name = 'Big S.p.A.'"), 0);
    still_serving(&app).await;
}

/// serde_json refuses more than 128 nested arrays or objects (README, problem `malformed`),
/// before anything recurses over the body; so a body of nothing but brackets is a 400 at every
/// JSON endpoint, not a stack overflow.
#[actix_web::test]
async fn json_nested_deeper_than_the_limit_is_a_clean_400() {
    let app = TestApp::spawn().await;
    let nested = |depth: usize| {
        format!(
            "{{\"name\": \"Deep S.p.A.\", \"sector\": \"biotech\", \"tags\": {}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // Within the limit the body parses, and is refused for what it says.
    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .raw("application/json", nested(100))
        .send()
        .await;
    res.assert_problem(422, "validation");
    for depth in [128, 1_000, 30_000] {
        let res = app
            .post(COMPANIES)
            .role(Role::Editor)
            .raw("application/json", nested(depth))
            .send()
            .await;
        res.assert_problem(400, "malformed");
        let res = app
            .post("/api/v1/imports?kind=company")
            .role(Role::Editor)
            .raw("application/json", format!("[{}]", nested(depth)))
            .send()
            .await;
        res.assert_problem(400, "malformed");
        let res = app
            .post("/api/v1/auth/token")
            .raw(
                "application/json",
                format!(
                    "{{\"grant_type\": \"password\", \"username\": {}{}}}",
                    "[".repeat(depth),
                    "]".repeat(depth)
                ),
            )
            .send()
            .await;
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(&res.body));
        assert_eq!(res.json()["error"], "invalid_request");
    }
    assert_eq!(app.count("organisations WHERE name = 'Deep S.p.A.'"), 0);
    still_serving(&app).await;
}

/// Every list in the spec caps `limit` at its documented maximum (422 above it, and below 1),
/// taken from the served OpenAPI document, so a new list cannot forget it. Lists under a
/// parent's id are covered by the same extractor; their 404 comes first for an unknown id.
#[actix_web::test]
async fn limit_above_the_cap_is_422_on_every_list() {
    let app = TestApp::spawn().await;
    let spec = app.get("/openapi.json").send().await.json();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        let Some(limit) = item["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        else {
            continue;
        };
        if path.contains('{') {
            continue;
        }
        let max = limit["schema"]["maximum"]
            .as_u64()
            .unwrap_or_else(|| panic!("{path}: `limit` has no maximum"));
        let get = |limit: String| {
            app.get(&format!("{path}?limit={limit}"))
                .role(Role::Admin)
                .send()
        };
        get(max.to_string()).await.assert_status(200);
        for too_many in [(max + 1).to_string(), "0".into()] {
            let res = get(too_many.clone()).await;
            let problem = res.assert_problem(422, "validation");
            assert_field_error(&problem, "/limit", "out_of_range");
            assert_eq!(res.status, 422, "{path}?limit={too_many}");
        }
        // Not a count at all: malformed.
        for nonsense in ["-1", "99999999999999999999", "1e3"] {
            get(nonsense.into()).await.assert_problem(400, "malformed");
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} lists in the spec");
}

/// actix times out only the request head; the whole-request timeout bounds a body that
/// trickles in a byte at a time, so a slow client holds a connection and a worker's request
/// for `LSHUB_REQUEST_TIMEOUT` at most.
#[actix_web::test]
async fn a_body_trickled_byte_by_byte_is_cut_off_by_the_request_timeout() {
    let app = TestApp::spawn_with(with_request_timeout(1)).await;
    let body = serde_json::to_vec(&json!({"name": "Slow S.p.A.", "sector": "biotech",
        "description": "s".repeat(600)}))
    .expect("json");
    let head = request_head(
        &app,
        "POST",
        COMPANIES,
        &[
            ("Content-Type", "application/json".into()),
            ("Content-Length", body.len().to_string()),
        ],
    );
    let mut exchange = trickle(&app, head.as_bytes(), &body, Duration::from_millis(50)).await;
    assert_eq!(exchange.status(), Some(503), "{:?}", exchange.head);
    assert!(
        exchange.sent < exchange.total,
        "the server waited for the whole body ({} bytes)",
        exchange.total
    );
    // The timeout answers past the request middleware, and still as every answer does.
    let head = exchange
        .head
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    for line in [
        "content-type: application/problem+json",
        "retry-after: ",
        "x-request-id: ",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(line), "no {line} in {head}");
    }
    // And the connection is closed, not left reading the rest of the trickle.
    let written = exchange.written_when_closed().await;
    assert!(written < exchange.total, "the server read the whole body");
    assert_eq!(app.count("organisations WHERE name = 'Slow S.p.A.'"), 0);
    still_serving(&app).await;
}

/// A request head trickled in (slowloris) is cut off by actix's head timeout, which follows
/// the whole-request timeout: no worker ever sees the request. The head takes about six
/// seconds to send, within the fixed ten seconds the server used to wait.
#[actix_web::test]
async fn a_head_trickled_byte_by_byte_is_cut_off() {
    let app = TestApp::spawn_with(with_request_timeout(1)).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Padding: {}\r\n\r\n",
        app.address.trim_start_matches("http://"),
        "p".repeat(50)
    );
    let mut exchange = trickle(&app, b"G", &head.as_bytes()[1..], Duration::from_millis(50)).await;
    assert!(
        exchange.sent < exchange.total,
        "the server waited for the whole head ({} bytes): {:?}",
        exchange.total,
        exchange.head
    );
    // actix answers 408 or just closes; either way nothing was served.
    assert!(
        matches!(exchange.status(), None | Some(408)),
        "{:?}",
        exchange.head
    );
    let written = exchange.written_when_closed().await;
    assert!(written < exchange.total, "the server read the whole head");
    still_serving(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Password guessing at the token endpoint: per account and per client IP, in PostgreSQL so
// every replica holds a guesser to the same count.
// ---------------------------------------------------------------------------------------------

fn token_limits(per_ip: u32, per_username: u32) -> impl FnOnce(&mut Settings) {
    move |s| {
        let limits = &mut s.http.rate_limits;
        limits.token_per_ip = per_ip;
        limits.token_per_username = per_username;
        limits.token_window_secs = 60;
    }
}

/// A 429 of the token endpoint: RFC 6749's shape, not stored, with when to come back.
#[track_caller]
fn assert_token_rate_limited(res: &TestResponse, policy: &str) {
    assert_eq!(res.status, 429, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    let body = res.json();
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(
        body["request_id"].as_str(),
        res.header("x-request-id").as_deref()
    );
    let wait = retry_after(res);
    assert!(wait <= 60, "{wait}");
    assert_eq!(param(res, "ratelimit", policy, "r"), 0);
    assert!(param(res, "ratelimit-policy", policy, "w") == 60);
}

/// With the shipped settings (README: `LSHUB_TOKEN_RATE_LIMIT_PER_USERNAME` 10 a minute), the
/// eleventh guess at one account is 429, the right password included.
#[actix_web::test]
async fn password_guessing_is_held_to_the_documented_limit() {
    let app = TestApp::spawn().await;
    let tries = RateLimitSettings::TOKEN_PER_USERNAME;
    assert_eq!(tries, 10, "README documents 10");
    let admin = email_for(Role::Admin);
    for i in 0..tries {
        let res = password_login(&app, &admin, &format!("guess {i}")).await;
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(&res.body));
        assert_eq!(res.json()["error"], "invalid_grant");
    }
    let res = password_login(&app, &admin, PASSWORD).await;
    assert_token_rate_limited(&res, "token-account");
}

#[actix_web::test]
async fn wrong_passwords_for_one_username_trip_its_limit_while_another_user_logs_in() {
    let app = TestApp::spawn_with(token_limits(100, 3)).await;
    let viewer = email_for(Role::Viewer);
    for left in (0..3).rev() {
        let res = password_login(&app, &viewer, "not the password").await;
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(&res.body));
        assert_eq!(res.json()["error"], "invalid_grant");
        assert_eq!(param(&res, "ratelimit", "token-account", "r"), left);
        assert_eq!(param(&res, "ratelimit-policy", "token-account", "q"), 3);
    }
    // Refused before the password is looked at: the right one is refused too, as is the
    // same e-mail in other letters.
    let refused = password_login(&app, &viewer, PASSWORD).await;
    assert_token_rate_limited(&refused, "token-account");
    let shouted = password_login(&app, &viewer.to_uppercase(), PASSWORD).await;
    assert_token_rate_limited(&shouted, "token-account");

    let other = password_login(&app, &email_for(Role::Editor), PASSWORD).await;
    other.assert_status(200);
    assert_eq!(other.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(param(&other, "ratelimit", "token-account", "r"), 2);
    assert!(other.json()["access_token"].is_string());
    // The buckets hold digests, never the usernames tried.
    assert_eq!(app.count("token_rate_limits WHERE key LIKE '%@%'"), 0);
}

#[actix_web::test]
async fn many_usernames_from_one_ip_trip_the_ip_limit() {
    let app = TestApp::spawn_with(token_limits(3, 100)).await;
    for (i, left) in (0..3).rev().enumerate() {
        let res = password_login(&app, &format!("guess{i}@example.com"), "guess").await;
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(&res.body));
        assert_eq!(param(&res, "ratelimit", "token-ip", "r"), left);
    }
    let refused = password_login(&app, &email_for(Role::Editor), PASSWORD).await;
    assert_token_rate_limited(&refused, "token-ip");
    // The other grants count against the IP too.
    let refresh = app
        .post("/api/v1/auth/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await;
    assert_token_rate_limited(&refresh, "token-ip");
}

#[actix_web::test]
async fn the_token_limits_hold_across_replicas() {
    let first = TestApp::spawn_with(token_limits(100, 3)).await;
    let second = first.replica(token_limits(100, 3));
    let viewer = email_for(Role::Viewer);
    for app in [&first, &second, &first] {
        let res = password_login(app, &viewer, "not the password").await;
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(&res.body));
    }
    for app in [&second, &first] {
        let res = password_login(app, &viewer, PASSWORD).await;
        assert_token_rate_limited(&res, "token-account");
    }
    // One bucket for the IP and one for the username, whichever replica was asked.
    assert_eq!(first.count("token_rate_limits"), 2);
}

#[actix_web::test]
async fn wrong_secrets_for_one_client_id_trip_its_limit() {
    let app = TestApp::spawn_with(token_limits(100, 2)).await;
    let created = app
        .post("/api/v1/clients")
        .role(Role::Admin)
        .json(&json!({"name": "Dashboard", "role": "viewer"}))
        .send()
        .await;
    created.assert_status(201);
    let created: Value = created.json();
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let grant = |secret: String| {
        let id = id.clone();
        let app = &app;
        async move {
            app.post("/api/v1/auth/token")
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ])
                .send()
                .await
        }
    };
    for _ in 0..2 {
        let res = grant("wrong".into()).await;
        assert_eq!(res.status, 401, "{}", String::from_utf8_lossy(&res.body));
        assert_eq!(res.json()["error"], "invalid_client");
    }
    assert_token_rate_limited(&grant(secret).await, "token-account");
}
