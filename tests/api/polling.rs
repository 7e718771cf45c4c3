//! Polls answered from memory: a list's `If-None-Match` that still matches is 304 without a
//! database round trip, while the change counter, followed by `LISTEN`, moves on every write
//! (this replica's or another's) within one listener poll.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use lshub::domain::Role;
use serde_json::json;

use crate::helpers::*;

const LIST: &str = "/api/v1/companies?limit=5";

async fn etag_of(app: &TestApp) -> String {
    let res = app.get(LIST).role(Role::Viewer).send().await;
    res.assert_status(200);
    res.header("etag").expect("an ETag")
}

/// Polls `app` with `etag` until the list answers 200, within `bound`; its new ETag.
async fn until_changed(app: &TestApp, etag: &str, bound: Duration) -> String {
    let started = Instant::now();
    loop {
        let res = app
            .get(LIST)
            .role(Role::Viewer)
            .header("If-None-Match", etag)
            .send()
            .await;
        match res.status {
            200 => return res.header("etag").expect("an ETag"),
            304 => {}
            other => panic!("a poll answered {other}"),
        }
        assert!(
            started.elapsed() < bound,
            "still 304 after {:?}",
            started.elapsed()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_matching_poll_is_answered_without_touching_the_database() {
    let app = TestApp::spawn().await;
    let etag = etag_of(&app).await;
    // Any read of the counter now waits for this lock (until the statement timeout): a poll
    // that is answered at once did not read it.
    let mut holder = app.conn();
    holder
        .batch_execute("BEGIN; LOCK TABLE change_counter IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let res = app
            .get(LIST)
            .role(Role::Viewer)
            .header("If-None-Match", &etag)
            .send()
            .await;
        res.assert_status(304);
        assert_eq!(res.header("etag").as_deref(), Some(etag.as_str()));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "20 polls took {:?}",
        started.elapsed()
    );
    holder.batch_execute("ROLLBACK").unwrap();
}

#[actix_web::test]
async fn a_write_moves_the_etag_of_this_replica_and_of_another_within_a_second() {
    let first = TestApp::spawn().await;
    let second = first.replica(|_| {});
    let (etag_first, etag_second) = (etag_of(&first).await, etag_of(&second).await);
    assert_eq!(etag_first, etag_second, "replicas agree on a list's ETag");

    // A write through the second process.
    second
        .create_company(json!({"name": "Scritta Altrove S.r.l.", "sector": "biotech"}))
        .await;
    let bound = Duration::from_secs(1);
    let moved_first = until_changed(&first, &etag_first, bound).await;
    let moved_second = until_changed(&second, &etag_second, bound).await;
    assert_ne!(moved_first, etag_first);
    assert_eq!(moved_first, moved_second, "and agree again after it");

    // And one through the first.
    first
        .create_company(json!({"name": "Scritta Qui S.r.l.", "sector": "biotech"}))
        .await;
    let again = until_changed(&second, &moved_second, bound).await;
    assert_ne!(again, moved_second);
    let res = second
        .get(LIST)
        .role(Role::Viewer)
        .header("If-None-Match", &again)
        .send()
        .await;
    res.assert_status(304);
}
