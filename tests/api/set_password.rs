//! One-time set-password tokens: a user created without a password, or given a fresh token by
//! an admin, sets its own at `POST /api/v1/auth/set-password`.

use diesel::connection::SimpleConnection;
use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

const NEW_PASSWORD: &str = "a password of my own";

async fn login(app: &TestApp, email: &str, password: &str) -> TestResponse {
    app.post("/api/v1/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
}

async fn set_password(app: &TestApp, token: &str, password: &str) -> TestResponse {
    app.post("/api/v1/auth/set-password")
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
}

/// Creates `email` as a viewer without a password: the user and its token.
async fn create_without_password(app: &TestApp, email: &str) -> (Value, String) {
    let res = app
        .post("/api/v1/users")
        .role(Role::Admin)
        .json(&json!({"email": email, "role": "viewer"}))
        .send()
        .await;
    res.assert_status(201);
    let user = res.json();
    let token = user["set_password_token"].as_str().unwrap().to_owned();
    (user, token)
}

#[actix_web::test]
async fn a_user_created_without_a_password_sets_its_own_with_the_token_once() {
    let app = TestApp::spawn().await;
    let (user, token) = create_without_password(&app, "new@example.org").await;
    let id = user["id"].as_str().unwrap().to_owned();
    // 256 random bits, URL-safe base64.
    assert_eq!(token.len(), 43);
    assert_eq!(user["disabled"], false);

    // Shown once: not in a read, a list or the trail; stored only as its SHA-256 digest.
    for path in [
        format!("/api/v1/users/{id}"),
        "/api/v1/users".to_owned(),
        format!("/api/v1/users/{id}/history"),
    ] {
        let res = app.get(&path).role(Role::Admin).send().await;
        res.assert_status(200);
        assert!(
            !String::from_utf8_lossy(&res.body).contains(&token),
            "{path}"
        );
        assert!(!String::from_utf8_lossy(&res.body).contains("set_password_token\":\""));
    }
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{id}' AND password_hash IS NULL"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "set_password_tokens WHERE user_id = '{id}' \
             AND token_hash = sha256(convert_to('{token}', 'UTF8'))"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "set_password_tokens WHERE position(convert_to('{token}', 'UTF8') in token_hash) > 0"
        )),
        0
    );

    // No password, no login: answered as a wrong password is.
    let refused = login(&app, "new@example.org", "anything at all here").await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"], "invalid_grant");

    // A short password is 422 and leaves the token usable.
    set_password(&app, &token, "short")
        .await
        .assert_problem(422, "validation");
    let res = set_password(&app, &token, NEW_PASSWORD).await;
    res.assert_status(204);
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    login(&app, "new@example.org", NEW_PASSWORD)
        .await
        .assert_status(200);

    // Once only.
    let again = set_password(&app, &token, "yet another long password").await;
    again.assert_problem(400, "invalid_one_time_token");
    assert_eq!(again.header("cache-control").as_deref(), Some("no-store"));
    login(&app, "new@example.org", NEW_PASSWORD)
        .await
        .assert_status(200);

    // Audited, without the token or the password; the user's version moved on.
    let history = app
        .get(&format!("/api/v1/users/{id}/history"))
        .role(Role::Admin)
        .send()
        .await;
    let page = history.json();
    let first = &page["data"][0];
    assert_eq!(first["action"], "update");
    assert_eq!(first["actor_id"], id.as_str());
    assert_eq!(first["changes"]["after"]["password"], "set");
    assert!(!String::from_utf8_lossy(&history.body).contains(NEW_PASSWORD));
    let read = app
        .get(&format!("/api/v1/users/{id}"))
        .role(Role::Admin)
        .send()
        .await;
    assert_eq!(read.json()["version"], 2);
}

#[actix_web::test]
async fn the_endpoint_takes_a_form_and_refuses_unknown_or_expired_tokens() {
    let app = TestApp::spawn().await;
    let (user, token) = create_without_password(&app, "form@example.org").await;
    let id = user["id"].as_str().unwrap().to_owned();

    set_password(&app, "not-a-token-anyone-issued", NEW_PASSWORD)
        .await
        .assert_problem(400, "invalid_one_time_token");
    app.post("/api/v1/auth/set-password")
        .json(&json!({"token": token}))
        .send()
        .await
        .assert_problem(422, "validation");
    app.post("/api/v1/auth/set-password")
        .json(&json!({"token": token, "password": NEW_PASSWORD, "extra": 1}))
        .send()
        .await
        .assert_problem(422, "validation");
    app.post("/api/v1/auth/set-password")
        .raw("text/plain", "token")
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");

    // Expired: aged past the 72 h default.
    app.conn()
        .batch_execute(&format!(
            "UPDATE set_password_tokens SET issued_at = now() - interval '72 hours 1 second' \
             WHERE user_id = '{id}'"
        ))
        .unwrap();
    set_password(&app, &token, NEW_PASSWORD)
        .await
        .assert_problem(400, "invalid_one_time_token");
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{id}' AND password_hash IS NULL"
        )),
        1
    );

    // Form-encoded, with a fresh token.
    let fresh = app
        .post(&format!("/api/v1/users/{id}/set-password-token"))
        .role(Role::Admin)
        .send()
        .await;
    fresh.assert_status(200);
    let fresh = fresh.json()["set_password_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post("/api/v1/auth/set-password")
        .form(&[("token", fresh.as_str()), ("password", NEW_PASSWORD)])
        .send()
        .await
        .assert_status(204);
    login(&app, "form@example.org", NEW_PASSWORD)
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn a_fresh_token_replaces_the_old_one_and_a_new_password_ends_the_sessions() {
    let app = TestApp::spawn().await;
    let viewer = app.fixtures.users[&Role::Viewer];
    let email = email_for(Role::Viewer);
    let session = login(&app, &email, PASSWORD).await;
    session.assert_status(200);
    let refresh = session.json()["refresh_token"].as_str().unwrap().to_owned();

    let issue = || {
        app.post(&format!("/api/v1/users/{viewer}/set-password-token"))
            .role(Role::Admin)
            .send()
    };
    let first = issue().await;
    first.assert_status(200);
    assert_eq!(first.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(first.json()["id"], viewer.to_string());
    let first = first.json()["set_password_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = issue().await.json()["set_password_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    assert_eq!(
        app.count(&format!("set_password_tokens WHERE user_id = '{viewer}'")),
        1
    );

    // The old password keeps working until the new one is set.
    login(&app, &email, PASSWORD).await.assert_status(200);
    set_password(&app, &first, NEW_PASSWORD)
        .await
        .assert_problem(400, "invalid_one_time_token");
    set_password(&app, &second, NEW_PASSWORD)
        .await
        .assert_status(204);

    // Old password and old sessions gone.
    assert_eq!(
        login(&app, &email, PASSWORD).await.json()["error"],
        "invalid_grant"
    );
    let refreshed = app
        .post("/api/v1/auth/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await;
    assert_eq!(refreshed.status, 400);
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    assert_eq!(
        app.count(&format!(
            "refresh_tokens WHERE user_id = '{viewer}' AND revoked_at IS NULL AND issued_at < \
             (SELECT max(issued_at) FROM refresh_tokens WHERE user_id = '{viewer}')"
        )),
        0
    );
    login(&app, &email, NEW_PASSWORD).await.assert_status(200);

    // Admins only, and 404 for an unknown user.
    for role in [Role::Viewer, Role::Partner, Role::Editor] {
        app.post(&format!("/api/v1/users/{viewer}/set-password-token"))
            .role(role)
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    app.post(&format!(
        "/api/v1/users/{}/set-password-token",
        uuid::Uuid::now_v7()
    ))
    .role(Role::Admin)
    .send()
    .await
    .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn a_disabled_users_token_is_refused() {
    let app = TestApp::spawn().await;
    let (user, token) = create_without_password(&app, "gone@example.org").await;
    let id = user["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v1/users/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    set_password(&app, &token, NEW_PASSWORD)
        .await
        .assert_problem(400, "invalid_one_time_token");
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{id}' AND password_hash IS NULL"
        )),
        1
    );
    // Nor is a fresh one issued for a disabled user.
    app.post(&format!("/api/v1/users/{id}/set-password-token"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
}

/// An answer that revealed a token is never stored: its replay is 409.
#[actix_web::test]
async fn a_retry_of_an_answer_that_showed_a_token_is_409() {
    let app = TestApp::spawn().await;
    let create = || {
        app.post("/api/v1/users")
            .role(Role::Admin)
            .header("Idempotency-Key", "new-user-1")
            .json(&json!({"email": "retry@example.org", "role": "viewer"}))
            .send()
    };
    let first = create().await;
    first.assert_status(201);
    let token = first.json()["set_password_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let replay = create().await;
    replay.assert_problem(409, "idempotency_answer_not_stored");
    assert!(!String::from_utf8_lossy(&replay.body).contains(&token));
    assert_eq!(app.count("users WHERE email = 'retry@example.org'"), 1);

    let id = first.json()["id"].as_str().unwrap().to_owned();
    let issue = || {
        app.post(&format!("/api/v1/users/{id}/set-password-token"))
            .role(Role::Admin)
            .header("Idempotency-Key", "fresh-token-1")
            .send()
    };
    let fresh = issue().await;
    fresh.assert_status(200);
    let replay = issue().await;
    replay.assert_problem(409, "idempotency_answer_not_stored");
    let fresh = fresh.json()["set_password_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!String::from_utf8_lossy(&replay.body).contains(&fresh));
    // The stored rows hold no token.
    assert_eq!(
        app.count(&format!(
            "idempotency_keys WHERE body IS NOT NULL AND \
             (position(convert_to('{token}', 'UTF8') in body) > 0 \
              OR position(convert_to('{fresh}', 'UTF8') in body) > 0)"
        )),
        0
    );
    // A create with a password reveals nothing, and replays as ever.
    let with_password = || {
        app.post("/api/v1/users")
            .role(Role::Admin)
            .header("Idempotency-Key", "new-user-2")
            .json(&json!({"email": "pw@example.org", "role": "viewer", "password": NEW_PASSWORD}))
            .send()
    };
    let first = with_password().await;
    first.assert_status(201);
    assert!(first.json().get("set_password_token").is_none());
    let replay = with_password().await;
    replay.assert_status(201);
    assert_eq!(
        replay.header("idempotent-replayed").as_deref(),
        Some("true")
    );
}
