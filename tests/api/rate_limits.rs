//! Rate limits: per principal on the API (in each replica's memory, a 304 cheaper than a full
//! answer), and the `Retry-After`, `RateLimit-Policy` and `RateLimit` headers. The token
//! endpoint's limits (per client IP and per account, in PostgreSQL) are password-guessing
//! defences: `owasp::resource_consumption`.

use std::time::Duration;

use lshub::domain::Role;

use crate::helpers::*;

/// A parameter of the one policy of a `RateLimit` or `RateLimit-Policy` header.
#[track_caller]
pub(crate) fn param(res: &TestResponse, header: &str, policy: &str, name: &str) -> u64 {
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

/// `Retry-After` in whole seconds, at least one.
#[track_caller]
pub(crate) fn retry_after(res: &TestResponse) -> u64 {
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
