//! Process and transaction faults, caused for real: a failing audit insert, serialization
//! failures and deadlocks raised by a trigger, many writers racing on one ETag, `kill -9` in a
//! burst of writes and `SIGTERM` with requests in flight (issue 11, DESIGN.md "Every write and
//! its audit event commit in one transaction", "Timeouts everywhere").

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::future::join_all;
use lshub::domain::Role;
use serde_json::{json, Value};

use crate::helpers::*;

const COMPANIES: &str = "/api/v1/companies";

fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("record has an id").to_owned()
}

fn company(name: &str) -> Value {
    json!({"name": name, "sector": "biotech"})
}

/// A record as the database holds it: its version and one field a PATCH changes.
fn stored(app: &TestApp, id: &str) -> (i64, Option<i32>) {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        version: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
        employees: Option<i32>,
    }
    let row: Row = diesel::sql_query(format!(
        "SELECT o.version::bigint AS version, c.employees FROM organisations o \
         JOIN companies c ON c.organisation_id = o.id WHERE o.id = '{id}'"
    ))
    .get_result(&mut app.conn())
    .expect("the record");
    (row.version, row.employees)
}

/// What a write that failed must leave untouched: every organisation and audit row.
fn footprint(app: &TestApp) -> (i64, i64) {
    (app.count("organisations"), app.count("audit_events"))
}

// ---------------------------------------------------------------------------------------------
// A failing audit insert
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_failing_audit_insert_rolls_the_whole_write_back_and_says_nothing_of_why() {
    let app = TestApp::spawn().await;
    let created = app.create_company(company("Audit Mancato S.p.A.")).await;
    let id = id_of(&created);
    let path = format!("{COMPANIES}/{id}");
    app.conn()
        .batch_execute(
            "CREATE FUNCTION fault_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'fault_refuse_audit: injected failure'; END $$; \
             CREATE TRIGGER fault_refuse_audit BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION fault_refuse_audit();",
        )
        .expect("install the trigger");
    let before = footprint(&app);

    let writes = [
        app.patch(&path)
            .role(Role::Editor)
            .header("If-Match", "\"1\"")
            .merge_patch(&json!({"employees": 77, "description": "never stored"})),
        app.delete(&path)
            .role(Role::Editor)
            .header("If-Match", "\"1\""),
        app.post(COMPANIES)
            .role(Role::Editor)
            .json(&company("Mai Creata S.r.l.")),
    ];
    for write in writes {
        let res = write.send().await;
        let problem = res.assert_problem(500, "internal");
        let text = String::from_utf8_lossy(&res.body).to_lowercase();
        for leak in [
            "fault_refuse_audit",
            "injected",
            "trigger",
            "audit_events",
            "insert",
            "sqlstate",
            "diesel",
        ] {
            assert!(
                !text.contains(leak),
                "the problem names {leak:?}: {problem}"
            );
        }
    }

    assert_eq!(footprint(&app), before);
    assert_eq!(stored(&app, &id), (1, None));
    let res = app.get(&path).role(Role::Viewer).send().await;
    res.assert_status(200);
    let record = res.json();
    assert_eq!(record["version"], 1);
    assert_eq!(record["archived_at"], Value::Null);
    assert_eq!(record["description"], Value::Null);
    assert_eq!(
        app.count("organisations WHERE name = 'Mai Creata S.r.l.'"),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Serialization failures and deadlocks
// ---------------------------------------------------------------------------------------------

/// Makes every audit insert of this test's database fail with SQLSTATE `code` while fewer
/// than `failures` have failed since the last call. The count is a sequence: `nextval` is
/// not undone by the rollback of the transaction it failed, as a counter row would be.
fn contend(app: &TestApp, code: &str, failures: i64) {
    app.conn()
        .batch_execute(&format!(
            "CREATE SEQUENCE IF NOT EXISTS fault_contentions; \
             ALTER SEQUENCE fault_contentions RESTART; \
             CREATE OR REPLACE FUNCTION fault_contend() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF nextval('fault_contentions') <= {failures} THEN \
                 RAISE EXCEPTION 'fault_contend: injected' USING ERRCODE = '{code}'; \
               END IF; \
               RETURN NEW; \
             END $$; \
             CREATE OR REPLACE TRIGGER fault_contend BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION fault_contend();"
        ))
        .expect("install the trigger");
}

/// How many audit inserts the trigger of [`contend`] has seen since it was installed.
fn contended(app: &TestApp) -> i64 {
    #[derive(QueryableByName)]
    struct Seq {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        last_value: i64,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        is_called: bool,
    }
    let seq: Seq = diesel::sql_query("SELECT last_value, is_called FROM fault_contentions")
        .get_result(&mut app.conn())
        .expect("the counter");
    if seq.is_called {
        seq.last_value
    } else {
        0
    }
}

#[track_caller]
fn assert_unavailable(res: &TestResponse) {
    res.assert_problem(503, "unavailable");
    let wait: u64 = res
        .header("retry-after")
        .expect("a 503 says when to retry")
        .parse()
        .expect("Retry-After in seconds");
    assert!(wait >= 1, "{res:?}");
}

/// A write that meets `code` is tried again; while it meets it on every attempt, the answer
/// is 503 with `Retry-After` and nothing is written; one attempt fewer, and it is written once.
async fn contention_is_retried_then_unavailable(code: &str) {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_company(company("Contesa S.p.A.")).await);
    let path = format!("{COMPANIES}/{id}");
    let patch = |version: i64, employees: i64| {
        app.patch(&path)
            .role(Role::Editor)
            .header("If-Match", &format!("\"{version}\""))
            .merge_patch(&json!({"employees": employees}))
    };
    let create = |name: &str| app.post(COMPANIES).role(Role::Editor).json(&company(name));

    // Failing for ever: the server gives up after its attempts, and that count is measured
    // rather than assumed.
    contend(&app, code, i64::MAX);
    let before = footprint(&app);
    assert_unavailable(&patch(1, 10).send().await);
    let attempts = contended(&app);
    assert!(attempts > 1, "{code} was not retried ({attempts} attempt)");
    assert_unavailable(&create("Mai Scritta S.r.l.").send().await);
    assert_eq!(contended(&app), 2 * attempts, "a create tries as often");
    assert_eq!(footprint(&app), before);
    assert_eq!(stored(&app, &id), (1, None));

    // Failing on all but the last attempt: written once.
    contend(&app, code, attempts - 1);
    let res = patch(1, 20).send().await;
    res.assert_status(200);
    assert_eq!(res.json()["version"], 2);
    assert_eq!(stored(&app, &id), (2, Some(20)));
    assert_eq!(contended(&app), attempts);
    contend(&app, code, attempts - 1);
    create("Scritta Al Quarto S.r.l.")
        .send()
        .await
        .assert_status(201);
    assert_eq!(
        app.count("organisations WHERE name = 'Scritta Al Quarto S.r.l.'"),
        1
    );
    assert_eq!(footprint(&app), (before.0 + 1, before.1 + 2));
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{id}' AND action = 'update'"
        )),
        1
    );

    // Failing on exactly every attempt: 503 again, and the record stays at its version.
    contend(&app, code, attempts);
    assert_unavailable(&patch(2, 30).send().await);
    assert_eq!(stored(&app, &id), (2, Some(20)));
    assert_eq!(footprint(&app), (before.0 + 1, before.1 + 2));
}

#[actix_web::test]
async fn serialization_failures_are_retried_then_answered_503_never_500() {
    contention_is_retried_then_unavailable("40001").await;
}

#[actix_web::test]
async fn deadlocks_are_retried_then_answered_503_never_500() {
    contention_is_retried_then_unavailable("40P01").await;
}

// ---------------------------------------------------------------------------------------------
// Lost updates
// ---------------------------------------------------------------------------------------------

/// PATCHes sent at once, all with `If-Match: "1"`.
const RACERS: i64 = 50;

/// Sends [`RACERS`] PATCHes of `body(i)` to `path` at once, all with the ETag of version 1:
/// exactly one wins (version 2, its body stored, audited once), every other is 412.
async fn one_etag_lets_exactly_one_win(
    app: &TestApp,
    path: &str,
    entity: &str,
    body: impl Fn(i64) -> Value,
) -> Value {
    let id = path.rsplit('/').next().expect("an id").to_owned();
    let bodies: Vec<Value> = (0..RACERS).map(&body).collect();
    let responses = join_all(bodies.iter().map(|b| {
        app.patch(path)
            .role(Role::Editor)
            .header("If-Match", "\"1\"")
            .merge_patch(b)
            .send()
    }))
    .await;

    let winners: Vec<(&TestResponse, &Value)> = responses
        .iter()
        .zip(&bodies)
        .filter(|(res, _)| res.status == 200)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one PATCH wins: {responses:?}");
    for res in responses.iter().filter(|r| r.status != 200) {
        res.assert_problem(412, "precondition_failed");
    }
    let (res, sent) = winners[0];
    assert_eq!(res.header("etag").as_deref(), Some("\"2\""));
    let record = res.json();
    assert_eq!(record["version"], 2);
    for (member, value) in sent.as_object().expect("an object body") {
        assert_eq!(&record[member], value, "{record}");
    }

    // No lost update: what is read back is the winner's, audited once.
    let read = app.get(path).role(Role::Viewer).send().await;
    read.assert_status(200);
    assert_eq!(read.json(), record);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity = '{entity}' AND entity_id = '{id}' AND action = 'update'"
        )),
        1
    );
    record
}

#[actix_web::test]
async fn concurrent_patches_of_a_record_with_one_etag_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_company(company("Race Condition S.r.l.")).await);
    let record = one_etag_lets_exactly_one_win(
        &app,
        &format!("{COMPANIES}/{id}"),
        "company",
        |i| json!({"employees": 100 + i}),
    )
    .await;
    let employees = record["employees"]
        .as_i64()
        .and_then(|e| i32::try_from(e).ok());
    assert_eq!(stored(&app, &id), (2, employees));
}

#[actix_web::test]
async fn concurrent_patches_of_a_link_with_one_etag_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let editor = |path: &'static str, body: Value| {
        let app = &app;
        async move {
            let res = app.post(path).role(Role::Editor).json(&body).send().await;
            res.assert_status(201);
            id_of(&res.json())
        }
    };
    let goal = editor("/api/v1/goals", json!({"code": 5, "title": "Gara"})).await;
    let org = editor(
        "/api/v1/partners",
        json!({"name": "Cluster In Gara", "partner_type": "cluster", "scope": "regional"}),
    )
    .await;
    let res = app
        .post(&format!("/api/v1/goals/{goal}/partners"))
        .role(Role::Editor)
        .json(&json!({"organisation_id": org, "role": "strategic_partner", "since": "2024-01-01"}))
        .send()
        .await;
    res.assert_status(201);
    let link = id_of(&res.json());
    one_etag_lets_exactly_one_win(
        &app,
        &format!("/api/v1/goals/{goal}/partners/{link}"),
        "goal_partner",
        |i| json!({"note": format!("racer {i}"), "until": format!("2030-01-{:02}", 1 + i % 28)}),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// kill -9 during a burst of writes
// ---------------------------------------------------------------------------------------------

/// Concurrent writers in the burst.
const WRITERS: usize = 8;
/// Acknowledged writes after which the process is killed (or after [`BURST_BOUND`]).
const KILL_AFTER: usize = 48;
const BURST_BOUND: Duration = Duration::from_secs(30);

/// A write the client was told succeeded.
#[derive(Debug, Clone)]
struct Ack {
    id: String,
    action: &'static str,
    version: i64,
    /// The `employees` it set (a PATCH) or the name it created.
    what: Value,
}

/// A create sent under an `Idempotency-Key` that got no answer: the client would retry it.
#[derive(Debug, Clone)]
struct Unanswered {
    key: String,
    name: String,
}

/// What the writers of a burst were told, and what they were not.
#[derive(Default)]
struct Burst {
    acks: RefCell<Vec<Ack>>,
    unanswered: RefCell<Vec<Unanswered>>,
}

/// Writes until the server stops answering: creates under an `Idempotency-Key`, and PATCHes
/// of its own companies at the version it last saw. Anything answered must be a success.
async fn burst_writer(app: &TestApp, address: &str, writer: usize, burst: &Burst) {
    let acks = &burst.acks;
    let mut own: Vec<(String, i64)> = Vec::new();
    for i in 0usize.. {
        if i % 2 == 0 || own.is_empty() {
            let name = format!("Raffica {writer}-{i}");
            let key = format!("burst-{writer}-{i}");
            let Ok(res) = app
                .post(COMPANIES)
                .at(address)
                .role(Role::Editor)
                .header("Idempotency-Key", &key)
                .json(&company(&name))
                .try_send()
                .await
            else {
                burst.unanswered.borrow_mut().push(Unanswered { key, name });
                return;
            };
            res.assert_status(201);
            let id = id_of(&res.json());
            own.push((id.clone(), 1));
            acks.borrow_mut().push(Ack {
                id,
                action: "create",
                version: 1,
                what: json!(name),
            });
        } else {
            let pick = i % own.len();
            let (id, version) = own[pick].clone();
            let employees = i64::try_from(i).expect("small");
            let Ok(res) = app
                .patch(&format!("{COMPANIES}/{id}"))
                .at(address)
                .role(Role::Editor)
                .header("If-Match", &format!("\"{version}\""))
                .merge_patch(&json!({"employees": employees}))
                .try_send()
                .await
            else {
                return;
            };
            res.assert_status(200);
            let version = res.json()["version"].as_i64().expect("a version");
            own[pick].1 = version;
            acks.borrow_mut().push(Ack {
                id,
                action: "update",
                version,
                what: json!(employees),
            });
        }
    }
}

/// Every event of the change feed for `entity`, read page by page from `address`, once it
/// holds as many as `audit_events` does: the feed hands out only what committed below the
/// oldest transaction still open in the whole cluster, which another database's may hold back.
async fn feed(app: &TestApp, address: &str, entity: &str) -> Vec<Value> {
    let written = app.count(&format!("audit_events WHERE entity = '{entity}'"));
    let started = Instant::now();
    loop {
        let mut events: Vec<Value> = Vec::new();
        let mut query = format!("entity={entity}&limit=200");
        loop {
            let res = app
                .get(&format!("/api/v1/changes?{query}"))
                .at(address)
                .role(Role::Viewer)
                .send()
                .await;
            res.assert_status(200);
            let page = res.json();
            let data = page["data"].as_array().expect("a page").clone();
            if data.is_empty() {
                break;
            }
            events.extend(data);
            let cursor = page["next_cursor"].as_str().expect("a cursor");
            query = format!("entity={entity}&limit=200&cursor={cursor}");
        }
        if i64::try_from(events.len()).expect("small") >= written
            || started.elapsed() > Duration::from_secs(30)
        {
            return events;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn kill_9_in_a_burst_of_writes_loses_no_acknowledged_write_and_half_writes_nothing() {
    let app = TestApp::spawn().await;
    let no_limit = [
        ("LSHUB_RATE_LIMIT_PER_MINUTE", "0"),
        ("LSHUB_WEBHOOK_WORKERS", "0"),
    ];
    let mut first = app.serve_binary(&no_limit);
    let address = first.address.clone();
    let burst = Burst::default();
    let writers = join_all((0..WRITERS).map(|w| burst_writer(&app, &address, w, &burst)));
    let killer = async {
        let started = Instant::now();
        while burst.acks.borrow().len() < KILL_AFTER && started.elapsed() < BURST_BOUND {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        // Every writer has a request in flight now.
        first.kill();
    };
    futures_util::future::join(writers, killer).await;
    let acks = burst.acks.into_inner();
    assert!(
        acks.len() >= KILL_AFTER,
        "the burst made only {} writes",
        acks.len()
    );

    // A second's request timeout: a claim the dead process left is taken over at once.
    let second = app.serve_binary(&[no_limit[0], no_limit[1], ("LSHUB_REQUEST_TIMEOUT", "1")]);
    let events = feed(&app, &second.address, "company").await;
    let in_feed = feed_keys(&events);

    // Every acknowledged write is there, audited, in the feed; the record at least as new.
    let mut latest: HashMap<&str, &Ack> = HashMap::new();
    for ack in &acks {
        assert_eq!(
            app.count(&format!(
                "audit_events WHERE entity = 'company' AND entity_id = '{}' \
                 AND action = '{}' AND version = {}",
                ack.id, ack.action, ack.version
            )),
            1,
            "{ack:?} has no audit row"
        );
        assert!(
            in_feed.contains(&(ack.id.clone(), ack.version, ack.action.to_owned())),
            "{ack:?} is not in the change feed"
        );
        let newest = latest.entry(&ack.id).or_insert(ack);
        if ack.version > newest.version {
            *newest = ack;
        }
    }
    for ack in latest.values() {
        let res = app
            .get(&format!("{COMPANIES}/{}", ack.id))
            .at(&second.address)
            .role(Role::Viewer)
            .send()
            .await;
        res.assert_status(200);
        let record = res.json();
        let version = record["version"].as_i64().expect("a version");
        // A writer's next request may have committed unanswered: one version beyond.
        assert!(
            version == ack.version || version == ack.version + 1,
            "{ack:?} but the record is {record}"
        );
        if version == ack.version {
            let member = if ack.action == "create" {
                "name"
            } else {
                "employees"
            };
            assert_eq!(record[member], ack.what, "{ack:?}");
        }
    }

    // Nothing is half-written, before the retries and after them.
    let ours = format!(
        "o.kind = 'company' AND o.id <> '{}'",
        app.fixtures.partner_org
    );
    check_nothing_half_written(&app, &ours, &in_feed);

    // A create left unanswered, retried under its key, is written once: run afresh if it had
    // not committed, replayed (or, killed before its answer was kept, 409 naming its record)
    // if it had.
    for sent in burst.unanswered.into_inner() {
        let committed = app.count(&format!("organisations WHERE name = '{}'", sent.name));
        let started = Instant::now();
        let res = loop {
            let res = app
                .post(COMPANIES)
                .at(&second.address)
                .role(Role::Editor)
                .header("Idempotency-Key", &sent.key)
                .json(&company(&sent.name))
                .send()
                .await;
            let held = res.status == 409
                && res.json()["type"] == "urn:lshub:problem:idempotency_key_in_flight";
            if !held || started.elapsed() > Duration::from_secs(10) {
                break res;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        };
        // Killed between the commit and keeping the answer, the write's own transaction
        // still says it succeeded and where its record is.
        let id = if res.status == 409 {
            let problem = res.assert_problem(409, "idempotency_answer_not_stored");
            assert_eq!(committed, 1, "{sent:?}: {problem}");
            let detail = problem["detail"].as_str().expect("a detail");
            let at = detail.rsplit("/api/v1/companies/").next().expect("a place");
            at.to_owned()
        } else {
            res.assert_status(201);
            id_of(&res.json())
        };
        assert_eq!(
            app.count(&format!("organisations WHERE name = '{}'", sent.name)),
            1
        );
        assert_eq!(
            app.count(&format!(
                "audit_events WHERE entity_id = '{id}' AND action = 'create'"
            )),
            1
        );
    }
    let in_feed = feed_keys(&feed(&app, &second.address, "company").await);
    check_nothing_half_written(&app, &ours, &in_feed);
}

/// The (id, version, action) of each feed event.
fn feed_keys(events: &[Value]) -> HashSet<(String, i64, String)> {
    events
        .iter()
        .map(|e| {
            (
                id_of(e),
                e["version"].as_i64().expect("a version"),
                e["action"].as_str().expect("an action").to_owned(),
            )
        })
        .collect()
}

/// Every company matching `ours` has its detail row, an audit row and a feed event for each
/// of its versions, and every audit row's record exists at that version.
fn check_nothing_half_written(app: &TestApp, ours: &str, in_feed: &HashSet<(String, i64, String)>) {
    assert_eq!(
        app.count(&format!(
            "organisations o WHERE {ours} AND NOT EXISTS \
             (SELECT 1 FROM companies c WHERE c.organisation_id = o.id)"
        )),
        0
    );
    assert_eq!(
        app.count(&format!(
            "organisations o WHERE {ours} AND o.version <> (SELECT count(DISTINCT a.version) \
             FROM audit_events a WHERE a.entity_id = o.id AND a.version BETWEEN 1 AND o.version)"
        )),
        0,
        "a company lacks the audit row of one of its versions"
    );
    assert_eq!(
        app.count(
            "audit_events a WHERE entity = 'company' AND NOT EXISTS (SELECT 1 FROM \
             organisations o WHERE o.id = a.entity_id AND o.version >= a.version)"
        ),
        0,
        "an audit row names a write that is not there"
    );
    assert_eq!(
        i64::try_from(in_feed.len()).expect("small"),
        app.count("audit_events WHERE entity = 'company'"),
        "the feed holds each audit row once"
    );
    #[derive(QueryableByName)]
    struct Record {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        version: i64,
    }
    let records: Vec<Record> = diesel::sql_query(format!(
        "SELECT o.id, o.version::bigint AS version FROM organisations o WHERE {ours}"
    ))
    .load(&mut app.conn())
    .expect("the companies");
    for record in records {
        for version in 1..=record.version {
            let action = if version == 1 { "create" } else { "update" };
            assert!(
                in_feed.contains(&(record.id.to_string(), version, action.to_owned())),
                "{} at version {version} has no feed event",
                record.id
            );
        }
    }
}

/// A create cut off by the whole-request timeout (503, its key released) while its write
/// still waits on a lock must not commit once the lock goes: the client was told it failed,
/// and a retry under the key would run it again.
#[actix_web::test]
async fn a_create_cut_off_by_the_request_timeout_does_not_commit_behind_its_503() {
    // The whole request may take 1 s; a write waits up to 5 s for a lock (statement_timeout
    // 15 s), so the write outlives its request.
    let app = TestApp::spawn_with(|s| s.http.request_timeout_secs = 1).await;
    let before = footprint(&app);
    let mut lock = app.conn();
    lock.batch_execute("BEGIN; LOCK TABLE organisations IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    app.post(COMPANIES)
        .role(Role::Editor)
        .header("Idempotency-Key", "cut-off")
        .json(&company("Troppo Tardi S.r.l."))
        .send()
        .await
        .assert_problem(503, "unavailable");
    let backends = |condition: &str| {
        app.count(&format!(
            "pg_stat_activity WHERE datname = '{}' AND application_name = 'lshub' AND {condition}",
            app.database
        ))
    };
    let started = Instant::now();
    while app.count("idempotency_keys") > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the key is kept"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        backends("wait_event_type = 'Lock'"),
        1,
        "the write still waits"
    );
    lock.batch_execute("COMMIT").expect("unlock");
    while backends("state <> 'idle'") > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the write never ends"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(footprint(&app), before);
    assert_eq!(
        app.count("organisations WHERE name = 'Troppo Tardi S.r.l.'"),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// SIGTERM with requests in flight
// ---------------------------------------------------------------------------------------------

/// Whether a new connection to `address` (`http://host:port`) gets an HTTP answer: refused,
/// reset, closed or left unanswered for a while all count as no.
async fn answers_a_new_connection(address: &str) -> bool {
    let host = address.trim_start_matches("http://");
    let Ok(stream) = actix_web::rt::net::TcpStream::connect(host).await else {
        return false;
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: lshub\r\nConnection: close\r\n\r\n";
    let exchange = async {
        let mut sent = 0;
        while sent < request.len() {
            stream.writable().await?;
            match stream.try_write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        let mut buf = [0u8; 64];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut buf) {
                Ok(n) => return Ok(n > 0),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    };
    matches!(
        actix_web::rt::time::timeout(Duration::from_secs(5), exchange).await,
        Ok(Ok(true))
    )
}

#[actix_web::test]
async fn sigterm_refuses_new_connections_finishes_what_is_in_flight_and_exits_0() {
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for name in [
        "Termine Uno S.p.A.",
        "Termine Due S.p.A.",
        "Termine Tre S.p.A.",
    ] {
        ids.push(id_of(&app.create_company(company(name)).await));
    }
    let mut server = app.serve_binary(&[
        (
            "LSHUB_SHUTDOWN_TIMEOUT",
            &SHUTDOWN_TIMEOUT.as_secs().to_string(),
        ),
        // A lock_timeout of 10 s: the PATCHes wait on the test's lock, not give up on it.
        ("LSHUB_DB_STATEMENT_TIMEOUT", "30"),
        ("LSHUB_WEBHOOK_WORKERS", "0"),
    ]);
    assert!(answers_a_new_connection(&server.address).await);

    // The test holds the rows, so the PATCHes are in flight for as long as it wants.
    let mut holder = app.conn();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM organisations WHERE id IN ('{}') FOR UPDATE",
            ids.join("','")
        ))
        .expect("lock the rows");
    let address = server.address.clone();
    let in_flight = join_all(ids.iter().map(|id| {
        app.patch(&format!("{COMPANIES}/{id}"))
            .at(&address)
            .role(Role::Editor)
            .header("If-Match", "\"1\"")
            .merge_patch(&json!({"employees": 42}))
            .send()
    }));
    let waiting_on_locks = format!(
        "pg_stat_activity WHERE datname = '{}' AND application_name = 'lshub' \
         AND wait_event_type = 'Lock'",
        app.database
    );
    let control = async {
        let started = Instant::now();
        while app.count(&waiting_on_locks) < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no PATCH waits"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        server.signal("TERM");
        let started = Instant::now();
        while answers_a_new_connection(&address).await {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "new connections are still answered after SIGTERM"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        // The PATCHes are still waiting on the lock, so shutdown waits for them.
        assert_eq!(app.count(&waiting_on_locks), 3);
        holder.batch_execute("COMMIT").expect("release the rows");
    };
    let (answers, ()) = futures_util::future::join(in_flight, control).await;

    for res in &answers {
        res.assert_status(200);
        assert_eq!(res.json()["version"], 2);
        assert_eq!(res.json()["employees"], 42);
    }
    let status = server
        .exit_within(SHUTDOWN_TIMEOUT)
        .await
        .expect("the process exits within the shutdown timeout");
    assert!(status.success(), "{status:?}");
    assert!(!answers_a_new_connection(&address).await);
    for id in &ids {
        assert_eq!(stored(&app, id), (2, Some(42)));
    }
}
