//! `/api/v1/companies`: the registry's contract for companies, driven over HTTP against the
//! real service (DESIGN.md "Roles", "Registry", "Conventions", "Data and storage").

use std::cmp::Ordering;
use std::collections::HashSet;

use futures_util::future::join_all;
use lshub::domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const COMPANIES: &str = "/api/v1/companies";

// ---------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------

fn path_of(id: &str) -> String {
    format!("{COMPANIES}/{id}")
}

fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("record has an id").to_owned()
}

/// What a refused write must leave untouched: the number of organisations and audit events.
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

fn name_set(page: &Value) -> HashSet<String> {
    names(page).into_iter().collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// The relative URL of `Link: <...>; rel="next"`, if any.
fn next_link(res: &TestResponse) -> Option<String> {
    let link = res.header("link")?;
    assert!(link.ends_with("; rel=\"next\""), "unexpected Link: {link}");
    let url = link.strip_prefix('<')?.split_once('>')?.0.to_owned();
    assert!(
        url.starts_with("/api/v1/") && url.contains('?'),
        "Link is not a relative URL: {url}"
    );
    Some(url)
}

/// Follows `Link` from `first` to the last page; checks `next_cursor` agrees with `Link` and
/// that the last page says `null`. Returns every page's body.
async fn follow_pages(app: &TestApp, role: Role, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut url = Some(first.to_owned());
    while let Some(current) = url {
        assert!(pages.len() < 50, "pagination does not end");
        let res = app.get(&current).role(role).send().await;
        res.assert_status(200);
        let body = res.json();
        url = next_link(&res);
        match &url {
            Some(next) => {
                let cursor = body["next_cursor"]
                    .as_str()
                    .expect("next_cursor with a Link");
                assert!(
                    next.contains(&format!("cursor={cursor}")),
                    "{next} vs {cursor}"
                );
            }
            None => assert!(
                body["next_cursor"].is_null(),
                "last page has a cursor: {body}"
            ),
        }
        pages.push(body);
    }
    pages
}

/// Every row of `pages`, in order.
fn rows(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| p["data"].as_array().expect("data").clone())
        .collect()
}

fn company(name: &str, sector: &str) -> Value {
    json!({ "name": name, "sector": sector })
}

/// Sends a PATCH as `role` with `If-Match: "<version>"`.
async fn patch_as(app: &TestApp, role: Role, id: &str, version: i64, body: &Value) -> TestResponse {
    app.patch(&path_of(id))
        .role(role)
        .header("If-Match", &format!("\"{version}\""))
        .merge_patch(body)
        .send()
        .await
}

/// The organisation's version as stored.
fn stored_version_is(app: &TestApp, id: &str, version: i64) -> bool {
    app.count(&format!(
        "organisations WHERE id = '{id}' AND version = {version}"
    )) == 1
}

// ---------------------------------------------------------------------------------------------
// 1. Create and read
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn create_returns_201_with_location_etag_and_the_record_and_get_honours_if_none_match() {
    let app = TestApp::spawn().await;
    let before = counts(&app);
    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&json!({
            "name": "Farmaceutici  Lombardi",
            "sector": "pharmaceutical",
            "vat_number": "IT 00743110157",
            "tags": ["oncology", "export"],
            "address": {"city": "Milano", "province": "mi", "postal_code": "20121"},
            "employees": 120,
        }))
        .send()
        .await;
    res.assert_status(201);
    let body = res.json();
    let id = id_of(&body);
    let uuid = Uuid::parse_str(&id).expect("id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "ids are UUID v7");
    assert_eq!(
        res.header("location"),
        Some(format!("/api/v1/companies/{id}"))
    );
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(body["kind"], "company");
    assert_eq!(
        body["name"], "Farmaceutici Lombardi",
        "runs of spaces collapse"
    );
    assert_eq!(body["sector"], "pharmaceutical");
    assert_eq!(
        body["vat_number"], "00743110157",
        "the IT prefix and spaces are dropped"
    );
    assert_eq!(body["tags"], json!(["oncology", "export"]));
    assert_eq!(body["address"]["country"], "IT", "country defaults to IT");
    assert_eq!(body["address"]["province"], "MI");
    assert_eq!(body["address"]["city"], "Milano");
    assert_eq!(body["employees"], 120);
    assert_eq!(body["assolombarda_member"], false);
    assert_eq!(body["in_mind"], false);
    assert_eq!(body["version"], 1);
    assert!(body["archived_at"].is_null());
    assert!(body["created_at"].is_string() && body["updated_at"].is_string());

    // Stored, with its audit event.
    let after = counts(&app);
    assert_eq!(after.organisations, before.organisations + 1);
    assert_eq!(after.audit_events, before.audit_events + 1);
    assert_eq!(
        app.count(&format!(
            "companies WHERE organisation_id = '{id}' AND vat_number = '00743110157'"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{id}' AND action = 'create'"
        )),
        1
    );

    // A bare Partita IVA is accepted as is.
    let other = app
        .create_company(
            json!({"name": "Altra S.p.A.", "sector": "cdmo", "vat_number": "00488410010"}),
        )
        .await;
    assert_eq!(other["vat_number"], "00488410010");

    // GET returns the same record with its ETag, and 304 for that ETag.
    let res = app.get(&path_of(&id)).role(Role::Viewer).send().await;
    res.assert_status(200);
    assert_eq!(res.json(), body);
    let etag = res.header("etag").expect("ETag on GET");
    assert_eq!(
        res.header("cache-control").as_deref(),
        Some("private, max-age=0, must-revalidate")
    );
    assert_eq!(etag, "\"1\"");
    let res = app
        .get(&path_of(&id))
        .role(Role::Viewer)
        .header("If-None-Match", &etag)
        .send()
        .await;
    res.assert_status(304);
    assert!(res.body.is_empty(), "a 304 has no body");
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    // Another ETag does not match.
    let res = app
        .get(&path_of(&id))
        .role(Role::Viewer)
        .header("If-None-Match", "\"7\"")
        .send()
        .await;
    res.assert_status(200);
}

// ---------------------------------------------------------------------------------------------
// 2. Validation
// ---------------------------------------------------------------------------------------------

/// Expected `errors[]`: (JSON Pointer, code).
type FieldErrors = Vec<(&'static str, &'static str)>;

#[actix_web::test]
async fn invalid_bodies_are_422_with_json_pointers_and_write_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Value, FieldErrors)> = vec![
        (
            "wrong check digit",
            json!({"name": "Check Digit", "sector": "biotech", "vat_number": "00743110158"}),
            vec![("/vat_number", "invalid_check_digit")],
        ),
        (
            "missing name",
            json!({"sector": "biotech"}),
            vec![("/name", "required")],
        ),
        (
            "missing sector",
            json!({"name": "No Sector S.r.l."}),
            vec![("/sector", "required")],
        ),
        (
            "bad province",
            json!({"name": "Bad Province", "sector": "biotech", "address": {"province": "XX"}}),
            vec![("/address/province", "unknown_value")],
        ),
        (
            "negative employees",
            json!({"name": "Negative", "sector": "biotech", "employees": -1}),
            vec![("/employees", "out_of_range")],
        ),
        (
            "several at once",
            json!({
                "vat_number": "00743110158",
                "address": {"province": "XX"},
                "employees": -5,
            }),
            vec![
                ("/name", "required"),
                ("/sector", "required"),
                ("/vat_number", "invalid_check_digit"),
                ("/address/province", "unknown_value"),
                ("/employees", "out_of_range"),
            ],
        ),
        (
            "unknown field",
            json!({"name": "Unknown Field", "sector": "biotech", "foo": 1}),
            vec![("/foo", "unknown_field")],
        ),
        (
            "read-only fields",
            json!({
                "name": "Read Only", "sector": "biotech", "id": Uuid::now_v7(), "version": 3,
                "created_at": "2020-01-01T00:00:00Z",
            }),
            vec![
                ("/id", "read_only"),
                ("/version", "read_only"),
                ("/created_at", "read_only"),
            ],
        ),
        (
            "name too short",
            json!({"name": "A", "sector": "biotech"}),
            vec![("/name", "too_short")],
        ),
        (
            "unknown nested field",
            json!({"name": "Nested", "sector": "biotech", "address": {"city": "Milano", "foo": "x"}}),
            vec![("/address/foo", "unknown_field")],
        ),
    ];
    for (what, body, expected) in cases {
        let before = counts(&app);
        let res = app
            .post(COMPANIES)
            .role(Role::Editor)
            .json(&body)
            .send()
            .await;
        let problem = res.assert_problem(422, "validation");
        for (field, code) in &expected {
            assert_field_error(&problem, field, code);
        }
        assert_eq!(
            problem["errors"].as_array().map(Vec::len),
            Some(expected.len()),
            "{what}: unexpected extra errors: {problem}"
        );
        assert_eq!(
            counts(&app),
            before,
            "{what}: a refused create wrote something"
        );
    }

    // A value of the wrong type or outside an enum is reported with the others, not alone.
    let before = counts(&app);
    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&json!({
            "name": "Mixed Errors", "sector": "banana", "employees": -1, "address": {"province": "XX"}
        }))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    let fields: HashSet<String> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect();
    assert_eq!(
        fields,
        set(&["/sector", "/employees", "/address/province"]),
        "{problem}"
    );
    assert_eq!(counts(&app), before);

    // device_segment belongs to medical-device companies only.
    let before = counts(&app);
    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&json!({"name": "Pharma Seg", "sector": "pharmaceutical", "device_segment": "biomedicine"}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    let errors = problem["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["field"] == "/device_segment"),
        "{problem}"
    );
    assert_eq!(counts(&app), before);
    // ... and is fine on one.
    let ok = app
        .create_company(json!({
            "name": "Device Seg", "sector": "medical_devices", "device_segment": "in_vitro_diagnostics"
        }))
        .await;
    assert_eq!(ok["device_segment"], "in_vitro_diagnostics");
}

// ---------------------------------------------------------------------------------------------
// 3. Malformed, unsupported and oversized bodies
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn malformed_unsupported_and_oversized_bodies_are_problems_and_write_nothing() {
    let app = TestApp::spawn().await;
    let before = counts(&app);

    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .raw("application/json", "{\"name\": ")
        .send()
        .await;
    res.assert_problem(400, "malformed");
    assert_eq!(counts(&app), before);

    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&json!([{"name": "In An Array", "sector": "biotech"}]))
        .send()
        .await;
    res.assert_problem(400, "malformed");
    assert_eq!(counts(&app), before);

    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .raw(
            "text/plain",
            r#"{"name": "Plain Text", "sector": "biotech"}"#,
        )
        .send()
        .await;
    res.assert_problem(415, "unsupported_media_type");
    assert_eq!(counts(&app), before);

    let big = json!({"name": "Too Big", "sector": "biotech", "description": "x".repeat(70 * 1024)});
    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&big)
        .send()
        .await;
    res.assert_problem(413, "payload_too_large");
    assert_eq!(counts(&app), before);
}

// ---------------------------------------------------------------------------------------------
// 4. Uniqueness
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn duplicate_names_ignore_case_accents_spaces_and_dashes_and_vat_is_unique() {
    let app = TestApp::spawn().await;
    let first = app
        .create_company(
            json!({"name": "Società Alfa – Bio", "sector": "biotech", "vat_number": "00743110157"}),
        )
        .await;

    for dup in [
        "societa  alfa - bio",
        "SOCIETÀ ALFA — BIO",
        "  Societa\tAlfa ‐ Bio ",
    ] {
        let before = counts(&app);
        let res = app
            .post(COMPANIES)
            .role(Role::Editor)
            .json(&company(dup, "pharmaceutical"))
            .send()
            .await;
        let problem = res.assert_problem(409, "duplicate");
        assert_field_error(&problem, "/name", "duplicate");
        assert_eq!(
            counts(&app),
            before,
            "{dup}: a refused create wrote something"
        );
    }

    // The same Partita IVA, spelled otherwise, is a duplicate too.
    let before = counts(&app);
    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .json(&json!({"name": "Beta Bio", "sector": "biotech", "vat_number": "IT00743110157"}))
        .send()
        .await;
    let problem = res.assert_problem(409, "duplicate");
    assert_field_error(&problem, "/vat_number", "duplicate");
    assert_eq!(counts(&app), before);

    // Renaming another company into the name is a conflict as well.
    let beta = app.create_company(company("Beta Bio", "biotech")).await;
    let before = counts(&app);
    let res = patch_as(
        &app,
        Role::Editor,
        &id_of(&beta),
        1,
        &json!({"name": "SOCIETA ALFA - BIO"}),
    )
    .await;
    res.assert_problem(409, "duplicate");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id_of(&beta), 1));

    // Archiving the first frees its name.
    let res = app
        .delete(&path_of(&id_of(&first)))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_status(204);
    let again = app
        .create_company(company("societa  alfa - bio", "pharmaceutical"))
        .await;
    assert_eq!(again["name"], "societa alfa - bio");
}

// ---------------------------------------------------------------------------------------------
// 5. PATCH
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn patch_requires_a_current_if_match_and_applies_a_json_merge_patch() {
    let app = TestApp::spawn().await;
    let created = app
        .create_company(json!({
            "name": "Merge Devices",
            "sector": "medical_devices",
            "device_segment": "biomedicine",
            "description": "Devices for the clinic",
            "tags": ["a", "b"],
            "employees": 10,
            "address": {"street": "Via Roma 1", "city": "Milano", "postal_code": "20121", "province": "MI"},
        }))
        .await;
    let id = id_of(&created);
    let path = path_of(&id);
    let before = counts(&app);

    // 428 without If-Match or with `*`, 412 when stale; nothing written.
    let patch = json!({"employees": 11});
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .merge_patch(&patch)
        .send()
        .await;
    res.assert_problem(428, "precondition_required");
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .header("If-Match", "*")
        .merge_patch(&patch)
        .send()
        .await;
    res.assert_problem(428, "precondition_required");
    let res = patch_as(&app, Role::Editor, &id, 7, &patch).await;
    res.assert_problem(412, "precondition_failed");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 1));

    // Merge: address member by member, tags whole, null clears.
    let res = patch_as(
        &app,
        Role::Editor,
        &id,
        1,
        &json!({
            "address": {"city": "Monza", "province": "MB", "postal_code": "20900"},
            "tags": ["c"],
            "description": null,
        }),
    )
    .await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    let body = res.json();
    assert_eq!(body["version"], 2);
    assert_eq!(
        body["address"],
        json!({"street": "Via Roma 1", "city": "Monza", "postal_code": "20900", "province": "MB", "country": "IT"})
    );
    assert_eq!(body["tags"], json!(["c"]));
    assert!(body["description"].is_null());
    assert_eq!(body["employees"], 10, "untouched members stay");
    assert_eq!(body["device_segment"], "biomedicine");
    assert_eq!(body["name"], "Merge Devices");
    let res = app.get(&path).role(Role::Viewer).send().await;
    assert_eq!(res.json(), body);
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(
        app.count(&format!(
            "organisations WHERE id = '{id}' AND description IS NULL"
        )),
        1
    );

    // application/json is accepted as well.
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .json(&json!({"employees": 25}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"3\""));
    assert_eq!(res.json()["employees"], 25);

    // The merged result must validate: a biotech company has no device segment.
    let before = counts(&app);
    let res = patch_as(&app, Role::Editor, &id, 3, &json!({"sector": "biotech"})).await;
    let problem = res.assert_problem(422, "validation");
    let errors = problem["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["field"] == "/device_segment"),
        "{problem}"
    );
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 3));
    let res = patch_as(
        &app,
        Role::Editor,
        &id,
        3,
        &json!({"sector": "biotech", "device_segment": null}),
    )
    .await;
    res.assert_status(200);
    assert_eq!(res.json()["sector"], "biotech");
    assert!(res.json()["device_segment"].is_null());

    // Unknown and read-only members are refused, not ignored.
    let before = counts(&app);
    let res = patch_as(&app, Role::Editor, &id, 4, &json!({"foo": 1})).await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/foo",
        "unknown_field",
    );
    let res = patch_as(&app, Role::Editor, &id, 4, &json!({"version": 9})).await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/version",
        "read_only",
    );
    let res = patch_as(&app, Role::Editor, &id, 4, &json!({"id": Uuid::now_v7()})).await;
    assert_field_error(&res.assert_problem(422, "validation"), "/id", "read_only");
    let res = patch_as(
        &app,
        Role::Editor,
        &id,
        4,
        &json!({"address": {"foo": "x"}}),
    )
    .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/address/foo",
        "unknown_field",
    );
    let res = patch_as(&app, Role::Editor, &id, 4, &json!({"employees": -3})).await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/employees",
        "out_of_range",
    );
    // A body that is not a merge patch object, or not JSON at all.
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .header("If-Match", "\"4\"")
        .raw("application/merge-patch+json", "[1, 2]")
        .send()
        .await;
    res.assert_problem(400, "malformed");
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .header("If-Match", "\"4\"")
        .raw("text/plain", "{\"employees\": 1}")
        .send()
        .await;
    res.assert_problem(415, "unsupported_media_type");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 4));

    // `address.country: null` resets the country to IT.
    let swiss = app
        .create_company(json!({
            "name": "Ticino Biotech", "sector": "biotech", "address": {"city": "Lugano", "country": "CH"}
        }))
        .await;
    assert_eq!(swiss["address"]["country"], "CH");
    let res = patch_as(
        &app,
        Role::Editor,
        &id_of(&swiss),
        1,
        &json!({"address": {"country": null}}),
    )
    .await;
    res.assert_status(200);
    assert_eq!(res.json()["address"]["country"], "IT");
    assert_eq!(res.json()["address"]["city"], "Lugano");

    // Check order: 415, 400, 428, 412, 422.
    let before = counts(&app);
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .raw("text/plain", "{")
        .send()
        .await;
    res.assert_problem(415, "unsupported_media_type");
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .raw("application/merge-patch+json", "{")
        .send()
        .await;
    res.assert_problem(400, "malformed");
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .merge_patch(&json!({"foo": 1}))
        .send()
        .await;
    res.assert_problem(428, "precondition_required");
    let res = patch_as(&app, Role::Editor, &id, 3, &json!({"foo": 1})).await;
    res.assert_problem(412, "precondition_failed");
    // If-Match compares strongly: a weak tag never matches.
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .header("If-Match", "W/\"4\"")
        .merge_patch(&json!({"employees": 1}))
        .send()
        .await;
    res.assert_problem(412, "precondition_failed");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 4));

    // A missing id is 404; a malformed one is 400.
    let before = counts(&app);
    let res = patch_as(
        &app,
        Role::Editor,
        &Uuid::now_v7().to_string(),
        1,
        &json!({"employees": 1}),
    )
    .await;
    res.assert_problem(404, "not_found");
    let res = patch_as(
        &app,
        Role::Editor,
        "not-a-uuid",
        1,
        &json!({"employees": 1}),
    )
    .await;
    res.assert_problem(400, "malformed");
    assert_eq!(counts(&app), before);
}

// ---------------------------------------------------------------------------------------------
// 6. Concurrency (racing PATCHes on one ETag: faults.rs)
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn concurrent_creates_of_one_name_make_one_company_and_conflicts_not_errors() {
    let app = TestApp::spawn().await;
    let before = counts(&app);
    let spellings = [
        "Gara Simultanea",
        "gara  simultanea",
        "GARA SIMULTANEA",
        "Garà Simultanea",
    ];
    let requests = spellings.iter().map(|name| {
        app.post(COMPANIES)
            .role(Role::Editor)
            .json(&company(name, "biotech"))
            .send()
    });
    let responses = join_all(requests).await;
    assert_eq!(
        responses.iter().filter(|r| r.status == 201).count(),
        1,
        "{responses:?}"
    );
    for res in responses.iter().filter(|r| r.status != 201) {
        res.assert_problem(409, "duplicate");
    }
    let after = counts(&app);
    assert_eq!(after.organisations, before.organisations + 1);
    assert_eq!(after.audit_events, before.audit_events + 1);
}

// ---------------------------------------------------------------------------------------------
// 7. Archive and restore
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn archive_hides_the_record_and_restore_brings_it_back() {
    let app = TestApp::spawn().await;
    let created = app
        .create_company(company("Archivio Pharma", "pharmaceutical"))
        .await;
    let id = id_of(&created);
    let path = path_of(&id);

    // DELETE needs a current If-Match.
    let before = counts(&app);
    let res = app.delete(&path).role(Role::Editor).send().await;
    res.assert_problem(428, "precondition_required");
    let res = app
        .delete(&path)
        .role(Role::Editor)
        .header("If-Match", "*")
        .send()
        .await;
    res.assert_problem(428, "precondition_required");
    let res = app
        .delete(&path)
        .role(Role::Editor)
        .header("If-Match", "\"5\"")
        .send()
        .await;
    res.assert_problem(412, "precondition_failed");
    assert_eq!(counts(&app), before);
    assert_eq!(
        app.count(&format!(
            "organisations WHERE id = '{id}' AND archived_at IS NULL"
        )),
        1
    );

    let res = app
        .delete(&path)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_status(204);
    assert!(res.body.is_empty());
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(
        app.count(&format!(
            "organisations WHERE id = '{id}' AND archived_at IS NOT NULL"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{id}' AND action = 'archive'"
        )),
        1
    );

    // Gone for reads and lists...
    app.get(&path)
        .role(Role::Editor)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    let res = app
        .get(&format!("{COMPANIES}?limit=200"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    assert!(!name_set(&res.json()).contains("Archivio Pharma"));
    // ... and for writes.
    let res = patch_as(&app, Role::Editor, &id, 2, &json!({"employees": 3})).await;
    res.assert_problem(404, "not_found");
    let res = app
        .delete(&path)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .send()
        .await;
    res.assert_problem(404, "not_found");

    // include_archived: editors see it, others are refused.
    let res = app
        .get(&format!("{path}?include_archived=true"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    assert!(res.json()["archived_at"].is_string());
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    let res = app
        .get(&format!("{path}?include_archived=true"))
        .role(Role::Admin)
        .send()
        .await;
    res.assert_status(200);
    let res = app
        .get(&format!("{path}?include_archived=true"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .get(&format!("{path}?include_archived=true"))
        .role(Role::Partner)
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .get(&format!("{COMPANIES}?include_archived=true&limit=200"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    assert!(name_set(&res.json()).contains("Archivio Pharma"));
    let res = app
        .get(&format!("{COMPANIES}?include_archived=true"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_problem(403, "forbidden");

    // Restore needs If-Match too, then brings it back.
    let restore = format!("{path}/restore");
    let before = counts(&app);
    let res = app.post(&restore).role(Role::Editor).send().await;
    res.assert_problem(428, "precondition_required");
    let res = app
        .post(&restore)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_problem(412, "precondition_failed");
    assert_eq!(counts(&app), before);
    let res = app
        .post(&restore)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"3\""));
    let body = res.json();
    assert!(body["archived_at"].is_null());
    assert_eq!(body["version"], 3);
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{id}' AND action = 'restore'"
        )),
        1
    );

    // Missing ids are 404.
    let missing = path_of(&Uuid::now_v7().to_string());
    let res = app
        .delete(&missing)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_problem(404, "not_found");
    let res = app
        .post(&format!("{missing}/restore"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_problem(404, "not_found");

    // Restoring a live record is a conflict.
    let before = counts(&app);
    let res = app
        .post(&restore)
        .role(Role::Editor)
        .header("If-Match", "\"3\"")
        .send()
        .await;
    res.assert_problem(409, "duplicate");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 3));

    // So is restoring into a name another live company now holds.
    let res = app
        .delete(&path)
        .role(Role::Editor)
        .header("If-Match", "\"3\"")
        .send()
        .await;
    res.assert_status(204);
    app.create_company(company("ARCHIVIO  PHARMA", "biotech"))
        .await;
    let before = counts(&app);
    let res = app
        .post(&restore)
        .role(Role::Editor)
        .header("If-Match", "\"4\"")
        .send()
        .await;
    let problem = res.assert_problem(409, "duplicate");
    assert_field_error(&problem, "/name", "duplicate");
    assert_eq!(counts(&app), before);
    assert_eq!(
        app.count(&format!(
            "organisations WHERE id = '{id}' AND archived_at IS NOT NULL"
        )),
        1
    );
    assert!(stored_version_is(&app, &id, 4));
}

// ---------------------------------------------------------------------------------------------
// 8. History
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn history_lists_every_change_newest_first_with_actor_request_and_changed_fields() {
    let app = TestApp::spawn().await;
    let editor = app.fixtures.users[&Role::Editor].to_string();

    let res = app
        .post(COMPANIES)
        .role(Role::Editor)
        .header("X-Request-Id", "hist-create-1")
        .json(&json!({"name": "Storia Bio", "sector": "biotech", "employees": 10}))
        .send()
        .await;
    res.assert_status(201);
    assert_eq!(res.header("x-request-id").as_deref(), Some("hist-create-1"));
    let id = id_of(&res.json());
    let path = path_of(&id);
    let res = app
        .patch(&path)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .header("X-Request-Id", "hist-update-2")
        .merge_patch(&json!({"employees": 20, "description": "Now with a description"}))
        .send()
        .await;
    res.assert_status(200);
    let res = app
        .delete(&path)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .header("X-Request-Id", "hist-archive-3")
        .send()
        .await;
    res.assert_status(204);
    let res = app
        .get(&format!("{path}?include_archived=true"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    let archived = res.json();
    let res = app
        .post(&format!("{path}/restore"))
        .role(Role::Editor)
        .header("If-Match", "\"3\"")
        .header("X-Request-Id", "hist-restore-4")
        .send()
        .await;
    res.assert_status(200);

    let history = format!("{path}/history");
    let res = app.get(&history).role(Role::Editor).send().await;
    res.assert_status(200);
    let page = res.json();
    let events = page["data"].as_array().expect("data").clone();
    assert!(page["next_cursor"].is_null());
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["restore", "archive", "update", "create"],
        "newest first"
    );
    let request_ids: Vec<&str> = events
        .iter()
        .map(|e| e["request_id"].as_str().expect("request_id"))
        .collect();
    assert_eq!(
        request_ids,
        [
            "hist-restore-4",
            "hist-archive-3",
            "hist-update-2",
            "hist-create-1"
        ]
    );
    for event in &events {
        assert_eq!(event["actor_id"], editor.as_str(), "{event}");
        assert_eq!(event["actor_kind"], "user");
        assert_eq!(event["entity"], "company");
        assert_eq!(event["entity_id"], id.as_str());
        assert!(event["at"].is_string());
    }

    // Only the changed fields, before and after.
    let create = &events[3]["changes"];
    assert!(create["before"].is_null(), "{create}");
    assert_eq!(create["after"]["name"], "Storia Bio");
    assert_eq!(create["after"]["employees"], 10);
    let update = &events[2]["changes"];
    assert_eq!(
        update["before"],
        json!({"employees": 10, "description": null}),
        "{update}"
    );
    assert_eq!(
        update["after"],
        json!({"employees": 20, "description": "Now with a description"})
    );
    let archive = &events[1]["changes"];
    assert_eq!(archive["before"], json!({"archived_at": null}), "{archive}");
    assert_eq!(
        archive["after"].as_object().map(|o| o.len()),
        Some(1),
        "{archive}"
    );
    let restore = &events[0]["changes"];
    assert_eq!(restore["after"], json!({"archived_at": null}), "{restore}");
    assert_eq!(
        restore["before"].as_object().map(|o| o.len()),
        Some(1),
        "{restore}"
    );
    // The archive time the audit trail names is the one the record held.
    let timestamp = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(
            v.as_str().unwrap_or_else(|| panic!("not a time: {v}")),
        )
        .expect("RFC 3339")
    };
    let served = timestamp(&archived["archived_at"]);
    assert_eq!(
        timestamp(&archive["after"]["archived_at"]),
        served,
        "archive event vs the record"
    );
    assert_eq!(
        timestamp(&restore["before"]["archived_at"]),
        served,
        "restore event vs the record"
    );

    // Keyset pagination.
    let pages = follow_pages(&app, Role::Editor, &format!("{history}?limit=2")).await;
    assert_eq!(pages.len(), 2);
    let paged: Vec<Value> = rows(&pages);
    assert_eq!(paged, events);
    let res = app
        .get(&format!("{history}?limit=2&cursor=garbage"))
        .role(Role::Editor)
        .send()
        .await;
    res.assert_problem(400, "invalid_cursor");

    // Editors and admins only; a missing company is 404.
    app.get(&history)
        .role(Role::Admin)
        .send()
        .await
        .assert_status(200);
    app.get(&history)
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.get(&history)
        .role(Role::Partner)
        .send()
        .await
        .assert_problem(403, "forbidden");
    let missing = format!("{}/history", path_of(&Uuid::now_v7().to_string()));
    app.get(&missing)
        .role(Role::Editor)
        .send()
        .await
        .assert_problem(404, "not_found");
}

// ---------------------------------------------------------------------------------------------
// 9. Roles
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn viewers_read_but_never_write() {
    let app = TestApp::spawn().await;
    let target = app.create_company(company("Sola Lettura", "biotech")).await;
    let id = id_of(&target);
    let before = counts(&app);

    app.get(COMPANIES)
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    app.get(&path_of(&id))
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    let res = app
        .post(COMPANIES)
        .role(Role::Viewer)
        .json(&company("Vietato", "biotech"))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = patch_as(&app, Role::Viewer, &id, 1, &json!({"employees": 5})).await;
    res.assert_problem(403, "forbidden");
    let res = app
        .delete(&path_of(&id))
        .role(Role::Viewer)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .post(&format!("{}/restore", path_of(&id)))
        .role(Role::Viewer)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    // The role is checked before existence.
    let missing = Uuid::now_v7().to_string();
    let res = patch_as(&app, Role::Viewer, &missing, 1, &json!({"employees": 5})).await;
    res.assert_problem(403, "forbidden");
    let res = app
        .delete(&path_of(&missing))
        .role(Role::Viewer)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_problem(403, "forbidden");

    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &id, 1));
}

#[actix_web::test]
async fn partners_update_only_their_own_self_managed_fields() {
    let app = TestApp::spawn().await;
    let own = app.fixtures.partner_org.to_string();
    let other = app
        .create_company(company("Concorrente S.p.A.", "pharmaceutical"))
        .await;
    let other_id = id_of(&other);

    app.get(COMPANIES)
        .role(Role::Partner)
        .send()
        .await
        .assert_status(200);
    app.get(&path_of(&own))
        .role(Role::Partner)
        .send()
        .await
        .assert_status(200);
    app.get(&path_of(&other_id))
        .role(Role::Partner)
        .send()
        .await
        .assert_status(200);

    let before = counts(&app);
    let res = app
        .post(COMPANIES)
        .role(Role::Partner)
        .json(&company("Nuova", "biotech"))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .delete(&path_of(&own))
        .role(Role::Partner)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    assert_eq!(counts(&app), before);

    // Hub-managed fields of its own organisation: 403, naming the field.
    for (field, value) in [
        ("name", json!("Partner Pharma Renamed")),
        ("assolombarda_member", json!(true)),
        ("sector", json!("biotech")),
    ] {
        let res = patch_as(&app, Role::Partner, &own, 1, &json!({ field: value })).await;
        let problem = res.assert_problem(403, "forbidden");
        let errors = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors: {problem}"));
        assert!(
            errors.iter().any(|e| e["field"] == format!("/{field}")),
            "{field}: {problem}"
        );
        assert_eq!(counts(&app), before, "{field}");
        assert!(stored_version_is(&app, &own, 1));
    }
    // Mixed with allowed fields it is still refused whole.
    let res = patch_as(
        &app,
        Role::Partner,
        &own,
        1,
        &json!({"description": "x", "name": "Other Name"}),
    )
    .await;
    res.assert_problem(403, "forbidden");
    assert_eq!(
        app.count(&format!(
            "organisations WHERE id = '{own}' AND description IS NULL"
        )),
        1
    );

    // Self-managed fields: fine.
    let res = patch_as(
        &app,
        Role::Partner,
        &own,
        1,
        &json!({
            "description": "Our own words",
            "employees": 250,
            "address": {"city": "Milano", "province": "MI"},
            "tags": ["partner"],
        }),
    )
    .await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    let body = res.json();
    assert_eq!(body["description"], "Our own words");
    assert_eq!(body["employees"], 250);
    assert_eq!(body["address"]["province"], "MI");
    assert_eq!(body["name"], "Partner Pharma S.p.A.");
    let partner_user = app.fixtures.users[&Role::Partner];
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{own}' AND action = 'update' AND actor_id = '{partner_user}'"
        )),
        1
    );

    // Another company: 403, even before its If-Match and media type are looked at.
    let before = counts(&app);
    let res = patch_as(
        &app,
        Role::Partner,
        &other_id,
        1,
        &json!({"description": "hijack"}),
    )
    .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .patch(&path_of(&other_id))
        .role(Role::Partner)
        .raw("text/plain", "hijack")
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    // A missing id is 404 before ownership.
    let res = patch_as(
        &app,
        Role::Partner,
        &Uuid::now_v7().to_string(),
        1,
        &json!({"description": "x"}),
    )
    .await;
    res.assert_problem(404, "not_found");
    assert_eq!(counts(&app), before);
    assert!(stored_version_is(&app, &other_id, 1));
}

#[actix_web::test]
async fn editors_and_admins_may_do_everything() {
    let app = TestApp::spawn().await;
    for role in [Role::Editor, Role::Admin] {
        let name = format!("Tutto Permesso {}", role.as_str());
        let res = app
            .post(COMPANIES)
            .role(role)
            .json(&company(&name, "cdmo"))
            .send()
            .await;
        res.assert_status(201);
        let id = id_of(&res.json());
        let path = path_of(&id);
        app.get(COMPANIES)
            .role(role)
            .send()
            .await
            .assert_status(200);
        app.get(&path).role(role).send().await.assert_status(200);
        patch_as(
            &app,
            role,
            &id,
            1,
            &json!({"employees": 3, "assolombarda_member": true}),
        )
        .await
        .assert_status(200);
        // They may edit any company, a partner's included.
        let own = app.fixtures.partner_org.to_string();
        let version = if role == Role::Editor { 1 } else { 2 };
        patch_as(
            &app,
            role,
            &own,
            version,
            &json!({"assolombarda_member": role == Role::Editor}),
        )
        .await
        .assert_status(200);
        app.delete(&path)
            .role(role)
            .header("If-Match", "\"2\"")
            .send()
            .await
            .assert_status(204);
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

// ---------------------------------------------------------------------------------------------
// 10. Lists
// ---------------------------------------------------------------------------------------------

/// The partner fixture's company, present in every test database.
const PARTNER_NAME: &str = "Partner Pharma S.p.A.";

#[actix_web::test]
async fn list_pages_by_keyset_with_link_headers_and_stays_stable_under_inserts() {
    let app = TestApp::spawn().await;
    for name in [
        "Gamma Devices",
        "Alfa Bio",
        "Étoile Bio",
        "Zeta Health",
        "Beta Pharma",
        "Delta Care",
        "Eta Digital",
    ] {
        app.create_company(company(name, "biotech")).await;
    }
    // Name order is the folded key's: `Étoile` sorts as `etoile`.
    let expected = [
        "Alfa Bio",
        "Beta Pharma",
        "Delta Care",
        "Eta Digital",
        "Étoile Bio",
        "Gamma Devices",
        PARTNER_NAME,
        "Zeta Health",
    ];

    // Following Link: disjoint pages covering everything in name order.
    let pages = follow_pages(&app, Role::Viewer, &format!("{COMPANIES}?limit=3")).await;
    let page_names: Vec<Vec<String>> = pages.iter().map(names).collect();
    assert_eq!(
        page_names.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 2]
    );
    let all: Vec<String> = page_names.concat();
    assert_eq!(all, expected);
    // The same with an explicit `sort=name`.
    let sorted = follow_pages(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?limit=3&sort=name"),
    )
    .await;
    assert_eq!(
        rows(&sorted)
            .iter()
            .map(|c| c["name"].clone())
            .collect::<Vec<_>>(),
        expected
    );
    let desc = follow_pages(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?limit=3&sort=-name"),
    )
    .await;
    let mut reversed = expected.to_vec();
    reversed.reverse();
    assert_eq!(
        rows(&desc)
            .iter()
            .map(|c| c["name"].clone())
            .collect::<Vec<_>>(),
        reversed
    );

    // include_total counts every match, not the page.
    let res = app
        .get(&format!("{COMPANIES}?limit=3&include_total=true"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["total"], expected.len());
    let res = app
        .get(&format!("{COMPANIES}?limit=3"))
        .role(Role::Viewer)
        .send()
        .await;
    assert!(res.json().get("total").is_none(), "total only when asked");

    // Inserts between page fetches: a row before the cursor shifts nothing, one after it shows.
    let res = app
        .get(&format!("{COMPANIES}?limit=3"))
        .role(Role::Viewer)
        .send()
        .await;
    let page1 = res.json();
    assert_eq!(names(&page1), expected[..3]);
    app.create_company(company("Aaa Early Bird", "biotech"))
        .await;
    app.create_company(company("Zzz Late Comer", "biotech"))
        .await;
    let cursor = page1["next_cursor"].as_str().expect("cursor").to_owned();
    let res = app
        .get(&format!("{COMPANIES}?limit=3&cursor={cursor}"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    let page2 = res.json();
    assert_eq!(names(&page2), expected[3..6]);
    app.create_company(company("Beta Again", "biotech")).await;
    app.create_company(company("Gamma Zero", "biotech")).await;
    let cursor = page2["next_cursor"].as_str().expect("cursor").to_owned();
    let res = app
        .get(&format!("{COMPANIES}?limit=3&cursor={cursor}"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    let page3 = res.json();
    assert_eq!(
        names(&page3),
        ["Gamma Zero", PARTNER_NAME, "Zeta Health"],
        "a new row after the cursor shows"
    );
    let cursor = page3["next_cursor"]
        .as_str()
        .expect("a fourth page")
        .to_owned();
    let res = app
        .get(&format!("{COMPANIES}?limit=3&cursor={cursor}"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    let page4 = res.json();
    assert_eq!(names(&page4), ["Zzz Late Comer"]);
    assert!(page4["next_cursor"].is_null());
    assert!(res.header("link").is_none());
    let seen: Vec<String> = [&page1, &page2, &page3, &page4]
        .into_iter()
        .flat_map(names)
        .collect();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row repeated: {seen:?}");
    assert!(
        !unique.contains(&"Aaa Early Bird".to_owned())
            && !unique.contains(&"Beta Again".to_owned())
    );
    for name in expected {
        assert!(
            unique.contains(&name.to_owned()),
            "{name} skipped: {seen:?}"
        );
    }

    // Limits.
    for limit in ["0", "201"] {
        let res = app
            .get(&format!("{COMPANIES}?limit={limit}"))
            .role(Role::Viewer)
            .send()
            .await;
        assert_field_error(
            &res.assert_problem(422, "validation"),
            "/limit",
            "out_of_range",
        );
    }
    app.get(&format!("{COMPANIES}?limit=200"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);

    // A cursor belongs to its sort and filters.
    for other in [
        "sort=-name",
        "sort=employees",
        "sector=biotech",
        "q=bio",
        "in_mind=false",
    ] {
        let res = app
            .get(&format!("{COMPANIES}?limit=3&{other}&cursor={cursor}"))
            .role(Role::Viewer)
            .send()
            .await;
        res.assert_problem(400, "invalid_cursor");
    }
    for garbage in ["garbage", "eyJ4IjoxfQ", "%E2%9C%93"] {
        let res = app
            .get(&format!("{COMPANIES}?cursor={garbage}"))
            .role(Role::Viewer)
            .send()
            .await;
        res.assert_problem(400, "invalid_cursor");
    }

    // Unknown parameters and sort keys.
    let res = app
        .get(&format!("{COMPANIES}?colour=blue"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_problem(400, "malformed");
    let res = app
        .get(&format!("{COMPANIES}?sort=colour"))
        .role(Role::Viewer)
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/sort",
        "unknown_value",
    );
    let res = app
        .get(&format!("{COMPANIES}?sort=-vat_number"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_problem(422, "validation");
}

/// Beyond the brief's list: DESIGN.md "Dashboards and integrations" asks every list answer to
/// carry an ETag and answer a still-matching If-None-Match with 304.
#[actix_web::test]
async fn list_answers_carry_an_etag_and_honour_if_none_match() {
    let app = TestApp::spawn().await;
    app.create_company(company("Etag Uno", "biotech")).await;
    let url = format!("{COMPANIES}?limit=10&sector=biotech");
    let res = app.get(&url).role(Role::Viewer).send().await;
    res.assert_status(200);
    assert_eq!(
        res.header("cache-control").as_deref(),
        Some("private, max-age=0, must-revalidate")
    );
    let etag = res.header("etag").expect("a list answer has an ETag");
    let res = app
        .get(&url)
        .role(Role::Viewer)
        .header("If-None-Match", &etag)
        .send()
        .await;
    res.assert_status(304);
    assert!(res.body.is_empty());
    // A write changes it.
    app.create_company(company("Etag Due", "biotech")).await;
    let res = app
        .get(&url)
        .role(Role::Viewer)
        .header("If-None-Match", &etag)
        .send()
        .await;
    res.assert_status(200);
    assert_ne!(res.header("etag"), Some(etag));
    assert_eq!(names(&res.json()), ["Etag Due", "Etag Uno"]);
}

// ---------------------------------------------------------------------------------------------
// 11. Sort with NULLs
// ---------------------------------------------------------------------------------------------

type Row = (Option<i64>, Uuid);
type SortFn = fn(&Row, &Row) -> Ordering;

/// `ORDER BY employees ASC NULLS LAST, id ASC`.
fn nulls_last_ascending(a: &Row, b: &Row) -> Ordering {
    match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.1.cmp(&b.1),
    }
}

/// `ORDER BY employees DESC NULLS LAST, id DESC`.
fn nulls_last_descending(a: &Row, b: &Row) -> Ordering {
    match (a.0, b.0) {
        (Some(x), Some(y)) => y.cmp(&x).then(b.1.cmp(&a.1)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => b.1.cmp(&a.1),
    }
}

#[actix_web::test]
async fn nullable_sort_keys_put_nulls_last_both_ways_and_paginate_across_them() {
    let app = TestApp::spawn().await;
    let mut rows_expected: Vec<Row> = vec![(None, app.fixtures.partner_org)];
    for (name, employees) in [
        ("Uno", Some(50)),
        ("Due", None),
        ("Tre", Some(10)),
        ("Quattro", Some(200)),
        ("Cinque", None),
        ("Sei", Some(50)),
        ("Sette", Some(0)),
    ] {
        let mut body = company(&format!("{name} S.r.l."), "biotech");
        if let Some(n) = employees {
            body["employees"] = json!(n);
        }
        let created = app.create_company(body).await;
        rows_expected.push((employees, Uuid::parse_str(&id_of(&created)).expect("uuid")));
    }

    let orders: [(&str, SortFn); 2] = [
        ("employees", nulls_last_ascending),
        ("-employees", nulls_last_descending),
    ];
    for (sort, order) in orders {
        let mut expected = rows_expected.clone();
        expected.sort_by(order);
        let expected_ids: Vec<String> = expected.iter().map(|(_, id)| id.to_string()).collect();

        for limit in [2, 3, 50] {
            let pages = follow_pages(
                &app,
                Role::Viewer,
                &format!("{COMPANIES}?sort={sort}&limit={limit}"),
            )
            .await;
            let got: Vec<Value> = rows(&pages);
            let got_ids: Vec<String> = got.iter().map(id_of).collect();
            assert_eq!(got_ids, expected_ids, "sort={sort} limit={limit}");
            let unique: HashSet<&String> = got_ids.iter().collect();
            assert_eq!(
                unique.len(),
                got_ids.len(),
                "a row repeated: sort={sort} limit={limit}"
            );
            // NULLs last.
            let first_null = got
                .iter()
                .position(|c| c["employees"].is_null())
                .expect("nulls");
            assert!(
                got[first_null..].iter().all(|c| c["employees"].is_null()),
                "sort={sort}: {got:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 12. Filters
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn list_filters_narrow_the_results() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"name": "Alpha Pharma", "sector": "pharmaceutical", "address": {"province": "MI"},
               "employees": 100, "assolombarda_member": true, "in_mind": true}),
        json!({"name": "Beta Biotech", "sector": "biotech", "address": {"province": "MB"},
               "employees": 20}),
        json!({"name": "Gamma Devices", "sector": "medical_devices", "address": {"province": "MI"},
               "employees": 500, "assolombarda_member": true}),
        json!({"name": "Delta Digital", "sector": "digital_health", "address": {"province": "LO"},
               "in_mind": true}),
    ] {
        app.create_company(body).await;
    }
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("sector=pharmaceutical", vec!["Alpha Pharma", PARTNER_NAME]),
        ("sector=medical_devices", vec!["Gamma Devices"]),
        ("province=MI", vec!["Alpha Pharma", "Gamma Devices"]),
        ("province=mb", vec!["Beta Biotech"]),
        ("min_employees=50", vec!["Alpha Pharma", "Gamma Devices"]),
        ("max_employees=100", vec!["Alpha Pharma", "Beta Biotech"]),
        (
            "min_employees=20&max_employees=100",
            vec!["Alpha Pharma", "Beta Biotech"],
        ),
        ("min_employees=21&max_employees=499", vec!["Alpha Pharma"]),
        (
            "assolombarda_member=true",
            vec!["Alpha Pharma", "Gamma Devices"],
        ),
        (
            "assolombarda_member=false",
            vec!["Beta Biotech", "Delta Digital", PARTNER_NAME],
        ),
        ("in_mind=true", vec!["Alpha Pharma", "Delta Digital"]),
        (
            "in_mind=false",
            vec!["Beta Biotech", "Gamma Devices", PARTNER_NAME],
        ),
        ("sector=medical_devices&province=MI", vec!["Gamma Devices"]),
        (
            "sector=pharmaceutical&in_mind=true&assolombarda_member=true",
            vec!["Alpha Pharma"],
        ),
        ("sector=cdmo", vec![]),
    ];
    for (query, expected) in cases {
        let res = app
            .get(&format!("{COMPANIES}?{query}&include_total=true"))
            .role(Role::Viewer)
            .send()
            .await;
        res.assert_status(200);
        let page = res.json();
        assert_eq!(name_set(&page), set(&expected), "{query}");
        assert_eq!(page["total"], expected.len(), "{query}");
    }
    // Filters carry over through pagination.
    let pages = follow_pages(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?province=MI&limit=1"),
    )
    .await;
    assert_eq!(
        rows(&pages)
            .iter()
            .map(|c| c["name"].clone())
            .collect::<Vec<_>>(),
        ["Alpha Pharma", "Gamma Devices"]
    );

    let res = app
        .get(&format!("{COMPANIES}?min_employees=100&max_employees=10"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_problem(422, "validation");
    let res = app
        .get(&format!("{COMPANIES}?province=XX"))
        .role(Role::Viewer)
        .send()
        .await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/province",
        "unknown_value",
    );
}

// ---------------------------------------------------------------------------------------------
// 13. Search
// ---------------------------------------------------------------------------------------------

/// A search that cannot be ranked within the search time bound is refused at `/q`, clearly,
/// instead of scanning on: with a bound of 1 ms, ranking a few thousand matches of a common
/// word cannot finish, while the same page without `q`, and the CSV export of the search, are
/// not bounded. With the default bound the search answers.
#[actix_web::test]
async fn a_search_too_broad_to_rank_in_time_is_422_at_q_and_nothing_else_is_bounded() {
    let app = TestApp::spawn_with(|s| s.db.search_timeout_ms = 1).await;
    lshub::seed::synthetic::load(&mut app.conn(), 5000, &mut |_, _| {}).expect("seed");
    let broad = app
        .get("/api/v1/companies?q=milano")
        .role(Role::Viewer)
        .send()
        .await;
    assert_field_error(
        &broad.assert_problem(422, "validation"),
        "/q",
        "search_too_broad",
    );
    app.get("/api/v1/companies?q=milano&sort=name")
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(422, "validation");
    app.get("/api/v1/companies?limit=200")
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    let export = app
        .get("/api/v1/companies?q=milano")
        .role(Role::Viewer)
        .header("Accept", "text/csv")
        .send()
        .await;
    export.assert_status(200);
    assert!(String::from_utf8_lossy(&export.body).lines().count() > 100);

    let unbounded = app.replica(|_| {});
    let res = unbounded
        .get("/api/v1/companies?q=milano")
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["data"].as_array().map(Vec::len), Some(50));
}

#[actix_web::test]
async fn search_ignores_accents_case_and_typos_and_ranks_by_relevance() {
    let app = TestApp::spawn().await;
    // The exact match is created first, so a tie broken by id would not put it first.
    for body in [
        json!({"name": "Bio Lab", "sector": "biotech"}),
        json!({"name": "Città della Salute", "sector": "healthcare_services"}),
        json!({"name": "Farmaceutica Lombarda S.r.l.", "sector": "pharmaceutical"}),
        json!({"name": "Bio Lab Milano", "sector": "biotech"}),
        json!({"name": "Bio Labs Italia", "sector": "biotech"}),
        json!({"name": "Omega Services", "sector": "other", "legal_name": "Zeta Ricerche S.p.A."}),
    ] {
        app.create_company(body).await;
    }
    let search = |q: &str| {
        format!(
            "{COMPANIES}?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        )
    };

    for q in ["citta", "CITTÀ", "Citta della", "salute"] {
        let res = app.get(&search(q)).role(Role::Viewer).send().await;
        res.assert_status(200);
        let found = names(&res.json());
        assert!(
            found.contains(&"Città della Salute".to_owned()),
            "q={q}: {found:?}"
        );
        assert!(
            !found.contains(&"Farmaceutica Lombarda S.r.l.".to_owned()),
            "q={q}: {found:?}"
        );
    }
    for q in ["Farmaceutika", "farmaceutca", "FARMACEUTICA"] {
        let res = app.get(&search(q)).role(Role::Viewer).send().await;
        res.assert_status(200);
        let found = names(&res.json());
        assert_eq!(
            found.first().map(String::as_str),
            Some("Farmaceutica Lombarda S.r.l."),
            "q={q}: {found:?}"
        );
        assert!(
            !found.contains(&"Città della Salute".to_owned()),
            "q={q}: {found:?}"
        );
    }
    // The legal name is searched too.
    let res = app.get(&search("ricerche")).role(Role::Viewer).send().await;
    assert_eq!(names(&res.json()), ["Omega Services"]);

    // Without sort: by relevance, the exact match first.
    let res = app.get(&search("bio lab")).role(Role::Viewer).send().await;
    res.assert_status(200);
    let ranked = names(&res.json());
    assert_eq!(
        ranked.first().map(String::as_str),
        Some("Bio Lab"),
        "exact match first: {ranked:?}"
    );
    assert!(set(&["Bio Lab", "Bio Lab Milano", "Bio Labs Italia"])
        .is_subset(&ranked.iter().cloned().collect()));
    assert!(!ranked.contains(&"Omega Services".to_owned()));

    // q with pagination: the same rows in the same order, each once.
    let pages = follow_pages(
        &app,
        Role::Viewer,
        &format!("{}&limit=1", search("bio lab")),
    )
    .await;
    let paged: Vec<String> = pages.iter().flat_map(names).collect();
    assert_eq!(paged, ranked);
    // q with an explicit sort orders by it.
    let res = app
        .get(&format!("{}&sort=-name", search("bio lab")))
        .role(Role::Viewer)
        .send()
        .await;
    let by_name = names(&res.json());
    let mut expected = ranked.clone();
    expected.sort_by_key(|n| std::cmp::Reverse(n.to_lowercase()));
    assert_eq!(by_name, expected);
    // A cursor is bound to its q.
    let res = app
        .get(&format!("{}&limit=1", search("bio lab")))
        .role(Role::Viewer)
        .send()
        .await;
    let cursor = res.json()["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let res = app
        .get(&format!("{}&limit=1&cursor={cursor}", search("bio labs")))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_problem(400, "invalid_cursor");
}
