//! The token endpoint, refresh rotation, revocation, `/me` and key rotation.

use diesel::connection::SimpleConnection;
use lshub::auth::{PrincipalKind, TokenService};
use lshub::config::{AuthSettings, Secret};
use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

/// A password-grant request for `username`.
pub(crate) async fn password_login(app: &TestApp, username: &str, password: &str) -> TestResponse {
    app.post("/api/v1/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
}

/// The token answer of `role`'s pre-made user.
pub(crate) async fn login(app: &TestApp, role: Role) -> Value {
    let res = password_login(app, &email_for(role), PASSWORD).await;
    res.assert_status(200);
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    res.json()
}

/// Asserts an RFC 6749 error answer of the token endpoint and returns its body.
#[track_caller]
pub(crate) fn assert_oauth_error(res: &TestResponse, status: u16, error: &str) -> Value {
    assert_eq!(res.status, status, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    let body = res.json();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    assert!(body["request_id"].is_string());
    body
}

#[actix_web::test]
async fn password_grant_issues_tokens_that_identify_the_caller() {
    let app = TestApp::spawn().await;
    let tokens = login(&app, Role::Partner).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["scope"], "registry:read registry:write:own");
    assert!(tokens["refresh_token"]
        .as_str()
        .is_some_and(|t| t.len() >= 43));

    let me = app
        .get("/api/v1/me")
        .bearer(tokens["access_token"].as_str().unwrap())
        .send()
        .await;
    me.assert_status(200);
    let me = me.json();
    assert_eq!(me["kind"], "user");
    assert_eq!(me["role"], "partner");
    assert_eq!(me["email"], email_for(Role::Partner));
    assert_eq!(me["organisation_id"], app.fixtures.partner_org.to_string());
    assert_eq!(me["id"], app.fixtures.users[&Role::Partner].to_string());
}

#[actix_web::test]
async fn the_access_token_is_a_typed_jwt_with_the_contract_claims() {
    let app = TestApp::spawn().await;
    let tokens = login(&app, Role::Editor).await;
    let token = tokens["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(
        header.kid.as_deref(),
        Some(lshub::auth::tokens::key_id(JWT_SECRET.as_bytes()).as_str())
    );
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    let claims = app.state.tokens.verify(token).unwrap();
    assert_eq!(claims.iss, "lshub");
    assert_eq!(claims.aud, "lshub-api");
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.role, Role::Editor);
    assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
}

#[actix_web::test]
async fn json_token_requests_are_accepted() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/api/v1/auth/token")
        .json(&json!({"grant_type": "password", "username": email_for(Role::Viewer), "password": PASSWORD}))
        .send()
        .await;
    res.assert_status(200);
    assert!(res.json()["access_token"].is_string());
}

#[actix_web::test]
async fn malformed_token_requests_are_rfc_6749_errors() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/api/v1/auth/token")
        .form(&[("username", "x")])
        .send()
        .await;
    assert_oauth_error(&res, 400, "invalid_request");
    let res = app
        .post("/api/v1/auth/token")
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await;
    assert_oauth_error(&res, 400, "unsupported_grant_type");
    let res = app
        .post("/api/v1/auth/token")
        .raw(
            "application/x-www-form-urlencoded",
            "grant_type=password&grant_type=password",
        )
        .send()
        .await;
    assert_oauth_error(&res, 400, "invalid_request");
    let res = app
        .post("/api/v1/auth/token")
        .raw("text/plain", "grant_type=password")
        .send()
        .await;
    assert_oauth_error(&res, 400, "invalid_request");
    let res = app
        .post("/api/v1/auth/token")
        .form(&[("grant_type", "password"), ("username", "a@b.it")])
        .send()
        .await;
    assert_oauth_error(&res, 400, "invalid_request");
}

/// A refresh-grant request.
pub(crate) async fn refresh(app: &TestApp, token: &str) -> TestResponse {
    app.post("/api/v1/auth/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
}

#[actix_web::test]
async fn refresh_tokens_rotate_and_a_replayed_one_revokes_the_family() {
    let app = TestApp::spawn().await;
    let first = login(&app, Role::Editor).await;
    let r1 = first["refresh_token"].as_str().unwrap();

    let second = refresh(&app, r1).await;
    second.assert_status(200);
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    app.get("/api/v1/me")
        .bearer(second["access_token"].as_str().unwrap())
        .send()
        .await
        .assert_status(200);

    // Replaying the rotated token is theft or a bug: refused, and the live one dies with it.
    assert_oauth_error(&refresh(&app, r1).await, 400, "invalid_grant");
    assert_oauth_error(&refresh(&app, r2).await, 400, "invalid_grant");
    assert_eq!(app.count("refresh_tokens WHERE revoked_at IS NULL"), 0);
    // Tokens are stored as SHA-256 digests, never in clear.
    assert_eq!(
        app.count(&format!(
            "refresh_tokens WHERE token_hash = sha256(convert_to('{r2}', 'UTF8'))"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "refresh_tokens WHERE position(convert_to('{r2}', 'UTF8') IN token_hash) > 0"
        )),
        0
    );
}

#[actix_web::test]
async fn revoke_ends_the_session_and_answers_200_for_unknown_tokens() {
    let app = TestApp::spawn().await;
    let tokens = login(&app, Role::Viewer).await;
    let r = tokens["refresh_token"].as_str().unwrap();
    let res = app
        .post("/api/v1/auth/revoke")
        .form(&[("token", r)])
        .send()
        .await;
    res.assert_status(200);
    assert_oauth_error(&refresh(&app, r).await, 400, "invalid_grant");
    app.post("/api/v1/auth/revoke")
        .form(&[("token", "never-issued")])
        .send()
        .await
        .assert_status(200);
    let res = app.post("/api/v1/auth/revoke").form(&[]).send().await;
    assert_oauth_error(&res, 400, "invalid_request");
}

fn auth_settings(secret: &str, previous: Option<&str>) -> AuthSettings {
    AuthSettings {
        jwt_secret: Some(Secret::new(secret)),
        jwt_previous_secret: previous.map(Secret::new),
        jwt_issuer: "lshub".into(),
        jwt_audience: "lshub-api".into(),
        access_token_ttl: 900,
        refresh_token_ttl: 3600,
        set_password_token_ttl: 259_200,
        password_hash_concurrency: 1,
    }
}

#[actix_web::test]
async fn tokens_of_the_previous_key_keep_working_after_rotation() {
    const NEW_SECRET: &str = "rotated-secret-abcdefghijklmnopqrstuvwxyz012345";
    let app = TestApp::spawn_with(|s| s.auth = auth_settings(NEW_SECRET, Some(JWT_SECRET))).await;
    let old_keys = TokenService::new(&auth_settings(JWT_SECRET, None)).unwrap();
    let old = old_keys
        .issue(
            app.fixtures.users[&Role::Viewer],
            PrincipalKind::User,
            Role::Viewer,
            None,
        )
        .unwrap();
    app.get("/api/v1/me")
        .bearer(&old.token)
        .send()
        .await
        .assert_status(200);
    app.get("/api/v1/me")
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);

    // A key that is neither current nor previous is unknown.
    let stranger = TokenService::new(&auth_settings(
        "another-secret-abcdefghijklmnopqrstuvwxyz0123",
        None,
    ))
    .unwrap();
    let foreign = stranger
        .issue(
            app.fixtures.users[&Role::Viewer],
            PrincipalKind::User,
            Role::Viewer,
            None,
        )
        .unwrap();
    app.get("/api/v1/me")
        .bearer(&foreign.token)
        .send()
        .await
        .assert_problem(401, "unauthorized");
}

/// The old key's token, re-signed by the old key with other claims or another `kid`.
fn resigned(token: &str, kid: &str, adjust: impl FnOnce(&mut Value)) -> String {
    let mut header = jsonwebtoken::decode_header(token).unwrap();
    header.kid = Some(kid.to_owned());
    let mut claims = app_claims(token);
    adjust(&mut claims);
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The README's rotation, step 2 (the new key current, the old one previous): a token of the
/// old key verifies until it expires, then is 401 like any expired token; a `kid` naming
/// neither key is 401 whatever signs it.
#[actix_web::test]
async fn an_old_keys_token_verifies_until_it_expires_and_an_unknown_kid_is_refused() {
    const NEW_SECRET: &str = "rotated-secret-abcdefghijklmnopqrstuvwxyz012345";
    let app = TestApp::spawn_with(|s| s.auth = auth_settings(NEW_SECRET, Some(JWT_SECRET))).await;
    let old_keys = TokenService::new(&auth_settings(JWT_SECRET, None)).unwrap();
    let token = old_keys
        .issue(
            app.fixtures.users[&Role::Viewer],
            PrincipalKind::User,
            Role::Viewer,
            None,
        )
        .unwrap()
        .token;
    let old_kid = lshub::auth::tokens::key_id(JWT_SECRET.as_bytes());
    let me = |token: String| {
        let app = &app;
        async move { app.get("/api/v1/me").bearer(&token).send().await }
    };
    // Re-signing leaves a valid token valid.
    me(resigned(&token, &old_kid, |_| {}))
        .await
        .assert_status(200);
    // Expired (past the leeway): refused, though its key still verifies.
    let now = chrono::Utc::now().timestamp();
    let expired = resigned(&token, &old_kid, |c| {
        c["iat"] = json!(now - 1000);
        c["nbf"] = json!(now - 1000);
        c["exp"] = json!(now - 60);
    });
    me(expired).await.assert_problem(401, "unauthorized");
    // The old key's signature under a `kid` that names no key, and no `kid` at all.
    me(resigned(&token, "no-such-key", |_| {}))
        .await
        .assert_problem(401, "unauthorized");
    let mut header = jsonwebtoken::decode_header(&token).unwrap();
    header.kid = None;
    let claims = app_claims(&token);
    let kidless = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    me(kidless).await.assert_problem(401, "unauthorized");
}

/// The claims of a token, unverified.
fn app_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[actix_web::test]
async fn short_or_missing_signing_keys_are_refused() {
    assert!(TokenService::new(&auth_settings("too-short", None)).is_err());
    let mut settings = auth_settings(JWT_SECRET, None);
    settings.jwt_secret = None;
    assert!(TokenService::new(&settings).is_err());
}

#[actix_web::test]
async fn a_refresh_token_used_twice_at_once_leaves_no_live_token() {
    let app = TestApp::spawn().await;
    let tokens = login(&app, Role::Editor).await;
    let r1 = tokens["refresh_token"].as_str().unwrap();
    let (a, b) = futures_util::future::join(refresh(&app, r1), refresh(&app, r1)).await;
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    let winner = if a.status == 200 { a.json() } else { b.json() };
    // The replay revoked the family, the token the winner got included: it was stored in the
    // same transaction that retired the old one.
    let res = refresh(&app, winner["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&res, 400, "invalid_grant");
    assert_eq!(app.count("refresh_tokens WHERE revoked_at IS NULL"), 0);
}

/// RFC 7009's parameters, form-encoded or JSON, and nothing else: an unknown member, a member
/// of the wrong type or another media type is 400 `invalid_request`, and revokes nothing.
#[actix_web::test]
async fn revoke_takes_its_parameters_and_refuses_anything_else() {
    let app = TestApp::spawn().await;
    let tokens = login(&app, Role::Viewer).await;
    let r = tokens["refresh_token"].as_str().unwrap();
    let revoke = || app.post("/api/v1/auth/revoke");

    for body in [
        json!({"token": r, "token_type_hint": {"a": 1}}),
        json!({"token": r, "token_type_hint": 5}),
        json!({"token": r, "unknown": "x"}),
        json!({"token": 42}),
        json!({"token": ""}),
        json!({"token": null}),
        json!({}),
        json!([r]),
    ] {
        let res = revoke().json(&body).send().await;
        assert_oauth_error(&res, 400, "invalid_request");
    }
    for form in [
        vec![("token", r), ("unknown", "x")],
        vec![("token", r), ("token", r)],
        vec![("token", "")],
    ] {
        let res = revoke().form(&form).send().await;
        assert_oauth_error(&res, 400, "invalid_request");
    }
    let res = revoke()
        .raw("text/plain", format!("token={r}"))
        .send()
        .await;
    assert_oauth_error(&res, 400, "invalid_request");
    // None of that revoked anything.
    assert_eq!(app.count("refresh_tokens WHERE revoked_at IS NOT NULL"), 0);

    // What RFC 7009 and RFC 6749 §2.3.1 let a client send is accepted.
    revoke()
        .json(
            &json!({"token": "never-issued", "token_type_hint": "refresh_token", "client_id": "c"}),
        )
        .send()
        .await
        .assert_status(200);
    let res = revoke()
        .form(&[
            ("token", r),
            ("token_type_hint", "whatever"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ])
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    assert_oauth_error(&refresh(&app, r).await, 400, "invalid_grant");
}

/// The grants the token endpoint documents, and the RFC 6749 error of each refusal.
#[actix_web::test]
async fn token_grants_answer_as_documented() {
    let app = TestApp::spawn().await;
    let token = || app.post("/api/v1/auth/token");
    for (form, error) in [
        (
            vec![("grant_type", "authorization_code")],
            "unsupported_grant_type",
        ),
        (vec![("grant_type", "")], "invalid_request"),
        (vec![("scope", "x")], "invalid_request"),
        (
            vec![("grant_type", "password"), ("username", "a@b.example")],
            "invalid_request",
        ),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
    ] {
        let res = token().form(&form).send().await;
        assert_oauth_error(&res, 400, error);
    }
    let res = token()
        .json(&json!({"grant_type": "password", "username": {"a": 1}, "password": "x"}))
        .send()
        .await;
    assert_oauth_error(&res, 400, "invalid_request");
    // RFC 6749 §3.2: parameters it does not know are ignored.
    let res = token()
        .form(&[
            ("grant_type", "password"),
            ("username", &email_for(Role::Viewer)),
            ("password", PASSWORD),
            ("audience", "whatever"),
        ])
        .send()
        .await;
    res.assert_status(200);
}

/// When the listener's connection dies, a revocation committed meanwhile is never heard: the
/// replica reads each request's principal from the database until it has reconnected and
/// reloaded the set, so the user disabled while nobody listened is refused at once (never a
/// 503 meanwhile), and still refused by the reloaded set.
#[actix_web::test]
async fn a_revocation_missed_while_the_listener_is_down_is_read_from_the_database() {
    let app = TestApp::spawn_with(|s| s.db.listener_reconnect_ms = 3000).await;
    let viewer = app.fixtures.users[&Role::Viewer];
    app.me_as(Role::Viewer).await.assert_status(200);
    app.kill_listeners();
    app.until_following(false, std::time::Duration::from_secs(2))
        .await;
    app.me_as(Role::Viewer).await.assert_status(200);
    app.conn()
        .batch_execute(&format!(
            "UPDATE users SET disabled_at = now() WHERE id = '{viewer}'"
        ))
        .unwrap();
    app.me_as(Role::Viewer)
        .await
        .assert_problem(401, "unauthorized");
    assert!(!app.following(), "the listener came back too soon");
    app.until_following(true, std::time::Duration::from_secs(8))
        .await;
    app.me_as(Role::Viewer)
        .await
        .assert_problem(401, "unauthorized");
}
