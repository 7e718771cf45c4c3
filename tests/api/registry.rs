//! `/api/v1/irccs`, `/api/v1/universities`, `/api/v1/partners` and the cross-kind
//! `/api/v1/organisations` view, driven over HTTP against the real service (DESIGN.md "Roles",
//! "Registry", "Conventions").

use std::collections::HashSet;

use lshub::domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const IRCCS: &str = "/api/v1/irccs";
const UNIVERSITIES: &str = "/api/v1/universities";
const PARTNERS: &str = "/api/v1/partners";
const ORGANISATIONS: &str = "/api/v1/organisations";
/// The partner fixture's company, present in every test database.
const PARTNER_PHARMA: &str = "Partner Pharma S.p.A.";
/// A real ROR id (its checksum verifies).
const ROR: &str = "03vek6s52";

// ---------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------

fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("record has an id").to_owned()
}

fn item(collection: &str, id: &str) -> String {
    format!("{collection}/{id}")
}

/// What a refused write must leave untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    organisations: i64,
    audit_events: i64,
}

fn counts(app: &TestApp) -> Counts {
    Counts {
        organisations: app.count("organisations"),
        audit_events: app.count("audit_events"),
    }
}

fn stored_version_is(app: &TestApp, id: &str, version: i64) -> bool {
    app.count(&format!(
        "organisations WHERE id = '{id}' AND version = {version}"
    )) == 1
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    v.sort();
    v
}

fn encode(q: &str) -> String {
    url::form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

/// Creates a record as an editor; returns its JSON.
async fn create(app: &TestApp, collection: &str, body: Value) -> Value {
    let res = app
        .post(collection)
        .role(Role::Editor)
        .json(&body)
        .send()
        .await;
    res.assert_status(201);
    res.json()
}

/// PATCH as `role` with `If-Match: "<version>"`.
async fn patch_as(
    app: &TestApp,
    role: Role,
    path: &str,
    version: i64,
    body: &Value,
) -> TestResponse {
    app.patch(path)
        .role(role)
        .header("If-Match", &format!("\"{version}\""))
        .merge_patch(body)
        .send()
        .await
}

async fn archive(app: &TestApp, path: &str, version: i64) {
    app.delete(path)
        .role(Role::Editor)
        .header("If-Match", &format!("\"{version}\""))
        .send()
        .await
        .assert_status(204);
}

/// The page at `url` read as `role` (asserting 200 and a single page), as names.
async fn list_names(app: &TestApp, role: Role, url: &str) -> Vec<String> {
    let res = app.get(url).role(role).send().await;
    res.assert_status(200);
    let page = res.json();
    assert!(page["next_cursor"].is_null(), "{url}: more than one page");
    names(&page)
}

/// Every member of `expected` is in `actual` with the same value (objects compared member by
/// member, recursively; anything else, arrays included, compared whole).
#[track_caller]
fn assert_subset(actual: &Value, expected: &Value, at: &str) {
    match expected {
        Value::Object(members) => {
            for (key, value) in members {
                assert_subset(&actual[key], value, &format!("{at}/{key}"));
            }
        }
        other => assert_eq!(&actual, &other, "at {at}"),
    }
}

/// RFC 7396 applied to a served record: objects merge, arrays and scalars replace. (A `null`
/// member is kept as `null`, since records serve absent values as null.)
fn merged(target: &Value, patch: &Value) -> Value {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            let mut out = t.clone();
            for (key, value) in p {
                let next = merged(t.get(key).unwrap_or(&Value::Null), value);
                out.insert(key.clone(), next);
            }
            Value::Object(out)
        }
        (_, other) => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Lifecycle: create, read, 304, PATCH, archive, restore, history
// ---------------------------------------------------------------------------------------------

/// One kind's run through the lifecycle.
struct Lifecycle {
    collection: &'static str,
    /// The `kind` member and the audit trail's `entity`.
    kind: &'static str,
    create: Value,
    /// Members the created record must hold (normalised).
    created: Value,
    /// A merge patch in normalised values, so the expected record is `created ⊕ patch`.
    patch: Value,
}

async fn lifecycle(spec: Lifecycle) {
    let app = TestApp::spawn().await;
    let Lifecycle {
        collection,
        kind,
        create,
        created,
        patch,
    } = spec;

    // Create: 201, Location, ETag "1", the record.
    let res = app
        .post(collection)
        .role(Role::Editor)
        .json(&create)
        .send()
        .await;
    res.assert_status(201);
    let record = res.json();
    let id = id_of(&record);
    assert_eq!(
        Uuid::parse_str(&id).expect("uuid").get_version_num(),
        7,
        "ids are UUID v7"
    );
    let path = item(collection, &id);
    assert_eq!(res.header("location"), Some(path.clone()));
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(record["kind"], kind);
    assert_eq!(record["version"], 1);
    assert!(record["archived_at"].is_null());
    assert_subset(&record, &created, "");

    // Read: 200 with the same record, 304 on a matching If-None-Match.
    let res = app.get(&path).role(Role::Viewer).send().await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(res.json(), record);
    let res = app
        .get(&path)
        .role(Role::Viewer)
        .header("If-None-Match", "\"1\"")
        .send()
        .await;
    res.assert_status(304);
    assert!(res.body.is_empty(), "a 304 has no body");
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    app.get(&path)
        .role(Role::Viewer)
        .header("If-None-Match", "\"9\"")
        .send()
        .await
        .assert_status(200);

    // PATCH needs a current If-Match.
    let before = counts(&app);
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .merge_patch(&patch)
        .send()
        .await;
    res.assert_problem(428, "precondition_required");
    let res = patch_as(&app, Role::Editor, &path, 9, &patch).await;
    res.assert_problem(412, "precondition_failed");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 1));

    // Merge semantics: what the patch names changes (objects member by member, arrays whole),
    // the rest stays.
    let res = patch_as(&app, Role::Editor, &path, 1, &patch).await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    let patched = res.json();
    assert_eq!(patched["version"], 2);
    let expected = merged(&record, &patch);
    for (key, value) in expected.as_object().expect("object") {
        if key != "version" && key != "updated_at" {
            assert_eq!(&patched[key], value, "member `{key}` after the patch");
        }
    }
    let res = app.get(&path).role(Role::Viewer).send().await;
    res.assert_status(200);
    assert_eq!(res.json(), patched);

    // Archive: 204 with the new ETag, then 404 and gone from the list.
    let res = app
        .delete(&path)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .send()
        .await;
    res.assert_status(204);
    assert_eq!(res.header("etag").as_deref(), Some("\"3\""));
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&path)
        .role(Role::Editor)
        .send()
        .await
        .assert_problem(404, "not_found");
    let listed = list_names(&app, Role::Viewer, collection).await;
    assert!(
        !listed.contains(&record["name"].as_str().unwrap_or_default().to_owned()),
        "{listed:?}"
    );
    let res = app
        .get(&format!("{path}?include_archived=true"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    assert!(res.json()["archived_at"].is_string());
    let res = patch_as(&app, Role::Editor, &path, 3, &json!({"description": "x"})).await;
    res.assert_problem(404, "not_found");

    // Restore: 200, back in reads.
    let res = app
        .post(&format!("{path}/restore"))
        .role(Role::Editor)
        .header("If-Match", "\"3\"")
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"4\""));
    let restored = res.json();
    assert!(restored["archived_at"].is_null());
    assert_eq!(restored["version"], 4);
    assert_eq!(restored["name"], patched["name"]);
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    // Restoring a live record is a conflict.
    let res = app
        .post(&format!("{path}/restore"))
        .role(Role::Editor)
        .header("If-Match", "\"4\"")
        .send()
        .await;
    res.assert_problem(409, "duplicate");

    // History, newest first.
    let res = app
        .get(&format!("{path}/history"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    let page = res.json();
    let events = page["data"].as_array().expect("data").clone();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["restore", "archive", "update", "create"]);
    let editor = app.fixtures.users[&Role::Editor].to_string();
    for event in &events {
        assert_eq!(event["entity"], kind, "{event}");
        assert_eq!(event["entity_id"], id.as_str());
        assert_eq!(event["actor_id"], editor.as_str());
    }
    let update = &events[2]["changes"];
    for (key, value) in patch.as_object().expect("object") {
        if !value.is_object() {
            assert_eq!(
                update["after"][key], patched[key],
                "update event, `{key}`: {update}"
            );
        }
    }
    assert_eq!(events[3]["changes"]["after"]["name"], record["name"]);
}

#[actix_web::test]
async fn irccs_lifecycle_create_read_patch_archive_restore_history() {
    lifecycle(Lifecycle {
        collection: IRCCS,
        kind: "irccs",
        create: json!({
            "name": "Istituto Clinico Ciclo di Vita",
            "ownership": "private",
            "specialisations": ["oncology", "cardiology"],
            "beds": 300,
            "emergency_care": true,
            "serves_foreign_patients": false,
            "address": {"city": "Milano", "province": "mi", "postal_code": "20132"},
            "tags": ["research"],
            "in_mind": true,
        }),
        created: json!({
            "name": "Istituto Clinico Ciclo di Vita",
            "ownership": "private",
            "specialisations": ["oncology", "cardiology"],
            "beds": 300,
            "emergency_care": true,
            "serves_foreign_patients": false,
            "address": {"city": "Milano", "province": "MI", "postal_code": "20132", "country": "IT",
                        "street": null},
            "tags": ["research"],
            "in_mind": true,
        }),
        patch: json!({
            "specialisations": ["neurology"],
            "beds": 320,
            "serves_foreign_patients": true,
            "description": "Neuroscienze cliniche",
            "address": {"street": "Via Olgettina 60"},
        }),
    })
    .await;
}

#[actix_web::test]
async fn university_lifecycle_create_read_patch_archive_restore_history() {
    lifecycle(Lifecycle {
        collection: UNIVERSITIES,
        kind: "university",
        create: json!({
            "name": "Università Ciclo di Vita",
            "ownership": "public",
            "has_medical_faculty": true,
            "students": 12000,
            "ror_id": "https://ror.org/03vek6s52",
            "rankings": [
                {"area": "natural_sciences", "rank": 124, "source": "QS", "year": 2019},
                {"area": "life_sciences_and_medicine", "rank": 16, "source": "QS", "year": 2019},
            ],
            "address": {"city": "Milano", "province": "MI"},
        }),
        created: json!({
            "name": "Università Ciclo di Vita",
            "ownership": "public",
            "has_medical_faculty": true,
            "students": 12000,
            "ror_id": ROR,
            "rankings": [
                {"area": "natural_sciences", "rank": 124, "source": "QS", "year": 2019},
                {"area": "life_sciences_and_medicine", "rank": 16, "source": "QS", "year": 2019},
            ],
            "address": {"city": "Milano", "province": "MI", "country": "IT"},
        }),
        // `rankings` is replaced whole, not merged element by element.
        patch: json!({
            "students": 13000,
            "has_medical_faculty": false,
            "rankings": [
                {"area": "engineering_and_technology", "rank": 20, "source": "QS", "year": 2020},
            ],
            "address": {"street": "Piazza Leonardo da Vinci 32"},
            "tags": ["stem"],
        }),
    })
    .await;
}

#[actix_web::test]
async fn partner_lifecycle_create_read_patch_archive_restore_history() {
    lifecycle(Lifecycle {
        collection: PARTNERS,
        kind: "partner",
        create: json!({
            "name": "Associazione Ciclo di Vita",
            "partner_type": "trade_association",
            "scope": "national",
            "website": "https://associazione.example.org",
            "address": {"city": "Roma", "province": "RM"},
        }),
        created: json!({
            "name": "Associazione Ciclo di Vita",
            "partner_type": "trade_association",
            "scope": "national",
            "address": {"city": "Roma", "province": "RM", "country": "IT"},
        }),
        patch: json!({
            "partner_type": "cluster",
            "scope": "international",
            "address": {"postal_code": "00184"},
            "tags": ["cluster", "life-sciences"],
        }),
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. Validation: 422 with JSON Pointers, nothing written
// ---------------------------------------------------------------------------------------------

/// POSTs `body` as an editor and asserts 422 naming `field` with `code`, and no write.
async fn refused_create(app: &TestApp, collection: &str, body: Value, field: &str, code: &str) {
    let before = counts(app);
    let res = app
        .post(collection)
        .role(Role::Editor)
        .json(&body)
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, field, code);
    assert_eq!(
        counts(app),
        before,
        "{body}: a refused create wrote something"
    );
}

/// PATCHes `body` as an editor (current If-Match) and asserts 422 at `field`, and no write.
async fn refused_patch(app: &TestApp, path: &str, body: Value, field: &str, code: &str) {
    let before = counts(app);
    let version = app.get(path).role(Role::Editor).send().await.json()["version"]
        .as_i64()
        .expect("version");
    let res = patch_as(app, Role::Editor, path, version, &body).await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, field, code);
    assert_eq!(
        counts(app),
        before,
        "{body}: a refused patch wrote something"
    );
    let id = path.rsplit('/').next().expect("id");
    assert!(stored_version_is(app, id, version));
}

#[actix_web::test]
async fn irccs_validation_names_each_problem_by_json_pointer() {
    let app = TestApp::spawn().await;
    refused_create(
        &app,
        IRCCS,
        json!({"name": "Istituto Senza"}),
        "/specialisations",
        "required",
    )
    .await;
    refused_create(
        &app,
        IRCCS,
        json!({"name": "Istituto Vuoto", "specialisations": []}),
        "/specialisations",
        "required",
    )
    .await;
    refused_create(
        &app,
        IRCCS,
        json!({"name": "Istituto Ignoto", "specialisations": ["oncology", "dentistry"]}),
        "/specialisations",
        "unknown_value",
    )
    .await;
    refused_create(
        &app,
        IRCCS,
        json!({"name": "Istituto Doppio", "specialisations": ["oncology", "oncology"]}),
        "/specialisations/1",
        "duplicate_value",
    )
    .await;
    refused_create(
        &app,
        IRCCS,
        json!({"name": "Istituto Misto", "specialisations": ["oncology"], "ownership": "mixed"}),
        "/ownership",
        "unknown_value",
    )
    .await;
    refused_create(
        &app,
        IRCCS,
        json!({"name": "Istituto Negativo", "specialisations": ["oncology"], "beds": -1}),
        "/beds",
        "out_of_range",
    )
    .await;
    // A member of another kind is not silently dropped.
    refused_create(
        &app,
        IRCCS,
        json!({"name": "Istituto Settore", "specialisations": ["oncology"], "sector": "biotech"}),
        "/sector",
        "unknown_field",
    )
    .await;
    // One answer lists every problem.
    let res = app
        .post(IRCCS)
        .role(Role::Editor)
        .json(&json!({"specialisations": ["other", "other"]}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/name", "required");
    assert_field_error(&problem, "/specialisations/1", "duplicate_value");

    // A patch must leave a valid record.
    let record = create(
        &app,
        IRCCS,
        json!({"name": "Istituto Valido", "specialisations": ["oncology"]}),
    )
    .await;
    let path = item(IRCCS, &id_of(&record));
    refused_patch(
        &app,
        &path,
        json!({"specialisations": []}),
        "/specialisations",
        "required",
    )
    .await;
    refused_patch(
        &app,
        &path,
        json!({"specialisations": null}),
        "/specialisations",
        "required",
    )
    .await;
    refused_patch(
        &app,
        &path,
        json!({"specialisations": ["rare_diseases", "pediatrics", "rare_diseases"]}),
        "/specialisations/2",
        "duplicate_value",
    )
    .await;
}

#[actix_web::test]
async fn university_validation_checks_ror_ids_and_rankings() {
    let app = TestApp::spawn().await;
    let ranking = |area: &str, rank: i64, source: &str, year: i64| json!({"area": area, "rank": rank, "source": source, "year": year});
    refused_create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Checksum", "ror_id": "03vek6s53"}),
        "/ror_id",
        "invalid_check_digit",
    )
    .await;
    refused_create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Checksum URL", "ror_id": "https://ror.org/03vek6s53"}),
        "/ror_id",
        "invalid_check_digit",
    )
    .await;
    refused_create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Zero", "rankings": [ranking("life_sciences_and_medicine", 0, "QS", 2019)]}),
        "/rankings/0/rank",
        "out_of_range",
    )
    .await;
    refused_create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Doppio", "rankings": [
            ranking("life_sciences_and_medicine", 16, "QS", 2019),
            ranking("life_sciences_and_medicine", 18, "QS", 2019),
        ]}),
        "/rankings/1/area",
        "duplicate_value",
    )
    .await;
    refused_create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Medicina", "has_medical_faculty": true, "specialisations": ["oncology"]}),
        "/specialisations",
        "unknown_field",
    )
    .await;

    // An unknown ranking area: 422 unknown_value, pointing into the rankings.
    let before = counts(&app);
    let res = app
        .post(UNIVERSITIES)
        .role(Role::Editor)
        .json(&json!({"name": "Ateneo Area", "rankings": [ranking("medicine", 3, "QS", 2019)]}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    let errors = problem["errors"].as_array().expect("errors").clone();
    assert!(
        errors.iter().any(|e| {
            let field = e["field"].as_str().unwrap_or_default();
            e["code"] == "unknown_value" && (field == "/rankings" || field == "/rankings/0/area")
        }),
        "{problem}"
    );
    assert_eq!(counts(&app), before);

    // The same area from another source or year is fine.
    let record = create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Valido", "rankings": [
            ranking("life_sciences_and_medicine", 16, "QS", 2019),
            ranking("life_sciences_and_medicine", 20, "QS", 2020),
            ranking("life_sciences_and_medicine", 30, "THE", 2019),
        ]}),
    )
    .await;
    assert_eq!(record["rankings"].as_array().map(Vec::len), Some(3));
    let path = item(UNIVERSITIES, &id_of(&record));
    refused_patch(
        &app,
        &path,
        json!({"rankings": [
            ranking("arts_and_humanities", 5, "QS", 2019),
            ranking("arts_and_humanities", 6, "QS", 2019),
        ]}),
        "/rankings/1/area",
        "duplicate_value",
    )
    .await;
    refused_patch(
        &app,
        &path,
        json!({"ror_id": "03vek6s54"}),
        "/ror_id",
        "invalid_check_digit",
    )
    .await;
    // The rankings written at create time are untouched by the refused patch.
    let res = app.get(&path).role(Role::Viewer).send().await;
    assert_eq!(res.json()["rankings"], record["rankings"]);
}

#[actix_web::test]
async fn partner_validation_requires_a_partner_type_and_refuses_company() {
    let app = TestApp::spawn().await;
    refused_create(
        &app,
        PARTNERS,
        json!({"name": "Ente Senza Tipo", "scope": "regional"}),
        "/partner_type",
        "required",
    )
    .await;
    // Firms are companies: the value `company` is gone.
    refused_create(
        &app,
        PARTNERS,
        json!({"name": "Lendlease", "partner_type": "company"}),
        "/partner_type",
        "unknown_value",
    )
    .await;
    refused_create(
        &app,
        PARTNERS,
        json!({"name": "Ente Galattico", "partner_type": "agency", "scope": "galactic"}),
        "/scope",
        "unknown_value",
    )
    .await;

    let record = create(
        &app,
        PARTNERS,
        json!({"name": "Ente Valido", "partner_type": "agency"}),
    )
    .await;
    let path = item(PARTNERS, &id_of(&record));
    refused_patch(
        &app,
        &path,
        json!({"partner_type": null}),
        "/partner_type",
        "required",
    )
    .await;
    refused_patch(
        &app,
        &path,
        json!({"partner_type": "company"}),
        "/partner_type",
        "unknown_value",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3. Filters
// ---------------------------------------------------------------------------------------------

/// Asserts that `collection?query` lists exactly `expected` (in any order, each once).
async fn assert_filter(app: &TestApp, collection: &str, query: &str, expected: &[&str]) {
    let url = format!("{collection}?{query}&include_total=true");
    let res = app.get(&url).role(Role::Viewer).send().await;
    res.assert_status(200);
    let page = res.json();
    let mut found = names(&page);
    found.sort();
    assert_eq!(found, sorted(expected), "{query}");
    assert_eq!(page["total"], expected.len(), "{query}: total");
}

#[actix_web::test]
async fn irccs_filters_by_specialisation_ownership_province_in_mind_and_q() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"name": "Istituto Alfa Cuore", "ownership": "private", "specialisations": ["cardiology"],
               "address": {"province": "MI"}, "in_mind": true}),
        json!({"name": "Istituto Beta Oncologico", "ownership": "public",
               "specialisations": ["oncology", "neurology"], "address": {"province": "MB"}}),
        json!({"name": "Istituto Gamma Neuro", "ownership": "public", "specialisations": ["neurology"],
               "address": {"province": "MI"}}),
        json!({"name": "Istituto Delta", "specialisations": ["other"]}),
    ] {
        create(&app, IRCCS, body).await;
    }
    let cases: &[(&str, &[&str])] = &[
        (
            "specialisation=neurology",
            &["Istituto Beta Oncologico", "Istituto Gamma Neuro"],
        ),
        ("specialisation=cardiology", &["Istituto Alfa Cuore"]),
        ("specialisation=pediatrics", &[]),
        (
            "ownership=public",
            &["Istituto Beta Oncologico", "Istituto Gamma Neuro"],
        ),
        ("ownership=private", &["Istituto Alfa Cuore"]),
        ("ownership=private&specialisation=neurology", &[]),
        (
            "province=MI",
            &["Istituto Alfa Cuore", "Istituto Gamma Neuro"],
        ),
        ("province=mb", &["Istituto Beta Oncologico"]),
        ("in_mind=true", &["Istituto Alfa Cuore"]),
        (
            "in_mind=false",
            &[
                "Istituto Beta Oncologico",
                "Istituto Gamma Neuro",
                "Istituto Delta",
            ],
        ),
        (
            "specialisation=neurology&province=MI",
            &["Istituto Gamma Neuro"],
        ),
        ("q=oncologico", &["Istituto Beta Oncologico"]),
        ("q=GAMA", &["Istituto Gamma Neuro"]),
        ("q=cuore&ownership=public", &[]),
    ];
    for (query, expected) in cases {
        assert_filter(&app, IRCCS, query, expected).await;
    }
    // Other kinds never leak into a kind's list.
    app.create_company(json!({"name": "Istituto Alfa Cuore", "sector": "biotech"}))
        .await;
    assert_filter(&app, IRCCS, "q=alfa", &["Istituto Alfa Cuore"]).await;
    let res = app
        .get(&format!("{IRCCS}?specialisation=dentistry"))
        .role(Role::Viewer)
        .send()
        .await;
    assert!(res.status == 400 || res.status == 422, "{res:?}");
}

#[actix_web::test]
async fn university_filters_by_ownership_faculty_ranking_province_in_mind_and_q() {
    let app = TestApp::spawn().await;
    let life = |rank: i64, source: &str, year: i64| json!({"area": "life_sciences_and_medicine", "rank": rank, "source": source, "year": year});
    for body in [
        json!({"name": "Università Alfa", "ownership": "public", "has_medical_faculty": true,
               "address": {"province": "MI"}, "in_mind": true,
               "rankings": [life(16, "QS", 2019), life(20, "THE", 2020),
                            {"area": "natural_sciences", "rank": 50, "source": "QS", "year": 2019}]}),
        json!({"name": "Università Beta", "ownership": "private", "has_medical_faculty": false,
               "address": {"province": "MB"}, "rankings": [life(187, "QS", 2019)]}),
        json!({"name": "Università Gamma", "ownership": "public", "address": {"province": "MI"},
               "rankings": [{"area": "engineering_and_technology", "rank": 10, "source": "QS", "year": 2019}]}),
        json!({"name": "Università Delta", "ownership": "private"}),
    ] {
        create(&app, UNIVERSITIES, body).await;
    }
    let cases: &[(&str, &[&str])] = &[
        ("ownership=public", &["Università Alfa", "Università Gamma"]),
        (
            "ownership=private",
            &["Università Beta", "Università Delta"],
        ),
        ("has_medical_faculty=true", &["Università Alfa"]),
        ("has_medical_faculty=false", &["Università Beta"]),
        (
            "ranking_area=life_sciences_and_medicine",
            &["Università Alfa", "Università Beta"],
        ),
        (
            "ranking_area=life_sciences_and_medicine&max_rank=100",
            &["Università Alfa"],
        ),
        (
            "ranking_area=life_sciences_and_medicine&max_rank=187",
            &["Università Alfa", "Università Beta"],
        ),
        ("ranking_area=life_sciences_and_medicine&max_rank=15", &[]),
        (
            "ranking_area=natural_sciences&max_rank=100",
            &["Università Alfa"],
        ),
        ("ranking_area=engineering_and_technology&max_rank=5", &[]),
        ("ranking_area=arts_and_humanities", &[]),
        ("province=MI", &["Università Alfa", "Università Gamma"]),
        ("province=MB", &["Università Beta"]),
        ("in_mind=true", &["Università Alfa"]),
        ("q=beta", &["Università Beta"]),
        ("q=gama", &["Università Gamma"]),
        (
            "ownership=public&ranking_area=life_sciences_and_medicine",
            &["Università Alfa"],
        ),
    ];
    for (query, expected) in cases {
        assert_filter(&app, UNIVERSITIES, query, expected).await;
    }
    // A university ranked twice in the area is listed once.
    let found = list_names(
        &app,
        Role::Viewer,
        &format!("{UNIVERSITIES}?ranking_area=life_sciences_and_medicine&max_rank=1000"),
    )
    .await;
    assert_eq!(
        found.iter().filter(|n| *n == "Università Alfa").count(),
        1,
        "{found:?}"
    );
    // max_rank needs ranking_area.
    let res = app
        .get(&format!("{UNIVERSITIES}?max_rank=100"))
        .role(Role::Viewer)
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/max_rank", "required");
}

#[actix_web::test]
async fn partner_filters_by_type_scope_province_in_mind_and_q() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"name": "Associazione Industriali", "partner_type": "trade_association",
               "scope": "regional", "address": {"province": "MI"}}),
        json!({"name": "Regione Esempio", "partner_type": "public_institution", "scope": "regional",
               "address": {"province": "MI"}}),
        json!({"name": "Cluster Scienze della Vita", "partner_type": "cluster", "scope": "national",
               "address": {"province": "LO"}, "in_mind": true}),
        json!({"name": "Fondo Investimenti", "partner_type": "investor", "scope": "international"}),
    ] {
        create(&app, PARTNERS, body).await;
    }
    let cases: &[(&str, &[&str])] = &[
        ("partner_type=cluster", &["Cluster Scienze della Vita"]),
        ("partner_type=investor", &["Fondo Investimenti"]),
        ("partner_type=agency", &[]),
        (
            "scope=regional",
            &["Associazione Industriali", "Regione Esempio"],
        ),
        (
            "partner_type=public_institution&scope=regional",
            &["Regione Esempio"],
        ),
        (
            "province=MI",
            &["Associazione Industriali", "Regione Esempio"],
        ),
        ("province=LO", &["Cluster Scienze della Vita"]),
        ("in_mind=true", &["Cluster Scienze della Vita"]),
        (
            "in_mind=false",
            &[
                "Associazione Industriali",
                "Regione Esempio",
                "Fondo Investimenti",
            ],
        ),
        ("q=regione", &["Regione Esempio"]),
        ("q=investimenti", &["Fondo Investimenti"]),
        (
            "q=scienze%20della%20vita&scope=national",
            &["Cluster Scienze della Vita"],
        ),
    ];
    for (query, expected) in cases {
        assert_filter(&app, PARTNERS, query, expected).await;
    }
    // `company` is no partner type, in filters either.
    let res = app
        .get(&format!("{PARTNERS}?partner_type=company"))
        .role(Role::Viewer)
        .send()
        .await;
    assert!(res.status == 400 || res.status == 422, "{res:?}");
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/problem+json")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Roles
// ---------------------------------------------------------------------------------------------

/// The role matrix on one kind: viewers read only, partners read and may not create, archive,
/// restore or touch a record that is not their organisation's, editors and admins do
/// everything.
async fn role_matrix(collection: &str, body: fn(&str) -> Value) {
    let app = TestApp::spawn().await;
    let target = create(&app, collection, body("Bersaglio")).await;
    let id = id_of(&target);
    let path = item(collection, &id);
    let before = counts(&app);

    for role in [Role::Viewer, Role::Partner] {
        app.get(collection)
            .role(role)
            .send()
            .await
            .assert_status(200);
        app.get(&path).role(role).send().await.assert_status(200);
        let res = app
            .post(collection)
            .role(role)
            .json(&body("Vietato"))
            .send()
            .await;
        res.assert_problem(403, "forbidden");
        let res = app
            .delete(&path)
            .role(role)
            .header("If-Match", "\"1\"")
            .send()
            .await;
        res.assert_problem(403, "forbidden");
        let res = app
            .post(&format!("{path}/restore"))
            .role(role)
            .header("If-Match", "\"1\"")
            .send()
            .await;
        res.assert_problem(403, "forbidden");
        app.get(&format!("{path}/history"))
            .role(role)
            .send()
            .await
            .assert_problem(403, "forbidden");
        app.get(&format!("{collection}?include_archived=true"))
            .role(role)
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    // Viewers never PATCH.
    let res = patch_as(&app, Role::Viewer, &path, 1, &json!({"description": "x"})).await;
    res.assert_problem(403, "forbidden");
    // A partner's PATCH on a record that is not its organisation: 403, even a self-managed
    // field, and before the media type is looked at.
    let res = patch_as(
        &app,
        Role::Partner,
        &path,
        1,
        &json!({"description": "hijack"}),
    )
    .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .patch(&path)
        .role(Role::Partner)
        .header("If-Match", "\"1\"")
        .raw("text/plain", "hijack")
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    // The partner's organisation is a company: under this kind's path it does not exist.
    let own = item(collection, &app.fixtures.partner_org.to_string());
    let res = patch_as(&app, Role::Partner, &own, 1, &json!({"description": "x"})).await;
    res.assert_problem(404, "not_found");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 1));

    for role in [Role::Editor, Role::Admin] {
        let res = app
            .post(collection)
            .role(role)
            .json(&body(&format!("Permesso {}", role.as_str())))
            .send()
            .await;
        res.assert_status(201);
        let id = id_of(&res.json());
        let path = item(collection, &id);
        app.get(&path).role(role).send().await.assert_status(200);
        patch_as(&app, role, &path, 1, &json!({"description": "ok"}))
            .await
            .assert_status(200);
        app.delete(&path)
            .role(role)
            .header("If-Match", "\"2\"")
            .send()
            .await
            .assert_status(204);
        app.get(&format!("{path}?include_archived=true"))
            .role(role)
            .send()
            .await
            .assert_status(200);
        app.get(&format!("{collection}?include_archived=true"))
            .role(role)
            .send()
            .await
            .assert_status(200);
        app.post(&format!("{path}/restore"))
            .role(role)
            .header("If-Match", "\"3\"")
            .send()
            .await
            .assert_status(200);
        app.get(&format!("{path}/history"))
            .role(role)
            .send()
            .await
            .assert_status(200);
        let actor = app.fixtures.users[&role];
        assert_eq!(
            app.count(&format!(
                "audit_events WHERE entity_id = '{id}' AND actor_id = '{actor}'"
            )),
            4
        );
    }
}

#[actix_web::test]
async fn irccs_role_matrix() {
    role_matrix(
        IRCCS,
        |name| json!({"name": format!("Istituto {name}"), "specialisations": ["oncology"]}),
    )
    .await;
}

#[actix_web::test]
async fn university_role_matrix() {
    role_matrix(UNIVERSITIES, |name| {
        json!({"name": format!("Università {name}"), "rankings": [
            {"area": "natural_sciences", "rank": 100, "source": "QS", "year": 2019}
        ]})
    })
    .await;
}

#[actix_web::test]
async fn partner_role_matrix() {
    role_matrix(
        PARTNERS,
        |name| json!({"name": format!("Ente {name}"), "partner_type": "public_institution"}),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 5. Universities: batched rankings, unique ROR id
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_page_of_universities_carries_each_ones_own_rankings_in_written_order() {
    let app = TestApp::spawn().await;
    let r = |area: &str, rank: i64, source: &str, year: i64| json!({"area": area, "rank": rank, "source": source, "year": year});
    // Deliberately in no order a query could produce by accident (not by area, rank, year).
    let written = [
        (
            "Ateneo A",
            json!([
                r("natural_sciences", 300, "QS", 2019),
                r("life_sciences_and_medicine", 16, "QS", 2019),
                r("arts_and_humanities", 5, "THE", 2020),
            ]),
        ),
        ("Ateneo B", json!([])),
        (
            "Ateneo C",
            json!([r("engineering_and_technology", 42, "QS", 2021)]),
        ),
        (
            "Ateneo D",
            json!([
                r("management_and_social_sciences", 7, "QS", 2019),
                r("life_sciences_and_medicine", 187, "QS", 2019),
            ]),
        ),
        (
            "Ateneo E",
            json!([
                r("arts_and_humanities", 4, "QS", 2022),
                r("arts_and_humanities", 1, "QS", 2019),
                r("arts_and_humanities", 3, "QS", 2021),
                r("arts_and_humanities", 2, "QS", 2020),
            ]),
        ),
    ];
    let mut records = Vec::new();
    for (name, rankings) in &written {
        let record = create(
            &app,
            UNIVERSITIES,
            json!({"name": name, "rankings": rankings}),
        )
        .await;
        assert_eq!(&record["rankings"], rankings, "{name} as created");
        records.push(record);
    }

    // One page holding all of them.
    let res = app
        .get(&format!("{UNIVERSITIES}?sort=name"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    let page = res.json();
    let rows = page["data"].as_array().expect("data").clone();
    assert_eq!(rows.len(), written.len());
    for ((name, rankings), row) in written.iter().zip(&rows) {
        assert_eq!(row["name"], *name);
        assert_eq!(&row["rankings"], rankings, "{name} in a page");
    }
    // The list's rows are the records as read one by one.
    for record in &records {
        let res = app
            .get(&item(UNIVERSITIES, &id_of(record)))
            .role(Role::Viewer)
            .send()
            .await;
        let single = res.json();
        let row = rows
            .iter()
            .find(|r| r["id"] == single["id"])
            .expect("listed");
        assert_eq!(row, &single);
    }
    // Pages of two: each page's batch still pairs rankings with their university.
    let mut paged = Vec::new();
    let mut url = format!("{UNIVERSITIES}?sort=-name&limit=2");
    loop {
        let res = app.get(&url).role(Role::Viewer).send().await;
        res.assert_status(200);
        let page = res.json();
        paged.extend(page["data"].as_array().expect("data").clone());
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{UNIVERSITIES}?sort=-name&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged.len(), written.len());
    for ((name, rankings), row) in written.iter().rev().zip(&paged) {
        assert_eq!(row["name"], *name);
        assert_eq!(&row["rankings"], rankings, "{name} in pages of two");
    }

    // Rewritten in another order, they come back in the new order.
    let d = &records[3];
    let reversed = json!([
        r("life_sciences_and_medicine", 187, "QS", 2019),
        r("management_and_social_sciences", 7, "QS", 2019),
    ]);
    patch_as(
        &app,
        Role::Editor,
        &item(UNIVERSITIES, &id_of(d)),
        1,
        &json!({"rankings": reversed}),
    )
    .await
    .assert_status(200);
    let res = app
        .get(&format!("{UNIVERSITIES}?q=ateneo%20d"))
        .role(Role::Viewer)
        .send()
        .await;
    let page = res.json();
    let row = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|r| r["id"] == d["id"])
        .expect("Ateneo D listed")
        .clone();
    assert_eq!(row["rankings"], reversed);
    // And the others are untouched.
    let res = app
        .get(&format!("{UNIVERSITIES}?sort=name"))
        .role(Role::Viewer)
        .send()
        .await;
    let rows = res.json()["data"].as_array().expect("data").clone();
    assert_eq!(rows[0]["rankings"], written[0].1);
    assert_eq!(rows[4]["rankings"], written[4].1);
}

#[actix_web::test]
async fn a_ror_id_belongs_to_one_university() {
    let app = TestApp::spawn().await;
    let first = create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Primo", "ror_id": ROR}),
    )
    .await;
    assert_eq!(first["ror_id"], ROR);

    // The same id, spelled as a URL and in capitals, is the same id.
    for spelling in [ROR, "https://ror.org/03VEK6S52"] {
        let before = counts(&app);
        let res = app
            .post(UNIVERSITIES)
            .role(Role::Editor)
            .json(&json!({"name": "Ateneo Secondo", "ror_id": spelling}))
            .send()
            .await;
        let problem = res.assert_problem(409, "duplicate");
        assert_field_error(&problem, "/ror_id", "duplicate");
        assert_eq!(counts(&app), before, "{spelling}");
    }
    // Patching another university onto it: 409 too, nothing written.
    let second = create(&app, UNIVERSITIES, json!({"name": "Ateneo Secondo"})).await;
    let before = counts(&app);
    let res = patch_as(
        &app,
        Role::Editor,
        &item(UNIVERSITIES, &id_of(&second)),
        1,
        &json!({"ror_id": ROR}),
    )
    .await;
    res.assert_problem(409, "duplicate");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id_of(&second), 1));
    // Another valid id is fine.
    patch_as(
        &app,
        Role::Editor,
        &item(UNIVERSITIES, &id_of(&second)),
        1,
        &json!({"ror_id": "https://ror.org/00wjc7c48"}),
    )
    .await
    .assert_status(200);
}

// ---------------------------------------------------------------------------------------------
// 6. The cross-kind view
// ---------------------------------------------------------------------------------------------

/// The members every kind shares: all the cross-kind list answers.
const SHARED_FIELDS: &[&str] = &[
    "id",
    "kind",
    "name",
    "legal_name",
    "description",
    "website",
    "email",
    "phone",
    "address",
    "tags",
    "in_mind",
    "created_at",
    "updated_at",
    "version",
    "archived_at",
];

struct Registry {
    company: Value,
    irccs: Value,
    university: Value,
    partner: Value,
}

async fn one_of_each(app: &TestApp) -> Registry {
    let company = app
        .create_company(json!({
            "name": "Gruppo Humanitas Servizi Sanitari Integrati",
            "sector": "healthcare_services",
            "address": {"province": "MI"},
            "tags": ["health"],
        }))
        .await;
    let irccs = create(
        app,
        IRCCS,
        json!({
            "name": "Humanitas Research Hospital",
            "specialisations": ["oncology"],
            "address": {"province": "MI"},
            "tags": ["research", "health"],
        }),
    )
    .await;
    let university = create(
        app,
        UNIVERSITIES,
        json!({
            "name": "Humanitas University",
            "has_medical_faculty": true,
            "address": {"province": "MI"},
            "in_mind": true,
            "tags": ["research", "health", "education"],
            "rankings": [{"area": "life_sciences_and_medicine", "rank": 90, "source": "QS", "year": 2019}],
        }),
    )
    .await;
    let partner = create(
        app,
        PARTNERS,
        json!({
            "name": "Camera di Commercio Esempio",
            "partner_type": "public_institution",
            "address": {"province": "LO"},
            "tags": ["institution"],
        }),
    )
    .await;
    Registry {
        company,
        irccs,
        university,
        partner,
    }
}

#[actix_web::test]
async fn organisations_lists_every_kind_in_the_shared_shape_with_filters() {
    let app = TestApp::spawn().await;
    let reg = one_of_each(&app).await;

    let res = app.get(ORGANISATIONS).role(Role::Viewer).send().await;
    res.assert_status(200);
    assert!(res.header("etag").is_some());
    let page = res.json();
    let rows = page["data"].as_array().expect("data").clone();
    let mut found: Vec<String> = names(&page);
    found.sort();
    assert_eq!(
        found,
        sorted(&[
            "Camera di Commercio Esempio",
            "Gruppo Humanitas Servizi Sanitari Integrati",
            "Humanitas Research Hospital",
            "Humanitas University",
            PARTNER_PHARMA,
        ])
    );
    let shared: HashSet<&str> = SHARED_FIELDS.iter().copied().collect();
    for row in &rows {
        let keys: HashSet<&str> = row
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, shared, "only the shared fields: {row}");
    }
    for (record, kind) in [
        (&reg.company, "company"),
        (&reg.irccs, "irccs"),
        (&reg.university, "university"),
        (&reg.partner, "partner"),
    ] {
        let row = rows
            .iter()
            .find(|r| r["id"] == record["id"])
            .unwrap_or_else(|| panic!("{kind} missing"));
        assert_eq!(row["kind"], kind);
        for field in SHARED_FIELDS {
            assert_eq!(row[*field], record[*field], "{kind}.{field}");
        }
    }
    // Sorted by name by default.
    let by_name = names(&page);
    let mut expected = by_name.clone();
    expected.sort_by_key(|n| n.to_lowercase());
    assert_eq!(by_name, expected);

    let cases: &[(&str, &[&str])] = &[
        ("kind=irccs", &["Humanitas Research Hospital"]),
        ("kind=university", &["Humanitas University"]),
        ("kind=partner", &["Camera di Commercio Esempio"]),
        (
            "kind=company",
            &[
                "Gruppo Humanitas Servizi Sanitari Integrati",
                PARTNER_PHARMA,
            ],
        ),
        (
            "province=MI",
            &[
                "Gruppo Humanitas Servizi Sanitari Integrati",
                "Humanitas Research Hospital",
                "Humanitas University",
            ],
        ),
        ("province=LO&kind=partner", &["Camera di Commercio Esempio"]),
        ("province=LO&kind=irccs", &[]),
        ("in_mind=true", &["Humanitas University"]),
        (
            "tags=health",
            &[
                "Gruppo Humanitas Servizi Sanitari Integrati",
                "Humanitas Research Hospital",
                "Humanitas University",
            ],
        ),
        (
            "tags=research,health",
            &["Humanitas Research Hospital", "Humanitas University"],
        ),
        ("tags=research,education", &["Humanitas University"]),
        ("tags=health&kind=irccs", &["Humanitas Research Hospital"]),
        ("tags=institution,health", &[]),
        ("tags=nothing", &[]),
    ];
    for (query, expected) in cases {
        assert_filter(&app, ORGANISATIONS, query, expected).await;
    }

    // Archived records are gone, unless an editor asks.
    archive(&app, &item(PARTNERS, &id_of(&reg.partner)), 1).await;
    assert_filter(&app, ORGANISATIONS, "kind=partner", &[]).await;
    let res = app
        .get(&format!(
            "{ORGANISATIONS}?kind=partner&include_archived=true"
        ))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(names(&res.json()), ["Camera di Commercio Esempio"]);
    app.get(&format!("{ORGANISATIONS}?include_archived=true"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn organisations_search_ranks_across_kinds_and_forgives_typos() {
    let app = TestApp::spawn().await;
    one_of_each(&app).await;
    create(&app, UNIVERSITIES, json!({"name": "Politecnico di Milano"})).await;

    // Relevance, not name order: the names with fewest extra words first.
    let found = list_names(&app, Role::Viewer, &format!("{ORGANISATIONS}?q=humanitas")).await;
    assert_eq!(
        found,
        [
            "Humanitas University",
            "Humanitas Research Hospital",
            "Gruppo Humanitas Servizi Sanitari Integrati",
        ],
        "by relevance"
    );
    for q in ["humantas", "HUMANITAS", "Humanitàs"] {
        let found = list_names(
            &app,
            Role::Viewer,
            &format!("{ORGANISATIONS}?q={}", encode(q)),
        )
        .await;
        assert!(
            found.contains(&"Humanitas University".to_owned())
                && found.contains(&"Humanitas Research Hospital".to_owned()),
            "q={q}: {found:?}"
        );
        assert!(
            !found.contains(&"Politecnico di Milano".to_owned()),
            "q={q}: {found:?}"
        );
        assert!(
            !found.contains(&PARTNER_PHARMA.to_owned()),
            "q={q}: {found:?}"
        );
    }
    // q with kind.
    assert_eq!(
        list_names(
            &app,
            Role::Viewer,
            &format!("{ORGANISATIONS}?q=humanitas&kind=irccs")
        )
        .await,
        ["Humanitas Research Hospital"]
    );
    // q with an explicit sort orders by it.
    let found = list_names(
        &app,
        Role::Viewer,
        &format!("{ORGANISATIONS}?q=humanitas&sort=name"),
    )
    .await;
    assert_eq!(
        found,
        [
            "Gruppo Humanitas Servizi Sanitari Integrati",
            "Humanitas Research Hospital",
            "Humanitas University",
        ]
    );
    // Relevance pages continue where they left off.
    let mut paged = Vec::new();
    let mut url = format!("{ORGANISATIONS}?q=humanitas&limit=1");
    loop {
        let res = app.get(&url).role(Role::Viewer).send().await;
        res.assert_status(200);
        let page = res.json();
        paged.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("{ORGANISATIONS}?q=humanitas&limit=1&cursor={c}"),
            None => break,
        }
        assert!(paged.len() < 10, "pagination does not end");
    }
    assert_eq!(
        paged,
        [
            "Humanitas University",
            "Humanitas Research Hospital",
            "Gruppo Humanitas Servizi Sanitari Integrati",
        ]
    );
}

#[actix_web::test]
async fn organisations_by_id_answers_each_kind_in_its_full_shape() {
    let app = TestApp::spawn().await;
    let reg = one_of_each(&app).await;
    for (record, collection, own_field) in [
        (&reg.company, "/api/v1/companies", "sector"),
        (&reg.irccs, IRCCS, "specialisations"),
        (&reg.university, UNIVERSITIES, "rankings"),
        (&reg.partner, PARTNERS, "partner_type"),
    ] {
        let id = id_of(record);
        let path = item(ORGANISATIONS, &id);
        let res = app.get(&path).role(Role::Viewer).send().await;
        res.assert_status(200);
        assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
        let body = res.json();
        assert!(
            !body[own_field].is_null(),
            "{own_field} in the full shape: {body}"
        );
        // The same record the kind's own path answers.
        let own = app
            .get(&item(collection, &id))
            .role(Role::Viewer)
            .send()
            .await
            .json();
        assert_eq!(body, own, "{collection}");
        let res = app
            .get(&path)
            .role(Role::Viewer)
            .header("If-None-Match", "\"1\"")
            .send()
            .await;
        res.assert_status(304);
        assert!(res.body.is_empty());
    }
    assert_eq!(
        reg.university["rankings"][0]["area"],
        "life_sciences_and_medicine"
    );
    // The partner fixture's company is there too.
    let res = app
        .get(&item(ORGANISATIONS, &app.fixtures.partner_org.to_string()))
        .role(Role::Partner)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["name"], PARTNER_PHARMA);

    app.get(&item(ORGANISATIONS, &Uuid::now_v7().to_string()))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");

    // An archived record: 404 for a viewer, readable by an editor who asks, and asking is
    // 403 for a viewer.
    let id = id_of(&reg.irccs);
    archive(&app, &item(IRCCS, &id), 1).await;
    let path = item(ORGANISATIONS, &id);
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&path)
        .role(Role::Editor)
        .send()
        .await
        .assert_problem(404, "not_found");
    let res = app
        .get(&format!("{path}?include_archived=true"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    let body = res.json();
    assert!(body["archived_at"].is_string());
    assert_eq!(body["specialisations"], json!(["oncology"]));
    app.get(&format!("{path}?include_archived=true"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(403, "forbidden");
}
