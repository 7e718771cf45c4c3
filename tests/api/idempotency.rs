//! `Idempotency-Key` on the POSTs: retries replay the first answer and write nothing twice,
//! per principal, kept in the database, never holding a secret.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

const KEY: &str = "Idempotency-Key";

fn company(name: &str) -> Value {
    json!({"name": name, "sector": "pharmaceutical"})
}

/// A POST of a company as `role` under `key`.
async fn create(app: &TestApp, role: Role, key: &str, body: &Value) -> TestResponse {
    app.post("/api/v1/companies")
        .role(role)
        .header(KEY, key)
        .json(body)
        .send()
        .await
}

/// Waits (without blocking the requests in flight beside it) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: never");
}

#[track_caller]
fn assert_replay_of(first: &TestResponse, again: &TestResponse) {
    assert_eq!(again.status, first.status);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.body, first.body, "the same body");
    for header in ["content-type", "location", "etag", "cache-control"] {
        assert_eq!(again.header(header), first.header(header), "{header}");
    }
}

#[actix_web::test]
async fn retries_with_one_key_create_one_record_and_replay_the_first_answer() {
    let app = TestApp::spawn().await;
    let body = company("Retry Pharma S.r.l.");
    let first = create(&app, Role::Editor, "retry-1", &body).await;
    first.assert_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    assert!(first.header("location").is_some() && first.header("etag").is_some());
    for _ in 0..5 {
        let again = create(&app, Role::Editor, "retry-1", &body).await;
        assert_replay_of(&first, &again);
        assert_ne!(
            again.header("x-request-id"),
            first.header("x-request-id"),
            "a replay is a request of its own"
        );
    }
    assert_eq!(
        app.count("organisations WHERE name = 'Retry Pharma S.r.l.'"),
        1
    );
    assert_eq!(
        app.count("audit_events WHERE entity = 'company' AND action = 'create'"),
        1
    );
    let list = app
        .get("/api/v1/companies?q=retry")
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(names(&list.json()), ["Retry Pharma S.r.l."]);

    // The same key with another body, or another query, is refused and writes nothing; the
    // key still answers the request it was first used for.
    for other in [
        create(
            &app,
            Role::Editor,
            "retry-1",
            &company("Other Pharma S.r.l."),
        )
        .await,
        app.post("/api/v1/companies?x=1")
            .role(Role::Editor)
            .header(KEY, "retry-1")
            .json(&body)
            .send()
            .await,
    ] {
        let problem = other.assert_problem(422, "idempotency_key_reused");
        assert!(problem["detail"]
            .as_str()
            .unwrap()
            .contains("another request"));
    }
    assert_eq!(app.count("organisations WHERE kind = 'company'"), 2);
    assert_eq!(app.count("audit_events WHERE entity = 'company'"), 1);
    assert_replay_of(&first, &create(&app, Role::Editor, "retry-1", &body).await);
    assert_eq!(app.count("idempotency_keys"), 1);

    // A refusal is final for its key too: a replay says the same.
    let refused = create(&app, Role::Editor, "retry-2", &json!({"name": "X"})).await;
    refused.assert_problem(422, "validation");
    let again = create(&app, Role::Editor, "retry-2", &json!({"name": "X"})).await;
    assert_replay_of(&refused, &again);
    assert_eq!(
        again.header("content-type").as_deref(),
        Some("application/problem+json")
    );
}

#[actix_web::test]
async fn a_retry_while_the_first_request_is_in_flight_is_409() {
    let app = TestApp::spawn().await;
    let body = company("Slow Pharma S.r.l.");
    // The first request holds its key and then waits for the table it writes, which this
    // connection has locked, until the lock is let go.
    let mut lock = app.conn();
    lock.batch_execute("BEGIN; LOCK TABLE organisations IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let first = create(&app, Role::Editor, "slow-1", &body);
    let meanwhile = async {
        eventually("the first request holds its key", || {
            app.count("idempotency_keys WHERE key = 'slow-1' AND completed_at IS NULL") == 1
        })
        .await;
        let retry = create(&app, Role::Editor, "slow-1", &body).await;
        let other = create(&app, Role::Editor, "slow-1", &company("Fast Pharma S.r.l.")).await;
        lock.batch_execute("COMMIT").expect("unlock");
        (retry, other)
    };
    let (first, (retry, other)) = futures_util::future::join(first, meanwhile).await;
    let problem = retry.assert_problem(409, "idempotency_key_in_flight");
    assert!(problem["detail"].as_str().unwrap().contains("in progress"));
    other.assert_problem(422, "idempotency_key_reused");
    first.assert_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_replay_of(&first, &create(&app, Role::Editor, "slow-1", &body).await);
    assert_eq!(app.count("organisations WHERE kind = 'company'"), 2);
}

/// The request hash the server keys a company create by: SHA-256 of method, path and body.
fn hash_of(body: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"POST\0/api/v1/companies\0");
    hasher.update(serde_json::to_vec(body).unwrap());
    hex::encode(hasher.finalize())
}

#[actix_web::test]
async fn a_claim_left_by_a_crashed_process_is_taken_over_after_the_request_timeout() {
    let app = TestApp::spawn().await;
    let editor = app.fixtures.users[&Role::Editor];
    let body = company("Phoenix Pharma S.r.l.");
    let hash = hash_of(&body);
    // What a process that died mid-request leaves: a claim never completed nor released.
    app.conn()
        .batch_execute(&format!(
            "INSERT INTO idempotency_keys (principal_id, key, request_hash, claim, created_at) VALUES \
               ('{editor}', 'crashed', decode('{hash}', 'hex'), gen_random_uuid(), now() - interval '31 seconds'), \
               ('{editor}', 'running', decode('{hash}', 'hex'), gen_random_uuid(), now() - interval '5 seconds')"
        ))
        .expect("claims");
    // Younger than the whole-request timeout (30 s): its request may still be running.
    create(&app, Role::Editor, "running", &body)
        .await
        .assert_problem(409, "idempotency_key_in_flight");
    // Older: no request can be running under it any more.
    let res = create(&app, Role::Editor, "crashed", &body).await;
    res.assert_status(201);
    assert_eq!(res.header("idempotent-replayed"), None);
    assert_replay_of(&res, &create(&app, Role::Editor, "crashed", &body).await);
    assert_eq!(app.count("organisations WHERE kind = 'company'"), 2);
}

#[actix_web::test]
async fn a_failed_first_attempt_leaves_the_key_free_for_a_retry() {
    // statement_timeout 3 s: a write waits at most 1 s for a lock, then answers 503.
    let app = TestApp::spawn_with(|s| s.db.statement_timeout_secs = 3).await;
    let body = company("Patient Pharma S.r.l.");
    let mut lock = app.conn();
    lock.batch_execute("BEGIN; LOCK TABLE organisations IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let failed = create(&app, Role::Editor, "patient-1", &body).await;
    failed.assert_problem(503, "unavailable");
    lock.batch_execute("ROLLBACK").expect("unlock");
    assert_eq!(app.count("idempotency_keys"), 0, "released, not kept");
    assert_eq!(app.count("organisations WHERE kind = 'company'"), 1);

    let retry = create(&app, Role::Editor, "patient-1", &body).await;
    retry.assert_status(201);
    assert_eq!(retry.header("idempotent-replayed"), None, "run afresh");
    assert_replay_of(
        &retry,
        &create(&app, Role::Editor, "patient-1", &body).await,
    );

    // A refusal that depends on the moment is not kept either: here a name another record
    // holds (409), which the retry finds free once that record is archived.
    let taken = create(&app, Role::Editor, "patient-2", &body).await;
    taken.assert_problem(409, "duplicate");
    let id = retry.json()["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v1/companies/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    create(&app, Role::Editor, "patient-2", &body)
        .await
        .assert_status(201);
}

#[actix_web::test]
async fn a_request_cut_short_by_the_timeout_releases_its_key() {
    // The whole request may take 1 s; a write waits up to 2 s for a lock (statement_timeout
    // 6 s), so the request is dropped by the timeout while its write still waits.
    let app = TestApp::spawn_with(|s| {
        s.http.request_timeout_secs = 1;
        s.db.statement_timeout_secs = 6;
    })
    .await;
    let body = company("Hasty Pharma S.r.l.");
    let mut lock = app.conn();
    lock.batch_execute("BEGIN; LOCK TABLE organisations IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let started = std::time::Instant::now();
    create(&app, Role::Editor, "hasty-1", &body)
        .await
        .assert_problem(503, "unavailable");
    eventually("the dropped request releases its key", || {
        app.count("idempotency_keys") == 0
    })
    .await;
    // Let the abandoned write give up on the lock before letting go of it.
    actix_web::rt::time::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed())).await;
    lock.batch_execute("ROLLBACK").expect("unlock");
    assert_eq!(app.count("organisations WHERE kind = 'company'"), 1);
    let retry = create(&app, Role::Editor, "hasty-1", &body).await;
    retry.assert_status(201);
    assert_eq!(retry.header("idempotent-replayed"), None);
}

#[actix_web::test]
async fn keys_belong_to_their_principal() {
    let app = TestApp::spawn().await;
    let editors = create(
        &app,
        Role::Editor,
        "shared-key",
        &company("Editor Pharma S.r.l."),
    )
    .await;
    editors.assert_status(201);
    // Another caller's key of the same name is its own: no replay, no 422.
    let admins = create(
        &app,
        Role::Admin,
        "shared-key",
        &company("Admin Pharma S.r.l."),
    )
    .await;
    admins.assert_status(201);
    assert_eq!(admins.header("idempotent-replayed"), None);
    assert_ne!(admins.header("location"), editors.header("location"));
    assert_eq!(admins.json()["name"], "Admin Pharma S.r.l.");
    assert_eq!(app.count("idempotency_keys WHERE key = 'shared-key'"), 2);
    assert_eq!(
        app.count(&format!(
            "idempotency_keys WHERE key = 'shared-key' AND principal_id = '{}'",
            app.fixtures.users[&Role::Editor]
        )),
        1
    );
    // A caller the route refuses (403) keeps no key: the same key is free for what it may do.
    let viewer = app
        .post("/api/v1/companies")
        .role(Role::Viewer)
        .header(KEY, "viewer-key")
        .json(&company("Viewer Pharma S.r.l."))
        .send()
        .await;
    viewer.assert_problem(403, "forbidden");
    assert_eq!(app.count("idempotency_keys WHERE key = 'viewer-key'"), 0);
    // Without a token the key is no concern: 401 as ever.
    app.post("/api/v1/companies")
        .header(KEY, "not a valid key")
        .json(&company("Nobody Pharma S.r.l."))
        .send()
        .await
        .assert_problem(401, "unauthorized");
}

#[actix_web::test]
async fn an_answer_that_showed_a_secret_is_never_stored_and_its_retry_is_409() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Dashboard", "role": "viewer"});
    let send = || {
        app.post("/api/v1/clients")
            .role(Role::Admin)
            .header(KEY, "new-client")
            .json(&body)
            .send()
    };
    let created = send().await;
    created.assert_status(201);
    let client = created.json();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let location = created.header("location").unwrap();
    // Only that it happened: neither the body nor any trace of the secret.
    assert_eq!(
        app.count("idempotency_keys WHERE shown_once AND body IS NULL AND status = 201"),
        1
    );
    assert_eq!(
        app.count(&format!(
            "idempotency_keys k WHERE position('{secret}' IN k::text) > 0"
        )),
        0
    );
    let retry = send().await;
    let problem = retry.assert_problem(409, "idempotency_answer_not_stored");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("secret") && detail.contains("never stored"),
        "{detail}"
    );
    assert!(
        detail.contains(&location),
        "says where the client is: {detail}"
    );
    assert!(!retry
        .body
        .windows(secret.len())
        .any(|w| w == secret.as_bytes()));
    assert_eq!(app.count("api_clients"), 1);

    // A rotation too: one rotation, however often it is retried.
    let id = client["id"].as_str().unwrap();
    let rotate = || {
        app.post(&format!("/api/v1/clients/{id}/rotate-secret"))
            .role(Role::Admin)
            .header(KEY, "rotate-1")
            .header("If-Match", "\"1\"")
            .json(&json!({}))
            .send()
    };
    let rotated = rotate().await;
    rotated.assert_status(200);
    assert!(rotated.json()["client_secret"].is_string());
    rotate()
        .await
        .assert_problem(409, "idempotency_answer_not_stored");
    let now = app
        .get(&format!("/api/v1/clients/{id}"))
        .role(Role::Admin)
        .send()
        .await;
    assert_eq!(now.json()["version"], 2, "rotated once");
    assert_eq!(app.count("idempotency_keys WHERE body IS NOT NULL"), 0);
}

#[actix_web::test]
async fn a_key_is_one_to_255_visible_ascii_characters() {
    let app = TestApp::spawn().await;
    let long = "k".repeat(256);
    for bad in ["", "two words", long.as_str()] {
        let res = create(&app, Role::Editor, bad, &company("Keyless Pharma S.r.l.")).await;
        let problem = res.assert_problem(400, "malformed");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{problem}"
        );
    }
    assert_eq!(app.count("organisations WHERE kind = 'company'"), 1);
    assert_eq!(app.count("idempotency_keys"), 0);
    let longest = "k".repeat(255);
    create(
        &app,
        Role::Editor,
        &longest,
        &company("Keyed Pharma S.r.l."),
    )
    .await
    .assert_status(201);
    // Keys concern POSTs only: elsewhere the header is ignored, as an unknown one is.
    app.get("/api/v1/companies")
        .role(Role::Viewer)
        .header(KEY, "two words")
        .send()
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn expired_keys_are_ignored_and_swept() {
    let app = TestApp::spawn().await;
    create(&app, Role::Editor, "old", &company("Old Pharma S.r.l."))
        .await
        .assert_status(201);
    create(&app, Role::Editor, "new", &company("New Pharma S.r.l."))
        .await
        .assert_status(201);
    app.conn()
        .batch_execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
        )
        .expect("age");
    // Past the 24 hours the key is forgotten: another request under it is new, not 422.
    let reused = create(&app, Role::Editor, "old", &company("Older Pharma S.r.l.")).await;
    reused.assert_status(201);
    assert_eq!(reused.header("idempotent-replayed"), None);
    app.conn()
        .batch_execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
        )
        .expect("age");
    let ttl = Duration::from_secs(86_400);
    let deleted = lshub::http::machinery::idempotency::purge_expired(&app.state.pool, ttl)
        .await
        .expect("purge");
    assert_eq!(deleted, 1);
    assert_eq!(app.count("idempotency_keys WHERE key = 'new'"), 1);
    assert_eq!(app.count("idempotency_keys"), 1);
}

#[actix_web::test]
async fn the_server_sweeps_expired_keys_by_itself() {
    let app = TestApp::spawn_with(|s| s.http.idempotency_ttl_secs = 1).await;
    create(&app, Role::Editor, "brief", &company("Brief Pharma S.r.l."))
        .await
        .assert_status(201);
    assert_eq!(app.count("idempotency_keys"), 1);
    eventually("the sweep deletes the expired key", || {
        app.count("idempotency_keys") == 0
    })
    .await;
}

/// Every POST the middleware serves documents the key and what it answers, and answers 400
/// to a bad key; nothing else mentions it.
#[actix_web::test]
async fn the_spec_documents_the_key_where_the_server_takes_it() {
    let app = TestApp::spawn().await;
    let doc: Value = serde_json::from_str(&lshub::openapi::document()).expect("spec");
    let mut posts = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let key = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == KEY);
            let takes = method == "post"
                && path.starts_with("/api/v1/")
                && !path.starts_with("/api/v1/auth/");
            assert_eq!(key.is_some(), takes, "{method} {path}");
            let Some(key) = key else {
                continue;
            };
            posts += 1;
            assert_eq!(key["in"], "header");
            assert_eq!(key["required"], false);
            assert_eq!(key["schema"]["maxLength"], 255);
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "409", "422"] {
                assert!(responses.contains_key(status), "{method} {path} {status}");
            }
            for (status, response) in responses {
                if status.starts_with('2') {
                    assert!(
                        response["headers"]["Idempotent-Replayed"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
            let target = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            app.post(&target)
                .role(Role::Admin)
                .header(KEY, "no spaces please")
                .json(&json!({}))
                .send()
                .await
                .assert_problem(400, "malformed");
        }
    }
    assert_eq!(
        posts, 24,
        "creates, restores, rotate-secret, set-password-token, imports and a webhook delivery's retry"
    );
}
