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

// ---------------------------------------------------------------------------------------------
// The document says what the server enforces: rules over every operation, then the server
// asked the same questions.
// ---------------------------------------------------------------------------------------------

use serde_json::{json, Value};

fn spec() -> Value {
    serde_json::from_str(&lshub::openapi::document()).expect("json")
}

/// Every operation: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops
}

fn params(op: &Value) -> Vec<Value> {
    op["parameters"].as_array().cloned().unwrap_or_default()
}

fn param(op: &Value, name: &str) -> Option<Value> {
    params(op).into_iter().find(|p| p["name"] == name)
}

fn secured(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| !s.is_empty())
}

fn is_auth_endpoint(path: &str) -> bool {
    path.starts_with("/api/v1/auth/")
}

#[test]
fn every_reference_resolves() {
    let doc = spec();
    let text = lshub::openapi::document();
    let re = regex::Regex::new(r##""\$ref": "#/components/(\w+)/([\w.-]+)""##).unwrap();
    let mut seen = 0;
    for cap in re.captures_iter(&text) {
        seen += 1;
        assert!(
            doc["components"][&cap[1]][&cap[2]].is_object(),
            "dangling $ref to #/components/{}/{}",
            &cap[1],
            &cap[2]
        );
    }
    assert!(seen > 100, "only {seen} references?");
}

/// The parameters every list shares are declared once: the 18 lists say the same of them.
#[test]
fn every_list_declares_the_shared_parameters_alike() {
    let doc = spec();
    let lists: Vec<_> = operations(&doc)
        .into_iter()
        .filter(|(_, _, op)| param(op, "limit").is_some())
        .collect();
    assert_eq!(
        lists.len(),
        18,
        "lists: {:?}",
        lists.iter().map(|l| &l.1).collect::<Vec<_>>()
    );
    let expected = [
        (
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
        ),
        (
            "cursor",
            json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}),
        ),
        (
            "q",
            json!({"type": "string", "maxLength": 200, "pattern": "^[^\\x00]*$"}),
        ),
        ("include_total", json!({"type": "boolean"})),
        ("include_archived", json!({"type": "boolean"})),
    ];
    let sort_pattern = regex::Regex::new(r"^\^-\?\(\w+(\|\w+)*\)\$$").unwrap();
    for (method, path, op) in &lists {
        for (name, schema) in &expected {
            if let Some(p) = param(op, name) {
                assert_eq!(&p["schema"], schema, "{method} {path} {name}");
                assert_eq!(p["in"], "query");
                assert_eq!(p["required"], false);
            }
        }
        // `sort`, `q` and `include_total` come together.
        let searchable = ["sort", "q", "include_total"].map(|n| param(op, n).is_some());
        assert!(
            searchable.iter().all(|s| *s == searchable[0]),
            "{method} {path}"
        );
        if let Some(sort) = param(op, "sort") {
            let pattern = sort["schema"]["pattern"].as_str().unwrap();
            assert!(sort_pattern.is_match(pattern), "{path}: {pattern}");
        }
    }
}

fn pattern_of(schema: &Value) -> regex::Regex {
    regex::Regex::new(schema["pattern"].as_str().expect("pattern")).expect("regex")
}

#[test]
fn the_token_endpoint_is_an_oauth2_scheme_beside_bearer() {
    let doc = spec();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let flows = &schemes["oauth2"]["flows"];
    assert_eq!(flows["password"]["tokenUrl"], "/api/v1/auth/token");
    assert_eq!(flows["clientCredentials"]["tokenUrl"], "/api/v1/auth/token");
    let scopes = flows["password"]["scopes"].as_object().unwrap();
    for role in Role::ALL {
        for scope in lshub::auth::tokens::scope_for(*role).split(' ') {
            assert!(scopes.contains_key(scope), "scope {scope} undeclared");
        }
    }
    for (method, path, op) in operations(&doc) {
        if !secured(&op) {
            assert!(
                is_auth_endpoint(&path) || !path.starts_with("/api/"),
                "{method} {path} has no security"
            );
            continue;
        }
        assert_eq!(
            op["security"],
            json!([{"bearer": []}, {"oauth2": []}]),
            "{method} {path}"
        );
    }
    let revoke = &doc["components"]["schemas"]["RevokeRequest"];
    assert_eq!(revoke["required"], json!(["token"]));
    assert_eq!(revoke["additionalProperties"], false);
    assert_eq!(revoke["properties"]["token"]["minLength"], 1);
    let token = &doc["components"]["schemas"]["TokenRequest"];
    assert_eq!(token["required"], json!(["grant_type"]));
    // RFC 6749 §3.2: the token endpoint ignores parameters it does not know.
    assert!(token["additionalProperties"].is_null());
    let grants = &doc["components"]["schemas"]["GrantType"]["enum"];
    assert_eq!(
        grants,
        &json!(["password", "refresh_token", "client_credentials"])
    );
}

/// The patterns of the filters admit what the server accepts, and refuse what it refuses.
#[actix_web::test]
async fn filter_patterns_admit_what_the_server_accepts() {
    let app = TestApp::spawn().await;
    let doc = spec();
    let list = doc["paths"]["/api/v1/organisations"]["get"].clone();
    let get = |query: String| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/organisations?{query}"))
                .role(Role::Viewer)
                .send()
                .await
                .status
        }
    };
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();

    // Province codes in any case; not the retired ones, not other shapes.
    let province = pattern_of(&doc["components"]["schemas"]["ProvinceCode"]);
    assert_eq!(
        param(&list, "province").unwrap()["schema"]["$ref"],
        "#/components/schemas/ProvinceCode"
    );
    for (value, accepted) in [
        ("MI", true),
        ("mi", true),
        ("Mb", true),
        ("su", true),
        ("XX", false),
        ("CI", false),
        ("", false),
        ("M", false),
        ("MIL", false),
        ("M1", false),
    ] {
        assert_eq!(province.is_match(value), accepted, "pattern, {value:?}");
        let status = get(format!("province={}", enc(value))).await;
        assert_eq!(status == 200, accepted, "server, {value:?}: {status}");
        if !accepted {
            assert_eq!(status, 422, "{value:?}");
        }
    }
    // Leniency beyond the pattern: surrounding spaces are ignored.
    assert!(!province.is_match(" MI "));
    assert_eq!(get("province=%20MI%20".into()).await, 200);

    // Tags: comma-separated, each 1..50 characters without `;` or control characters.
    let tags = pattern_of(&param(&list, "tags").unwrap()["schema"]);
    let fifty = "t".repeat(50);
    let fifty_one = "t".repeat(51);
    for (value, accepted) in [
        ("", true),
        ("oncology", true),
        ("oncology,rare diseases", true),
        (fifty.as_str(), true),
        ("à la carte,ünï", true),
        (fifty_one.as_str(), false),
        ("a;b", false),
        ("a,,b", false),
        ("a,", false),
        ("a\u{1}b", false),
        ("a\u{0}", false),
    ] {
        assert_eq!(tags.is_match(value), accepted, "pattern, {value:?}");
        let status = get(format!("tags={}", enc(value))).await;
        assert_eq!(status == 200, accepted, "server, {value:?}: {status}");
    }
    // Leniency beyond the pattern: spaces around a tag are ignored, a blank filter is none.
    for lenient in [" a", "a , b", "  "] {
        assert!(!tags.is_match(lenient), "{lenient:?}");
        assert_eq!(
            get(format!("tags={}", enc(lenient))).await,
            200,
            "{lenient:?}"
        );
    }

    // q: at most 200 characters, no NUL.
    let q = param(&list, "q").unwrap();
    let q_pattern = pattern_of(&q["schema"]);
    assert_eq!(q["schema"]["maxLength"], 200);
    for (value, accepted) in [
        ("humanitas".to_owned(), true),
        ("x".repeat(200), true),
        ("".to_owned(), true),
        ("x".repeat(201), false),
        ("a\u{0}b".to_owned(), false),
    ] {
        let fits = q_pattern.is_match(&value) && value.chars().count() <= 200;
        assert_eq!(fits, accepted, "schema, {value:?}");
        let status = get(format!("q={}", enc(&value))).await;
        assert_eq!(status == 200, accepted, "server, {value:?}: {status}");
    }

    // max_rank: 1 or more.
    let universities = &doc["paths"]["/api/v1/universities"]["get"];
    assert_eq!(
        param(universities, "max_rank").unwrap()["schema"]["minimum"],
        1
    );
    for (rank, status) in [("1", 200), ("0", 422), ("-1", 422)] {
        let res = app
            .get(&format!(
                "/api/v1/universities?ranking_area=life_sciences_and_medicine&max_rank={rank}"
            ))
            .role(Role::Viewer)
            .send()
            .await;
        res.assert_status(status);
    }

    // Every `sort` key a pattern names is one the server sorts by, and nothing else is.
    for (_, path, op) in operations(&doc) {
        let Some(sort) = param(&op, "sort") else {
            continue;
        };
        let pattern = sort["schema"]["pattern"].as_str().unwrap();
        let keys = pattern.trim_start_matches("^-?(").trim_end_matches(")$");
        for key in keys.split('|') {
            for value in [key.to_owned(), format!("-{key}")] {
                let res = app
                    .get(&format!("{path}?sort={value}"))
                    .role(Role::Viewer)
                    .send()
                    .await;
                res.assert_status(200);
            }
        }
        let res = app
            .get(&format!("{path}?sort=bogus"))
            .role(Role::Viewer)
            .send()
            .await;
        assert_field_error(
            &res.assert_problem(422, "validation"),
            "/sort",
            "unknown_value",
        );
    }
}
