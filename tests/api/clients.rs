//! API clients: `lshub client create` and the `client_credentials` grant.

use std::process::Command;

use base64::Engine as _;
use diesel::connection::SimpleConnection;
use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

/// Runs `lshub client create` against the app's database; its one JSON line.
fn create_client(app: &TestApp, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_lshub"))
        .args(["client", "create"])
        .args(args)
        .env("DATABASE_URL", app.database_url())
        .env("LSHUB_LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .output()
        .expect("run lshub");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    Ok(serde_json::from_str(stdout.trim()).expect("a JSON line"))
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

fn assert_invalid_client(res: &TestResponse) {
    assert_eq!(res.status, 401, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["error"], "invalid_client");
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some("Basic realm=\"lshub\"")
    );
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
}

#[actix_web::test]
async fn a_client_gets_a_token_by_basic_or_in_the_body_and_acts_with_its_role() {
    let app = TestApp::spawn().await;
    let created = create_client(&app, &["Dashboard", "--role", "viewer"]).expect("created");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "a 256-bit secret at least");
    // Stored hashed, never as given; the creation is audited.
    let mut conn = app.conn();
    let hash: Vec<String> = {
        use diesel::prelude::*;
        lshub::db::schema::api_clients::table
            .select(lshub::db::schema::api_clients::secret_hash)
            .load(&mut conn)
            .unwrap()
    };
    assert!(hash[0].starts_with("$argon2") && !hash[0].contains(&secret));
    assert_eq!(app.count("audit_events WHERE entity = 'api_client'"), 1);

    let by_basic = app
        .post("/api/v1/auth/token")
        .header("Authorization", &basic(&id, &secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    by_basic.assert_status(200);
    let tokens = by_basic.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let by_form = app
        .post("/api/v1/auth/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await;
    by_form.assert_status(200);
    let by_json = app
        .post("/api/v1/auth/token")
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await;
    by_json.assert_status(200);

    let access = tokens["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/me").bearer(access).send().await;
    me.assert_status(200);
    assert_eq!(me.json()["kind"], "client");
    assert_eq!(me.json()["id"], id.as_str());
    assert_eq!(me.json()["role"], "viewer");
    assert_eq!(me.json()["name"], "Dashboard");
    app.get("/api/v1/companies")
        .bearer(access)
        .send()
        .await
        .assert_status(200);
    app.post("/api/v1/goals")
        .bearer(access)
        .json(&json!({"code": 5, "title": "Not a viewer's"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn a_wrong_or_revoked_secret_and_an_unknown_client_are_invalid_client_alike() {
    let app = TestApp::spawn().await;
    let created = create_client(&app, &["Tool", "--role", "editor"]).expect("created");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let grant = |authorization: Option<String>, form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut req = app.post("/api/v1/auth/token");
            if let Some(value) = authorization {
                req = req.header("Authorization", &value);
            }
            let mut pairs: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
            pairs.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
            req.form(&pairs).send().await
        }
    };
    assert_invalid_client(&grant(Some(basic(&id, "wrong")), vec![]).await);
    assert_invalid_client(
        &grant(
            Some(basic(&uuid::Uuid::now_v7().to_string(), &secret)),
            vec![],
        )
        .await,
    );
    assert_invalid_client(&grant(Some(basic("not-a-uuid", &secret)), vec![]).await);
    assert_invalid_client(&grant(Some("Basic !!!".into()), vec![]).await);
    assert_invalid_client(&grant(None, vec![]).await);
    assert_invalid_client(&grant(None, vec![("client_id", id.clone())]).await);
    // One way at a time (RFC 6749 §2.3).
    let both = grant(
        Some(basic(&id, &secret)),
        vec![("client_id", id.clone()), ("client_secret", secret.clone())],
    )
    .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.json()["error"], "invalid_request");

    grant(Some(basic(&id, &secret)), vec![])
        .await
        .assert_status(200);
    app.conn()
        .batch_execute(&format!(
            "UPDATE api_clients SET revoked_at = now() WHERE id = '{id}'"
        ))
        .expect("revoke");
    assert_invalid_client(&grant(Some(basic(&id, &secret)), vec![]).await);
}

#[actix_web::test]
async fn a_partner_client_is_bound_to_its_organisation_with_a_partner_users_rights() {
    let app = TestApp::spawn().await;
    let own = app.fixtures.partner_org.to_string();
    assert!(create_client(&app, &["No org", "--role", "partner"])
        .unwrap_err()
        .contains("--organisation"));
    assert!(create_client(
        &app,
        &[
            "Editor with org",
            "--role",
            "editor",
            "--organisation",
            &own
        ]
    )
    .unwrap_err()
    .contains("only partner clients"));
    let created = create_client(
        &app,
        &[
            "Partner system",
            "--role",
            "partner",
            "--organisation",
            &own,
        ],
    )
    .expect("created");
    let res = app
        .post("/api/v1/auth/token")
        .header(
            "Authorization",
            &basic(
                created["client_id"].as_str().unwrap(),
                created["client_secret"].as_str().unwrap(),
            ),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    res.assert_status(200);
    let access = res.json()["access_token"].as_str().unwrap().to_owned();
    let claims = app.state.tokens.verify(&access).unwrap();
    assert_eq!(claims.org.map(|o| o.to_string()), Some(own.clone()));

    // Its own organisation's self-managed fields: yes; another organisation: 403.
    let res = app
        .patch(&format!("/api/v1/companies/{own}"))
        .bearer(&access)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"description": "Written by our integration"}))
        .send()
        .await;
    res.assert_status(200);
    let other = app
        .create_company(json!({"name": "Someone Else S.r.l.", "sector": "biotech"}))
        .await;
    app.patch(&format!(
        "/api/v1/companies/{}",
        other["id"].as_str().unwrap()
    ))
    .bearer(&access)
    .header("If-Match", "\"1\"")
    .merge_patch(&json!({"description": "Not ours"}))
    .send()
    .await
    .assert_problem(403, "forbidden");
    // The change is audited as the client's.
    let res = app
        .get(&format!("/api/v1/companies/{own}/history"))
        .role(Role::Editor)
        .send()
        .await;
    let event = &res.json()["data"][0];
    assert_eq!(event["actor_kind"], "client");
    assert_eq!(event["actor_id"], created["client_id"]);
}

/// `/api/v1/clients`: an admin creates a client (its secret shown once, never again), reads,
/// patches and lists it, rotates its secret with a grace period, and revokes it; each change
/// audited.
#[actix_web::test]
async fn admins_manage_clients_over_the_api_and_rotate_their_secrets_with_a_grace_period() {
    let app = TestApp::spawn().await;
    let own = app.fixtures.partner_org.to_string();
    let res = app
        .post("/api/v1/clients")
        .role(Role::Admin)
        .json(&json!({"name": "Partner ERP", "role": "partner", "organisation_id": own}))
        .send()
        .await;
    res.assert_status(201);
    let created = res.json();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "partner");
    assert_eq!(
        res.header("location").as_deref(),
        Some(format!("/api/v1/clients/{id}").as_str())
    );
    let token_with = |secret: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.post("/api/v1/auth/token")
                .header("Authorization", &basic(&id, &secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
        }
    };
    token_with(secret.clone()).await.assert_status(200);

    // Read and listed without any secret or hash.
    let read = app
        .get(&format!("/api/v1/clients/{id}"))
        .role(Role::Admin)
        .send()
        .await;
    read.assert_status(200);
    let text = String::from_utf8_lossy(&read.body).into_owned();
    assert!(
        !text.contains("secret\":\"") && !text.contains("argon2"),
        "{text}"
    );
    let listed = app
        .get("/api/v1/clients?role=partner")
        .role(Role::Admin)
        .send()
        .await;
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 1);

    // Validation: a partner client names its organisation; other roles none.
    let res = app
        .post("/api/v1/clients")
        .role(Role::Admin)
        .json(&json!({"name": "Lost", "role": "partner"}))
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/organisation_id",
        "required",
    );
    let res = app
        .patch(&format!("/api/v1/clients/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"role": "viewer"}))
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/organisation_id",
        "invalid_format",
    );
    let res = app
        .patch(&format!("/api/v1/clients/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"name": "Partner ERP (prod)"}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["version"], 2);

    // Rotation with a grace period: both secrets work until it ends.
    let res = app
        .post(&format!("/api/v1/clients/{id}/rotate-secret"))
        .role(Role::Admin)
        .header("If-Match", "\"2\"")
        .json(&json!({"grace_seconds": 3600}))
        .send()
        .await;
    res.assert_status(200);
    let rotated = res.json();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_secret_valid_until"].is_string());
    token_with(new_secret.clone()).await.assert_status(200);
    token_with(secret.clone()).await.assert_status(200);
    // Without one, the previous secret stops at once.
    let res = app
        .post(&format!("/api/v1/clients/{id}/rotate-secret"))
        .role(Role::Admin)
        .header("If-Match", "\"3\"")
        .json(&json!({}))
        .send()
        .await;
    res.assert_status(200);
    let newest = res.json()["client_secret"].as_str().unwrap().to_owned();
    assert_invalid_client(&token_with(new_secret).await);
    assert_invalid_client(&token_with(secret).await);
    let res = app
        .post(&format!("/api/v1/clients/{id}/rotate-secret"))
        .role(Role::Admin)
        .header("If-Match", "\"4\"")
        .json(&json!({"grace_seconds": 9999999}))
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/grace_seconds",
        "out_of_range",
    );

    // Revoked: its secret no longer gets a token, and it leaves the list.
    let access = token_with(newest.clone()).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/api/v1/clients/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"4\"")
        .send()
        .await
        .assert_status(204);
    assert_invalid_client(&token_with(newest).await);
    let listed = app.get("/api/v1/clients").role(Role::Admin).send().await;
    assert!(listed.json()["data"].as_array().unwrap().is_empty());
    let started = std::time::Instant::now();
    while app.get("/api/v1/me").bearer(&access).send().await.status != 401 {
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Every change audited: create, update, two rotations, the revocation.
    let history = app
        .get(&format!("/api/v1/clients/{id}/history"))
        .role(Role::Admin)
        .send()
        .await;
    let page = history.json();
    let actions: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["archive", "update", "update", "update", "create"]);
    let text = String::from_utf8_lossy(&history.body).into_owned();
    assert!(!text.contains("argon2"), "no hash in the trail");
}
