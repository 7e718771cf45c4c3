//! Request bodies as the served spec describes them, read the way a client generator reads
//! them: what a create schema allows is created, a patch clears with `null` exactly what its
//! schema makes nullable, and what the spec closes is closed.

use lshub::domain::Role;
use serde_json::{json, Map, Value};

use crate::helpers::*;

/// The spec as served.
async fn spec(app: &TestApp) -> Value {
    let res = app.get("/openapi.json").send().await;
    res.assert_status(200);
    res.json()
}

/// `schema` with `$ref`s and `null` alternatives looked through.
pub(crate) fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(location) = schema["$ref"].as_str() {
        let name = location.rsplit('/').next().unwrap_or(location);
        return resolve(spec, &spec["components"]["schemas"][name]);
    }
    if let Some(item) = schema["oneOf"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["type"] != "null"))
    {
        return resolve(spec, item);
    }
    schema
}

/// The request body schema of `method path` for `content_type`.
fn body_schema<'a>(spec: &'a Value, method: &str, path: &str, content_type: &str) -> &'a Value {
    let schema = &spec["paths"][path][method]["requestBody"]["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "no {content_type} body on {method} {path}"
    );
    resolve(spec, schema)
}

fn nullable(schema: &Value) -> bool {
    schema["type"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("null")))
        || schema["oneOf"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["type"] == "null"))
}

/// The least value `schema` allows: only the required members of objects, the fewest items,
/// the lowest numbers, the first enum value, the shortest text; ids from `ids` by member name.
pub(crate) fn least(spec: &Value, schema: &Value, ids: &Map<String, Value>) -> Value {
    let schema = resolve(spec, schema);
    if let Some(values) = schema["enum"].as_array() {
        return values[0].clone();
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(t) => t
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    match kind.as_str() {
        "object" => {
            let mut out = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().expect("a member name");
                let value = match ids.get(name) {
                    Some(id) => id.clone(),
                    None => least(spec, &schema["properties"][name], ids),
                };
                out.insert(name.to_owned(), value);
            }
            Value::Object(out)
        }
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(0);
            Value::Array((0..n).map(|_| least(spec, &schema["items"], ids)).collect())
        }
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(0)),
        "boolean" => json!(false),
        "string" => {
            let n = schema["minLength"].as_u64().unwrap_or(1) as usize;
            json!("Ab".repeat(n).chars().take(n.max(1)).collect::<String>())
        }
        other => panic!("no least value of type {other:?}: {schema}"),
    }
}

#[actix_web::test]
async fn the_company_create_schema_requires_name_and_sector_and_is_closed() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let create = body_schema(&spec, "post", "/api/v1/companies", "application/json");
    assert_eq!(create["required"], json!(["name", "sector"]));
    assert_eq!(create["additionalProperties"], json!(false));
    assert_eq!(create["properties"]["name"]["type"], "string");
    assert_eq!(create["properties"]["name"]["minLength"], 2);
    assert_eq!(create["properties"]["name"]["maxLength"], 200);
    assert_eq!(
        create["properties"]["employees"]["maximum"],
        i64::from(i32::MAX)
    );
    // Their rules as patterns: a format would refuse the whitespace the server trims.
    for member in ["email", "website"] {
        let schema = &create["properties"][member];
        assert!(schema["pattern"].is_string(), "{member}: {schema}");
        assert!(schema.get("format").is_none(), "{member}: {schema}");
    }
    assert_eq!(create["properties"]["tags"]["maxItems"], 30);
    let address = resolve(&spec, &create["properties"]["address"]);
    assert_eq!(address["additionalProperties"], json!(false));
    // The province codes in any case, as the server takes them (and as list filters say).
    let province = address["properties"]["province"]["pattern"]
        .as_str()
        .expect("province pattern");
    let province = regex::Regex::new(province).expect("pattern");
    assert!(province.is_match("MI") && province.is_match("mi") && !province.is_match("XX"));

    for content_type in ["application/merge-patch+json", "application/json"] {
        let patch = body_schema(&spec, "patch", "/api/v1/companies/{id}", content_type);
        assert!(patch.get("required").is_none(), "a patch requires nothing");
        assert_eq!(patch["additionalProperties"], json!(false));
        assert!(
            !nullable(&patch["properties"]["name"]),
            "a name cannot be cleared"
        );
        assert!(!nullable(&patch["properties"]["sector"]));
        assert!(nullable(&patch["properties"]["website"]));
        assert!(nullable(&patch["properties"]["tags"]));
    }
}

/// Where each writable resource is created, in an order that makes the ids the later ones
/// need: the path in the spec, the URL, and the member its id fills in later bodies.
const COLLECTIONS: &[(&str, &str, Option<&str>)] = &[
    (
        "/api/v1/companies",
        "/api/v1/companies",
        Some("organisation_id"),
    ),
    ("/api/v1/irccs", "/api/v1/irccs", None),
    ("/api/v1/universities", "/api/v1/universities", None),
    ("/api/v1/partners", "/api/v1/partners", None),
    ("/api/v1/goals", "/api/v1/goals", Some("goal_id")),
    (
        "/api/v1/activities",
        "/api/v1/activities",
        Some("activity_id"),
    ),
    (
        "/api/v1/goal-activity-links",
        "/api/v1/goal-activity-links",
        None,
    ),
    (
        "/api/v1/goals/{id}/partners",
        "/api/v1/goals/{goal_id}/partners",
        None,
    ),
    (
        "/api/v1/activities/{id}/participants",
        "/api/v1/activities/{activity_id}/participants",
        None,
    ),
];

fn url(template: &str, ids: &Map<String, Value>) -> String {
    ids.iter().fold(template.to_owned(), |url, (name, id)| {
        url.replace(&format!("{{{name}}}"), id.as_str().unwrap_or_default())
    })
}

/// Schemathesis found every create answering 422 to bodies its schema allowed.
#[actix_web::test]
async fn the_least_body_each_create_schema_allows_is_created() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let mut ids = Map::new();
    for (path, template, id_member) in COLLECTIONS {
        let schema = body_schema(&spec, "post", path, "application/json");
        let body = least(&spec, schema, &ids);
        let res = app
            .post(&url(template, &ids))
            .role(Role::Editor)
            .json(&body)
            .send()
            .await;
        assert_eq!(
            res.status,
            201,
            "POST {path} {body}: {}",
            String::from_utf8_lossy(&res.body)
        );
        if let Some(member) = id_member {
            ids.insert((*member).to_owned(), res.json()["id"].clone());
        }
    }
}

/// On create, `null` counts as absent: every optional member of each create schema may be
/// `null`, and a body sending all of them so is created.
#[actix_web::test]
async fn every_optional_create_member_may_be_null() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let mut ids = Map::new();
    for (path, template, id_member) in COLLECTIONS {
        let schema = resolve(&spec, body_schema(&spec, "post", path, "application/json"));
        let mut body = least(&spec, schema, &ids);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, member) in schema["properties"].as_object().expect("properties") {
            if !required.contains(&name.as_str()) {
                assert!(nullable(member), "{path}: optional {name} is not nullable");
                body[name] = Value::Null;
            }
        }
        let res = app
            .post(&url(template, &ids))
            .role(Role::Editor)
            .json(&body)
            .send()
            .await;
        assert_eq!(
            res.status,
            201,
            "POST {path} {body}: {}",
            String::from_utf8_lossy(&res.body)
        );
        if let Some(member) = id_member {
            ids.insert((*member).to_owned(), res.json()["id"].clone());
        }
    }
}

/// A record of each writable resource, and the patch schema and URL of its item.
async fn one_of_each(app: &TestApp, spec: &Value) -> Vec<(String, Value)> {
    let mut ids = Map::new();
    let mut out = Vec::new();
    for (path, template, id_member) in COLLECTIONS {
        let schema = body_schema(spec, "post", path, "application/json");
        let res = app
            .post(&url(template, &ids))
            .role(Role::Editor)
            .json(&least(spec, schema, &ids))
            .send()
            .await;
        res.assert_status(201);
        let record = res.json();
        if let Some(member) = id_member {
            ids.insert((*member).to_owned(), record["id"].clone());
        }
        let item = res.header("location").expect("Location");
        let item_path = spec["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .find(|p| {
                p.strip_prefix(*path)
                    .is_some_and(|rest| rest.matches('/').count() == 1 && rest.ends_with('}'))
            })
            .expect("an item path")
            .clone();
        let patch = body_schema(spec, "patch", &item_path, "application/merge-patch+json");
        out.push((item, patch.clone()));
    }
    out
}

/// RFC 7396: `null` removes a member, and the result must validate as a create body would,
/// so exactly the members a create requires cannot be cleared: the patch schema says which.
#[actix_web::test]
async fn a_patch_clears_with_null_exactly_what_its_schema_makes_nullable() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    for (item, patch) in one_of_each(&app, &spec).await {
        for (name, member) in patch["properties"].as_object().expect("members") {
            let current = app.get(&item).role(Role::Editor).send().await;
            current.assert_status(200);
            let etag = current.header("etag").expect("ETag");
            let res = app
                .patch(&item)
                .role(Role::Editor)
                .header("If-Match", &etag)
                .merge_patch(&Value::Object(Map::from_iter([(
                    name.clone(),
                    Value::Null,
                )])))
                .send()
                .await;
            let expected = if nullable(member) { 200 } else { 422 };
            assert_eq!(
                res.status,
                expected,
                "PATCH {item} {{\"{name}\": null}}: {}",
                String::from_utf8_lossy(&res.body)
            );
            // Cleared to its default; a participant's was a 500 (no status left to write).
            match (name.as_str(), item.contains("/participants/")) {
                ("status", true) => assert_eq!(res.json()["status"], "confirmed"),
                ("status", false) => assert_eq!(res.json()["status"], "active"),
                _ => {}
            }
        }
    }
}

#[actix_web::test]
async fn unknown_members_inside_list_items_are_refused() {
    let app = TestApp::spawn().await;
    let organisations = app.count("organisations");
    let ranking =
        json!({"area": "life_sciences_and_medicine", "rank": 1, "source": "QS", "year": 2019});
    let mut extra = ranking.clone();
    extra["colour"] = json!("blue");
    let res = app
        .post("/api/v1/universities")
        .role(Role::Editor)
        .json(&json!({"name": "Università Uno", "rankings": [ranking, extra]}))
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/rankings/1/colour",
        "unknown_field",
    );

    let res = app
        .post("/api/v1/goals")
        .role(Role::Editor)
        .json(&json!({"code": 1, "title": "Goal", "lines_of_action": [{"text": "x", "id": 3}]}))
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/lines_of_action/0/id",
        "unknown_field",
    );
    assert_eq!(app.count("organisations"), organisations);
    assert_eq!(app.count("goals"), 0);
}

/// PostgreSQL text cannot hold U+0000; schemathesis's first such title was a 500.
#[actix_web::test]
async fn text_holding_nul_is_refused_at_its_member_with_every_other_problem() {
    let app = TestApp::spawn().await;
    let organisations = app.count("organisations");
    let res = app
        .post("/api/v1/activities")
        .role(Role::Editor)
        .json(&json!({"title": "Kick\u{0}off", "description": "fine", "status": "nope"}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/title", "invalid_format");
    assert_field_error(&problem, "/status", "unknown_value");

    let res = app
        .post("/api/v1/companies")
        .role(Role::Editor)
        .json(&json!({"name": "Nul Srl", "sector": "biotech", "address": {"city": "Mi\u{0}lano"}, "tags": ["ok", "n\u{0}"]}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/address/city", "invalid_format");
    assert_field_error(&problem, "/tags/1", "invalid_format");
    assert_eq!(app.count("activities"), 0);
    assert_eq!(app.count("organisations"), organisations);
}

/// JSON Schema counts `3.0` as an integer; so does the server.
#[actix_web::test]
async fn whole_numbers_may_be_written_with_a_fraction() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/api/v1/goals")
        .role(Role::Editor)
        .json(&json!({"code": 3.0, "title": "Third goal"}))
        .send()
        .await;
    res.assert_status(201);
    assert_eq!(res.json()["code"], 3);
    let company = app
        .create_company(json!({"name": "Whole Srl", "sector": "biotech", "employees": 12.0}))
        .await;
    assert_eq!(company["employees"], 12);

    let res = app
        .post("/api/v1/goals")
        .role(Role::Editor)
        .json(&json!({"code": 3.5, "title": "Half goal"}))
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/code",
        "invalid_type",
    );
}

/// An organisation's optional text members, and its address's.
const ORGANISATION_TEXT: &[&str] = &[
    "legal_name",
    "description",
    "website",
    "email",
    "phone",
    "vat_number",
    "ateco_code",
];
const ADDRESS_TEXT: &[&str] = &["street", "city", "postal_code", "province", "country"];

/// Blank optional text counts as absent, and the schemas say so. Schemathesis found
/// `"website": ""` created where the schema (a URL format and pattern) refused it: only members
/// with a bare pattern admitted blank, not those with a format (`website`, `email`, since
/// patterns) or an enum (`address.country`).
#[actix_web::test]
async fn blank_optional_text_is_absent_and_the_schemas_admit_it() {
    let app = TestApp::spawn().await;
    // That the request schemas admit it, member by member for every resource, is the unit test
    // `schema::tests::blank_optional_text_is_admitted_where_the_server_takes_it_as_absent`;
    // this is the server over HTTP.
    for (n, blank) in ["", " \t\u{a0}"].into_iter().enumerate() {
        let mut body = json!({"name": format!("Blank {n} S.r.l."), "sector": "biotech"});
        for member in ORGANISATION_TEXT {
            body[member] = json!(blank);
        }
        body["address"] = Value::Object(
            ADDRESS_TEXT
                .iter()
                .map(|m| ((*m).to_owned(), json!(blank)))
                .collect(),
        );
        let company = app.create_company(body).await;
        for member in ORGANISATION_TEXT {
            assert_eq!(company[member], Value::Null, "{member} = {blank:?}");
        }
        let address = &company["address"];
        for member in ["street", "city", "postal_code", "province"] {
            assert_eq!(address[member], Value::Null, "address.{member} = {blank:?}");
        }
        assert_eq!(address["country"], "IT", "a blank country is the default");
    }

    // In a patch, blank text clears a member as `null` does.
    let company = app
        .create_company(json!({
            "name": "Blank Patch S.r.l.", "sector": "biotech",
            "website": "https://blank.example", "email": "info@blank.example",
            "address": {"country": "DE", "postal_code": "10115"},
        }))
        .await;
    let res = app
        .patch(&format!(
            "/api/v1/companies/{}",
            company["id"].as_str().unwrap()
        ))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({
            "website": "", "email": "  ", "address": {"country": " ", "postal_code": ""},
        }))
        .send()
        .await;
    res.assert_status(200);
    let patched = res.json();
    assert_eq!(patched["website"], Value::Null);
    assert_eq!(patched["email"], Value::Null);
    assert_eq!(patched["address"]["country"], "IT");
    assert_eq!(patched["address"]["postal_code"], Value::Null);
}

/// Each link resource's members fixed at creation, its create path, and a body for it.
struct FixedCase {
    collection: String,
    item_path: &'static str,
    body: Value,
    fixed: &'static [&'static str],
}

/// Schemathesis sent the goal-activity link's `goal_id` in a PATCH, as the patch schema
/// offered, and got 422 `read_only`: members fixed at creation (a link's ends, a dated link's
/// organisation) are not in the patch schemas, and a patch naming one is refused like one
/// naming `id`, whatever its value, and writes nothing.
#[actix_web::test]
async fn members_fixed_at_creation_are_no_patch_members() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let created = |res: TestResponse| {
        res.assert_status(201);
        res.json()["id"].as_str().expect("an id").to_owned()
    };
    let goal = created(
        app.post("/api/v1/goals")
            .role(Role::Editor)
            .json(&json!({"code": 1, "title": "Research"}))
            .send()
            .await,
    );
    let other_goal = created(
        app.post("/api/v1/goals")
            .role(Role::Editor)
            .json(&json!({"code": 2, "title": "Education"}))
            .send()
            .await,
    );
    let activity = created(
        app.post("/api/v1/activities")
            .role(Role::Editor)
            .json(&json!({"title": "Open day"}))
            .send()
            .await,
    );
    let org = app
        .create_company(json!({"name": "Fixed S.r.l.", "sector": "biotech"}))
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let other_org = app
        .create_company(json!({"name": "Other S.r.l.", "sector": "biotech"}))
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let cases = [
        FixedCase {
            collection: "/api/v1/goal-activity-links".into(),
            item_path: "/api/v1/goal-activity-links/{id}",
            body: json!({"goal_id": goal, "activity_id": activity, "role": "supporting"}),
            fixed: &["goal_id", "activity_id"],
        },
        FixedCase {
            collection: format!("/api/v1/goals/{goal}/partners"),
            item_path: "/api/v1/goals/{id}/partners/{link_id}",
            body: json!({"organisation_id": org, "role": "other"}),
            fixed: &["organisation_id"],
        },
        FixedCase {
            collection: format!("/api/v1/activities/{activity}/participants"),
            item_path: "/api/v1/activities/{id}/participants/{link_id}",
            body: json!({"organisation_id": org, "role": "host"}),
            fixed: &["organisation_id"],
        },
    ];
    for case in cases {
        for content_type in ["application/merge-patch+json", "application/json"] {
            let schema = body_schema(&spec, "patch", case.item_path, content_type);
            assert_eq!(schema["additionalProperties"], json!(false));
            for member in case.fixed {
                assert!(
                    schema["properties"].get(*member).is_none(),
                    "PATCH {}: offers fixed `{member}`",
                    case.item_path
                );
            }
            assert!(
                schema["properties"].get("role").is_some(),
                "PATCH {}: `role` is patched",
                case.item_path
            );
        }

        let res = app
            .post(&case.collection)
            .role(Role::Editor)
            .json(&case.body)
            .send()
            .await;
        res.assert_status(201);
        let item = res.header("location").expect("Location");
        for member in case.fixed {
            let current = case.body[member].clone();
            let changed = if *member == "goal_id" {
                json!(other_goal)
            } else if *member == "organisation_id" {
                json!(other_org)
            } else {
                json!(uuid::Uuid::now_v7())
            };
            // Its current value, another one, or null: all refused alike, with the patch's
            // other members.
            for value in [current, changed, Value::Null] {
                let res = app
                    .patch(&item)
                    .role(Role::Editor)
                    .header("If-Match", "\"1\"")
                    .merge_patch(&json!({ *member: value, "note": "changed" }))
                    .send()
                    .await;
                let problem = res.assert_problem(422, "validation");
                assert_field_error(&problem, &format!("/{member}"), "read_only");
            }
        }
        let res = app.get(&item).role(Role::Editor).send().await;
        res.assert_status(200);
        let link = res.json();
        assert_eq!(link["version"], 1, "{item}: a refused patch writes nothing");
        assert_eq!(link["note"], Value::Null);
        for member in case.fixed {
            assert_eq!(link[member], case.body[member], "{item}: {member} kept");
        }
        // What the patch schema offers is patched.
        let res = app
            .patch(&item)
            .role(Role::Editor)
            .header("If-Match", "\"1\"")
            .merge_patch(&json!({"note": "changed"}))
            .send()
            .await;
        res.assert_status(200);
        assert_eq!(res.json()["note"], "changed");
    }
}

/// Schemathesis sent a title ending in `\v`, and later a website between spaces, which the
/// server trims and takes, where the pattern (or the website's `format: uri`) refused them.
/// Patterns admit the whitespace `parse` trims around a value (Unicode White_Space, not one
/// regex dialect's `\s`), no text member has a format, which would read the value as sent, and
/// the server stores the value trimmed.
#[actix_web::test]
async fn patterns_admit_the_whitespace_the_server_trims() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let pad = |value: &str| format!("\u{b} {value}\u{a0}\t");
    let pattern = |schema: &Value| {
        let schema = resolve(&spec, schema);
        let pattern = schema["pattern"]
            .as_str()
            .or_else(|| schema["anyOf"][0]["pattern"].as_str())
            .unwrap_or_else(|| panic!("no pattern: {schema}"));
        regex::Regex::new(pattern).expect("pattern")
    };

    let activity = body_schema(&spec, "post", "/api/v1/activities", "application/json");
    assert!(pattern(&activity["properties"]["title"]).is_match(&pad("Kick-off")));
    let res = app
        .post("/api/v1/activities")
        .role(Role::Editor)
        .json(&json!({"title": pad("Kick-off")}))
        .send()
        .await;
    res.assert_status(201);
    assert_eq!(res.json()["title"], "Kick-off");

    let company = body_schema(&spec, "post", "/api/v1/companies", "application/json");
    let values = [
        ("name", "Trim S.r.l."),
        ("website", "https://trim.example"),
        ("email", "info@trim.example"),
        ("phone", "+39 02 1234567"),
        ("vat_number", "00743110157"),
        ("ateco_code", "21.20"),
    ];
    let mut body = json!({"sector": "biotech"});
    for (member, value) in values {
        let schema = resolve(&spec, &company["properties"][member]);
        assert!(schema.get("format").is_none(), "`{member}` has a format");
        assert!(
            pattern(&company["properties"][member]).is_match(&pad(value)),
            "`{member}` refuses {:?}",
            pad(value)
        );
        body[member] = json!(pad(value));
    }
    let created = app.create_company(body).await;
    for (member, value) in values {
        assert_eq!(created[member], value, "{member} stored trimmed");
    }
}

/// Schemathesis sent a Partita IVA whose check digit was right and whose office code (digits
/// 8 to 10) was 000, which the pattern allowed and the server refuses; the pattern refuses it
/// too now, with or without the `IT` prefix.
#[actix_web::test]
async fn the_vat_pattern_refuses_office_code_000_as_the_server_does() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let company = body_schema(&spec, "post", "/api/v1/companies", "application/json");
    let vat = resolve(&spec, &company["properties"]["vat_number"]);
    let pattern = regex::Regex::new(vat["pattern"].as_str().expect("pattern")).expect("regex");
    // 0074311000 and its check digit 9: right but for the office.
    for refused in ["00743110009", "IT00743110009"] {
        assert!(!pattern.is_match(refused), "{refused}");
        let res = app
            .post("/api/v1/companies")
            .role(Role::Editor)
            .json(&json!({"name": "Office Zero", "sector": "biotech", "vat_number": refused}))
            .send()
            .await;
        assert_field_error(
            &res.assert_problem(422, "validation"),
            "/vat_number",
            "invalid_format",
        );
    }
    assert!(pattern.is_match("00743110157"));
    assert_eq!(app.count("organisations WHERE name = 'Office Zero'"), 0);
}

/// Schemathesis created goals with `code` 1000 and companies founded before 1800 where the
/// schemas stated no bound, and met the server's refusal. Every integer bound a served create
/// schema states is where the server draws it: the bound is created, one beyond is 422 there.
#[actix_web::test]
async fn every_integer_bound_a_create_schema_states_is_where_the_server_draws_it() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let mut probed = 0;
    // The records that need no other record: the links have no integer members.
    for (path, _, _) in COLLECTIONS.iter().take(6) {
        let schema = body_schema(&spec, "post", path, "application/json");
        let least = least(&spec, schema, &Map::new());
        for (member, property) in schema["properties"].as_object().expect("properties") {
            let property = resolve(&spec, property);
            let integer = property["type"] == "integer"
                || property["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!("integer")));
            if !integer {
                continue;
            }
            let mut probes = Vec::new();
            if let Some(min) = property["minimum"].as_i64() {
                probes.extend([(min, true), (min - 1, false)]);
            }
            if let Some(max) = property["maximum"].as_i64() {
                probes.extend([(max, true), (max + 1, false)]);
            }
            for (value, accepted) in probes {
                probed += 1;
                let mut body = least.clone();
                // Distinct records: names per kind and goal codes are unique.
                for (unique, text) in [("name", "Bound"), ("title", "Bound")] {
                    if body.get(unique).is_some() {
                        body[unique] = json!(format!("{text} {probed}"));
                    }
                }
                if body.get("code").is_some() && member != "code" {
                    body["code"] = json!(100 + probed);
                }
                body[member] = json!(value);
                let res = app.post(path).role(Role::Editor).json(&body).send().await;
                if accepted {
                    assert_eq!(
                        res.status,
                        201,
                        "POST {path} {body}: {}",
                        String::from_utf8_lossy(&res.body)
                    );
                } else {
                    let problem = res.assert_problem(422, "validation");
                    assert!(
                        problem["errors"]
                            .as_array()
                            .is_some_and(|e| e.iter().any(|e| e["field"] == format!("/{member}"))),
                        "POST {path} {body}: {problem}"
                    );
                }
            }
        }
    }
    assert!(probed >= 20, "only {probed} bounds probed");
}

/// Schemathesis found tags and titles padded past their `maxLength` accepted: the server
/// trimmed before counting. Every length a schema states is on the text as sent, so what the
/// schema refuses the server refuses, blank text included (blank counts as absent only within
/// the bound). Each case is refused at its member and writes nothing.
#[actix_web::test]
async fn every_max_length_is_on_the_text_as_sent_even_blank() {
    let app = TestApp::spawn().await;
    let nel = "\u{85}";
    let cases = [
        (json!({"tags": [format!("0{}", nel.repeat(50))]}), "/tags/0"),
        (json!({"name": format!("{}   ", "n".repeat(198))}), "/name"),
        (json!({"website": " ".repeat(2049)}), "/website"),
        (
            json!({"email": format!("  {}@example.org  ", "e".repeat(242))}),
            "/email",
        ),
        (json!({"legal_name": " ".repeat(301)}), "/legal_name"),
        (
            json!({"address": {"street": " ".repeat(201)}}),
            "/address/street",
        ),
    ];
    for (members, field) in cases {
        let mut body = json!({"name": "Bound as sent", "sector": "biotech"});
        for (k, v) in members.as_object().unwrap() {
            body[k] = v.clone();
        }
        let before = app.count("companies");
        let res = app
            .post("/api/v1/companies")
            .role(Role::Editor)
            .json(&body)
            .send()
            .await;
        let problem = res.assert_problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert_eq!(app.count("companies"), before, "{field} wrote");
    }
    // Within the bound, blank is absent and padding is trimmed.
    let res = app
        .post("/api/v1/companies")
        .role(Role::Editor)
        .json(&json!({"name": "Bound as sent", "sector": "biotech",
                      "website": " ".repeat(40), "tags": [format!(" {} ", "t".repeat(48))]}))
        .send()
        .await;
    res.assert_status(201);
    assert_eq!(res.json()["website"], Value::Null);
    assert_eq!(res.json()["tags"][0], "t".repeat(48));
}
