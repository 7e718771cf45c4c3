//! API8 security misconfiguration: no answer tells of the server's insides (stack traces,
//! SQL, SQLSTATEs, crate or module names, versions), every answer carries `nosniff` and a
//! Content-Security-Policy (Swagger UI's strict enough to stop injected script, loose enough
//! for the vendored UI), and CORS admits the configured origins only.

use actix_web::http::Method;
use diesel::connection::SimpleConnection;
use lshub::domain::Role;
use regex::Regex;
use serde_json::json;

use crate::helpers::*;

const COMPANIES: &str = "/api/v1/companies";

/// What an answer must never show: a panic or backtrace, a source path, a Rust path, the
/// crates underneath, SQL or PostgreSQL's own error text.
fn leaks() -> Regex {
    Regex::new(concat!(
        r"(?i:panicked|backtrace|thread '|stack trace)",
        r"|src/|\.rs:\d|[a-z_]+::[a-z_]+",
        r"|(?i:diesel|actix|r2d2|tokio|serde|hyper|postgres|libpq|utoipa)",
        r"|SELECT |INSERT INTO|UPDATE \w+ SET|DELETE FROM|\bFROM \w+ WHERE",
        r"|ERROR:|SQLSTATE|(?i:relation \x22|violates|syntax error at)",
    ))
    .expect("regex")
}

/// An answer of every kind the service gives, each caused for real: the 4xx of each check, a
/// 429 of a spent budget, a 503 of an unreachable database and a 500 of a broken schema.
async fn answers_of_every_kind() -> Vec<(String, TestResponse)> {
    let app = TestApp::spawn().await;
    let mut answers = Vec::new();
    let mut add = |what: &str, res: TestResponse| answers.push((what.to_owned(), res));

    add("200 health", app.get("/healthz").send().await);
    add("200 spec", app.get("/openapi.json").send().await);
    add("200 docs", app.get("/docs/").send().await);
    add(
        "200 list",
        app.get(COMPANIES).role(Role::Viewer).send().await,
    );
    let created = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&json!({"name": "Leak Test S.p.A.", "sector": "biotech"}))
        .send()
        .await;
    let id = created.json()["id"].as_str().expect("id").to_owned();
    add("201 create", created);
    let record = format!("{COMPANIES}/{id}");
    add(
        "304 revalidation",
        app.get(&record)
            .role(Role::Viewer)
            .header("If-None-Match", "\"1\"")
            .send()
            .await,
    );
    add(
        "400 bad JSON",
        app.post(COMPANIES)
            .role(Role::Editor)
            .raw("application/json", "{\"name\": ")
            .send()
            .await,
    );
    add(
        "400 bad query",
        app.get(&format!("{COMPANIES}?limit=abc&min_employees=x"))
            .role(Role::Viewer)
            .send()
            .await,
    );
    add(
        "400 bad path",
        app.get(&format!("{COMPANIES}/not-a-uuid'--"))
            .role(Role::Viewer)
            .send()
            .await,
    );
    add(
        "400 bad cursor",
        app.get(&format!("{COMPANIES}?cursor=%27%3B%20DROP%20TABLE"))
            .role(Role::Viewer)
            .send()
            .await,
    );
    add(
        "400 token endpoint",
        app.post("/api/v1/auth/token")
            .raw("application/json", "{\"grant_type\": [")
            .send()
            .await,
    );
    add(
        "401 bad token",
        app.get(COMPANIES).bearer("e30.e30.e30").send().await,
    );
    add(
        "403 role",
        app.post(COMPANIES)
            .role(Role::Viewer)
            .json(&json!({"name": "X S.p.A.", "sector": "biotech"}))
            .send()
            .await,
    );
    add("404 path", app.get("/api/v1/nothing-here").send().await);
    add(
        "404 record",
        app.get(&format!("{COMPANIES}/{}", uuid::Uuid::now_v7()))
            .role(Role::Viewer)
            .send()
            .await,
    );
    add(
        "405",
        app.request(Method::PUT, COMPANIES)
            .role(Role::Editor)
            .send()
            .await,
    );
    add(
        "409 duplicate",
        app.post(COMPANIES)
            .role(Role::Editor)
            .json(&json!({"name": "LEAK test s.p.a.", "sector": "biotech"}))
            .send()
            .await,
    );
    add(
        "412 stale",
        app.patch(&record)
            .role(Role::Editor)
            .header("If-Match", "\"7\"")
            .merge_patch(&json!({"description": "x"}))
            .send()
            .await,
    );
    add(
        "413",
        app.post(COMPANIES)
            .role(Role::Editor)
            .raw(
                "application/json",
                vec![b' '; lshub::app::JSON_BODY_LIMIT + 1],
            )
            .send()
            .await,
    );
    add(
        "415",
        app.post(COMPANIES)
            .role(Role::Editor)
            .raw("text/xml", "<company/>")
            .send()
            .await,
    );
    add(
        "422",
        app.post(COMPANIES)
            .role(Role::Editor)
            .json(&json!({"name": "Y", "sector": "alchemy", "vat_number": "' OR 1=1 --"}))
            .send()
            .await,
    );
    add(
        "428",
        app.patch(&record)
            .role(Role::Editor)
            .merge_patch(&json!({"description": "x"}))
            .send()
            .await,
    );

    // A schema that lost a table: the write's statement fails inside PostgreSQL.
    app.conn()
        .batch_execute("ALTER TABLE audit_events RENAME TO audit_events_elsewhere")
        .expect("rename");
    add(
        "500 broken schema",
        app.post(COMPANIES)
            .role(Role::Editor)
            .json(&json!({"name": "Broken S.p.A.", "sector": "biotech"}))
            .send()
            .await,
    );

    let limited = TestApp::spawn_with(|s| {
        s.http.rate_limits.per_minute = 1;
        s.http.rate_limits.burst = 1;
    })
    .await;
    let mut spent = limited.get(COMPANIES).role(Role::Viewer).send().await;
    for _ in 0..10 {
        if spent.status == 429 {
            break;
        }
        spent = limited.get(COMPANIES).role(Role::Viewer).send().await;
    }
    add("429", spent);

    let down = TestApp::spawn_with(|s| {
        s.db.database_url = "postgres://lshub:hunter2@127.0.0.1:1/secret_db".into();
        s.db.checkout_timeout_secs = 1;
    })
    .await;
    add(
        "503 database unreachable",
        down.get(COMPANIES).role(Role::Viewer).send().await,
    );
    add("503 readyz", down.get("/readyz").send().await);
    answers
}

#[actix_web::test]
async fn no_answer_tells_of_the_servers_insides() {
    let leaks = leaks();
    let answers = answers_of_every_kind().await;
    let mut statuses: Vec<u16> = answers.iter().map(|(_, res)| res.status).collect();
    statuses.sort_unstable();
    statuses.dedup();
    for status in [
        400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 428, 429, 500, 503,
    ] {
        assert!(statuses.contains(&status), "no {status} among {statuses:?}");
    }
    for (what, res) in &answers {
        let is_error = res.status >= 400;
        if is_error {
            let body = String::from_utf8_lossy(&res.body);
            if let Some(found) = leaks.find(&body) {
                panic!("{what}: `{}` in {body}", found.as_str());
            }
            for secret in ["hunter2", "secret_db", "audit_events"] {
                assert!(!body.contains(secret), "{what}: {body}");
            }
        }
        for (name, value) in &res.headers {
            let value = value.to_str().unwrap_or_default();
            if let Some(found) = leaks.find(value) {
                panic!("{what}: `{}` in header {name}: {value}", found.as_str());
            }
        }
        // No `Server` at all, or one without a version.
        if let Some(server) = res.header("server") {
            assert!(
                !server.chars().any(|c| c.is_ascii_digit()),
                "{what}: Server: {server}"
            );
        }
    }
}

#[actix_web::test]
async fn every_answer_says_nosniff_and_carries_a_content_security_policy() {
    for (what, res) in answers_of_every_kind().await {
        assert_eq!(
            res.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{what}"
        );
        let policy = res
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{what}: {policy}"
        );
        if what != "200 docs" {
            assert!(policy.starts_with("default-src 'none'"), "{what}: {policy}");
        }
    }
}

/// The directives of a policy, by name.
fn directives(policy: &str) -> std::collections::HashMap<String, Vec<String>> {
    policy
        .split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace();
            let name = words.next()?.to_ascii_lowercase();
            Some((name, words.map(str::to_owned).collect()))
        })
        .collect()
}

/// Swagger UI's page may run only the vendored scripts of this origin: an injected inline
/// `<script>` or `onerror=` does not run, nothing loads from elsewhere, and the page cannot be
/// framed. And the page itself still works under it: every asset it names is of this origin,
/// served, and no script of it is inline.
#[actix_web::test]
async fn the_docs_have_a_policy_that_stops_injected_script_and_still_loads_the_ui() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs/").send().await;
    page.assert_status(200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    let policy = page.header("content-security-policy").expect("a policy");
    let directives = directives(&policy);
    let scripts = directives
        .get("script-src")
        .or_else(|| directives.get("default-src"))
        .unwrap_or_else(|| panic!("no script-src: {policy}"));
    assert_eq!(scripts, &["'self'"], "{policy}");
    assert_eq!(directives["default-src"], ["'none'"], "{policy}");
    for directive in ["connect-src", "img-src", "style-src", "font-src"] {
        for source in directives.get(directive).into_iter().flatten() {
            assert!(
                ["'self'", "'unsafe-inline'", "data:"].contains(&source.as_str()),
                "{directive} admits {source}: {policy}"
            );
        }
    }
    for (directive, want) in [
        ("frame-ancestors", "'none'"),
        ("base-uri", "'none'"),
        ("form-action", "'none'"),
    ] {
        assert_eq!(directives[directive], [want], "{policy}");
    }

    let html = String::from_utf8_lossy(&page.body).into_owned();
    let script_tags = Regex::new(r"(?is)<script\b([^>]*)>(.*?)</script>").expect("regex");
    let mut scripts = 0;
    for tag in script_tags.captures_iter(&html) {
        assert!(tag[1].contains("src="), "an inline script: {}", &tag[0]);
        assert!(tag[2].trim().is_empty(), "an inline script: {}", &tag[0]);
        scripts += 1;
    }
    assert!(scripts >= 2, "{html}");
    assert!(
        !Regex::new(r"(?i)\son[a-z]+\s*=")
            .expect("regex")
            .is_match(&html),
        "an inline event handler: {html}"
    );
    let references = Regex::new(r#"(?i)\b(?:src|href)\s*=\s*["']([^"']+)["']"#).expect("regex");
    let mut assets = 0;
    for reference in references.captures_iter(&html) {
        let asset = &reference[1];
        assert!(
            !asset.contains("//") && !asset.contains(':'),
            "the docs load {asset} from elsewhere"
        );
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        let res = app.get(&path).send().await;
        assert_eq!(res.status, 200, "{path}");
        assert!(!res.body.is_empty(), "{path}");
        assets += 1;
    }
    assert!(assets >= 4, "{html}");
    // The initializer fetches the spec from this origin.
    let init = app.get("/docs/swagger-initializer.js").send().await;
    let init = String::from_utf8_lossy(&init.body).into_owned();
    assert!(init.contains("\"/openapi.json\""), "{init}");
    app.get("/openapi.json").send().await.assert_status(200);
}

#[actix_web::test]
async fn cors_admits_a_configured_origin_and_exposes_the_polling_headers() {
    let app =
        TestApp::spawn_with(|s| s.http.cors_origins = vec!["https://dash.example".into()]).await;
    let res = app
        .request(Method::OPTIONS, COMPANIES)
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
}

/// An origin not configured gets no `Access-Control-Allow-Origin` on any answer, and its
/// preflight is refused (with a problem, like every error), so a browser never lets its page
/// read the API; nor does a look-alike of a configured origin.
#[actix_web::test]
async fn cors_refuses_unknown_origins() {
    let app =
        TestApp::spawn_with(|s| s.http.cors_origins = vec!["https://dash.example".into()]).await;
    for origin in [
        "https://evil.example",
        "https://dash.example.evil.example",
        "http://dash.example",
        "null",
    ] {
        let preflight = app
            .request(Method::OPTIONS, COMPANIES)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "DELETE")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
            .await;
        assert!(
            preflight.status >= 400,
            "{origin}: preflight {}",
            preflight.status
        );
        assert_eq!(
            preflight.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{origin}"
        );
        assert!(
            preflight.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
        let res = app
            .get("/api/v1/me")
            .role(Role::Viewer)
            .header("Origin", origin)
            .send()
            .await;
        assert!(
            res.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert!(
            res.header("access-control-allow-credentials").is_none(),
            "{origin}"
        );
    }
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
