//! Routing, extractor and generic error behaviour: every error is problem+json.

use lshub::domain::Role;

use crate::helpers::*;

#[actix_web::test]
async fn unknown_path_is_a_problem_404() {
    let app = TestApp::spawn().await;
    let res = app.get("/nowhere").send().await;
    res.assert_problem(404, "not_found");
}

#[actix_web::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let res = app
        .request(actix_web::http::Method::PUT, "/api/v1/companies")
        .role(Role::Editor)
        .send()
        .await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.header("allow").as_deref(), Some("GET, HEAD, POST"));
}

#[actix_web::test]
async fn request_id_is_echoed_when_well_formed_and_generated_otherwise() {
    let app = TestApp::spawn().await;
    let res = app
        .get("/healthz")
        .header("X-Request-Id", "abc-123_x.y")
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("x-request-id").as_deref(), Some("abc-123_x.y"));
    let res = app
        .get("/healthz")
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await;
    let generated = res.header("x-request-id").expect("generated id");
    assert_ne!(generated, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(&generated).is_ok());
}

#[actix_web::test]
async fn readyz_answers_when_the_database_is_up_and_503_when_it_is_not() {
    let app = TestApp::spawn().await;
    app.get("/readyz").send().await.assert_status(200);
    let down = TestApp::spawn_with(|s| {
        s.db.database_url = "postgres://postgres@127.0.0.1:1/nothing".into();
        s.db.checkout_timeout_secs = 1;
    })
    .await;
    let res = down.get("/readyz").send().await;
    res.assert_problem(503, "unavailable");
    assert!(res.header("retry-after").is_some());
}

#[actix_web::test]
async fn cors_allows_configured_origins_and_exposes_the_polling_headers() {
    let app =
        TestApp::spawn_with(|s| s.http.cors_origins = vec!["https://dash.example".into()]).await;
    let res = app
        .request(actix_web::http::Method::OPTIONS, "/api/v1/companies")
        .header("Origin", "https://dash.example")
        .header("Access-Control-Request-Method", "GET")
        .header(
            "Access-Control-Request-Headers",
            "authorization, if-none-match",
        )
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(
        res.header("access-control-allow-origin").as_deref(),
        Some("https://dash.example")
    );

    let res = app
        .get("/api/v1/me")
        .role(Role::Viewer)
        .header("Origin", "https://dash.example")
        .send()
        .await;
    res.assert_status(200);
    let exposed = res
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_lowercase();
    for name in ["etag", "link", "x-request-id"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    let res = app
        .get("/api/v1/me")
        .role(Role::Viewer)
        .header("Origin", "https://evil.example")
        .send()
        .await;
    assert!(res.header("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let app = TestApp::spawn().await;
    let res = app
        .get("/api/v1/me")
        .role(Role::Viewer)
        .header("Origin", "https://dash.example")
        .send()
        .await;
    res.assert_status(200);
    assert!(res.header("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn an_overlong_q_is_refused_and_accept_q_zero_is_honoured() {
    let app = TestApp::spawn().await;
    let q = "a".repeat(201);
    let res = app
        .get(&format!("/api/v1/companies?q={q}"))
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(
        res.assert_problem(422, "validation")["errors"][0]["field"],
        "/q"
    );
    let res = app
        .get("/api/v1/companies")
        .role(Role::Viewer)
        .header("Accept", "application/json, text/csv;q=0")
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json")
    );
}
