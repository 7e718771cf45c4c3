//! `/api/v1/imports`: bulk imports of one kind, all or nothing, as JSON or CSV.

use lshub::domain::vat::italian_check_digit;
use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

/// A valid Partita IVA built from `n` (below 10,000,000), registered in Milano (office 015).
fn vat(n: u64) -> String {
    let first10 = format!("{n:07}015");
    let digits: Vec<u8> = first10.bytes().map(|b| b - b'0').collect();
    let check = italian_check_digit(&digits.try_into().expect("ten digits"));
    format!("{first10}{check}")
}

async fn import(app: &TestApp, query: &str, rows: &Value) -> TestResponse {
    app.post(&format!("/api/v1/imports?{query}"))
        .role(Role::Editor)
        .json(rows)
        .send()
        .await
}

async fn import_csv(app: &TestApp, query: &str, csv: &str) -> TestResponse {
    app.post(&format!("/api/v1/imports?{query}"))
        .role(Role::Editor)
        .raw("text/csv", csv.as_bytes().to_vec())
        .send()
        .await
}

fn companies(app: &TestApp) -> i64 {
    app.count("companies")
}

fn audit_events(app: &TestApp) -> i64 {
    app.count("audit_events")
}

#[actix_web::test]
async fn an_import_creates_every_row_with_one_audit_event_each_under_its_request_id() {
    let app = TestApp::spawn().await;
    let before = companies(&app);
    let rows: Vec<Value> = (0..250)
        .map(|i| {
            json!({"name": format!("Importata {i} S.r.l."), "sector": "biotech",
                   "vat_number": vat(1_000 + i), "employees": i,
                   "address": {"city": "Milano", "province": "MI"}, "tags": ["imported"]})
        })
        .collect();
    let res = app
        .post("/api/v1/imports?kind=companies")
        .role(Role::Editor)
        .header("X-Request-Id", "bulk-import-1")
        .json(&Value::Array(rows))
        .send()
        .await;
    res.assert_status(200);
    let report = res.json();
    assert_eq!(report["kind"], "companies");
    assert_eq!(report["dry_run"], false);
    assert_eq!(
        (&report["rows"], &report["created"], &report["updated"]),
        (&json!(250), &json!(250), &json!(0))
    );
    assert_eq!(report["request_id"], "bulk-import-1");
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 250);
    assert_eq!(results[7]["row"], 7);
    assert_eq!(results[7]["action"], "created");
    let id = results[7]["id"].as_str().expect("an id");

    // Each record is what its single create would have written.
    let company = app
        .get(&format!("/api/v1/companies/{id}"))
        .role(Role::Viewer)
        .send()
        .await;
    company.assert_status(200);
    let company = company.json();
    assert_eq!(company["name"], "Importata 7 S.r.l.");
    assert_eq!(company["employees"], 7);
    assert_eq!(company["address"]["country"], "IT");
    assert_eq!(company["version"], 1);
    assert_eq!(companies(&app), before + 250);

    // One create event per row, all under the import's request id, with the full record.
    assert_eq!(
        app.count("audit_events WHERE request_id = 'bulk-import-1'"),
        250
    );
    assert_eq!(
        app.count(
            "audit_events WHERE request_id = 'bulk-import-1' \
             AND action = 'create' AND entity = 'company'"
        ),
        250
    );
    let events = app
        .get(&format!(
            "/api/v1/audit-events?request_id=bulk-import-1&entity_id={id}"
        ))
        .role(Role::Editor)
        .send()
        .await
        .json();
    let event = &events["data"][0];
    assert_eq!(event["changes"]["after"]["vat_number"], vat(1_007));
    assert_eq!(event["changes"]["after"]["name"], "Importata 7 S.r.l.");
}

#[actix_web::test]
async fn mixed_good_and_bad_rows_write_nothing_and_report_each_bad_row() {
    let app = TestApp::spawn().await;
    let (before, count) = (audit_events(&app), companies(&app));
    let rows = json!([
        {"name": "Buona Uno S.p.A.", "sector": "biotech"},
        {"name": "IVA Sbagliata S.r.l.", "sector": "biotech", "vat_number": "00743110158"},
        {"name": "Senza Settore S.r.l."},
        {"name": "Buona Due S.p.A.", "sector": "cdmo", "employees": "many"},
        {"name": "Campo Ignoto S.r.l.", "sector": "biotech", "colour": "blue", "id": "x"},
        "not an object",
    ]);
    let res = import(&app, "kind=companies", &rows).await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/rows/1/vat_number", "invalid_check_digit");
    assert_field_error(&problem, "/rows/2/sector", "required");
    assert_field_error(&problem, "/rows/3/employees", "invalid_type");
    assert_field_error(&problem, "/rows/4/colour", "unknown_field");
    assert_field_error(&problem, "/rows/4/id", "read_only");
    assert_field_error(&problem, "/rows/5", "invalid_type");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        !fields.iter().any(|f| f.starts_with("/rows/0/")),
        "{fields:?}"
    );
    // Rows in order.
    let mut sorted = fields.clone();
    sorted.sort_by_key(|f| f.split('/').nth(2).and_then(|n| n.parse::<u32>().ok()));
    assert_eq!(fields, sorted);
    assert_eq!(companies(&app), count, "all or nothing");
    assert_eq!(audit_events(&app), before);
}

#[actix_web::test]
async fn a_dry_run_validates_and_reports_but_writes_nothing() {
    let app = TestApp::spawn().await;
    let existing = app
        .create_company(json!({"name": "Già Presente S.p.A.", "sector": "biotech",
                               "vat_number": vat(42), "employees": 10}))
        .await;
    let (before, count) = (audit_events(&app), companies(&app));
    let rows = json!([
        {"name": "Nuova S.r.l.", "sector": "biotech"},
        {"name": "Già Presente S.p.A.", "sector": "biotech", "vat_number": vat(42),
         "employees": 20},
    ]);
    let res = import(
        &app,
        "kind=companies&dry_run=true&on_conflict=update",
        &rows,
    )
    .await;
    res.assert_status(200);
    let report = res.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        (&report["created"], &report["updated"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(report["results"][0]["action"], "created");
    assert_eq!(report["results"][0]["id"], Value::Null);
    assert_eq!(report["results"][1]["action"], "updated");
    assert_eq!(report["results"][1]["id"], existing["id"]);
    assert_eq!(companies(&app), count);
    assert_eq!(audit_events(&app), before);
    let company = app
        .get(&format!(
            "/api/v1/companies/{}",
            existing["id"].as_str().unwrap()
        ))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    assert_eq!(company["employees"], 10);
    assert_eq!(company["version"], 1);

    // A dry run reports errors as the import would.
    let res = import(&app, "kind=companies&dry_run=true", &json!([{"name": "X"}])).await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/rows/0/name", "too_short");
}

#[actix_web::test]
async fn rows_naming_existing_records_are_conflicts_unless_on_conflict_is_update() {
    let app = TestApp::spawn().await;
    let by_vat = app
        .create_company(
            json!({"name": "Per Partita IVA S.p.A.", "sector": "biotech",
                               "vat_number": vat(7), "employees": 10}),
        )
        .await;
    let by_name = app
        .create_company(json!({"name": "Per Nome S.r.l.", "sector": "cdmo"}))
        .await;
    let count = companies(&app);
    let rows = json!([
        // The VAT number names the record, whatever the spelling.
        {"name": "Per Partita IVA S.p.A.", "sector": "biotech",
         "vat_number": format!("IT {}", vat(7)), "employees": 25},
        // No VAT number: the name names it.
        {"name": "Per Nome S.r.l.", "sector": "cdmo"},
        {"name": "Del Tutto Nuova S.r.l.", "sector": "biotech"},
    ]);
    let res = import(&app, "kind=companies", &rows).await;
    let problem = res.assert_problem(409, "duplicate");
    assert_field_error(&problem, "/rows/0/vat_number", "duplicate");
    assert_field_error(&problem, "/rows/1/name", "duplicate");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
    assert_eq!(companies(&app), count);

    let res = app
        .post("/api/v1/imports?kind=companies&on_conflict=update")
        .role(Role::Editor)
        .header("X-Request-Id", "bulk-update-1")
        .json(&rows)
        .send()
        .await;
    res.assert_status(200);
    let report = res.json();
    assert_eq!(
        (&report["created"], &report["updated"], &report["unchanged"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(report["results"][0]["id"], by_vat["id"]);
    assert_eq!(report["results"][1]["action"], "unchanged");
    assert_eq!(report["results"][1]["id"], by_name["id"]);
    let id = by_vat["id"].as_str().unwrap();
    let company = app
        .get(&format!("/api/v1/companies/{id}"))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    assert_eq!(company["employees"], 25);
    assert_eq!(company["version"], 2);

    // The update is audited as a PATCH would be, under the import's request id; the unchanged
    // row wrote nothing.
    let history = app
        .get(&format!("/api/v1/companies/{id}/history"))
        .role(Role::Editor)
        .send()
        .await
        .json();
    let latest = &history["data"][0];
    assert_eq!(latest["action"], "update");
    assert_eq!(latest["request_id"], "bulk-update-1");
    assert_eq!(latest["changes"]["before"], json!({"employees": 10}));
    assert_eq!(latest["changes"]["after"], json!({"employees": 25}));
    let events = app
        .get("/api/v1/audit-events?request_id=bulk-update-1")
        .role(Role::Editor)
        .send()
        .await
        .json();
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn rows_that_clash_with_each_other_or_with_an_archived_record_are_refused() {
    let app = TestApp::spawn().await;
    let archived = app
        .create_company(json!({"name": "Archiviata S.p.A.", "sector": "biotech",
                               "vat_number": vat(99)}))
        .await;
    app.delete(&format!(
        "/api/v1/companies/{}",
        archived["id"].as_str().unwrap()
    ))
    .role(Role::Editor)
    .header("If-Match", "\"1\"")
    .send()
    .await
    .assert_status(204);
    let count = companies(&app);
    let rows = json!([
        {"name": "Gemella S.r.l.", "sector": "biotech", "vat_number": vat(5)},
        {"name": "Gemella Diversa S.r.l.", "sector": "biotech", "vat_number": vat(5)},
        {"name": "Omonima S.r.l.", "sector": "biotech"},
        {"name": "omonima s.r.l.", "sector": "cdmo", "vat_number": vat(6)},
        {"name": "Rinata S.p.A.", "sector": "biotech", "vat_number": vat(99)},
    ]);
    let res = import(&app, "kind=companies&on_conflict=update", &rows).await;
    let problem = res.assert_problem(409, "duplicate");
    assert_field_error(&problem, "/rows/1/vat_number", "duplicate");
    assert_field_error(&problem, "/rows/3/name", "duplicate");
    assert_field_error(&problem, "/rows/4/vat_number", "duplicate");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "{problem}");
    assert_eq!(companies(&app), count);
}

async fn universities(app: &TestApp) -> Value {
    app.get("/api/v1/universities?sort=name")
        .role(Role::Viewer)
        .send()
        .await
        .json()
}

#[actix_web::test]
async fn csv_and_json_bodies_give_the_same_result_and_an_export_reimports_as_it_is() {
    let source = TestApp::spawn().await;
    let rows = json!([
        {"name": "Ateneo Importato", "ror_id": "03vek6s52", "has_medical_faculty": true,
         "tags": ["ricerca", "medicina"], "address": {"city": "Milano", "province": "MI",
         "postal_code": "20133"},
         "rankings": [
            {"area": "life_sciences_and_medicine", "rank": 16, "source": "QS", "year": 2019},
            {"area": "natural_sciences", "rank": 124, "source": "QS World", "year": 2020}]},
        {"name": "Ateneo Semplice", "students": 1200, "ownership": "private"},
    ]);
    import(&source, "kind=universities", &rows)
        .await
        .assert_status(200);
    let export = source
        .get("/api/v1/universities?sort=name")
        .role(Role::Viewer)
        .header("Accept", "text/csv")
        .send()
        .await;
    export.assert_status(200);
    let csv = String::from_utf8(export.body.clone()).expect("utf-8");

    let target = TestApp::spawn().await;
    let res = import_csv(&target, "kind=universities", &csv).await;
    res.assert_status(200);
    assert_eq!(res.json()["created"], 2, "{csv}");

    let comparable = |page: Value| -> Vec<Value> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                for read_only in ["id", "created_at", "updated_at"] {
                    r.as_object_mut().unwrap().remove(read_only);
                }
                r
            })
            .collect()
    };
    let from_json = comparable(universities(&source).await);
    let from_csv = comparable(universities(&target).await);
    assert_eq!(from_json, from_csv);
    assert_eq!(from_csv[0]["rankings"].as_array().unwrap().len(), 2);

    // Re-importing the export with on_conflict=update finds every record unchanged.
    let res = import_csv(&source, "kind=universities&on_conflict=update", &csv).await;
    res.assert_status(200);
    assert_eq!(res.json()["unchanged"], 2);

    // The same bad rows fail alike in both bodies.
    let bad_json = json!([{"name": "Ateneo Errato", "students": "molti", "ror_id": "123"}]);
    let bad_csv = "name,students,ror_id\r\nAteneo Errato,molti,123\r\n";
    let a = import(&target, "kind=universities", &bad_json).await;
    let b = import_csv(&target, "kind=universities", bad_csv).await;
    let (a, b) = (
        a.assert_problem(422, "validation"),
        b.assert_problem(422, "validation"),
    );
    assert_eq!(a["errors"], b["errors"]);
    assert_field_error(&a, "/rows/0/students", "invalid_type");
    assert_field_error(&a, "/rows/0/ror_id", "invalid_format");
}

#[actix_web::test]
async fn a_bad_body_is_refused_clearly_and_only_staff_import() {
    let app = TestApp::spawn().await;
    let res = import_csv(
        &app,
        "kind=partners",
        "name,partner_type,colour\r\nFondazione Uno,cluster,blue\r\n",
    )
    .await;
    let problem = res.assert_problem(422, "validation");
    assert_field_error(&problem, "/columns/2", "unknown_field");

    import(&app, "kind=partners", &json!({"name": "not an array"}))
        .await
        .assert_problem(400, "malformed");
    app.post("/api/v1/imports?kind=partners")
        .role(Role::Editor)
        .raw("application/xml", b"<rows/>".to_vec())
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");
    app.post("/api/v1/imports?kind=spaceships")
        .role(Role::Editor)
        .json(&json!([]))
        .send()
        .await
        .assert_problem(400, "malformed");
    import_csv(&app, "kind=partners", "name\r\nFondazione Tre,cluster\r\n")
        .await
        .assert_problem(400, "malformed");
    for role in [Role::Viewer, Role::Partner] {
        app.post("/api/v1/imports?kind=partners")
            .role(role)
            .json(&json!([{"name": "Fondazione Due", "partner_type": "cluster"}]))
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    assert_eq!(app.count("partners"), 0);

    // An empty import is a valid one that does nothing.
    let res = import(&app, "kind=irccs", &json!([])).await;
    res.assert_status(200);
    assert_eq!(res.json()["rows"], 0);
}

#[actix_web::test]
async fn thousands_of_rows_are_written_and_updated_across_batches() {
    let app = TestApp::spawn().await;
    let before = companies(&app);
    let rows = |employees: u64| -> Value {
        (0..2_100_u64)
            .map(|i| {
                json!({"name": format!("Lotto {i:05} S.r.l."), "sector": "cdmo",
                       "vat_number": vat(50_000 + i), "employees": employees + i,
                       "tags": ["lotto"]})
            })
            .collect()
    };
    let res = app
        .post("/api/v1/imports?kind=companies")
        .role(Role::Editor)
        .header("X-Request-Id", "batches-create")
        .json(&rows(1))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["created"], 2_100);
    assert_eq!(companies(&app), before + 2_100);

    let res = app
        .post("/api/v1/imports?kind=companies&on_conflict=update")
        .role(Role::Editor)
        .header("X-Request-Id", "batches-update")
        .json(&rows(10))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["updated"], 2_100);
    assert_eq!(
        app.count(
            "organisations o JOIN companies c ON c.organisation_id = o.id \
             WHERE o.name LIKE 'Lotto %' AND o.version = 2 AND c.employees >= 10 \
             AND c.vat_number IS NOT NULL AND o.tags = '{lotto}'"
        ),
        2_100
    );
    for (request, action) in [("batches-create", "create"), ("batches-update", "update")] {
        assert_eq!(
            app.count(&format!(
                "audit_events WHERE request_id = '{request}' AND action = '{action}'"
            )),
            2_100
        );
    }
    let event = app
        .get("/api/v1/audit-events?request_id=batches-update&limit=1")
        .role(Role::Editor)
        .send()
        .await
        .json();
    let changes = &event["data"][0]["changes"];
    assert_eq!(changes["before"].as_object().unwrap().len(), 1, "{changes}");
    let (was, is) = (
        changes["before"]["employees"].as_i64().unwrap(),
        changes["after"]["employees"].as_i64().unwrap(),
    );
    assert_eq!(is - was, 9);
}
