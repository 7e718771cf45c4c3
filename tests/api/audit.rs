//! The audit log: `/api/v1/audit-events`.

use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

/// The events of a page, as `(action, entity)`.
fn events(page: &Value) -> Vec<(String, String)> {
    page["data"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["entity"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_audit_log_lists_every_change_newest_first_and_filters_on_each_field() {
    let app = TestApp::spawn().await;
    let company = app
        .create_company(json!({"name": "Audited S.p.A.", "sector": "biotech"}))
        .await;
    let company_id = company["id"].as_str().unwrap().to_owned();
    let res = app
        .patch(&format!("/api/v1/companies/{company_id}"))
        .role(Role::Admin)
        .header("If-Match", "\"1\"")
        .header("X-Request-Id", "audit-log-patch")
        .merge_patch(&json!({"description": "Now described"}))
        .send()
        .await;
    res.assert_status(200);
    let res = app
        .post("/api/v1/goals")
        .role(Role::Editor)
        .json(&json!({"code": 3, "title": "An audited goal"}))
        .send()
        .await;
    res.assert_status(201);
    let goal_id = res.json()["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v1/goals/{goal_id}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);

    let page = |query: String| {
        let app = &app;
        async move {
            let res = app
                .get(&format!("/api/v1/audit-events?{query}"))
                .role(Role::Editor)
                .send()
                .await;
            res.assert_status(200);
            res.json()
        }
    };

    // Newest first; the registry's changes above those of the fixtures.
    let all = page(String::new()).await;
    assert_eq!(
        events(&all)[..4],
        [
            ("archive".into(), "goal".into()),
            ("create".into(), "goal".into()),
            ("update".into(), "company".into()),
            ("create".into(), "company".into()),
        ]
    );
    let update = &all["data"][2];
    assert_eq!(update["entity_id"], company_id.as_str());
    assert_eq!(update["actor_kind"], "user");
    assert_eq!(update["changes"]["after"]["description"], "Now described");

    // Each filter alone.
    let company_events = page("entity=company".into()).await;
    assert_eq!(
        events(&company_events),
        [
            ("update".into(), "company".into()),
            ("create".into(), "company".into())
        ]
    );
    assert_eq!(
        events(&page(format!("entity_id={goal_id}")).await),
        [
            ("archive".into(), "goal".into()),
            ("create".into(), "goal".into())
        ]
    );
    assert_eq!(
        events(&page("action=archive".into()).await),
        [("archive".into(), "goal".into())]
    );
    let admin = app.fixtures.users[&Role::Admin];
    assert_eq!(
        events(&page(format!("actor_id={admin}")).await),
        [("update".into(), "company".into())]
    );
    assert_eq!(
        events(&page("request_id=audit-log-patch".into()).await),
        [("update".into(), "company".into())]
    );
    assert!(events(&page("entity=no_such_entity".into()).await).is_empty());

    // A time window: `since` is inclusive, `until` exclusive.
    let at = |event: &Value| event["at"].as_str().unwrap().to_owned();
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let (newest, update_at) = (at(&all["data"][0]), at(update));
    let window = page(format!(
        "since={}&until={}&entity=company",
        enc(&update_at),
        enc(&newest)
    ))
    .await;
    assert_eq!(events(&window), [("update".into(), "company".into())]);

    // Keyset pages: every event once, in order.
    let first = page("limit=1&entity=company".into()).await;
    assert_eq!(events(&first), [("update".into(), "company".into())]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = page(format!("limit=1&entity=company&cursor={cursor}")).await;
    assert_eq!(events(&second), [("create".into(), "company".into())]);
    assert_eq!(second["next_cursor"], Value::Null);

    // CSV, every match, `changes` as its JSON text.
    let res = app
        .get("/api/v1/audit-events?entity=company")
        .role(Role::Admin)
        .header("Accept", "text/csv")
        .send()
        .await;
    res.assert_status(200);
    let text = String::from_utf8(res.body.clone()).expect("utf-8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,at,actor_id,actor_kind,action,entity,entity_id,request_id,changes,related")
    );
    assert_eq!(lines.count(), 2);
}

#[actix_web::test]
async fn the_audit_log_is_the_staffs_and_refuses_bad_filters() {
    let app = TestApp::spawn().await;
    for role in [Role::Viewer, Role::Partner] {
        app.get("/api/v1/audit-events")
            .role(role)
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    app.get("/api/v1/audit-events")
        .send()
        .await
        .assert_problem(401, "unauthorized");
    for role in [Role::Editor, Role::Admin] {
        app.get("/api/v1/audit-events")
            .role(role)
            .send()
            .await
            .assert_status(200);
    }
    let refused = |query: &'static str| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/audit-events?{query}"))
                .role(Role::Editor)
                .send()
                .await
        }
    };
    let res = refused("since=2026-12-01T10:00:00Z&until=2026-12-01T10:00:00Z").await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/until",
        "out_of_range",
    );
    let res = refused("request_id=not%20an%20id").await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/request_id",
        "invalid_format",
    );
    let res = refused("entity=Company").await;
    assert_field_error(
        &res.assert_problem(422, "validation"),
        "/entity",
        "invalid_format",
    );
    refused("action=explode")
        .await
        .assert_problem(400, "malformed");
    refused("since=yesterday")
        .await
        .assert_problem(400, "malformed");
    refused("sort=at").await.assert_problem(400, "malformed");
}

/// A record's history is its own changes and those of the links that name it: an activity's
/// shows a participant proposed and confirmed, a goal's a partner added and an activity linked,
/// an organisation's its participation; each such event names the link's ends in `related`.
#[actix_web::test]
async fn a_records_history_shows_the_changes_to_its_links() {
    let app = TestApp::spawn().await;
    let created = |res: TestResponse| {
        res.assert_status(201);
        res.json()["id"].as_str().expect("an id").to_owned()
    };
    let goal = created(
        app.post("/api/v1/goals")
            .role(Role::Editor)
            .json(&json!({"code": 4, "title": "Linked goal"}))
            .send()
            .await,
    );
    let activity = created(
        app.post("/api/v1/activities")
            .role(Role::Editor)
            .json(&json!({"title": "Linked activity"}))
            .send()
            .await,
    );
    let org = app.fixtures.partner_org.to_string();
    let link = created(
        app.post("/api/v1/goal-activity-links")
            .role(Role::Editor)
            .json(&json!({"goal_id": goal, "activity_id": activity, "role": "primary"}))
            .send()
            .await,
    );
    created(
        app.post(&format!("/api/v1/goals/{goal}/partners"))
            .role(Role::Editor)
            .json(&json!({"organisation_id": org, "role": "strategic_partner"}))
            .send()
            .await,
    );
    let participant = created(
        app.post(&format!("/api/v1/activities/{activity}/participants"))
            .role(Role::Partner)
            .json(&json!({"organisation_id": org, "role": "participant"}))
            .send()
            .await,
    );
    app.patch(&format!(
        "/api/v1/activities/{activity}/participants/{participant}"
    ))
    .role(Role::Editor)
    .header("If-Match", "\"1\"")
    .merge_patch(&json!({"status": "confirmed"}))
    .send()
    .await
    .assert_status(200);

    let history = |path: String| {
        let app = &app;
        async move {
            let res = app.get(&path).role(Role::Editor).send().await;
            res.assert_status(200);
            events(&res.json())
        }
    };
    assert_eq!(
        history(format!("/api/v1/activities/{activity}/history")).await,
        [
            ("update".into(), "activity_participant".into()),
            ("create".into(), "activity_participant".into()),
            ("create".into(), "goal_activity_link".into()),
            ("create".into(), "activity".into()),
        ]
    );
    assert_eq!(
        history(format!("/api/v1/goals/{goal}/history")).await,
        [
            ("create".into(), "goal_partner".into()),
            ("create".into(), "goal_activity_link".into()),
            ("create".into(), "goal".into()),
        ]
    );
    let own = history(format!("/api/v1/companies/{org}/history")).await;
    assert_eq!(
        own[..3],
        [
            ("update".into(), "activity_participant".into()),
            ("create".into(), "activity_participant".into()),
            ("create".into(), "goal_partner".into()),
        ]
    );

    // The event says which records it concerns; the audit log's `entity_id` stays exact.
    let res = app
        .get(&format!("/api/v1/audit-events?entity_id={link}"))
        .role(Role::Editor)
        .send()
        .await;
    let event = &res.json()["data"][0];
    assert_eq!(event["related"], json!([goal, activity]));
    let res = app
        .get(&format!("/api/v1/audit-events?entity_id={activity}"))
        .role(Role::Editor)
        .send()
        .await;
    assert_eq!(events(&res.json()), [("create".into(), "activity".into())]);

    // A deleted link stays in its ends' histories.
    app.delete(&format!("/api/v1/goal-activity-links/{link}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    assert_eq!(
        history(format!("/api/v1/goals/{goal}/history")).await[0],
        ("delete".into(), "goal_activity_link".into())
    );
}
