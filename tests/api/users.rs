//! `/api/v1/users`: admins manage the people who log in.

use lshub::domain::Role;
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn admins_create_patch_disable_and_enable_users_and_the_password_is_never_shown() {
    let app = TestApp::spawn().await;
    let own = app.fixtures.partner_org.to_string();
    let res = app
        .post("/api/v1/users")
        .role(Role::Admin)
        .json(
            &json!({"email": "Anna@Example.org", "role": "partner", "organisation_id": own,
                      "password": "a long enough password"}),
        )
        .send()
        .await;
    res.assert_status(201);
    let user = res.json();
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(
        user["email"], "Anna@example.org",
        "the domain is stored lowercase"
    );
    assert!(
        user.get("password").is_none() && !String::from_utf8_lossy(&res.body).contains("argon2")
    );

    // The new user logs in with that password.
    let login = app
        .post("/api/v1/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "anna@example.org"),
            ("password", "a long enough password"),
        ])
        .send()
        .await;
    login.assert_status(200);
    let access = login.json()["access_token"].as_str().unwrap().to_owned();

    // Refusals: a duplicate e-mail, a short password, a partner without organisation.
    let res = app
        .post("/api/v1/users")
        .role(Role::Admin)
        .json(
            &json!({"email": "anna@example.org", "role": "viewer", "password": "another long one"}),
        )
        .send()
        .await;
    assert_field_error(&res.assert_problem(409, "duplicate"), "/email", "duplicate");
    let res = app
        .post("/api/v1/users")
        .role(Role::Admin)
        .json(&json!({"email": "bob@example.org", "role": "partner", "password": "short"}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/password", "out_of_range");
    assert_field_error(&problem, "/organisation_id", "required");

    // PATCH: role and organisation; the e-mail is fixed.
    let res = app
        .patch(&format!("/api/v1/users/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"email": "other@example.org"}))
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/email",
        "read_only",
    );
    let res = app
        .patch(&format!("/api/v1/users/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"role": "editor", "organisation_id": null}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["role"], "editor");

    // DELETE disables: no login, and its access token stops within a second; restore enables.
    app.delete(&format!("/api/v1/users/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"2\"")
        .send()
        .await
        .assert_status(204);
    let again = app
        .post("/api/v1/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "anna@example.org"),
            ("password", "a long enough password"),
        ])
        .send()
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");
    let started = std::time::Instant::now();
    while app.get("/api/v1/me").bearer(&access).send().await.status != 401 {
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let listed = app
        .get("/api/v1/users?include_archived=true&role=editor")
        .role(Role::Admin)
        .send()
        .await;
    assert!(listed.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == id.as_str()));
    app.post(&format!("/api/v1/users/{id}/restore"))
        .role(Role::Admin)
        .header("If-Match", "\"3\"")
        .send()
        .await
        .assert_status(200);

    // Every change audited, with no password in the trail.
    let history = app
        .get(&format!("/api/v1/users/{id}/history"))
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
    assert_eq!(actions, ["restore", "archive", "update", "create"]);
    assert!(!String::from_utf8_lossy(&history.body).contains("long enough"));

    // Admins only.
    for role in [Role::Viewer, Role::Partner, Role::Editor] {
        app.get("/api/v1/users")
            .role(role)
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
}

#[actix_web::test]
async fn an_admin_does_not_disable_themselves() {
    let app = TestApp::spawn().await;
    let me = app.fixtures.users[&Role::Admin];
    app.delete(&format!("/api/v1/users/{me}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/me")
        .role(Role::Admin)
        .send()
        .await
        .assert_status(200);
}

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

/// `PATCH {"disabled": true}` is `DELETE`: its refresh token is refused at once, its access
/// token within a second, and the trail says `archive`; `{"disabled": false}` is `restore`.
#[actix_web::test]
async fn patching_disabled_disables_and_enables_a_user_as_delete_and_restore_do() {
    let app = TestApp::spawn().await;
    let viewer = app.fixtures.users[&Role::Viewer];
    let email = email_for(Role::Viewer);
    let tokens = login(&app, &email, PASSWORD).await;
    tokens.assert_status(200);
    let access = tokens.json()["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens.json()["refresh_token"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/users/{viewer}");

    // If-Match applies as for every PATCH.
    app.patch(&path)
        .role(Role::Admin)
        .merge_patch(&json!({"disabled": true}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.patch(&path)
        .role(Role::Admin)
        .header("If-Match", "\"9\"")
        .merge_patch(&json!({"disabled": true}))
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    app.patch(&path)
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"disabled": "yes"}))
        .send()
        .await
        .assert_problem(422, "validation");

    let res = app
        .patch(&path)
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"disabled": true}))
        .send()
        .await;
    res.assert_status(200);
    let user = res.json();
    assert_eq!(user["disabled"], true);
    assert!(user["disabled_at"].is_string());
    assert_eq!(user["version"], 2);
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{viewer}' AND disabled_at IS NOT NULL"
        )),
        1
    );

    // The refresh token at once, the access token within a second, and no new login.
    let refreshed = app
        .post("/api/v1/auth/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await;
    assert_eq!(refreshed.status, 400);
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    let started = std::time::Instant::now();
    while app.get("/api/v1/me").bearer(&access).send().await.status != 401 {
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        login(&app, &email, PASSWORD).await.json()["error"],
        "invalid_grant"
    );

    // A disabled user takes only a patch that enables it, as DELETE of it is 404 too.
    app.patch(&path)
        .role(Role::Admin)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"role": "editor"}))
        .send()
        .await
        .assert_problem(404, "not_found");
    app.patch(&path)
        .role(Role::Admin)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"disabled": true}))
        .send()
        .await
        .assert_problem(404, "not_found");

    // Enabled again, with a role change in the same patch: a restore, then an update.
    let res = app
        .patch(&path)
        .role(Role::Admin)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"disabled": false, "role": "editor"}))
        .send()
        .await;
    res.assert_status(200);
    let user = res.json();
    assert_eq!(user["disabled"], false);
    assert!(user["disabled_at"].is_null());
    assert_eq!(user["role"], "editor");
    assert_eq!(user["version"], 4);
    assert_eq!(res.header("etag").as_deref(), Some("\"4\""));
    let again = login(&app, &email, PASSWORD).await;
    again.assert_status(200);
    let access = again.json()["access_token"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    while app.get("/api/v1/me").bearer(&access).send().await.status != 200 {
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A patch that leaves `disabled` as it is writes nothing.
    let res = app
        .patch(&path)
        .role(Role::Admin)
        .header("If-Match", "\"4\"")
        .merge_patch(&json!({"disabled": false}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["version"], 4);

    // The trail: the same archive and restore events as DELETE and restore write.
    let history = app
        .get(&format!("{path}/history"))
        .role(Role::Admin)
        .send()
        .await;
    let page = history.json();
    let events = page["data"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["update", "restore", "archive"]);
    assert!(events[2]["changes"]["before"]["archived_at"].is_null());
    assert!(events[2]["changes"]["after"]["archived_at"].is_string());
    assert_eq!(events[0]["changes"]["after"]["role"], "editor");
}

#[actix_web::test]
async fn a_user_may_be_created_disabled() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/api/v1/users")
        .role(Role::Admin)
        .json(&json!({"email": "later@example.org", "role": "viewer",
                      "password": "a long enough password", "disabled": true}))
        .send()
        .await;
    res.assert_status(201);
    let user = res.json();
    assert_eq!(user["disabled"], true);
    assert!(user["disabled_at"].is_string());
    let refused = login(&app, "later@example.org", "a long enough password").await;
    assert_eq!(refused.json()["error"], "invalid_grant");
    let id = user["id"].as_str().unwrap();
    app.patch(&format!("/api/v1/users/{id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"disabled": false}))
        .send()
        .await
        .assert_status(200);
    login(&app, "later@example.org", "a long enough password")
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn an_admin_does_not_disable_themselves_by_patch_either() {
    let app = TestApp::spawn().await;
    let me = app.fixtures.users[&Role::Admin];
    app.patch(&format!("/api/v1/users/{me}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"disabled": true}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.count(&format!("users WHERE id = '{me}' AND disabled_at IS NULL")),
        1
    );
    app.get("/api/v1/me")
        .role(Role::Admin)
        .send()
        .await
        .assert_status(200);
}
