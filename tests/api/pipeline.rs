//! The one write pipeline, seen from outside: what every writable resource shares, whatever
//! its kind (records, goal–activity links, dated links), and the list ETags every write moves.

use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

/// Creates as an editor and returns the created JSON.
async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).role(Role::Editor).json(&body).send().await;
    res.assert_status(201);
    res.json()
}

fn id_of(v: &Value) -> &str {
    v["id"].as_str().expect("id")
}

/// One of each writable resource: its URL, and a patch that sets what it already holds.
async fn one_of_each(app: &TestApp) -> Vec<(String, Value)> {
    let company = create(
        app,
        "/api/v1/companies",
        json!({"name": "Pipeline Pharma", "vat_number": "IT12345678903", "sector": "biotech"}),
    )
    .await;
    let irccs = create(
        app,
        "/api/v1/irccs",
        json!({"name": "Istituto Pipeline", "ownership": "public", "specialisations": ["oncology"]}),
    )
    .await;
    let university = create(
        app,
        "/api/v1/universities",
        json!({"name": "Università Pipeline", "ownership": "public"}),
    )
    .await;
    let partner = create(
        app,
        "/api/v1/partners",
        json!({"name": "Cluster Pipeline", "partner_type": "cluster", "scope": "regional"}),
    )
    .await;
    let goal = create(
        app,
        "/api/v1/goals",
        json!({"code": 1, "title": "Pipeline goal"}),
    )
    .await;
    let activity = create(
        app,
        "/api/v1/activities",
        json!({"title": "Pipeline activity"}),
    )
    .await;
    let link = create(
        app,
        "/api/v1/goal-activity-links",
        json!({"goal_id": id_of(&goal), "activity_id": id_of(&activity), "role": "primary", "note": "n"}),
    )
    .await;
    let goal_partners = format!("/api/v1/goals/{}/partners", id_of(&goal));
    let goal_partner = create(
        app,
        &goal_partners,
        json!({"organisation_id": id_of(&partner), "role": "strategic_partner"}),
    )
    .await;
    let participants = format!("/api/v1/activities/{}/participants", id_of(&activity));
    let participant = create(
        app,
        &participants,
        json!({"organisation_id": id_of(&company), "role": "sponsor"}),
    )
    .await;
    vec![
        (
            format!("/api/v1/companies/{}", id_of(&company)),
            json!({"sector": "biotech"}),
        ),
        (
            format!("/api/v1/irccs/{}", id_of(&irccs)),
            json!({"specialisations": ["oncology"]}),
        ),
        (
            format!("/api/v1/universities/{}", id_of(&university)),
            json!({"ownership": "public"}),
        ),
        (
            format!("/api/v1/partners/{}", id_of(&partner)),
            json!({"scope": "regional"}),
        ),
        (
            format!("/api/v1/goals/{}", id_of(&goal)),
            json!({"code": 1}),
        ),
        (
            format!("/api/v1/activities/{}", id_of(&activity)),
            json!({"status": "active"}),
        ),
        (
            format!("/api/v1/goal-activity-links/{}", id_of(&link)),
            json!({"note": "n"}),
        ),
        (
            format!("{goal_partners}/{}", id_of(&goal_partner)),
            json!({"role": "strategic_partner"}),
        ),
        (
            format!("{participants}/{}", id_of(&participant)),
            json!({"status": "confirmed"}),
        ),
    ]
}

#[actix_web::test]
async fn a_patch_that_changes_nothing_writes_nothing_on_every_resource() {
    let app = TestApp::spawn().await;
    let resources = one_of_each(&app).await;
    let versions = app.count("audit_events");
    let counter = app.count("change_counter WHERE value > 0");
    for (url, same) in &resources {
        let before = app.get(url).role(Role::Editor).send().await;
        before.assert_status(200);
        let etag = before.header("etag").expect("etag");
        for patch in [json!({}), same.clone()] {
            let res = app
                .patch(url)
                .role(Role::Editor)
                .header("If-Match", &etag)
                .merge_patch(&patch)
                .send()
                .await;
            res.assert_status(200);
            assert_eq!(
                res.header("etag").as_deref(),
                Some(etag.as_str()),
                "{url} {patch}"
            );
            assert_eq!(
                res.json()["version"],
                before.json()["version"],
                "{url} {patch}"
            );
        }
    }
    assert_eq!(
        app.count("audit_events"),
        versions,
        "a no-op PATCH wrote an audit event"
    );
    assert_eq!(app.count("change_counter WHERE value > 0"), counter);
}

#[actix_web::test]
async fn every_write_moves_the_list_etags() {
    let app = TestApp::spawn().await;
    let company = app
        .create_company(
            json!({"name": "Etag Pharma", "vat_number": "IT12345678903", "sector": "cdmo"}),
        )
        .await;
    let url = format!("/api/v1/companies/{}", id_of(&company));
    let list_etag = |res: &TestResponse| res.header("etag").expect("list etag");
    let mut seen = list_etag(&app.get("/api/v1/companies").role(Role::Viewer).send().await);
    let mut version = company["version"].as_i64().expect("version");
    // A third of writes left every shard untouched when the shard was drawn per row: 60 writes
    // would all have to be lucky for a regression to pass.
    for i in 0..60 {
        let res = app
            .patch(&url)
            .role(Role::Editor)
            .header("If-Match", &format!("\"{version}\""))
            .merge_patch(&json!({"employees": i}))
            .send()
            .await;
        res.assert_status(200);
        version = res.json()["version"].as_i64().expect("version");
        let poll = app
            .get("/api/v1/companies")
            .role(Role::Viewer)
            .header("If-None-Match", &seen)
            .send()
            .await;
        poll.assert_status(200);
        let now = list_etag(&poll);
        assert_ne!(now, seen, "write {i} left the list ETag unchanged");
        seen = now;
    }
    // Each write bumped exactly one shard.
    let total: i64 = {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Total {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            total: i64,
        }
        diesel::sql_query("SELECT sum(value)::bigint AS total FROM change_counter")
            .get_result::<Total>(&mut app.conn())
            .expect("sum")
            .total
    };
    assert_eq!(total, app.count("audit_events"));
}

/// Statuses the spec derives from a route's shape are real answers: a malformed id in the
/// path is 400, an oversized body 413, on links as on records.
#[actix_web::test]
async fn links_answer_the_statuses_their_routes_imply() {
    let app = TestApp::spawn().await;
    let goal = uuid::Uuid::now_v7();
    for url in [
        "/api/v1/goal-activity-links/not-an-id".to_owned(),
        format!("/api/v1/goals/{goal}/partners/not-an-id"),
    ] {
        let res = app
            .delete(&url)
            .role(Role::Editor)
            .header("If-Match", "\"1\"")
            .send()
            .await;
        res.assert_problem(400, "malformed");
    }
    let huge = format!("{{\"note\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let res = app
        .post("/api/v1/goal-activity-links")
        .role(Role::Editor)
        .raw("application/json", huge)
        .send()
        .await;
    res.assert_problem(413, "payload_too_large");
    assert_eq!(app.count("goal_activity_links"), 0);
}
