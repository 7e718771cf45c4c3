//! Reads from a real streaming replica: a private primary cluster and a standby made from it
//! with `pg_basebackup`, read by two lshub processes. With the standby's replay paused, what a
//! read returns says where it was read: the primary has the new row, the standby does not yet.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use serde_json::json;

use lshub::domain::Role;

use crate::clusters::Cluster;
use crate::helpers::{build_template, url_on, Fixtures, TestApp};
use crate::metrics::scrape;

/// How stale the standby may be before it is skipped, in this test.
const MAX_LAG: Duration = Duration::from_secs(4);

struct Replication {
    primary: Cluster,
    template: (String, Fixtures),
}

fn replication() -> &'static Replication {
    static STATE: OnceLock<Replication> = OnceLock::new();
    STATE.get_or_init(|| {
        let primary = Cluster::reused("lshub_primary");
        let template = build_template(&primary.admin);
        Replication { primary, template }
    })
}

#[derive(QueryableByName)]
struct Lsn {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
}

fn position(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Lsn>(conn)
        .expect("a WAL position")
        .lsn
}

/// Waits until the standby has replayed everything the primary has written so far.
fn catch_up(primary: &mut PgConnection, standby_url: &str) -> PgConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    let target = position(
        primary,
        "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS lsn",
    );
    loop {
        if let Ok(mut standby) = PgConnection::establish(standby_url) {
            let replayed = position(
                &mut standby,
                "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS lsn",
            );
            if replayed >= target {
                return standby;
            }
        }
        assert!(Instant::now() < deadline, "the standby does not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn replay(standby: &mut PgConnection, verb: &str) {
    diesel::sql_query(format!("SELECT pg_wal_replay_{verb}()"))
        .execute(standby)
        .expect("replay control");
    if verb == "pause" {
        #[derive(QueryableByName)]
        struct Paused {
            #[diesel(sql_type = Bool)]
            paused: bool,
        }
        // `pause` requests; the startup process stops at its next record.
        while !diesel::sql_query("SELECT pg_get_wal_replay_pause_state() = 'paused' AS paused")
            .get_result::<Paused>(standby)
            .expect("pause state")
            .paused
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// GETs read from the standby while it keeps up; a caller reads its own writes (its reads wait
/// for the replay, then go to the primary); a stale standby's answers carry its own ETag, not
/// the primary's; a standby lagging past the bound, or down, is skipped.
#[actix_web::test]
async fn gets_read_from_a_streaming_replica_and_callers_read_their_own_writes() {
    let replication = replication();
    let standby = Cluster::standby_of(&replication.primary, "lshub_standby");
    let standby_admin = standby.admin.clone();
    let reading_the_standby = |s: &mut lshub::config::Settings| {
        let database = url::Url::parse(&s.db.database_url).expect("url").path()[1..].to_owned();
        s.db.read_urls = vec![url_on(&standby_admin, &database)];
        s.db.read_max_lag_ms = u64::try_from(MAX_LAG.as_millis()).expect("ms");
        s.db.read_wait_ms = 300;
    };
    let app = TestApp::spawn_on(
        &replication.primary.admin,
        &replication.template,
        reading_the_standby,
    );
    // A second lshub process over the same primary and standby, as behind a load balancer.
    let other = app.replica(reading_the_standby);
    let standby_url = app
        .database_url()
        .replace(&replication.primary.port, &standby.port);
    let mut primary = app.conn();
    let mut replica = actix_web::rt::task::spawn_blocking({
        let url = standby_url.clone();
        let mut primary = app.conn();
        move || catch_up(&mut primary, &url)
    })
    .await
    .expect("caught up");
    // Both lshub's monitor and its first reads must have seen the standby caught up.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    let list_before = app
        .get("/api/v1/companies")
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200)
        .header("etag")
        .expect("a list ETag");

    // Read there: `/metrics` counts it.
    let metrics = scrape(&app).await;
    let names = metrics.label_values("lshub_read_replica_up", "replica");
    assert_eq!(names.len(), 1, "{names:?}");
    let standby_label = [("replica", names[0].as_str())];
    assert!(!names[0].contains("password"), "{names:?}");
    assert_eq!(metrics.get("lshub_read_replica_up", &standby_label), 1.0);
    assert!(metrics.get("lshub_read_replica_reads_total", &standby_label) >= 1.0);

    replay(&mut replica, "pause");
    let paused_at = Instant::now();
    let created = app
        .post("/api/v1/companies")
        .role(Role::Editor)
        .json(&json!({"name": "Written behind the replay", "sector": "biotech"}))
        .send()
        .await;
    created.assert_status(201);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/companies/{id}");

    // The writer reads its write: the standby has not replayed it, so the primary answers.
    app.get(&path)
        .role(Role::Editor)
        .send()
        .await
        .assert_status(200);
    let own_list = app.get("/api/v1/companies").role(Role::Editor).send().await;
    own_list.assert_status(200);
    assert!(
        own_list.json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "the writer's list lacks its write"
    );

    // Through the other process too: the write's position reached it by `NOTIFY`, within a
    // listener poll.
    actix_web::rt::time::sleep(lshub::db::listener::POLL * 2).await;
    other
        .get(&path)
        .role(Role::Editor)
        .send()
        .await
        .assert_status(200);

    // Another caller, within the lag bound, reads the standby: it has not the company yet,
    // and its list carries the standby's tag (the one from before the write), not a tag of
    // the primary's newer counter.
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(404, "not_found");
    let stale = app.get("/api/v1/companies").role(Role::Viewer).send().await;
    stale.assert_status(200);
    assert!(
        paused_at.elapsed() < MAX_LAG,
        "the test was too slow to judge the lag bound"
    );
    assert_eq!(stale.header("etag").as_deref(), Some(list_before.as_str()));
    assert!(!stale.json()["data"]
        .as_array()
        .expect("data")
        .iter()
        .any(|c| c["id"] == id.as_str()));

    // Past the bound the paused standby is skipped: the primary answers, and a poll with the
    // stale tag gets the new list, not a 304.
    let behind = MAX_LAG.saturating_sub(paused_at.elapsed()) + Duration::from_millis(500);
    actix_web::rt::time::sleep(behind).await;
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    let fresh = app
        .get("/api/v1/companies")
        .role(Role::Viewer)
        .header("If-None-Match", &list_before)
        .send()
        .await;
    fresh.assert_status(200);
    assert_ne!(fresh.header("etag").as_deref(), Some(list_before.as_str()));

    // Replaying again, it answers again, and has the company.
    replay(&mut replica, "resume");
    drop(replica);
    actix_web::rt::task::spawn_blocking({
        let url = standby_url.clone();
        move || drop(catch_up(&mut primary, &url))
    })
    .await
    .expect("caught up");
    // The monitor sees the replay within a poll or two; then the standby answers the read.
    actix_web::rt::time::sleep(lshub::db::replicas::POLL * 3).await;
    let reads = |scrape: &crate::metrics::Scrape| {
        scrape.get("lshub_read_replica_reads_total", &standby_label)
    };
    let before = reads(&scrape(&app).await);
    app.get(&path)
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
    assert_eq!(
        reads(&scrape(&app).await),
        before + 1.0,
        "the caught-up standby answered"
    );

    // Down: stopped, it is skipped, and every read still answers.
    let stopped = std::thread::spawn(move || {
        standby.ctl("stop", &["-m", "fast"]);
        standby
    })
    .join()
    .expect("stopped");
    for _ in 0..10 {
        app.get(&path)
            .role(Role::Viewer)
            .send()
            .await
            .assert_status(200);
        app.get("/api/v1/companies")
            .role(Role::Viewer)
            .send()
            .await
            .assert_status(200);
    }
    let metrics = scrape(&app).await;
    assert_eq!(metrics.get("lshub_read_replica_up", &standby_label), 0.0);
    assert!(metrics.get("lshub_read_replica_fallbacks_total", &[]) >= 20.0);
    stopped.drop_cluster();
}
