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

#[actix_web::test]
async fn goal_activity_links_keep_one_primary_per_activity_and_read_from_either_side() {
    let app = TestApp::spawn().await;
    let g1 = create(
        &app,
        "/api/v1/goals",
        json!({"code": 1, "title": "Research", "areas": ["research_and_open_innovation"]}),
    )
    .await;
    let g2 = create(
        &app,
        "/api/v1/goals",
        json!({"code": 2, "title": "Education"}),
    )
    .await;
    let act = create(
        &app,
        "/api/v1/activities",
        json!({"title": "Joint PhD programme"}),
    )
    .await;
    let (g1, g2, act) = (
        g1["id"].as_str().unwrap(),
        g2["id"].as_str().unwrap(),
        act["id"].as_str().unwrap(),
    );

    let link = |goal: &str, role: &str| json!({"goal_id": goal, "activity_id": act, "role": role});
    let res = app
        .post("/api/v1/goal-activity-links")
        .role(Role::Editor)
        .json(&link(g1, "primary"))
        .send()
        .await;
    res.assert_status(201);
    let primary = res.json();
    assert_eq!(primary["goal"]["code"], 1);
    assert_eq!(primary["activity"]["title"], "Joint PhD programme");

    // A second primary goal, or the same pair again, is 409; a supporting goal is fine.
    let res = app
        .post("/api/v1/goal-activity-links")
        .role(Role::Editor)
        .json(&link(g2, "primary"))
        .send()
        .await;
    assert_eq!(
        res.assert_problem(409, "duplicate")["errors"][0]["field"],
        "/role"
    );
    let res = app
        .post("/api/v1/goal-activity-links")
        .role(Role::Editor)
        .json(&link(g1, "supporting"))
        .send()
        .await;
    res.assert_problem(409, "duplicate");
    app.post("/api/v1/goal-activity-links")
        .role(Role::Editor)
        .json(&link(g2, "supporting"))
        .send()
        .await
        .assert_status(201);

    // A missing end is 422; viewers may not link.
    let res = app
        .post("/api/v1/goal-activity-links")
        .role(Role::Editor)
        .json(&json!({"goal_id": act, "activity_id": act, "role": "supporting"}))
        .send()
        .await;
    assert_eq!(
        res.assert_problem(422, "validation")["errors"][0]["field"],
        "/goal_id"
    );
    app.post("/api/v1/goal-activity-links")
        .role(Role::Viewer)
        .json(&link(g2, "supporting"))
        .send()
        .await
        .assert_problem(403, "forbidden");

    // The activity inherits its primary goal's areas.
    let activity = app
        .get(&format!("/api/v1/activities/{act}"))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    assert_eq!(activity["areas"], json!(["research_and_open_innovation"]));
    assert_eq!(activity["areas_inherited"], true);

    // Either side.
    let goals = app
        .get(&format!("/api/v1/activities/{act}/goals"))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    let roles: Vec<(&str, i64)> = goals["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["role"].as_str().unwrap(),
                l["goal"]["code"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(roles, [("primary", 1), ("supporting", 2)]);
    let acts = app
        .get(&format!("/api/v1/goals/{g2}/activities"))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    assert_eq!(acts["data"].as_array().unwrap().len(), 1);
    app.get(&format!("/api/v1/goals/{act}/activities"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");

    // Demote, then delete, under If-Match; both audited.
    let id = primary["id"].as_str().unwrap();
    app.patch(&format!("/api/v1/goal-activity-links/{id}"))
        .role(Role::Editor)
        .merge_patch(&json!({"role": "supporting"}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    let res = app
        .patch(&format!("/api/v1/goal-activity-links/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"role": "supporting", "note": "now secondary"}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["version"], 2);
    app.delete(&format!("/api/v1/goal-activity-links/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    app.delete(&format!("/api/v1/goal-activity-links/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .send()
        .await
        .assert_status(204);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity = 'goal_activity_link' AND entity_id = '{id}'"
        )),
        3
    );

    // Archiving a goal hides its links; restoring brings them back.
    app.delete(&format!("/api/v1/goals/{g2}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    let goals = app
        .get(&format!("/api/v1/activities/{act}/goals"))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    assert_eq!(goals["data"].as_array().unwrap().len(), 0);
    let all = app
        .get(&format!(
            "/api/v1/goal-activity-links?activity_id={act}&include_archived=true"
        ))
        .role(Role::Editor)
        .send()
        .await
        .json();
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn only_editors_and_admins_write_goals_activities_and_links() {
    let app = TestApp::spawn().await;
    let goal = create(
        &app,
        "/api/v1/goals",
        json!({"code": 3, "title": "Research"}),
    )
    .await;
    let activity = create(&app, "/api/v1/activities", json!({"title": "Open labs"})).await;
    let (g, a) = (
        goal["id"].as_str().unwrap(),
        activity["id"].as_str().unwrap(),
    );
    let writes: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            "/api/v1/goals".into(),
            json!({"code": 9, "title": "Another"}),
        ),
        (
            "POST",
            "/api/v1/activities".into(),
            json!({"title": "Another"}),
        ),
        (
            "PATCH",
            format!("/api/v1/activities/{a}"),
            json!({"title": "Renamed"}),
        ),
        ("DELETE", format!("/api/v1/goals/{g}"), Value::Null),
        (
            "POST",
            "/api/v1/goal-activity-links".into(),
            json!({"goal_id": g, "activity_id": a, "role": "primary"}),
        ),
        (
            "POST",
            format!("/api/v1/goals/{g}/partners"),
            json!({"organisation_id": app.fixtures.partner_org, "role": "other"}),
        ),
    ];
    for role in [Role::Viewer, Role::Partner] {
        for (method, path, body) in &writes {
            let req = app
                .request(method.parse().unwrap(), path)
                .role(role)
                .header("If-Match", "\"1\"");
            let req = if body.is_null() {
                req
            } else if *method == "PATCH" {
                req.merge_patch(body)
            } else {
                req.json(body)
            };
            req.send().await.assert_problem(403, "forbidden");
        }
        // Reads are for everyone.
        for path in [
            "/api/v1/goals",
            "/api/v1/activities",
            "/api/v1/goal-activity-links",
            "/api/v1/areas",
        ] {
            app.get(path).role(role).send().await.assert_status(200);
        }
        app.get(&format!("/api/v1/goals/{g}/partners"))
            .role(role)
            .send()
            .await
            .assert_status(200);
        app.get(&format!("/api/v1/activities/{a}/participants"))
            .role(role)
            .send()
            .await
            .assert_status(200);
    }
    for (i, role) in [Role::Editor, Role::Admin].into_iter().enumerate() {
        let res = app
            .post("/api/v1/goals")
            .role(role)
            .json(&json!({"code": 20 + i, "title": format!("Goal by {}", role.as_str())}))
            .send()
            .await;
        res.assert_status(201);
    }
    assert_eq!(app.count("goals"), 3);
}

/// Schemathesis found a title padded with spaces past its `maxLength` accepted: the server
/// trimmed before counting. The bound is on the text as sent, as the schema states it, for
/// every free text (titles, notes, a ranking's source, an organisation's legal name).
#[actix_web::test]
async fn a_text_longer_than_its_max_length_as_sent_is_refused_even_when_trimming_would_fit() {
    let app = TestApp::spawn().await;
    let padded = |max: usize| format!("{}  ", "t".repeat(max - 1));
    let cases = [
        (
            "/api/v1/goals",
            json!({"code": 7, "title": padded(200)}),
            "/title",
        ),
        (
            "/api/v1/activities",
            json!({"title": padded(500)}),
            "/title",
        ),
        (
            "/api/v1/goals",
            json!({"code": 8, "title": "Fine", "headline": padded(500)}),
            "/headline",
        ),
        (
            "/api/v1/partners",
            json!({"name": "Padded partner", "partner_type": "cluster", "legal_name": padded(300)}),
            "/legal_name",
        ),
    ];
    for (path, body, field) in cases {
        let before = app.count(&path[8..]);
        let res = app.post(path).role(Role::Editor).json(&body).send().await;
        let problem = res.assert_problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
        assert_eq!(app.count(&path[8..]), before, "{path} wrote");
    }
    // Within the bound as sent, the stored text is trimmed.
    let goal = create(
        &app,
        "/api/v1/goals",
        json!({"code": 9, "title": format!("  {}  ", "t".repeat(196))}),
    )
    .await;
    assert_eq!(goal["title"].as_str().map(str::len), Some(196));
}
