//! Rate limits: per principal on the API (in each replica's memory, a 304 cheaper than a full
//! answer), per client IP and per account at the token endpoint (in PostgreSQL, so shared by
//! replicas), and the `Retry-After`, `RateLimit-Policy` and `RateLimit` headers.

use std::time::Duration;

use lshub::config::Settings;
use lshub::domain::Role;

use crate::helpers::*;

/// A parameter of the one policy of a `RateLimit` or `RateLimit-Policy` header.
#[track_caller]
fn param(res: &TestResponse, header: &str, policy: &str, name: &str) -> u64 {
    let value = res
        .header(header)
        .unwrap_or_else(|| panic!("no {header} header"));
    let item = value
        .split(", ")
        .find(|item| item.starts_with(&format!("\"{policy}\";")))
        .unwrap_or_else(|| panic!("no {policy} in {header}: {value}"));
    item.split(';')
        .skip(1)
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .parse()
        .expect("an integer")
}

#[track_caller]
fn retry_after(res: &TestResponse) -> u64 {
    let secs: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1, "Retry-After {secs}");
    secs
}

async fn me(app: &TestApp, role: Role) -> TestResponse {
    app.get("/api/v1/me").role(role).send().await
}

#[actix_web::test]
async fn requests_beyond_the_budget_are_429_with_retry_after_then_pass_again() {
    // Two requests at once, then one every two seconds.
    let app = TestApp::spawn_with(|s| {
        let limits = &mut s.http.rate_limits;
        limits.per_minute = 30;
        limits.burst = 2;
        limits.full_cost = 1;
        limits.not_modified_cost = 1;
    })
    .await;

    let first = me(&app, Role::Viewer).await;
    first.assert_status(200);
    assert_eq!(
        first.header("ratelimit-policy").as_deref(),
        Some("\"api\";q=2;w=4")
    );
    assert_eq!(param(&first, "ratelimit", "api", "r"), 1);
    let second = me(&app, Role::Viewer).await;
    second.assert_status(200);
    assert_eq!(param(&second, "ratelimit", "api", "r"), 0);

    let refused = me(&app, Role::Viewer).await;
    let body = refused.assert_problem(429, "rate_limited");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    let wait = retry_after(&refused);
    assert!(wait <= 2, "one request comes back every 2 s: {wait}");
    assert_eq!(
        refused.header("ratelimit-policy").as_deref(),
        Some("\"api\";q=2;w=4")
    );
    assert_eq!(param(&refused, "ratelimit", "api", "r"), 0);
    assert!(param(&refused, "ratelimit", "api", "t") >= wait);

    // Another principal has a budget of its own.
    me(&app, Role::Editor).await.assert_status(200);

    tokio::time::sleep(Duration::from_secs(wait)).await;
    me(&app, Role::Viewer).await.assert_status(200);
}

#[actix_web::test]
async fn a_304_costs_less_than_a_full_answer() {
    // Eight points and none back during the test; a full answer costs 4, a 304 costs 1.
    let app = TestApp::spawn_with(|s| {
        let limits = &mut s.http.rate_limits;
        limits.per_minute = 1;
        limits.burst = 8;
        limits.full_cost = 4;
        limits.not_modified_cost = 1;
    })
    .await;
    let list = "/api/v1/companies";

    // The viewer reads once, then revalidates four times: 4 + 4 × 1 points.
    let full = app.get(list).role(Role::Viewer).send().await;
    full.assert_status(200);
    assert_eq!(param(&full, "ratelimit", "api", "r"), 4);
    let etag = full.header("etag").expect("a list has an ETag");
    for left in (0..4).rev() {
        let res = app
            .get(list)
            .role(Role::Viewer)
            .header("If-None-Match", &etag)
            .send()
            .await;
        res.assert_status(304);
        assert_eq!(param(&res, "ratelimit", "api", "r"), left);
    }
    app.get(list)
        .role(Role::Viewer)
        .header("If-None-Match", &etag)
        .send()
        .await
        .assert_problem(429, "rate_limited");

    // The partner, on its own budget, gets two full answers from the same eight points.
    for _ in 0..2 {
        app.get(list)
            .role(Role::Partner)
            .send()
            .await
            .assert_status(200);
    }
    let refused = app.get(list).role(Role::Partner).send().await;
    refused.assert_problem(429, "rate_limited");
    assert!(retry_after(&refused) > 1, "a point comes back each minute");
}

#[actix_web::test]
async fn probes_the_spec_and_requests_without_a_valid_token_are_not_limited() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limits.per_minute = 1;
        s.http.rate_limits.burst = 1;
    })
    .await;
    for _ in 0..3 {
        for path in ["/healthz", "/readyz", "/openapi.json"] {
            let res = app.get(path).send().await;
            res.assert_status(200);
            assert!(res.header("ratelimit").is_none(), "{path}");
        }
        let anonymous = app.get("/api/v1/companies").send().await;
        anonymous.assert_problem(401, "unauthorized");
        assert!(anonymous.header("ratelimit").is_none());
        let forged = app
            .get("/api/v1/companies")
            .bearer("not.a.token")
            .send()
            .await;
        forged.assert_problem(401, "unauthorized");
    }
    // The one request the budget holds is still there.
    let res = me(&app, Role::Viewer).await;
    res.assert_status(200);
    assert_eq!(param(&res, "ratelimit", "api", "r"), 0);
    me(&app, Role::Viewer)
        .await
        .assert_problem(429, "rate_limited");
}

fn token_limits(per_ip: u32, per_username: u32) -> impl FnOnce(&mut Settings) {
    move |s| {
        let limits = &mut s.http.rate_limits;
        limits.token_per_ip = per_ip;
        limits.token_per_username = per_username;
        limits.token_window_secs = 60;
    }
}

async fn password_login(app: &TestApp, username: &str, password: &str) -> TestResponse {
    app.post("/api/v1/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
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
        .json(&serde_json::json!({"name": "Dashboard", "role": "viewer"}))
        .send()
        .await;
    created.assert_status(201);
    let created = created.json();
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
