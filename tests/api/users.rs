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
