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

use std::collections::BTreeSet;

use serde_json::{json, Value};

fn spec() -> Value {
    serde_json::from_str(&lshub::openapi::document()).expect("json")
}

/// Every operation: (method, path, operation).
pub(crate) fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops
}

fn statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .cloned()
        .collect()
}

fn params(op: &Value) -> Vec<Value> {
    op["parameters"].as_array().cloned().unwrap_or_default()
}

fn param(op: &Value, name: &str) -> Option<Value> {
    params(op).into_iter().find(|p| p["name"] == name)
}

fn takes(op: &Value, location: &str) -> bool {
    params(op).iter().any(|p| p["in"] == location)
}

fn secured(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| !s.is_empty())
}

fn is_auth_endpoint(path: &str) -> bool {
    path.starts_with("/api/v1/auth/")
}

/// The OAuth endpoints (RFC 6749, RFC 7009), whose errors keep RFC 6749's shape; the other
/// `/auth/` endpoint (set-password) answers problems, as the rest of the API does.
fn is_oauth_endpoint(path: &str) -> bool {
    matches!(path, "/api/v1/auth/token" | "/api/v1/auth/revoke")
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

/// Which statuses an operation can answer follows from what it takes and what it checks.
#[test]
fn every_operation_documents_the_statuses_its_inputs_and_checks_can_produce() {
    let doc = spec();
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let documented = statuses(&op);
        let mut need: Vec<(&str, &str)> = Vec::new();
        if takes(&op, "path") {
            need.push(("400", "a malformed path parameter"));
            need.push(("404", "a path naming nothing"));
        }
        if takes(&op, "query") {
            need.push(("400", "a malformed or unknown query parameter"));
        }
        if !op["requestBody"].is_null() {
            need.push(("400", "a malformed body"));
            need.push(("413", "a body over the limit"));
            if !is_auth_endpoint(&path) {
                need.push(("415", "another media type"));
            }
        }
        if secured(&op) {
            need.push(("401", "no or a bad token"));
            need.push(("503", "the database busy or the request timed out"));
        }
        if param(&op, "If-Match").is_some() {
            need.push(("412", "a stale If-Match"));
            need.push(("428", "no If-Match"));
        }
        if param(&op, "include_archived").is_some() {
            need.push(("403", "include_archived for viewers and partners"));
        }
        if param(&op, "limit").is_some() {
            need.push(("422", "limit out of range"));
            need.push(("429", "too many CSV exports at once"));
            need.push(("304", "If-None-Match on an unchanged list"));
        }
        if param(&op, "q").is_some() || param(&op, "province").is_some() {
            need.push(("422", "a refused filter value"));
        }
        for (status, why) in need {
            if !documented.contains(status) {
                problems.push(format!("{method} {path}: {status} ({why}) undocumented"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Errors are RFC 9457 problems, but at the token and revocation endpoints, whose 400 (and
/// the token endpoint's 401 `invalid_client`) is RFC 6749's shape (standard OAuth clients
/// parse it).
#[test]
fn every_error_answer_is_a_problem_or_an_oauth_error() {
    let doc = spec();
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    for (method, path, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().unwrap() {
            let code: u16 = status.parse().unwrap();
            if code < 400 {
                continue;
            }
            let response = match response["$ref"].as_str() {
                Some(r) => doc["components"]["responses"][r.rsplit('/').next().unwrap()].clone(),
                None => response.clone(),
            };
            let content = response["content"].as_object().expect("error content");
            let oauth =
                code == 400 || ((code == 401 || code == 429) && path == "/api/v1/auth/token");
            if is_oauth_endpoint(&path) && oauth {
                assert_eq!(
                    content["application/json"]["schema"]["$ref"],
                    "#/components/schemas/OAuthErrorBody",
                    "{method} {path} {status}"
                );
            } else {
                assert_eq!(
                    content["application/problem+json"]["schema"], problem,
                    "{method} {path} {status}"
                );
            }
        }
    }
}

/// The parameters every list shares are declared once: the 24 lists say the same of them.
#[test]
fn every_list_declares_the_shared_parameters_alike() {
    let doc = spec();
    let lists: Vec<_> = operations(&doc)
        .into_iter()
        .filter(|(_, _, op)| param(op, "limit").is_some())
        .collect();
    assert_eq!(
        lists.len(),
        26,
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
fn if_match_is_the_strong_etag_a_client_was_given() {
    let doc = spec();
    let mut writes = 0;
    for (method, path, op) in operations(&doc) {
        let Some(p) = param(&op, "If-Match") else {
            continue;
        };
        writes += 1;
        assert_eq!(p["in"], "header", "{method} {path}");
        assert_eq!(p["required"], true, "{method} {path}");
        let re = pattern_of(&p["schema"]);
        for good in [r#""1""#, r#""12345""#, r#""3", "4""#, r#""3","4""#] {
            assert!(re.is_match(good), "{method} {path}: {good}");
        }
        for bad in ["", "*", "1", r#"W/"1""#, r#""a""#, r#""-1""#, r#"" 1""#] {
            assert!(!re.is_match(bad), "{method} {path}: {bad}");
        }
    }
    // PATCH, DELETE and restore of seven record kinds (users included), PATCH and DELETE of
    // three link kinds, an API client's and a webhook subscription's PATCH, DELETE and secret
    // rotation.
    assert_eq!(writes, 7 * 3 + 3 * 2 + 3 * 2);
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

/// Path and query values of an operation, `{id}` and `{link_id}` replaced.
fn url(path: &str, id: &str, query: &str) -> String {
    let path = path.replace("{id}", id).replace("{link_id}", id);
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// One request of the conformance test.
struct Case {
    what: &'static str,
    target: String,
    role: Option<Role>,
    if_match: Option<&'static str>,
    body: Option<(&'static str, String)>,
}

/// The server asked what the document says it refuses: every answer is documented, and is a
/// problem (or, at the auth endpoints, an OAuth error).
#[actix_web::test]
async fn the_server_answers_only_documented_statuses() {
    let app = TestApp::spawn().await;
    let company = app
        .create_company(json!({"name": "Conformance Co", "sector": "biotech"}))
        .await;
    let res = app
        .post("/api/v1/goals")
        .role(Role::Editor)
        .json(&json!({"code": 42, "title": "Conformance goal", "headline": "Aim", "statement": "Goal"}))
        .send()
        .await;
    res.assert_status(201);
    let goal = res.json();
    // Records that exist: writes to them meet their preconditions, lists under them their
    // query checks (rather than a 404).
    let existing = [
        (
            "/api/v1/companies/{id}",
            company["id"].as_str().unwrap().to_owned(),
        ),
        (
            "/api/v1/goals/{id}",
            goal["id"].as_str().unwrap().to_owned(),
        ),
    ];
    let doc = spec();
    let mut undocumented = Vec::new();
    let mut asked = 0;
    for (method, path, op) in operations(&doc) {
        if !path.starts_with("/api/") {
            continue;
        }
        let method: actix_web::http::Method = method.to_uppercase().parse().unwrap();
        let media_type = if method == actix_web::http::Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let auth = is_auth_endpoint(&path);
        let oauth = is_oauth_endpoint(&path);
        let role = (!auth).then_some(Role::Editor);
        let if_match = param(&op, "If-Match").map(|_| "\"1\"");
        let unknown = uuid::Uuid::now_v7().to_string();
        let real = existing
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map(|(_, id)| id.clone());
        let id = real.clone().unwrap_or_else(|| unknown.clone());
        let case = |what, target, role, if_match, body| Case {
            what,
            target,
            role,
            if_match,
            body,
        };
        let empty = || Some((media_type, "{}".to_owned()));
        let mut cases = Vec::new();
        if secured(&op) {
            cases.push(case(
                "no token",
                url(&path, &id, ""),
                None,
                if_match,
                empty(),
            ));
        }
        if takes(&op, "path") {
            let malformed = url(&path, "null%2Cnull", "");
            cases.push(case("malformed id", malformed, role, if_match, empty()));
            let absent = url(&path, &unknown, "");
            cases.push(case("unknown id", absent, role, if_match, empty()));
        }
        if takes(&op, "query") {
            cases.push(case(
                "unknown parameter",
                url(&path, &id, "bogus=1"),
                role,
                None,
                None,
            ));
        }
        if param(&op, "limit").is_some() {
            for query in ["limit=0", "limit=201", "limit=-1", "cursor=", "cursor=x"] {
                cases.push(case(
                    "list parameters",
                    url(&path, &id, query),
                    role,
                    None,
                    None,
                ));
            }
            let archived = url(&path, &id, "include_archived=true");
            cases.push(case(
                "include_archived",
                archived,
                Some(Role::Viewer),
                None,
                None,
            ));
        }
        if param(&op, "q").is_some() {
            let long = url(&path, &id, &format!("q={}", "x".repeat(201)));
            cases.push(case("long q", long, role, None, None));
            cases.push(case("NUL in q", url(&path, &id, "q=%00"), role, None, None));
        }
        if !op["requestBody"].is_null() {
            let target = url(&path, &id, "");
            let not_json = Some((media_type, "{".to_owned()));
            cases.push(case("not JSON", target.clone(), role, if_match, not_json));
            let text = Some(("text/plain", "x".to_owned()));
            cases.push(case(
                "another media type",
                target.clone(),
                role,
                if_match,
                text,
            ));
            let large = Some((
                media_type,
                format!("{{\"note\": \"{}\"}}", "x".repeat(70_000)),
            ));
            cases.push(case("a body over the limit", target, role, if_match, large));
        }
        if if_match.is_some() {
            // Writes never succeed here (their If-Match is stale), so the records stay.
            for (what, tag) in [
                ("no If-Match", None),
                ("If-Match *", Some("*")),
                ("stale If-Match", Some("\"99\"")),
                ("stale If-Match list", Some("\"98\", \"99\"")),
                ("weak If-Match", Some("W/\"1\"")),
                ("garbage If-Match", Some("garbage")),
            ] {
                cases.push(case(what, url(&path, &id, ""), role, tag, empty()));
            }
        } else if real.is_some() {
            cases.push(case(
                "existing record",
                url(&path, &id, ""),
                role,
                None,
                None,
            ));
        }
        let documented = statuses(&op);
        for Case {
            what,
            target,
            role,
            if_match,
            body,
        } in cases
        {
            let mut req = app.request(method.clone(), &target);
            if let Some(role) = role {
                req = req.role(role);
            }
            if let Some(tag) = if_match {
                req = req.header("If-Match", tag);
            }
            if let Some((media_type, body)) = body {
                req = req.raw(media_type, body);
            }
            let res = req.send().await;
            asked += 1;
            if !documented.contains(&res.status.to_string()) {
                undocumented.push(format!(
                    "{method} {target} ({what}): {} undocumented",
                    res.status
                ));
            }
            if res.status >= 400 {
                let expected = if oauth && res.status == 400 {
                    "application/json"
                } else {
                    "application/problem+json"
                };
                assert_eq!(
                    res.header("content-type").as_deref(),
                    Some(expected),
                    "{method} {target} ({what})"
                );
            }
        }
    }
    assert!(asked > 400, "only {asked} requests");
    assert!(undocumented.is_empty(), "{}", undocumented.join("\n"));
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
    // Surrounding spaces, which the server trims, are in the pattern too.
    assert!(province.is_match(" MI "));
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
