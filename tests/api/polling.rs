//! Polls answered from memory: a list's or a record's `If-None-Match` that still matches is
//! 304 without a database round trip, while the change counter, followed by `LISTEN`, moves on
//! every write (this replica's or another's) within one listener poll; and, while the listener
//! is down, answered from the database, never stale and never refused.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use lshub::domain::Role;
use serde_json::json;

use crate::helpers::*;

const LIST: &str = "/api/v1/companies?limit=5";

async fn etag_of(app: &TestApp) -> String {
    etag_at(app, LIST).await
}

async fn etag_at(app: &TestApp, path: &str) -> String {
    let res = app.get(path).role(Role::Viewer).send().await;
    res.assert_status(200);
    res.header("etag").expect("an ETag")
}

/// One poll of `path` with `etag`, as a viewer: its status.
async fn poll(app: &TestApp, path: &str, etag: &str) -> u16 {
    app.get(path)
        .role(Role::Viewer)
        .header("If-None-Match", etag)
        .send()
        .await
        .status
}

/// Polls `app` with `etag` until the list answers 200, within `bound`; its new ETag.
async fn until_changed(app: &TestApp, etag: &str, bound: Duration) -> String {
    until_changed_at(app, LIST, etag, bound).await
}

/// Polls `path` on `app` with `etag` until it answers 200, within `bound`; its new ETag.
async fn until_changed_at(app: &TestApp, path: &str, etag: &str, bound: Duration) -> String {
    let started = Instant::now();
    loop {
        let res = app
            .get(path)
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

/// Holds `tables` locked (ACCESS EXCLUSIVE) until dropped: any read of them waits (until the
/// statement timeout), so requests answered at once read none of them.
struct Locked(diesel::PgConnection);

impl Locked {
    fn tables(app: &TestApp, tables: &str) -> Self {
        let mut conn = app.conn();
        conn.batch_execute(&format!(
            "BEGIN; LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"
        ))
        .unwrap();
        Self(conn)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.batch_execute("ROLLBACK");
    }
}

/// What a company's single-record GET reads, and the revocation check's tables.
const RECORD_TABLES: &str = "organisations, companies, users, api_clients";

/// 20 matching polls of each of `paths`, each 304 with its tag, answered at once.
async fn polls_answered_from_memory(app: &TestApp, paths: &[(&str, &str)]) {
    let started = Instant::now();
    for _ in 0..20 {
        for (path, etag) in paths {
            let res = app
                .get(path)
                .role(Role::Viewer)
                .header("If-None-Match", etag)
                .send()
                .await;
            res.assert_status(304);
            assert_eq!(res.header("etag").as_deref(), Some(*etag), "{path}");
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{} polls took {:?}",
        20 * paths.len(),
        started.elapsed()
    );
}

#[actix_web::test]
async fn a_matching_record_poll_is_answered_without_touching_the_database() {
    let app = TestApp::spawn().await;
    let company = app
        .create_company(json!({"name": "Punto Fermo S.r.l.", "sector": "biotech"}))
        .await;
    let id = company["id"].as_str().unwrap();
    let (own, any) = (
        format!("/api/v1/companies/{id}"),
        format!("/api/v1/organisations/{id}"),
    );
    let (tag_own, tag_any) = (etag_at(&app, &own).await, etag_at(&app, &any).await);
    assert_eq!(
        tag_own,
        format!("\"{}\"", company["version"]),
        "the record's own ETag"
    );
    assert_eq!(tag_own, tag_any);
    let locked = Locked::tables(&app, RECORD_TABLES);
    polls_answered_from_memory(&app, &[(&own, &tag_own), (&any, &tag_any)]).await;
    drop(locked);

    // Who may not see it never gets a 304 from memory: archived, it is 404 to a viewer, and
    // an editor asking for archived records reads them from the database.
    let res = app
        .delete(&own)
        .role(Role::Editor)
        .header("If-Match", &tag_own)
        .send()
        .await;
    res.assert_status(204);
    let archived = res.header("etag").unwrap();
    for path in [&own, &any] {
        let with_archived = format!("{path}?include_archived=true");
        let res = app
            .get(&with_archived)
            .role(Role::Editor)
            .header("If-None-Match", &archived)
            .send()
            .await;
        res.assert_status(304);
        let res = app
            .get(path)
            .role(Role::Viewer)
            .header("If-None-Match", &archived)
            .send()
            .await;
        res.assert_problem(404, "not_found");
        let res = app
            .get(&format!("{path}?include_archived=true"))
            .role(Role::Viewer)
            .header("If-None-Match", &archived)
            .send()
            .await;
        res.assert_problem(403, "forbidden");
        let res = app
            .get(&format!("{path}?include_archived=true"))
            .role(Role::Editor)
            .header("If-None-Match", &archived)
            .send()
            .await;
        res.assert_status(304);
    }
}

#[actix_web::test]
async fn a_record_poll_from_memory_sees_another_replicas_write_within_the_listener_bound() {
    let first = TestApp::spawn().await;
    let second = first.replica(|_| {});
    let company = first
        .create_company(json!({"name": "Due Sedi S.r.l.", "sector": "biotech"}))
        .await;
    let path = format!("/api/v1/companies/{}", company["id"].as_str().unwrap());
    let etag = etag_at(&first, &path).await;
    // Remembered: answered from memory from now on.
    assert_eq!(poll(&first, &path, &etag).await, 304);
    let res = second
        .patch(&path)
        .role(Role::Editor)
        .header("If-Match", &etag)
        .merge_patch(&json!({"employees": 12}))
        .send()
        .await;
    res.assert_status(200);
    let written = res.header("etag").unwrap();
    let moved = until_changed_at(&first, &path, &etag, Duration::from_secs(1)).await;
    assert_eq!(
        moved, written,
        "the first replica serves the second's version"
    );
    assert_eq!(poll(&first, &path, &moved).await, 304);
}

#[actix_web::test]
async fn while_the_listener_is_down_answers_come_from_the_database_never_stale_nor_refused() {
    // Long enough a reconnect delay that everything below runs while the listener is down.
    let reconnect = Duration::from_secs(6);
    let first = TestApp::spawn_with(|s| {
        s.db.listener_reconnect_ms = reconnect.as_millis() as u64;
    })
    .await;
    let second = first.replica(|_| {});
    let company = first
        .create_company(json!({"name": "Senza Ascolto S.r.l.", "sector": "biotech"}))
        .await;
    let record = format!("/api/v1/companies/{}", company["id"].as_str().unwrap());
    let (list_tag, record_tag) = (etag_of(&first).await, etag_at(&first, &record).await);
    first.me_as(Role::Partner).await.assert_status(200);

    first.kill_listeners();
    first.until_following(false, Duration::from_secs(2)).await;
    let down_since = Instant::now();

    // Authenticated requests are answered; unchanged polls are 304 (from the database).
    first.me_as(Role::Viewer).await.assert_status(200);
    assert_eq!(poll(&first, LIST, &list_tag).await, 304);
    assert_eq!(poll(&first, &record, &record_tag).await, 304);

    // Another replica's write is seen by the very next poll, of the list and of the record.
    let res = second
        .patch(&record)
        .role(Role::Editor)
        .header("If-Match", &record_tag)
        .merge_patch(&json!({"employees": 7}))
        .send()
        .await;
    res.assert_status(200);
    let written = res.header("etag").unwrap();
    assert_eq!(poll(&first, LIST, &list_tag).await, 200, "a stale list 304");
    let res = first
        .get(&record)
        .role(Role::Viewer)
        .header("If-None-Match", &record_tag)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.header("etag"), Some(written.clone()), "a stale record");

    // A user disabled meanwhile (no notification is heard) is refused at once.
    first
        .conn()
        .batch_execute(&format!(
            "UPDATE users SET disabled_at = now() WHERE email = '{}'",
            email_for(Role::Partner)
        ))
        .unwrap();
    first
        .me_as(Role::Partner)
        .await
        .assert_problem(401, "unauthorized");

    assert!(
        !first.following(),
        "the listener came back after {:?}: the checks above did not run while it was down",
        down_since.elapsed()
    );

    // Back: the reloaded state answers from memory again.
    first
        .until_following(true, reconnect + Duration::from_secs(5))
        .await;
    first
        .me_as(Role::Partner)
        .await
        .assert_problem(401, "unauthorized");
    let (list_tag, record_tag) = (etag_of(&first).await, etag_at(&first, &record).await);
    assert_eq!(record_tag, written);
    let locked = Locked::tables(&first, &format!("change_counter, {RECORD_TABLES}"));
    polls_answered_from_memory(&first, &[(LIST, &list_tag), (&record, &record_tag)]).await;
    drop(locked);
}
