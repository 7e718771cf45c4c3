//! The committed OpenAPI document is the public contract: it must equal what the code makes.

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
