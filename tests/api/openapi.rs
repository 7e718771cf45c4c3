//! The committed OpenAPI document is the public contract: it must equal what the code makes.

use lshub::domain::Role;

use crate::helpers::*;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[test]
fn committed_openapi_matches_the_code() {
    let generated = lshub::openapi::document() + "\n";
    if std::env::var_os("LSHUB_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `LSHUB_UPDATE_OPENAPI=1 cargo test --test api openapi` \
         (or `cargo run -- openapi > openapi/openapi.json`) and review the diff"
    );
}

#[test]
fn every_operation_declares_its_roles() {
    let doc: serde_json::Value = serde_json::from_str(&lshub::openapi::document()).expect("json");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let roles = op["x-roles"].as_array();
            assert!(
                roles.is_some_and(|r| !r.is_empty()),
                "{method} {path} has no x-roles"
            );
        }
    }
}

#[actix_web::test]
async fn the_service_serves_its_spec_and_swagger_ui() {
    let app = TestApp::spawn().await;
    let res = app.get("/openapi.json").send().await;
    res.assert_status(200);
    assert_eq!(
        res.json(),
        serde_json::from_str::<serde_json::Value>(&lshub::openapi::document()).unwrap()
    );
    let res = app.get("/docs/").send().await;
    res.assert_status(200);
    assert!(String::from_utf8_lossy(&res.body).contains("swagger"));
}

/// The roles an operation's `x-roles` leaves out get 403 from it, before any other check:
/// the route table that writes `x-roles` is what the role check reads.
#[actix_web::test]
async fn every_operation_refuses_the_roles_its_x_roles_leave_out() {
    let app = TestApp::spawn().await;
    let doc: serde_json::Value = serde_json::from_str(&lshub::openapi::document()).expect("json");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        // Any id will do: the role is checked before the path is parsed or looked up.
        let url = path
            .split('/')
            .map(|s| if s.starts_with('{') { "not-an-id" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().expect("item") {
            let allowed: Vec<&str> = op["x-roles"]
                .as_array()
                .expect("x-roles")
                .iter()
                .map(|r| r.as_str().expect("role"))
                .collect();
            if allowed.contains(&"anonymous") {
                continue;
            }
            let method = actix_web::http::Method::from_bytes(method.to_uppercase().as_bytes())
                .expect("method");
            for role in Role::ALL {
                if allowed.contains(&role.as_str()) {
                    continue;
                }
                let res = app
                    .request(method.clone(), &url)
                    .role(*role)
                    .raw("application/json", "{}")
                    .send()
                    .await;
                res.assert_problem(403, "forbidden");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} refusals checked");
}
