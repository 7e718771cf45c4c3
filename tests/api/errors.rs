//! Routing, extractor and generic error behaviour: every error is problem+json.

use lshub::domain::Role;
use serde_json::Value;

use crate::helpers::*;

#[actix_web::test]
async fn unknown_path_is_a_problem_404() {
    let app = TestApp::spawn().await;
    let res = app.get("/nowhere").send().await;
    res.assert_problem(404, "not_found");
}

/// Paths are mounted in the scope of their collection (`routes::mount`): a path inside a
/// collection's scope that no route names, and a path that only begins like a collection,
/// are 404 problems as every unknown path is.
#[actix_web::test]
async fn unknown_paths_in_and_beside_a_collection_are_problem_404s() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/companies/",
        "/api/v1/companies/not/a/route",
        "/api/v1/companiesx",
        "/api/v1/nowhere/at/all",
    ] {
        app.get(path)
            .role(Role::Viewer)
            .send()
            .await
            .assert_problem(404, "not_found");
    }
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

/// What diesel really reports for PostgreSQL's lock timeout, NOWAIT, statement timeout and
/// deadlock is recognised: 503s, the deadlock as `Contention`, which `db::transaction` retries.
#[actix_web::test]
async fn the_servers_timeouts_and_deadlocks_are_recognised() {
    use diesel::connection::SimpleConnection;
    use diesel::RunQueryDsl;
    use lshub::error::ApiError;

    let app = TestApp::spawn().await;
    let mut holder = app.conn();
    let mut waiter = app.conn();
    holder
        .batch_execute(
            "CREATE TABLE contended (id int PRIMARY KEY); INSERT INTO contended VALUES (1), (2)",
        )
        .expect("setup");
    let run = |conn: &mut diesel::PgConnection, sql: &str| {
        diesel::sql_query(sql)
            .execute(conn)
            .map(drop)
            .map_err(ApiError::from)
    };

    waiter
        .batch_execute("SET statement_timeout = 50")
        .expect("set");
    let slow = run(&mut waiter, "SELECT pg_sleep(2)").expect_err("timed out");
    assert!(matches!(slow, ApiError::Unavailable { .. }), "{slow:?}");
    assert_eq!(slow.to_string(), "the query took too long; retry later");

    holder
        .batch_execute("BEGIN; SELECT id FROM contended WHERE id = 1 FOR UPDATE")
        .expect("lock");
    waiter
        .batch_execute("SET statement_timeout = 0; SET lock_timeout = 50")
        .expect("set");
    for sql in [
        "UPDATE contended SET id = id WHERE id = 1",
        "SELECT id FROM contended WHERE id = 1 FOR UPDATE NOWAIT",
    ] {
        let busy = run(&mut waiter, sql).expect_err("lock not available");
        assert!(
            matches!(busy, ApiError::Unavailable { .. }),
            "{sql}: {busy:?}"
        );
        assert_eq!(
            busy.to_string(),
            "the record is busy with another write; retry"
        );
    }
    holder.batch_execute("ROLLBACK").expect("rollback");

    // Each holds one row and then wants the other's; PostgreSQL aborts one of them.
    waiter.batch_execute("SET lock_timeout = 0").expect("set");
    holder
        .batch_execute("BEGIN; UPDATE contended SET id = id WHERE id = 1")
        .expect("first row");
    waiter
        .batch_execute("BEGIN; UPDATE contended SET id = id WHERE id = 2")
        .expect("second row");
    let crossing = std::thread::spawn(move || {
        let result = run(&mut holder, "UPDATE contended SET id = id WHERE id = 2");
        let _ = holder.batch_execute("ROLLBACK");
        result
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let second = run(&mut waiter, "UPDATE contended SET id = id WHERE id = 1");
    let _ = waiter.batch_execute("ROLLBACK");
    let first = crossing.join().expect("thread");
    let failures: Vec<ApiError> = [first, second]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(matches!(failures[0], ApiError::Contention), "{failures:?}");
}

/// PostgreSQL's own timeouts, lock refusals and deadlocks, caused for real, are told apart by
/// their SQLSTATE (57014, 55P03, 40P01), whatever language the server writes its messages in:
/// each answers 503 (a deadlock as contention, which the transaction retries first).
#[actix_web::test]
async fn real_timeouts_lock_refusals_and_deadlocks_are_recognised_by_sqlstate() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use lshub::error::ApiError;

    let app = TestApp::spawn().await;
    let mut a = app.conn();
    let mut b = app.conn();
    a.batch_execute("CREATE TABLE probe (id int PRIMARY KEY); INSERT INTO probe VALUES (1), (2)")
        .expect("probe table");

    // 57014: a statement past its timeout.
    a.batch_execute("SET statement_timeout = 50").expect("set");
    let slow = diesel::sql_query("SELECT pg_sleep(2)")
        .execute(&mut a)
        .unwrap_err();
    assert!(
        matches!(ApiError::from(slow), ApiError::Unavailable { .. }),
        "statement timeout"
    );
    a.batch_execute("SET statement_timeout = 0").expect("reset");

    // 55P03: a row another transaction holds, with NOWAIT and with a lock timeout.
    a.batch_execute("BEGIN; SELECT * FROM probe WHERE id = 1 FOR UPDATE")
        .expect("hold the row");
    let nowait = diesel::sql_query("SELECT * FROM probe WHERE id = 1 FOR UPDATE NOWAIT")
        .execute(&mut b)
        .unwrap_err();
    assert!(
        matches!(ApiError::from(nowait), ApiError::Unavailable { .. }),
        "NOWAIT"
    );
    b.batch_execute("SET lock_timeout = 50").expect("set");
    let waited = diesel::sql_query("SELECT * FROM probe WHERE id = 1 FOR UPDATE")
        .execute(&mut b)
        .unwrap_err();
    assert!(
        matches!(ApiError::from(waited), ApiError::Unavailable { .. }),
        "lock timeout"
    );
    a.batch_execute("ROLLBACK").expect("release");
    b.batch_execute("SET lock_timeout = 0").expect("reset");

    // 40P01: two transactions each holding the row the other wants.
    a.batch_execute("BEGIN; UPDATE probe SET id = id WHERE id = 1")
        .expect("a holds 1");
    b.batch_execute("BEGIN; UPDATE probe SET id = id WHERE id = 2")
        .expect("b holds 2");
    let waiter = std::thread::spawn(move || {
        let outcome = diesel::sql_query("UPDATE probe SET id = id WHERE id = 2").execute(&mut a);
        let _ = a.batch_execute("ROLLBACK");
        outcome.map_err(ApiError::from)
    });
    // Long enough for `a` to be waiting on row 2 when `b` asks for row 1.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mine = diesel::sql_query("UPDATE probe SET id = id WHERE id = 1")
        .execute(&mut b)
        .map_err(ApiError::from);
    let _ = b.batch_execute("ROLLBACK");
    let theirs = waiter.join().expect("waiter");
    // PostgreSQL breaks the cycle by failing exactly one of the two.
    let failed: Vec<ApiError> = [mine, theirs].into_iter().filter_map(Result::err).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(failed[0], ApiError::Contention), "{:?}", failed[0]);
}

/// The JSON log (README, "Configuration"): one line a request with its fields, and every line
/// written while a request is served carries that request's id.
#[actix_web::test]
async fn every_log_line_of_a_request_carries_its_id_and_the_request_line_its_fields() {
    let app = TestApp::spawn().await;
    let server = app.serve_binary(&[("RUST_LOG", "info")]);
    app.get("/api/v1/companies")
        .at(&server.address)
        .role(Role::Editor)
        .header("X-Request-Id", "log-line-ok")
        .send()
        .await
        .assert_status(200);
    app.get("/api/v1/companies")
        .at(&server.address)
        .bearer("not-a-token")
        .header("X-Request-Id", "log-line-refused")
        .send()
        .await
        .assert_status(401);
    let of = |lines: &[Value], id: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["request_id"] == id)
            .cloned()
            .collect()
    };
    let started = std::time::Instant::now();
    let lines = loop {
        let lines = server.logged();
        let done = of(&lines, "log-line-refused")
            .iter()
            .any(|l| l["message"] == "request");
        if done || started.elapsed() > std::time::Duration::from_secs(10) {
            break lines;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    let ok = of(&lines, "log-line-ok");
    assert_eq!(ok.len(), 1, "{ok:?}");
    let line = &ok[0];
    assert_eq!(line["message"], "request");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/v1/companies");
    assert_eq!(line["status"], 200);
    assert!(line["target"]
        .as_str()
        .is_some_and(|t| t.starts_with("lshub")));
    let latency = line["latency_ms"].as_str().expect("latency as text");
    assert!(
        latency.parse::<f64>().is_ok_and(|ms| ms >= 0.0),
        "{latency}"
    );
    let principal = line["principal"].as_str().expect("principal");
    assert!(uuid::Uuid::parse_str(principal).is_ok(), "{principal}");
    let at = line["timestamp"].as_str().expect("timestamp");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");

    let refused = of(&lines, "log-line-refused");
    let messages: Vec<&str> = refused
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert_eq!(messages, ["access token refused", "request"], "{refused:?}");
    assert!(refused[0]["reason"].is_string());
    assert_eq!(refused[1]["status"], 401);
    assert_eq!(refused[1]["principal"], "-");
    // Lines written outside any request carry no request id.
    let startup = lines
        .iter()
        .find(|l| l["message"] == "lshub listening")
        .expect("startup line");
    assert!(startup.get("request_id").is_none());
}
