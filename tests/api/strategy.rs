//! Goals, areas and activities.

use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).role(Role::Editor).json(&body).send().await;
    res.assert_status(201);
    res.json()
}

#[actix_web::test]
async fn areas_are_the_six_of_the_brochure() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/areas").role(Role::Viewer).send().await;
    res.assert_status(200);
    let codes: Vec<String> = res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        codes,
        [
            "communication",
            "experience_sharing_and_community",
            "funds",
            "research_and_open_innovation",
            "education",
            "excellence_in_lombardia"
        ]
    );
    let etag = res.header("etag").unwrap();
    app.get("/api/v1/areas")
        .role(Role::Viewer)
        .header("If-None-Match", &etag)
        .send()
        .await
        .assert_status(304);
}

#[actix_web::test]
async fn goals_live_the_record_life_and_validate() {
    let app = TestApp::spawn().await;
    let goal = create(
        &app,
        "/api/v1/goals",
        json!({
            "code": 1, "title": "Competitiveness and internationalization",
            "headline": "Make Lombardia a hub", "statement": "GOAL: ...",
            "lines_of_action": [{"label": "Communication", "text": "Tell the world"}, {"text": "Studies"}],
            "areas": ["communication", "funds"], "unlisted_partners": ["Investment funds dedicated to the Life Sciences sector"]
        }),
    )
    .await;
    assert_eq!(goal["version"], 1);
    assert_eq!(goal["lines_of_action"][1], json!({"text": "Studies"}));
    let id = goal["id"].as_str().unwrap();

    // One live goal per code.
    let res = app
        .post("/api/v1/goals")
        .role(Role::Editor)
        .json(&json!({"code": 1, "title": "Other"}))
        .send()
        .await;
    let problem = res.assert_problem(409, "duplicate");
    assert_eq!(problem["errors"][0]["field"], "/code");

    // Validation reports every problem at once, and writes nothing.
    let before = app.count("goals");
    let res = app
        .post("/api/v1/goals")
        .role(Role::Editor)
        .json(&json!({"code": 0, "areas": ["funds", "funds", "nowhere"], "lines_of_action": [{"label": "x"}]}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"/code") && fields.contains(&"/title"),
        "{problem}"
    );
    assert_eq!(app.count("goals"), before);

    // Partners and viewers read but do not write goals.
    let res = app
        .patch(&format!("/api/v1/goals/{id}"))
        .role(Role::Partner)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"title": "x"}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    app.get(&format!("/api/v1/goals/{id}"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);

    // Merge patch under If-Match; lists replace.
    let res = app
        .patch(&format!("/api/v1/goals/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"areas": ["education"], "headline": null}))
        .send()
        .await;
    res.assert_status(200);
    let patched = res.json();
    assert_eq!(patched["areas"], json!(["education"]));
    assert_eq!(patched["headline"], Value::Null);
    assert_eq!(patched["version"], 2);

    // Lists: filter by area, search by title with a typo.
    let res = app
        .get("/api/v1/goals?area=education")
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(res.json()["data"].as_array().unwrap().len(), 1);
    let res = app
        .get("/api/v1/goals?q=competitivness")
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(res.json()["data"][0]["id"], id);

    // Archive, restore, history.
    app.delete(&format!("/api/v1/goals/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .send()
        .await
        .assert_status(204);
    app.get(&format!("/api/v1/goals/{id}"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/goals/{id}/restore"))
        .role(Role::Editor)
        .header("If-Match", "\"3\"")
        .send()
        .await
        .assert_status(200);
    let history = app
        .get(&format!("/api/v1/goals/{id}/history"))
        .role(Role::Editor)
        .send()
        .await
        .json();
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restore", "archive", "update", "create"]);
}

#[actix_web::test]
async fn activities_validate_dates_and_filter_by_status_and_period() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/api/v1/activities")
        .role(Role::Editor)
        .json(&json!({"title": "Backwards", "starts_on": "2026-05-01", "ends_on": "2026-04-01"}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "/ends_on");

    let fair = create(&app, "/api/v1/activities", json!({"title": "Meet in Italy for Life Sciences", "starts_on": "2026-10-01", "ends_on": "2026-10-03"})).await;
    assert_eq!(fair["status"], "active");
    assert_eq!(fair["areas_inherited"], true);
    create(&app, "/api/v1/activities", json!({"title": "Observatory", "status": "planned", "areas": ["research_and_open_innovation"]})).await;

    let titles = |v: Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let res = app
        .get("/api/v1/activities?status=planned")
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(titles(res.json()), ["Observatory"]);
    let res = app
        .get("/api/v1/activities?from=2026-11-01")
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(titles(res.json()), ["Observatory"], "the fair ended before");
    let res = app
        .get("/api/v1/activities?from=2026-10-02&to=2026-10-02")
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(
        titles(res.json()),
        ["Meet in Italy for Life Sciences", "Observatory"]
    );
    let res = app
        .get("/api/v1/activities?area=research_and_open_innovation")
        .role(Role::Viewer)
        .send()
        .await;
    assert_eq!(titles(res.json()), ["Observatory"]);
    app.get("/api/v1/activities?from=2026-10-02&to=2026-10-01")
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(422, "validation");
}
