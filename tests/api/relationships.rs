//! Relationships: the partners of a goal and the participants of an activity (dated links with
//! `as_of` and non-overlapping periods), partner self-service, an organisation's engagements,
//! and the brochure's goals, activities and partners read through the API.

use std::collections::BTreeSet;

use lshub::domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// Creates a record as an editor and returns its JSON.
async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).role(Role::Editor).json(&body).send().await;
    res.assert_status(201);
    res.json()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn goal(app: &TestApp, code: i64, title: &str) -> String {
    id_of(&create(app, "/api/v1/goals", json!({"code": code, "title": title})).await)
}

async fn activity(app: &TestApp, title: &str) -> String {
    id_of(&create(app, "/api/v1/activities", json!({"title": title})).await)
}

/// An institutional partner (an organisation of kind `partner`).
async fn institution(app: &TestApp, name: &str) -> String {
    id_of(
        &create(
            app,
            "/api/v1/partners",
            json!({"name": name, "partner_type": "cluster", "scope": "regional"}),
        )
        .await,
    )
}

/// The ids of a list's `data`, as a set.
fn ids(page: &Value) -> BTreeSet<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(id_of)
        .collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The JSON Pointers of a problem's `errors`.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// POSTs a link as `role` and asserts a 422 naming `field`; returns the problem.
async fn refused_link(app: &TestApp, path: &str, body: Value, field: &str) -> Value {
    let res = app.post(path).role(Role::Editor).json(&body).send().await;
    let problem = res.assert_problem(422, "validation");
    assert!(
        fields(&problem).contains(&field.to_owned()),
        "expected {field} in {problem}"
    );
    problem
}

#[actix_web::test]
async fn goal_partners_live_the_record_life_validate_and_are_audited() {
    let app = TestApp::spawn().await;
    let editor = app.fixtures.users[&Role::Editor];
    let goal = goal(&app, 3, "Research").await;
    let org = institution(&app, "Lombardia Life Sciences Cluster").await;
    let other = institution(&app, "ALISEI - Advanced Life Sciences in Italy").await;
    let path = format!("/api/v1/goals/{goal}/partners");

    // Create: 201, Location, ETag, the link with both ends in brief.
    let res = app
        .post(&path)
        .role(Role::Editor)
        .json(&json!({
            "organisation_id": org, "role": "strategic_partner",
            "since": "2024-01-01", "note": "founding partner"
        }))
        .send()
        .await;
    res.assert_status(201);
    let link = res.json();
    let id = id_of(&link);
    let item = format!("{path}/{id}");
    assert_eq!(res.header("location").as_deref(), Some(item.as_str()));
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(link["goal_id"], goal.as_str());
    assert_eq!(link["organisation_id"], org.as_str());
    assert_eq!(link["role"], "strategic_partner");
    assert_eq!(link["since"], "2024-01-01");
    assert_eq!(link["until"], Value::Null);
    assert_eq!(link["note"], "founding partner");
    assert_eq!(link["version"], 1);
    assert_eq!(
        link["organisation"],
        json!({"id": org, "name": "Lombardia Life Sciences Cluster", "kind": "partner"})
    );
    assert_eq!(link["goal"], json!({"id": goal, "title": "Research"}));
    assert!(
        link.get("status").is_none(),
        "goal partners have no status: {link}"
    );

    // Read one: ETag, then 304 on a match; the list holds it.
    let res = app.get(&item).role(Role::Viewer).send().await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(res.json()["id"], id.as_str());
    app.get(&item)
        .role(Role::Partner)
        .header("If-None-Match", "\"1\"")
        .send()
        .await
        .assert_status(304);
    let res = app.get(&path).role(Role::Partner).send().await;
    res.assert_status(200);
    assert_eq!(ids(&res.json()), set([id.as_str()]));

    // Viewers and partners read but do not write goal partners.
    let partner_org = app.fixtures.partner_org.to_string();
    for role in [Role::Viewer, Role::Partner] {
        app.post(&path)
            .role(role)
            .json(&json!({"organisation_id": partner_org, "role": "other"}))
            .send()
            .await
            .assert_problem(403, "forbidden");
        app.patch(&item)
            .role(role)
            .header("If-Match", "\"1\"")
            .merge_patch(&json!({"note": "mine"}))
            .send()
            .await
            .assert_problem(403, "forbidden");
        app.delete(&item)
            .role(role)
            .header("If-Match", "\"1\"")
            .send()
            .await
            .assert_problem(403, "forbidden");
    }

    // Validation: 422 naming the field, and nothing written.
    refused_link(
        &app,
        &path,
        json!({"organisation_id": other, "role": "sponsor"}),
        "/role",
    )
    .await;
    refused_link(
        &app,
        &path,
        json!({"organisation_id": other, "role": "other", "since": "2025-01-01", "until": "2024-12-31"}),
        "/until",
    )
    .await;
    refused_link(&app, &path, json!({"role": "other"}), "/organisation_id").await;
    refused_link(
        &app,
        &path,
        json!({"organisation_id": Uuid::now_v7(), "role": "other"}),
        "/organisation_id",
    )
    .await;
    let problem = refused_link(
        &app,
        &path,
        json!({"organisation_id": other, "role": "other", "colour": "blue"}),
        "/colour",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "unknown_field", "{problem}");
    // Goal partners have no status; read-only members are refused, not ignored.
    let problem = refused_link(
        &app,
        &path,
        json!({"organisation_id": other, "role": "other", "status": "confirmed"}),
        "/status",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "unknown_field", "{problem}");
    let problem = refused_link(
        &app,
        &path,
        json!({"organisation_id": other, "role": "other", "goal_id": goal}),
        "/goal_id",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "read_only", "{problem}");
    assert_eq!(app.count("goal_partners"), 1);

    // A goal that does not exist: 404 on its list, its create and its links.
    let missing = Uuid::now_v7();
    app.get(&format!("/api/v1/goals/{missing}/partners"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/goals/{missing}/partners"))
        .role(Role::Editor)
        .json(&json!({"organisation_id": other, "role": "other"}))
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/api/v1/goals/{missing}/partners/{id}"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/{}", Uuid::now_v7()))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");

    // PATCH: If-Match required (428), current (412), then applied.
    let change = json!({"until": "2025-12-31", "note": "renewed"});
    app.patch(&item)
        .role(Role::Editor)
        .merge_patch(&change)
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.patch(&item)
        .role(Role::Editor)
        .header("If-Match", "\"7\"")
        .merge_patch(&change)
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    let res = app
        .patch(&item)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&change)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    let patched = res.json();
    assert_eq!(patched["until"], "2025-12-31");
    assert_eq!(patched["note"], "renewed");
    assert_eq!(patched["since"], "2024-01-01", "untouched members stay");
    assert_eq!(patched["role"], "strategic_partner");
    assert_eq!(patched["version"], 2);

    // A link's organisation never changes; the patched result must validate.
    let res = app
        .patch(&item)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"organisation_id": other}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation");
    assert_eq!(fields(&problem), ["/organisation_id"]);
    let res = app
        .patch(&item)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"until": "2023-12-31"}))
        .send()
        .await;
    assert_eq!(fields(&res.assert_problem(422, "validation")), ["/until"]);
    let res = app
        .patch(&item)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"role": "lead"}))
        .send()
        .await;
    assert_eq!(fields(&res.assert_problem(422, "validation")), ["/role"]);
    for (patch, field, code) in [
        (json!({"version": 9}), "/version", "read_only"),
        (json!({"colour": "blue"}), "/colour", "unknown_field"),
        // Unknown here, as on create: never silently dropped.
        (json!({"status": "confirmed"}), "/status", "unknown_field"),
    ] {
        let res = app
            .patch(&item)
            .role(Role::Editor)
            .header("If-Match", "\"2\"")
            .merge_patch(&patch)
            .send()
            .await;
        let problem = res.assert_problem(422, "validation");
        assert_eq!(fields(&problem), [field], "{patch}");
        assert_eq!(problem["errors"][0]["code"], code, "{patch}");
    }
    let current = app.get(&item).role(Role::Viewer).send().await.json();
    assert_eq!(current["organisation_id"], org.as_str());
    assert_eq!(current["version"], 2);

    // DELETE under If-Match: 204, then gone.
    app.delete(&item)
        .role(Role::Editor)
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.delete(&item)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    app.delete(&item)
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .send()
        .await
        .assert_status(204);
    app.get(&item)
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    let res = app.get(&path).role(Role::Viewer).send().await;
    assert!(ids(&res.json()).is_empty());
    assert_eq!(app.count("goal_partners"), 0);

    // Every change audited, with who and before/after; refused attempts wrote nothing.
    let audited = |action: &str, condition: &str| {
        app.count(&format!(
            "audit_events WHERE entity = 'goal_partner' AND entity_id = '{id}' \
             AND actor_id = '{editor}' AND actor_kind = 'user' AND action = '{action}' AND {condition}"
        ))
    };
    assert_eq!(
        audited(
            "create",
            &format!(
                "changes->'before' = 'null'::jsonb AND changes->'after'->>'organisation_id' = '{org}' \
                 AND changes->'after'->>'role' = 'strategic_partner' AND changes->'after'->>'since' = '2024-01-01'"
            )
        ),
        1
    );
    assert_eq!(
        audited(
            "update",
            "changes->'before'->>'note' = 'founding partner' AND changes->'after'->>'note' = 'renewed' \
             AND changes->'before'->'until' = 'null'::jsonb AND changes->'after'->>'until' = '2025-12-31'"
        ),
        1
    );
    assert_eq!(
        audited(
            "delete",
            &format!(
                "changes->'after' = 'null'::jsonb AND changes->'before'->>'organisation_id' = '{org}' \
                 AND changes->'before'->>'note' = 'renewed'"
            )
        ),
        1
    );
    assert_eq!(
        app.count(&format!("audit_events WHERE entity_id = '{id}'")),
        3
    );
    assert_eq!(app.count("audit_events WHERE entity = 'goal_partner'"), 3);
    assert_eq!(
        app.count("audit_events WHERE entity = 'goal_partner' AND request_id IS NULL"),
        0,
        "every change names its request"
    );
}

#[actix_web::test]
async fn periods_of_one_organisation_in_one_role_do_not_overlap() {
    let app = TestApp::spawn().await;
    let goal = goal(&app, 1, "Competitiveness and internationalization").await;
    let org = institution(&app, "Italian Trade Agency").await;
    let path = format!("/api/v1/goals/{goal}/partners");
    let period = |role: &str, since: Value, until: Value| json!({"organisation_id": org, "role": role, "since": since, "until": until});

    let first = create(
        &app,
        &path,
        period(
            "strategic_partner",
            json!("2024-01-01"),
            json!("2024-12-31"),
        ),
    )
    .await;
    // Overlapping the first (inside, across its end, open at both ends): 409 on /since.
    for (since, until) in [
        (json!("2024-06-01"), json!("2025-06-30")),
        (json!("2023-01-01"), json!("2024-01-01")),
        (json!("2024-12-31"), Value::Null),
        (Value::Null, Value::Null),
    ] {
        let res = app
            .post(&path)
            .role(Role::Editor)
            .json(&period("strategic_partner", since.clone(), until.clone()))
            .send()
            .await;
        let problem = res.assert_problem(409, "duplicate");
        assert_eq!(fields(&problem), ["/since"], "{since}..{until}");
    }
    // Adjacent periods are fine, and so is the same period in another role.
    let second = create(
        &app,
        &path,
        period("strategic_partner", json!("2025-01-01"), Value::Null),
    )
    .await;
    create(
        &app,
        &path,
        period("other", json!("2024-01-01"), json!("2024-12-31")),
    )
    .await;
    // Another organisation in the same role and period is fine too.
    let other = institution(&app, "Enterprise Lithuania").await;
    create(
        &app,
        &path,
        json!({"organisation_id": other, "role": "strategic_partner", "since": "2024-01-01", "until": "2024-12-31"}),
    )
    .await;
    assert_eq!(app.count("goal_partners"), 4);

    // A PATCH that would make two periods overlap is refused the same way, and changes nothing.
    let res = app
        .patch(&format!("{path}/{}", id_of(&first)))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"until": "2025-03-31"}))
        .send()
        .await;
    assert_eq!(fields(&res.assert_problem(409, "duplicate")), ["/since"]);
    let res = app
        .patch(&format!("{path}/{}", id_of(&second)))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"since": null}))
        .send()
        .await;
    res.assert_problem(409, "duplicate");
    let unchanged = app
        .get(&format!("{path}/{}", id_of(&first)))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    assert_eq!(unchanged["until"], "2024-12-31");
    assert_eq!(unchanged["version"], 1);

    // Participants follow the same rule.
    let act = activity(&app, "Meet in Italy for Life Sciences").await;
    let path = format!("/api/v1/activities/{act}/participants");
    let period = |role: &str, since: &str, until: Value| json!({"organisation_id": org, "role": role, "since": since, "until": until});
    create(
        &app,
        &path,
        period("lead", "2024-01-01", json!("2024-12-31")),
    )
    .await;
    let res = app
        .post(&path)
        .role(Role::Editor)
        .json(&period("lead", "2024-06-01", json!("2025-06-30")))
        .send()
        .await;
    assert_eq!(fields(&res.assert_problem(409, "duplicate")), ["/since"]);
    create(&app, &path, period("lead", "2025-01-01", Value::Null)).await;
    create(
        &app,
        &path,
        period("co_organiser", "2024-01-01", json!("2024-12-31")),
    )
    .await;

    // A declined or withdrawn participation does not hold its period.
    let partner_org = app.fixtures.partner_org.to_string();
    let proposal = json!({"organisation_id": partner_org, "role": "participant", "since": "2024-03-01", "until": "2024-03-31"});
    let propose = || app.post(&path).role(Role::Partner).json(&proposal).send();
    let res = propose().await;
    res.assert_status(201);
    let first_proposal = id_of(&res.json());
    propose().await.assert_problem(409, "duplicate");
    app.patch(&format!("{path}/{first_proposal}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"status": "declined"}))
        .send()
        .await
        .assert_status(200);
    let res = propose().await;
    res.assert_status(201);
    let second_proposal = id_of(&res.json());
    assert_eq!(res.json()["status"], "proposed");
    app.patch(&format!("{path}/{second_proposal}"))
        .role(Role::Partner)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"status": "withdrawn"}))
        .send()
        .await
        .assert_status(200);
    let res = propose().await;
    res.assert_status(201);
    assert_eq!(res.json()["status"], "proposed");
    // Reviving the declined one would overlap the live proposal: 409, nothing changes.
    let res = app
        .patch(&format!("{path}/{first_proposal}"))
        .role(Role::Editor)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"status": "confirmed"}))
        .send()
        .await;
    assert_eq!(fields(&res.assert_problem(409, "duplicate")), ["/since"]);
    assert_eq!(
        app.count(&format!(
            "activity_participants WHERE organisation_id = '{partner_org}'"
        )),
        3
    );
}

/// Three links of one organisation, 2024, 2025 onwards and up to mid-2023, and what `as_of`
/// makes of them.
async fn check_as_of(app: &TestApp, path: &str, body: impl Fn(Value, Value) -> Value) {
    let a = id_of(&create(app, path, body(json!("2024-01-01"), json!("2024-12-31"))).await);
    let b = id_of(&create(app, path, body(json!("2025-01-01"), Value::Null)).await);
    let c = id_of(&create(app, path, body(Value::Null, json!("2023-06-30"))).await);
    let cases: [(&str, BTreeSet<String>); 8] = [
        ("2024-06-01", set([a.as_str()])),
        ("2026-01-01", set([b.as_str()])),
        ("2023-01-01", set([c.as_str()])),
        ("2024-01-01", set([a.as_str()])),
        ("2024-12-31", set([a.as_str()])),
        ("2025-01-01", set([b.as_str()])),
        ("2023-06-30", set([c.as_str()])),
        ("2023-07-01", BTreeSet::new()),
    ];
    for (day, expected) in cases {
        let res = app
            .get(&format!("{path}?as_of={day}"))
            .role(Role::Viewer)
            .send()
            .await;
        res.assert_status(200);
        assert_eq!(ids(&res.json()), expected, "{path} as_of={day}");
    }
    let res = app.get(path).role(Role::Viewer).send().await;
    res.assert_status(200);
    assert_eq!(
        ids(&res.json()),
        set([a.as_str(), b.as_str(), c.as_str()]),
        "without as_of, every link"
    );
    app.get(&format!("{path}?as_of=2024-02-30"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(400, "malformed");
}

#[actix_web::test]
async fn as_of_returns_the_links_that_held_that_day() {
    let app = TestApp::spawn().await;
    let goal = goal(&app, 4, "Tech Transfer").await;
    let org = institution(&app, "Bioindustry Park").await;
    check_as_of(&app, &format!("/api/v1/goals/{goal}/partners"), |since, until| {
        json!({"organisation_id": org, "role": "strategic_partner", "since": since, "until": until})
    })
    .await;

    let act = activity(&app, "Tech transfer days").await;
    check_as_of(
        &app,
        &format!("/api/v1/activities/{act}/participants"),
        |since, until| json!({"organisation_id": org, "role": "host", "since": since, "until": until}),
    )
    .await;
}

#[actix_web::test]
async fn partners_propose_and_withdraw_their_own_participation_and_editors_decide() {
    let app = TestApp::spawn().await;
    let partner_user = app.fixtures.users[&Role::Partner];
    let editor = app.fixtures.users[&Role::Editor];
    let own = app.fixtures.partner_org.to_string();
    let other = institution(&app, "Silver Economy Network").await;
    let fair = activity(&app, "Meet in Italy for Life Sciences").await;
    let course = activity(&app, "Executive course in Life Sciences").await;
    let path = format!("/api/v1/activities/{fair}/participants");
    let course_path = format!("/api/v1/activities/{course}/participants");

    // The partner proposes its own organisation: status `proposed`.
    let res = app
        .post(&path)
        .role(Role::Partner)
        .json(&json!({"organisation_id": own, "role": "participant", "since": "2026-10-01"}))
        .send()
        .await;
    res.assert_status(201);
    let proposal = res.json();
    let proposal_id = id_of(&proposal);
    let proposal_item = format!("{path}/{proposal_id}");
    assert_eq!(
        res.header("location").as_deref(),
        Some(proposal_item.as_str())
    );
    assert_eq!(res.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(proposal["status"], "proposed");
    assert_eq!(proposal["activity_id"], fair.as_str());
    assert_eq!(
        proposal["activity"],
        json!({"id": fair, "title": "Meet in Italy for Life Sciences"})
    );
    assert_eq!(proposal["organisation"]["id"], own.as_str());
    assert_eq!(proposal["organisation"]["kind"], "company");

    // It may not confirm itself, nor propose another organisation.
    let res = app
        .post(&path)
        .role(Role::Partner)
        .json(&json!({"organisation_id": own, "role": "sponsor", "status": "confirmed"}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .post(&path)
        .role(Role::Partner)
        .json(&json!({"organisation_id": other, "role": "participant"}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    assert_eq!(app.count("activity_participants"), 1);

    // Nor confirm, or change role or dates, by PATCH (with a current If-Match).
    for patch in [
        json!({"status": "confirmed"}),
        json!({"status": "declined"}),
        json!({"role": "lead"}),
        json!({"since": "2026-09-01"}),
        json!({"until": "2026-10-03"}),
        json!({"status": "withdrawn", "note": "and a note"}),
    ] {
        let res = app
            .patch(&proposal_item)
            .role(Role::Partner)
            .header("If-Match", "\"1\"")
            .merge_patch(&patch)
            .send()
            .await;
        res.assert_problem(403, "forbidden");
    }
    app.delete(&proposal_item)
        .role(Role::Partner)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_problem(403, "forbidden");
    let current = app.get(&proposal_item).role(Role::Partner).send().await;
    current.assert_status(200);
    assert_eq!(current.json()["status"], "proposed");
    assert_eq!(current.json()["version"], 1);

    // A second proposal, in the course; the list filters by status.
    let res = app
        .post(&course_path)
        .role(Role::Partner)
        .json(&json!({"organisation_id": own, "role": "participant"}))
        .send()
        .await;
    res.assert_status(201);
    let course_proposal = id_of(&res.json());
    let res = app
        .post(&path)
        .role(Role::Partner)
        .json(&json!({"organisation_id": own, "role": "sponsor"}))
        .send()
        .await;
    res.assert_status(201);
    let sponsorship = id_of(&res.json());

    // An editor's participation without status is confirmed.
    let res = app
        .post(&path)
        .role(Role::Editor)
        .json(&json!({"organisation_id": other, "role": "lead"}))
        .send()
        .await;
    res.assert_status(201);
    let others = res.json();
    assert_eq!(others["status"], "confirmed");
    let others_item = format!("{path}/{}", id_of(&others));

    let res = app
        .get(&format!("{path}?status=proposed"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(
        ids(&res.json()),
        set([proposal_id.as_str(), sponsorship.as_str()])
    );
    let res = app
        .get(&format!("{path}?status=confirmed"))
        .role(Role::Partner)
        .send()
        .await;
    assert_eq!(ids(&res.json()), set([id_of(&others).as_str()]));
    app.get(&format!("{path}?status=maybe"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(400, "malformed");

    // The partner may not touch another organisation's participation, even with a good ETag.
    for patch in [json!({"status": "withdrawn"}), json!({"note": "ours now"})] {
        app.patch(&others_item)
            .role(Role::Partner)
            .header("If-Match", "\"1\"")
            .merge_patch(&patch)
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    app.delete(&others_item)
        .role(Role::Partner)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.get(&others_item)
        .role(Role::Partner)
        .send()
        .await
        .assert_status(200);

    // Viewers write nothing.
    app.post(&path)
        .role(Role::Viewer)
        .json(&json!({"organisation_id": own, "role": "participant", "since": "2030-01-01"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.patch(&proposal_item)
        .role(Role::Viewer)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"status": "withdrawn"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.delete(&proposal_item)
        .role(Role::Viewer)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_problem(403, "forbidden");

    // The editor confirms one proposal and declines another.
    let res = app
        .patch(&proposal_item)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"status": "confirmed"}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["status"], "confirmed");
    assert_eq!(res.json()["version"], 2);
    let res = app
        .patch(&format!("{path}/{sponsorship}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .merge_patch(&json!({"status": "declined"}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["status"], "declined");

    // The partner withdraws its proposal in the course, under If-Match.
    let course_item = format!("{course_path}/{course_proposal}");
    app.patch(&course_item)
        .role(Role::Partner)
        .merge_patch(&json!({"status": "withdrawn"}))
        .send()
        .await
        .assert_problem(428, "precondition_required");
    app.patch(&course_item)
        .role(Role::Partner)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"status": "withdrawn"}))
        .send()
        .await
        .assert_problem(412, "precondition_failed");
    let res = app
        .patch(&course_item)
        .role(Role::Partner)
        .header("If-Match", "\"1\"")
        .json(&json!({"status": "withdrawn"}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["status"], "withdrawn");
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    // And withdraws the confirmed one at the fair too.
    let res = app
        .patch(&proposal_item)
        .role(Role::Partner)
        .header("If-Match", "\"2\"")
        .merge_patch(&json!({"status": "withdrawn"}))
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["status"], "withdrawn");
    assert_eq!(res.json()["role"], "participant");
    assert_eq!(res.json()["since"], "2026-10-01");

    // Every change audited, by whoever made it.
    let events = |id: &str, actor: Uuid, action: &str, condition: &str| {
        app.count(&format!(
            "audit_events WHERE entity = 'activity_participant' AND entity_id = '{id}' \
             AND actor_id = '{actor}' AND action = '{action}' AND {condition}"
        ))
    };
    assert_eq!(
        events(
            &proposal_id,
            partner_user,
            "create",
            "changes->'after'->>'status' = 'proposed' AND changes->'before' = 'null'::jsonb"
        ),
        1
    );
    assert_eq!(
        events(
            &proposal_id,
            editor,
            "update",
            "changes->'before'->>'status' = 'proposed' AND changes->'after'->>'status' = 'confirmed'"
        ),
        1
    );
    assert_eq!(
        events(
            &proposal_id,
            partner_user,
            "update",
            "changes->'before'->>'status' = 'confirmed' AND changes->'after'->>'status' = 'withdrawn'"
        ),
        1
    );
    assert_eq!(
        events(
            &sponsorship,
            editor,
            "update",
            "changes->'after'->>'status' = 'declined'"
        ),
        1
    );
    assert_eq!(
        events(
            &course_proposal,
            partner_user,
            "update",
            "changes->'after'->>'status' = 'withdrawn'"
        ),
        1
    );
    assert_eq!(
        events(
            &id_of(&others),
            editor,
            "create",
            "changes->'after'->>'status' = 'confirmed'"
        ),
        1
    );
    // 4 creates, 4 status changes; nothing refused left a trace.
    assert_eq!(
        app.count("audit_events WHERE entity = 'activity_participant'"),
        8
    );

    // An editor deletes under If-Match, audited.
    app.delete(&others_item)
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    app.get(&others_item)
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        events(
            &id_of(&others),
            editor,
            "delete",
            "changes->'after' = 'null'::jsonb"
        ),
        1
    );
}

/// Creates a link as an editor and returns its id.
async fn link(app: &TestApp, path: String, body: Value) -> String {
    id_of(&create(app, &path, body).await)
}

/// An organisation's engagements as a viewer reads them, with the ids of both lists.
async fn engagements_of(
    app: &TestApp,
    org: &str,
    query: &str,
) -> (Value, BTreeSet<String>, BTreeSet<String>) {
    let res = app
        .get(&format!("/api/v1/organisations/{org}/engagements{query}"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    let body = res.json();
    let of = |list: &str| -> BTreeSet<String> {
        body[list]
            .as_array()
            .unwrap_or_else(|| panic!("no {list}: {body}"))
            .iter()
            .map(id_of)
            .collect()
    };
    let (partnerships, participations) = (of("goal_partnerships"), of("participations"));
    (body, partnerships, participations)
}

#[actix_web::test]
async fn engagements_list_every_goal_and_activity_of_an_organisation() {
    let app = TestApp::spawn().await;
    let org = institution(&app, "Lombardia Life Sciences Cluster").await;
    let bystander = institution(&app, "Confindustria Lombardia").await;
    let g1 = goal(&app, 1, "Competitiveness and internationalization").await;
    let g2 = goal(&app, 2, "Services and advocacy").await;
    let g3 = goal(&app, 3, "Research").await;
    let a1 = activity(&app, "Meet in Italy for Life Sciences").await;
    let a2 = activity(&app, "Observatory of the Life Sciences").await;

    let partner =
        |goal: &str, body: Value| link(&app, format!("/api/v1/goals/{goal}/partners"), body);
    let p1 = partner(
        &g1,
        json!({"organisation_id": org, "role": "strategic_partner", "since": "2024-01-01", "until": "2024-12-31"}),
    )
    .await;
    let p2 = partner(
        &g2,
        json!({"organisation_id": org, "role": "other", "since": "2025-01-01", "note": "advocacy desk"}),
    )
    .await;
    let p3 = partner(
        &g3,
        json!({"organisation_id": org, "role": "strategic_partner"}),
    )
    .await;
    partner(
        &g1,
        json!({"organisation_id": bystander, "role": "strategic_partner"}),
    )
    .await;
    let participate =
        |act: &str, body: Value| link(&app, format!("/api/v1/activities/{act}/participants"), body);
    let q1 = participate(
        &a1,
        json!({"organisation_id": org, "role": "lead", "since": "2024-03-01", "until": "2024-03-31"}),
    )
    .await;
    let q2 = participate(
        &a2,
        json!({"organisation_id": org, "role": "sponsor", "status": "proposed"}),
    )
    .await;
    participate(&a2, json!({"organisation_id": bystander, "role": "host"})).await;

    let engagements = |query: &'static str| engagements_of(&app, &org, query);

    // Every goal and activity, with roles, dates and titles; nobody else's.
    let (body, partnerships, participations) = engagements("").await;
    assert_eq!(body["organisation_id"], org.as_str());
    assert_eq!(partnerships, set([p1.as_str(), p2.as_str(), p3.as_str()]));
    assert_eq!(participations, set([q1.as_str(), q2.as_str()]));
    let find = |list: &Value, id: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {list}"))
    };
    let gp1 = find(&body["goal_partnerships"], &p1);
    assert_eq!(gp1["goal_id"], g1.as_str());
    assert_eq!(gp1["role"], "strategic_partner");
    assert_eq!(gp1["since"], "2024-01-01");
    assert_eq!(gp1["until"], "2024-12-31");
    assert_eq!(
        gp1["goal"]["title"],
        "Competitiveness and internationalization"
    );
    let gp2 = find(&body["goal_partnerships"], &p2);
    assert_eq!(gp2["role"], "other");
    assert_eq!(gp2["since"], "2025-01-01");
    assert_eq!(gp2["until"], Value::Null);
    assert_eq!(gp2["note"], "advocacy desk");
    assert_eq!(gp2["goal"]["title"], "Services and advocacy");
    let ap1 = find(&body["participations"], &q1);
    assert_eq!(ap1["activity_id"], a1.as_str());
    assert_eq!(ap1["role"], "lead");
    assert_eq!(ap1["status"], "confirmed");
    assert_eq!(ap1["since"], "2024-03-01");
    assert_eq!(ap1["until"], "2024-03-31");
    assert_eq!(ap1["activity"]["title"], "Meet in Italy for Life Sciences");
    let ap2 = find(&body["participations"], &q2);
    assert_eq!(ap2["role"], "sponsor");
    assert_eq!(ap2["status"], "proposed");
    assert_eq!(ap2["activity"]["title"], "Observatory of the Life Sciences");

    // as_of narrows both lists.
    let (_, partnerships, participations) = engagements("?as_of=2024-03-15").await;
    assert_eq!(partnerships, set([p1.as_str(), p3.as_str()]));
    assert_eq!(participations, set([q1.as_str(), q2.as_str()]));
    let (_, partnerships, participations) = engagements("?as_of=2025-06-01").await;
    assert_eq!(partnerships, set([p2.as_str(), p3.as_str()]));
    assert_eq!(participations, set([q2.as_str()]));

    // Every role may read them.
    for role in [Role::Partner, Role::Viewer, Role::Editor, Role::Admin] {
        let res = app
            .get(&format!("/api/v1/organisations/{org}/engagements"))
            .role(role)
            .send()
            .await;
        res.assert_status(200);
        assert_eq!(res.json()["goal_partnerships"].as_array().unwrap().len(), 3);
    }
    let res = app
        .get(&format!(
            "/api/v1/organisations/{}/engagements",
            app.fixtures.partner_org
        ))
        .role(Role::Partner)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["goal_partnerships"], json!([]));
    assert_eq!(res.json()["participations"], json!([]));

    // An archived goal's partnership disappears.
    app.delete(&format!("/api/v1/goals/{g3}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    let (_, partnerships, participations) = engagements("").await;
    assert_eq!(partnerships, set([p1.as_str(), p2.as_str()]));
    assert_eq!(participations, set([q1.as_str(), q2.as_str()]));
    app.get(&format!("/api/v1/goals/{g3}/partners"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!(
        "/api/v1/organisations/{org}/engagements?as_of=tomorrow"
    ))
    .role(Role::Viewer)
    .send()
    .await
    .assert_problem(400, "malformed");

    // An organisation that does not exist: 404.
    app.get(&format!(
        "/api/v1/organisations/{}/engagements",
        Uuid::now_v7()
    ))
    .role(Role::Viewer)
    .send()
    .await
    .assert_problem(404, "not_found");
}

/// A page of every item of a list path (following `next_cursor`).
async fn all(app: &TestApp, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut url = path.to_owned();
    loop {
        let res = app.get(&url).role(Role::Viewer).send().await;
        res.assert_status(200);
        let page = res.json();
        items.extend(
            page["data"]
                .as_array()
                .unwrap_or_else(|| panic!("{page}"))
                .iter()
                .cloned(),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                url = format!("{path}{sep}cursor={cursor}");
            }
            None => return items,
        }
    }
}

/// The brochure's goals as the data file holds them.
fn brochure_goals() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/brochure.json"))
        .expect("data/brochure.json");
    let data: Value = serde_json::from_str(&text).expect("brochure.json parses");
    data["goals"].as_array().expect("goals").clone()
}

fn seed(app: &TestApp) {
    let loaded = lshub::seed::brochure::load(&mut app.conn(), &lshub::http::resources::Pipeline)
        .expect("load organisations");
    lshub::seed::brochure::load_strategy(
        &mut app.conn(),
        &lshub::http::resources::Pipeline,
        &loaded.ids,
    )
    .expect("load strategy");
}

#[actix_web::test]
async fn the_brochure_yields_eight_goals_with_their_activities_and_partners_once() {
    let app = TestApp::spawn().await;
    let loaded = lshub::seed::brochure::load(&mut app.conn(), &lshub::http::resources::Pipeline)
        .expect("load organisations");
    let first = lshub::seed::brochure::load_strategy(
        &mut app.conn(),
        &lshub::http::resources::Pipeline,
        &loaded.ids,
    )
    .expect("load strategy");

    let titles = [
        "Competitiveness and internationalization",
        "Services and advocacy",
        "Research",
        "Tech Transfer",
        "Education",
        "Human Technopole",
        "Venture Capital",
        "Community",
    ];
    let activity_counts = [4, 4, 3, 3, 4, 2, 3, 4];
    let file = brochure_goals();
    assert_eq!(file.len(), 8, "the data file lists the eight goals");
    assert_eq!(first.goals, 8);
    assert_eq!(first.activities, activity_counts.iter().sum::<usize>());
    assert_eq!(first.links, first.activities);

    let goals = all(&app, "/api/v1/goals").await;
    let codes: Vec<i64> = goals.iter().map(|g| g["code"].as_i64().unwrap()).collect();
    assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8]);
    for (i, goal) in goals.iter().enumerate() {
        let listed = &file[i];
        assert_eq!(goal["title"], titles[i]);
        assert_eq!(goal["title"], listed["title"]);
        assert!(
            !goal["lines_of_action"].as_array().unwrap().is_empty(),
            "goal {} has no lines of action",
            i + 1
        );
        assert!(
            !goal["areas"].as_array().unwrap().is_empty(),
            "goal {} has no areas",
            i + 1
        );
        // Its primary activities are exactly those the brochure lists under it.
        let id = id_of(goal);
        let primary = all(&app, &format!("/api/v1/goals/{id}/activities?role=primary")).await;
        let served: BTreeSet<String> = primary
            .iter()
            .map(|l| l["activity"]["title"].as_str().unwrap().to_owned())
            .collect();
        let listed_titles: BTreeSet<String> = listed["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(primary.len(), activity_counts[i], "goal {}", i + 1);
        assert_eq!(
            listed_titles.len(),
            activity_counts[i],
            "goal {} in the file",
            i + 1
        );
        assert_eq!(served, listed_titles, "goal {}", i + 1);
        // Every partner named under it links once per organisation.
        let partners = all(&app, &format!("/api/v1/goals/{id}/partners")).await;
        assert!(!partners.is_empty(), "goal {} has no partners", i + 1);
        let orgs: BTreeSet<&str> = partners
            .iter()
            .map(|p| p["organisation_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            orgs.len(),
            partners.len(),
            "goal {}: a partner twice",
            i + 1
        );
    }

    // Education: the Region of Lombardia once, its Education Department as the note.
    let education = goals.iter().find(|g| g["title"] == "Education").unwrap();
    let partners = all(
        &app,
        &format!("/api/v1/goals/{}/partners", id_of(education)),
    )
    .await;
    let region: Vec<&Value> = partners
        .iter()
        .filter(|p| p["organisation"]["name"] == "Region of Lombardia")
        .collect();
    assert_eq!(region.len(), 1, "{partners:?}");
    assert_eq!(region[0]["note"], "Education Department");
    assert_eq!(region[0]["role"], "strategic_partner");
    assert!(
        !education["unlisted_partners"]
            .as_array()
            .unwrap()
            .is_empty(),
        "Lombardia Universities and Research Institutes is a category"
    );
    // Venture Capital names its investment funds only as a category.
    let vc = &goals[6];
    assert_eq!(vc["title"], "Venture Capital");
    assert!(
        !vc["unlisted_partners"].as_array().unwrap().is_empty(),
        "{vc}"
    );

    // Seeding again creates nothing.
    let tables = [
        "goals",
        "activities",
        "goal_activity_links",
        "goal_partners",
        "organisations",
        "audit_events",
    ];
    let before: Vec<i64> = tables.iter().map(|t| app.count(t)).collect();
    let loaded = lshub::seed::brochure::load(&mut app.conn(), &lshub::http::resources::Pipeline)
        .expect("load organisations again");
    let second = lshub::seed::brochure::load_strategy(
        &mut app.conn(),
        &lshub::http::resources::Pipeline,
        &loaded.ids,
    )
    .expect("load strategy again");
    assert_eq!(
        (
            second.goals,
            second.activities,
            second.links,
            second.partners
        ),
        (0, 0, 0, 0)
    );
    let after: Vec<i64> = tables.iter().map(|t| app.count(t)).collect();
    assert_eq!(after, before, "{tables:?}");
}

#[actix_web::test]
async fn a_goals_activities_and_their_goals_agree_after_the_seed() {
    let app = TestApp::spawn().await;
    seed(&app);
    let goals = all(&app, "/api/v1/goals").await;
    let goal = goals.iter().find(|g| g["code"] == 1).expect("goal 1");
    let goal_id = id_of(goal);

    let from_goal = all(&app, &format!("/api/v1/goals/{goal_id}/activities")).await;
    assert!(!from_goal.is_empty());
    let mut from_activities = Vec::new();
    for link in &from_goal {
        assert_eq!(link["goal_id"], goal_id.as_str());
        assert_eq!(link["goal"]["code"], 1);
        let activity = link["activity_id"].as_str().unwrap();
        let goals_of = all(&app, &format!("/api/v1/activities/{activity}/goals")).await;
        assert_eq!(
            goals_of.iter().filter(|l| l["role"] == "primary").count(),
            1,
            "one primary goal per activity"
        );
        from_activities.extend(
            goals_of
                .into_iter()
                .filter(|l| l["goal_id"] == goal_id.as_str()),
        );
    }
    let key = |l: &Value| {
        (
            id_of(l),
            l["goal_id"].as_str().unwrap().to_owned(),
            l["activity_id"].as_str().unwrap().to_owned(),
            l["role"].as_str().unwrap().to_owned(),
            l["version"].as_i64().unwrap(),
        )
    };
    let a: BTreeSet<_> = from_goal.iter().map(key).collect();
    let b: BTreeSet<_> = from_activities.iter().map(key).collect();
    assert_eq!(a.len(), from_goal.len());
    assert_eq!(a, b);
    // And the links list says the same.
    let listed = all(
        &app,
        &format!("/api/v1/goal-activity-links?goal_id={goal_id}"),
    )
    .await;
    let c: BTreeSet<_> = listed.iter().map(key).collect();
    assert_eq!(a, c);
}

/// Goal partners and participants each take their own filters: a goal partner's `role` is
/// one of its kind's, and only participants have a `status` (elsewhere an unknown parameter,
/// 400 like any other). The OpenAPI document says the same.
#[actix_web::test]
async fn each_kind_of_dated_link_lists_by_its_own_role_and_status() {
    let app = TestApp::spawn().await;
    let goal = goal(&app, 4, "Education").await;
    let course = activity(&app, "Course").await;
    let org = institution(&app, "Fondazione Cariplo").await;
    let partners = format!("/api/v1/goals/{goal}/partners");
    let participants = format!("/api/v1/activities/{course}/participants");
    create(
        &app,
        &partners,
        json!({"organisation_id": org, "role": "other"}),
    )
    .await;
    create(
        &app,
        &participants,
        json!({"organisation_id": org, "role": "sponsor"}),
    )
    .await;

    let list = |path: String| {
        let app = &app;
        async move { app.get(&path).role(Role::Viewer).send().await }
    };
    for (query, found) in [
        ("role=other", 1),
        ("role=strategic_partner", 0),
        ("as_of=2020-01-01", 1),
    ] {
        let res = list(format!("{partners}?{query}")).await;
        res.assert_status(200);
        assert_eq!(ids(&res.json()).len(), found, "{query}");
    }
    for query in [
        "role=sponsor",
        "role=",
        "status=proposed",
        "status=confirmed",
    ] {
        list(format!("{partners}?{query}"))
            .await
            .assert_problem(400, "malformed");
    }
    for (query, found) in [
        ("role=sponsor", 1),
        ("role=lead", 0),
        ("status=confirmed", 1),
        ("status=proposed", 0),
        ("role=sponsor&status=confirmed", 1),
    ] {
        let res = list(format!("{participants}?{query}")).await;
        res.assert_status(200);
        assert_eq!(ids(&res.json()).len(), found, "{query}");
    }
    for query in ["role=other", "role=strategic_partner", "status=maybe"] {
        list(format!("{participants}?{query}"))
            .await
            .assert_problem(400, "malformed");
    }
    for path in [&partners, &participants] {
        assert_field_error(
            &list(format!("{path}?limit=0"))
                .await
                .assert_problem(422, "validation"),
            "/limit",
            "out_of_range",
        );
    }

    let doc: Value = serde_json::from_str(&lshub::openapi::document()).unwrap();
    let params = |path: &str| -> Vec<(String, Value)> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p["schema"].clone()))
            .collect()
    };
    let goal_params = params("/api/v1/goals/{id}/partners");
    let activity_params = params("/api/v1/activities/{id}/participants");
    let role = |ps: &[(String, Value)]| ps.iter().find(|(n, _)| n == "role").unwrap().1.clone();
    assert_eq!(
        role(&goal_params),
        json!({"$ref": "#/components/schemas/GoalPartnerRole"})
    );
    assert_eq!(
        role(&activity_params),
        json!({"$ref": "#/components/schemas/ParticipantRole"})
    );
    assert!(!goal_params.iter().any(|(n, _)| n == "status"));
    assert!(activity_params.iter().any(|(n, _)| n == "status"));
}
