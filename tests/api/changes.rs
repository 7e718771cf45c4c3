//! The change feed: `/api/v1/changes`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use lshub::domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// One event as the feed serves it: `(entity, id, action, version)`.
type Event = (String, String, String, Option<i64>);

fn events(page: &Value) -> Vec<Event> {
    page["data"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|e| {
            (
                e["entity"].as_str().expect("entity").to_owned(),
                e["id"].as_str().expect("id").to_owned(),
                e["action"].as_str().expect("action").to_owned(),
                e["version"].as_i64(),
            )
        })
        .collect()
}

fn ev(entity: &str, id: &str, action: &str, version: i64) -> Event {
    (entity.into(), id.into(), action.into(), Some(version))
}

/// One page of the feed after `cursor` (with `query`), as a viewer: its events and its cursor.
async fn page(app: &TestApp, query: &str, cursor: Option<&str>) -> (Vec<Event>, String) {
    let mut path = format!("/api/v1/changes?{query}");
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    let res = app.get(&path).role(Role::Viewer).send().await;
    res.assert_status(200);
    let body = res.json();
    let next = body["next_cursor"]
        .as_str()
        .expect("next_cursor is never null")
        .to_owned();
    assert!(
        res.header("link")
            .is_some_and(|l| l.contains("rel=\"next\"")),
        "every page links to where to go on"
    );
    (events(&body), next)
}

/// Committed events the fence still holds back. The fence is the oldest transaction in flight
/// on the whole server, other tests' included, so it lags a moment behind the last commit.
fn held_back(app: &TestApp) -> i64 {
    app.count("audit_events WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
}

/// Waits until the fence has passed every committed change.
async fn settle(app: &TestApp) {
    for _ in 0..500 {
        if held_back(app) == 0 {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fence never passed the committed changes");
}

/// Reads the feed from `cursor` until a page comes back empty.
async fn read_now(app: &TestApp, query: &str, cursor: Option<String>) -> (Vec<Event>, String) {
    let mut all = Vec::new();
    let mut cursor = cursor;
    loop {
        let (got, next) = page(app, &format!("limit=7&{query}"), cursor.as_deref()).await;
        cursor = Some(next);
        if got.is_empty() {
            return (all, cursor.unwrap_or_default());
        }
        all.extend(got);
    }
}

/// Reads the feed from `cursor` until it has every change committed so far: an empty page
/// once the fence has passed them all.
async fn drain(app: &TestApp, query: &str, cursor: Option<String>) -> (Vec<Event>, String) {
    let mut all = Vec::new();
    let mut cursor = cursor;
    for _ in 0..500 {
        let passed = held_back(app) == 0;
        let (got, next) = read_now(app, query, cursor).await;
        cursor = Some(next);
        all.extend(got);
        if passed {
            return (all, cursor.unwrap_or_default());
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fence never passed the committed changes");
}

async fn create(app: &TestApp, path: &str, body: Value) -> String {
    let res = app.post(path).role(Role::Editor).json(&body).send().await;
    res.assert_status(201);
    res.json()["id"].as_str().expect("id").to_owned()
}

async fn patch(app: &TestApp, path: &str, version: i64, body: Value) {
    app.patch(path)
        .role(Role::Editor)
        .header("If-Match", &format!("\"{version}\""))
        .merge_patch(&body)
        .send()
        .await
        .assert_status(200);
}

async fn delete(app: &TestApp, path: &str, version: i64) {
    app.delete(path)
        .role(Role::Editor)
        .header("If-Match", &format!("\"{version}\""))
        .send()
        .await
        .assert_status(204);
}

async fn restore(app: &TestApp, path: &str, version: i64) {
    app.post(&format!("{path}/restore"))
        .role(Role::Editor)
        .header("If-Match", &format!("\"{version}\""))
        .send()
        .await
        .assert_status(200);
}

fn only<'a>(all: &'a [Event], ids: &[&str]) -> Vec<&'a Event> {
    all.iter().filter(|e| ids.contains(&e.1.as_str())).collect()
}

#[actix_web::test]
async fn the_feed_lists_creates_updates_archives_restores_and_link_changes_in_order() {
    let app = TestApp::spawn().await;
    let company = create(
        &app,
        "/api/v1/companies",
        json!({"name": "Fed S.p.A.", "sector": "biotech"}),
    )
    .await;
    let path = format!("/api/v1/companies/{company}");
    patch(&app, &path, 1, json!({"description": "Now described"})).await;
    delete(&app, &path, 2).await;
    restore(&app, &path, 3).await;
    let goal = create(
        &app,
        "/api/v1/goals",
        json!({"code": 3, "title": "A fed goal"}),
    )
    .await;
    let activity = create(
        &app,
        "/api/v1/activities",
        json!({"title": "A fed activity"}),
    )
    .await;
    let link = create(
        &app,
        "/api/v1/goal-activity-links",
        json!({"goal_id": goal, "activity_id": activity, "role": "primary"}),
    )
    .await;
    let link_path = format!("/api/v1/goal-activity-links/{link}");
    patch(&app, &link_path, 1, json!({"note": "noted"})).await;
    delete(&app, &link_path, 2).await;

    let (all, _) = drain(&app, "", None).await;
    assert_eq!(
        only(&all, &[&company, &goal, &activity, &link]),
        [
            &ev("company", &company, "create", 1),
            &ev("company", &company, "update", 2),
            &ev("company", &company, "archive", 3),
            &ev("company", &company, "restore", 4),
            &ev("goal", &goal, "create", 1),
            &ev("activity", &activity, "create", 1),
            &ev("goal_activity_link", &link, "create", 1),
            &ev("goal_activity_link", &link, "update", 2),
            &ev("goal_activity_link", &link, "delete", 2),
        ]
    );
    // Accounts' changes are admin data: a new user is in the audit log, not here.
    app.post("/api/v1/users")
        .role(Role::Admin)
        .json(&json!({"email": "fed@example.org", "role": "viewer"}))
        .send()
        .await
        .assert_status(201);
    assert_eq!(app.count("audit_events WHERE entity = 'user'"), 1);
    let (all, _) = drain(&app, "", None).await;
    assert!(all.iter().all(|e| e.0 != "user" && e.0 != "api_client"));
    // Each event has its number and time.
    let res = app
        .get("/api/v1/changes?limit=1")
        .role(Role::Viewer)
        .send()
        .await;
    let first = &res.json()["data"][0];
    assert!(first["seq"].as_i64().is_some() && first["at"].as_str().is_some());

    // Filters.
    let (goals, _) = drain(&app, "entity=goal", None).await;
    assert_eq!(goals, [ev("goal", &goal, "create", 1)]);
    let (companies, _) = drain(&app, "kind=company", None).await;
    assert!(companies.iter().all(|e| e.0 == "company"));
    assert_eq!(only(&companies, &[&company]).len(), 4);
    let (orgs, _) = drain(&app, "entity=organisation", None).await;
    assert_eq!(only(&orgs, &[&company]).len(), 4);
    assert!(orgs
        .iter()
        .all(|e| ["company", "irccs", "university", "partner"].contains(&e.0.as_str())));
    let (none, _) = drain(&app, "entity=goal&kind=company", None).await;
    assert!(none.is_empty());
    app.get("/api/v1/changes?entity=user")
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(400);
}

#[actix_web::test]
async fn the_cursor_resumes_exactly_is_never_null_and_picks_up_later_writes() {
    let app = TestApp::spawn().await;
    // An empty filtered feed still hands out a cursor, and it sees the first goal.
    let (empty, start) = page(&app, "entity=goal", None).await;
    assert!(empty.is_empty());
    let mut goals = Vec::new();
    for code in 1..=5 {
        goals.push(
            create(
                &app,
                "/api/v1/goals",
                json!({"code": code, "title": format!("Goal {code}")}),
            )
            .await,
        );
    }
    settle(&app).await;
    // Pages of two: 2 + 2 + 1, then an empty page whose cursor is where to poll again.
    let (a, c1) = page(&app, "entity=goal&limit=2", Some(&start)).await;
    let (b, c2) = page(&app, "entity=goal&limit=2", Some(&c1)).await;
    let (c, c3) = page(&app, "entity=goal&limit=2", Some(&c2)).await;
    let (d, c4) = page(&app, "entity=goal&limit=2", Some(&c3)).await;
    let seen: Vec<String> = [a, b, c.clone(), d.clone()]
        .concat()
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(seen, goals);
    assert_eq!(c.len(), 1);
    assert!(d.is_empty());
    // The same cursor again gives the same page: nothing is consumed by reading.
    assert_eq!(
        page(&app, "entity=goal&limit=2", Some(&c1)).await.0.len(),
        2
    );

    // Polled again after a write, the empty page's cursor gives just that write.
    patch(
        &app,
        &format!("/api/v1/goals/{}", goals[0]),
        1,
        json!({"headline": "Later"}),
    )
    .await;
    settle(&app).await;
    let (later, c5) = page(&app, "entity=goal&limit=2", Some(&c4)).await;
    assert_eq!(later, [ev("goal", &goals[0], "update", 2)]);
    assert!(page(&app, "entity=goal&limit=2", Some(&c5))
        .await
        .0
        .is_empty());

    // The Link header carries the query and the next cursor.
    let res = app
        .get(&format!("/api/v1/changes?entity=goal&limit=2&cursor={c5}"))
        .role(Role::Viewer)
        .send()
        .await;
    let link = res.header("link").expect("Link");
    assert!(
        link.starts_with("</api/v1/changes?") && link.contains("entity=goal"),
        "{link}"
    );

    // ETag and 304 as lists, until a write.
    let tag = res.header("etag").expect("ETag");
    assert_eq!(
        res.header("cache-control").as_deref(),
        Some("private, max-age=0, must-revalidate")
    );
    let poll = |tag: String| {
        let app = &app;
        let c5 = c5.clone();
        async move {
            app.get(&format!("/api/v1/changes?entity=goal&limit=2&cursor={c5}"))
                .role(Role::Viewer)
                .header("If-None-Match", &tag)
                .send()
                .await
        }
    };
    poll(tag.clone()).await.assert_status(304);
    patch(
        &app,
        &format!("/api/v1/goals/{}", goals[1]),
        1,
        json!({"headline": "Later"}),
    )
    .await;
    poll(tag).await.assert_status(200);

    // A corrupt cursor, or one issued for other filters, is 400 invalid_cursor.
    for bad in ["garbage", &c5[..c5.len() - 2]] {
        app.get(&format!("/api/v1/changes?cursor={bad}"))
            .role(Role::Viewer)
            .send()
            .await
            .assert_problem(400, "invalid_cursor");
    }
    app.get(&format!("/api/v1/changes?entity=activity&cursor={c5}"))
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(400, "invalid_cursor");
    app.get("/api/v1/changes?limit=201")
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(422);
}

/// The audit rows the feed serves, as `(entity, id, action, version)`, in no particular order.
fn audited(app: &TestApp) -> Vec<Event> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        entity: String,
        #[diesel(sql_type = SqlUuid)]
        entity_id: Uuid,
        #[diesel(sql_type = Text)]
        action: String,
        #[diesel(sql_type = Nullable<BigInt>)]
        version: Option<i64>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT entity, entity_id, action, version FROM audit_events \
          WHERE entity NOT IN ('user', 'api_client')",
    )
    .load(&mut app.conn())
    .expect("audit rows");
    rows.into_iter()
        .map(|r| (r.entity, r.entity_id.to_string(), r.action, r.version))
        .collect()
}

/// Every event read once, and a record's versions only going up along the feed.
fn assert_exactly_once_in_order(app: &TestApp, read: &[Event]) {
    let distinct: HashSet<&Event> = read.iter().collect();
    assert_eq!(distinct.len(), read.len(), "no event repeated");
    let mut expected = audited(app);
    let mut got = read.to_vec();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every committed change, exactly once");
    let mut last: HashMap<&str, i64> = HashMap::new();
    for (_, id, action, version) in read {
        let v = version.expect("a version");
        if let Some(before) = last.insert(id, v) {
            assert!(
                v > before || (action == "delete" && v == before),
                "{id}: version {v} after {before}"
            );
        }
    }
}

/// Opens a transaction on `conn` that updates goal `id` (from version 1) and writes its
/// audit event through the library's one writer, and leaves it open; the event's `seq`.
fn hold_goal_update(conn: &mut PgConnection, id: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Seq {
        #[diesel(sql_type = BigInt)]
        seq: i64,
    }
    let id: Uuid = id.parse().expect("a uuid");
    conn.batch_execute("BEGIN").expect("begin");
    diesel::sql_query("UPDATE goals SET version = version + 1, headline = 'Held' WHERE id = $1")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .expect("update the goal");
    lshub::models::audit::record(
        conn,
        &lshub::models::audit::Actor::system(),
        lshub::domain::AuditAction::Update,
        "goal",
        lshub::models::audit::Event {
            entity_id: id,
            related: Vec::new(),
            version: Some(2),
            changes: json!({"before": {"headline": null}, "after": {"headline": "Held"}}),
        },
    )
    .expect("audit it");
    let row: Seq = diesel::sql_query(
        "SELECT seq FROM audit_events WHERE entity_id = $1 AND action = 'update'",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .expect("its seq");
    row.seq
}

#[actix_web::test]
async fn a_transaction_that_commits_after_later_ones_is_not_skipped() {
    const LATER: i64 = 6;
    let app = TestApp::spawn().await;
    let held_goal = create(
        &app,
        "/api/v1/goals",
        json!({"code": 20, "title": "Held goal"}),
    )
    .await;
    let (before, cursor) = drain(&app, "", None).await;

    // H takes its event's number first and commits last.
    let mut h = app.conn();
    let held_seq = hold_goal_update(&mut h, &held_goal);

    let later = futures_util::future::join_all((1..=LATER).map(|code| {
        create(
            &app,
            "/api/v1/goals",
            json!({"code": code, "title": format!("Later {code}")}),
        )
    }));
    let while_held = async {
        // Most later writes commit while H is open (one that drew H's change-counter shard
        // waits for it, as any writer would).
        let committed = format!(
            "audit_events WHERE entity = 'goal' AND action = 'create' AND seq > {held_seq}"
        );
        for _ in 0..400 {
            if app.count(&committed) >= LATER / 2 {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(app.count(&committed) >= LATER / 2, "later writes committed");
        // A `seq > last` reader would now have read them and passed H's number for good. The
        // feed holds them back behind H: the reader does not move.
        let (got, resumed) = read_now(&app, "", Some(cursor.clone())).await;
        h.batch_execute("COMMIT").expect("commit H");
        (got, resumed)
    };
    let (later, (while_held, held_cursor)) = futures_util::future::join(later, while_held).await;
    assert!(while_held.is_empty(), "{while_held:?}");
    assert_eq!(held_cursor, cursor, "an empty page resumes where it was");

    // Now every change comes once, H's first: it began writing before the others.
    let (after, _) = drain(&app, "", Some(held_cursor)).await;
    assert_eq!(after[0], ev("goal", &held_goal, "update", 2));
    let mut created: Vec<String> = after[1..].iter().map(|e| e.1.clone()).collect();
    let mut expected = later;
    created.sort();
    expected.sort();
    assert_eq!(created, expected);
    assert_exactly_once_in_order(&app, &[before, after].concat());
}

#[actix_web::test]
async fn a_reader_following_concurrent_overlapping_writers_sees_each_change_once() {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 4;
    const HOLDERS: usize = 2;
    let app = TestApp::spawn().await;
    let done = std::rc::Rc::new(std::cell::Cell::new(false));

    // Writers through the API: each creates companies, updates them, archives and restores
    // every other one.
    let writer = |w: usize| {
        let app = &app;
        async move {
            for r in 0..ROUNDS {
                let id = create(
                    app,
                    "/api/v1/companies",
                    json!({"name": format!("Writer {w} round {r}"), "sector": "biotech"}),
                )
                .await;
                let path = format!("/api/v1/companies/{id}");
                patch(app, &path, 1, json!({"employees": r})).await;
                if r % 2 == 0 {
                    delete(app, &path, 2).await;
                    restore(app, &path, 3).await;
                }
            }
        }
    };
    // Transactions held open while the others commit, on threads of their own: each writes
    // its audit event (taking its number) and commits a while later.
    let mut goals = Vec::new();
    for h in 0..HOLDERS * 3 {
        goals.push(
            create(
                &app,
                "/api/v1/goals",
                json!({"code": 10 + h, "title": format!("Held {h}")}),
            )
            .await,
        );
    }
    let holder = |h: usize| {
        let url = app.database_url();
        let goals = goals.clone();
        actix_web::rt::task::spawn_blocking(move || {
            for round in 0..3 {
                let mut conn = PgConnection::establish(&url).expect("connect");
                hold_goal_update(&mut conn, &goals[h * 3 + round]);
                std::thread::sleep(Duration::from_millis(150));
                conn.batch_execute("COMMIT").expect("commit");
            }
        })
    };
    let reader = || {
        let app = &app;
        let done = done.clone();
        async move {
            let mut read = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..2000 {
                let finished = done.get();
                let (got, next) = page(app, "limit=5", cursor.as_deref()).await;
                cursor = Some(next);
                let empty = got.is_empty();
                read.extend(got);
                if empty {
                    if finished
                        && held_back(app) == 0
                        && read.len() as i64
                            >= app.count("audit_events WHERE entity NOT IN ('user', 'api_client')")
                    {
                        return read;
                    }
                    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                }
            }
            panic!("the reader never caught up");
        }
    };
    let writers = async {
        let (_, held) = futures_util::future::join(
            futures_util::future::join_all((0..WRITERS).map(writer)),
            futures_util::future::join_all((0..HOLDERS).map(holder)),
        )
        .await;
        for h in held {
            h.expect("a holder");
        }
        done.set(true);
    };
    let ((), read) = futures_util::future::join(writers, reader()).await;
    assert_eq!(
        app.count("audit_events WHERE entity = 'company' AND action = 'restore'"),
        (WRITERS * ROUNDS / 2) as i64
    );
    assert_eq!(
        app.count("audit_events WHERE entity = 'goal' AND action = 'update'"),
        (HOLDERS * 3) as i64
    );
    assert_exactly_once_in_order(&app, &read);
}
