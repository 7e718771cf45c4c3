//! Database outages caused for real on a private PostgreSQL cluster: restarted, stopped, and
//! hung (every process SIGSTOPped); and how the pool connects and heals. The cluster is this
//! module's own (`pg_createcluster`, on a port of its own) so the rest of the suite keeps its
//! server; the tests take turns on it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;

use lshub::domain::Role;

use crate::clusters::Cluster;
use crate::helpers::{build_template, Fixtures, TestApp, TestResponse};

const CLUSTER: &str = "lshub_outages";

/// The private cluster and its migrated template.
struct Outages {
    cluster: Cluster,
    template: (String, Fixtures),
}

fn outages() -> &'static Outages {
    static STATE: OnceLock<Outages> = OnceLock::new();
    STATE.get_or_init(|| {
        let cluster = Cluster::reused(CLUSTER);
        let template = build_template(&cluster.admin);
        Outages { cluster, template }
    })
}

fn cluster() -> &'static Cluster {
    &outages().cluster
}

/// The tests of this module take turns: each stops or freezes the one cluster.
async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

async fn blocking(f: impl FnOnce() + Send + 'static) {
    actix_web::rt::task::spawn_blocking(f)
        .await
        .expect("blocking task");
}

fn spawn(adjust: impl FnOnce(&mut lshub::config::Settings)) -> TestApp {
    let outages = outages();
    TestApp::spawn_on(&outages.cluster.admin, &outages.template, adjust)
}

/// Opens `n` connections in the app's own pool (held at once, then given back idle), and
/// proves the app serves through them.
async fn warm(app: &TestApp, n: u32) {
    let pool = app.state.pool.clone();
    blocking(move || {
        let held: Vec<_> = (0..n).map(|_| pool.get().expect("checkout")).collect();
        drop(held);
    })
    .await;
    // (The app's own background loops may hold one of them at this moment.)
    assert_eq!(app.state.pool.state().connections, n);
    app.get("/api/v1/companies")
        .role(Role::Viewer)
        .send()
        .await
        .assert_status(200);
}

/// 50 requests in a row, reads and writes, each of which must succeed.
async fn fifty_in_a_row(app: &TestApp, round: &str) {
    for i in 0..50 {
        let res: TestResponse = if i % 2 == 0 {
            app.get("/api/v1/companies").role(Role::Viewer).send().await
        } else {
            app.post("/api/v1/companies")
                .role(Role::Editor)
                .json(&json!({"name": format!("Healed {round} {i}"), "sector": "biotech"}))
                .send()
                .await
        };
        assert!(
            (200..300).contains(&res.status),
            "{round}: request {i} answered {}: {}",
            res.status,
            String::from_utf8_lossy(&res.body)
        );
    }
}

/// Restart with the pool warm: no request fails once PostgreSQL answers again. Once with the
/// idle check (every connection sat idle through the restart), once with it out of reach, so
/// only the retry on a fresh connection heals.
#[actix_web::test]
async fn after_a_restart_no_request_fails() {
    let _turn = turn().await;
    let _heal = Heal(cluster());
    for (round, idle_check_ms) in [("idle check", 1000), ("retry alone", 3_600_000)] {
        let app = spawn(|s| {
            s.db.pool_size = 4;
            s.db.idle_check_ms = idle_check_ms;
            // The delivery loops would otherwise draw the dead connections before the
            // requests do, and the requests would prove nothing.
            s.http.webhooks.poll_ms = 3_600_000;
        });
        warm(&app, 4).await;
        blocking(|| {
            cluster().ctl("restart", &["-m", "fast"]);
        })
        .await;
        fifty_in_a_row(&app, round).await;
        assert_eq!(app.count("organisations WHERE name LIKE 'Healed %'"), 25);
    }
}

/// Stopped: 503 with `Retry-After` within the checkout timeout, `/healthz` still 200, and back
/// without a restart of lshub once PostgreSQL starts.
#[actix_web::test]
async fn a_stopped_database_is_503_and_service_returns_when_it_starts() {
    let _turn = turn().await;
    let app = spawn(|s| {
        s.db.pool_size = 4;
        s.db.checkout_timeout_secs = 1;
    });
    warm(&app, 4).await;
    blocking(|| {
        cluster().ctl("stop", &["-m", "fast"]);
    })
    .await;
    let heal = Heal(cluster());
    {
        for path in ["/api/v1/companies", "/api/v1/organisations", "/readyz"] {
            let started = Instant::now();
            let res = app.get(path).role(Role::Viewer).send().await;
            res.assert_problem(503, "unavailable");
            assert!(
                res.header("retry-after").is_some(),
                "{path}: no Retry-After"
            );
            // The checkout timeout (1 s) plus libpq's connect attempt, not the request timeout.
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{path} took {:?}",
                started.elapsed()
            );
        }
        let write = app
            .post("/api/v1/companies")
            .role(Role::Editor)
            .json(&json!({"name": "Written while down", "sector": "biotech"}))
            .send()
            .await;
        write.assert_problem(503, "unavailable");
        app.get("/healthz").send().await.assert_status(200);
    }
    blocking(|| {
        cluster().ensure_online();
    })
    .await;
    drop(heal);
    fifty_in_a_row(&app, "after start").await;
    assert_eq!(
        app.count("organisations WHERE name = 'Written while down'"),
        0
    );
}

/// Hung (postmaster and every backend SIGSTOPped): requests answer within the request timeout
/// however many arrive, the blocking pool keeps serving (only the pool's few connections can
/// be stuck in the database, the rest give up at checkout: wave after wave answers in time, and
/// a scrape's bounded database read too), `/healthz` stays 200, and service resumes after
/// SIGCONT.
#[actix_web::test]
async fn a_hung_database_costs_requests_their_timeout_and_nothing_more() {
    let _turn = turn().await;
    let cluster = cluster();
    let app = spawn(|s| {
        s.db.pool_size = 3;
        s.db.checkout_timeout_secs = 1;
        s.http.request_timeout_secs = 2;
    });
    warm(&app, 3).await;
    cluster.signal_all("STOP");
    let resumed = Heal(cluster);

    // Three waves of twenty, more than the pool and the checkout queue hold at once.
    for wave in 0..3 {
        let started = Instant::now();
        let calls = (0..20).map(|i| {
            if i % 4 == 3 {
                app.post("/api/v1/companies")
                    .role(Role::Editor)
                    .json(&json!({"name": format!("Hung {wave} {i}"), "sector": "biotech"}))
                    .send()
            } else {
                app.get("/api/v1/companies").role(Role::Viewer).send()
            }
        });
        for res in futures_util::future::join_all(calls).await {
            res.assert_problem(503, "unavailable");
            assert!(res.header("retry-after").is_some());
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "wave {wave} took {:?} against a 2 s request timeout",
            started.elapsed()
        );
        let health = Instant::now();
        app.get("/healthz").send().await.assert_status(200);
        assert!(health.elapsed() < Duration::from_secs(1));
        // A scrape still answers, in its own bound, saying it could not read the database.
        let scrape = Instant::now();
        let metrics = app.get("/metrics").send().await;
        metrics.assert_status(200);
        assert!(
            String::from_utf8_lossy(&metrics.body).contains("lshub_feed_lag_read_ok 0"),
            "the scrape claims it read the hung database"
        );
        assert!(scrape.elapsed() < Duration::from_secs(3));
    }

    drop(resumed);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = app.get("/api/v1/companies").role(Role::Viewer).send().await;
        if res.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after SIGCONT: {}",
            res.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    fifty_in_a_row(&app, "after SIGCONT").await;
}

/// Brings the cluster back (thawed and started) when dropped, so a failing assertion cannot
/// leave it down or frozen for the next test.
struct Heal(&'static Cluster);

impl Drop for Heal {
    fn drop(&mut self) {
        self.0.signal_all("CONT");
        self.0.ensure_online();
    }
}

/// The retry on a fresh connection, alone (a pool of the server's own making, with nothing
/// else drawing from it and the idle check out of reach): a read whose pooled connection had
/// been terminated runs again and succeeds; a closure whose first statement could have
/// written runs once and fails.
#[actix_web::test]
async fn a_pooled_connection_found_dead_is_retried_once_and_only_when_nothing_ran() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    let app = TestApp::spawn().await;
    let pool = lshub::db::build_pool(
        &lshub::config::DbSettings {
            pool_size: 1,
            idle_check_ms: 3_600_000,
            ..lshub::config::DbSettings::for_url(app.database_url())
        },
        Box::new(diesel::r2d2::NopEventHandler),
    );
    let backend = |pool: &lshub::db::PgPool| {
        let pool = pool.clone();
        async move {
            lshub::db::run(&pool, |conn| {
                #[derive(QueryableByName)]
                struct Pid {
                    #[diesel(sql_type = diesel::sql_types::Integer)]
                    pid: i32,
                }
                let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
                    .get_result(conn)
                    .map_err(lshub::error::ApiError::from)?;
                Ok(row.pid)
            })
            .await
            .expect("read")
        }
    };
    let terminate = |pid: i32| {
        app.conn()
            .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
            .expect("terminate");
        // The backend is gone once pg_stat_activity no longer lists it.
        while app.count(&format!("pg_stat_activity WHERE pid = {pid}")) > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    let first = backend(&pool).await;
    terminate(first);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let second = lshub::db::run(&pool, move |conn| {
        counted.fetch_add(1, Ordering::SeqCst);
        conn.batch_execute("SELECT 1")
            .map_err(lshub::error::ApiError::from)
    })
    .await;
    assert!(second.is_ok(), "the read was not retried: {second:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "ran once on the dead connection, once on a fresh one"
    );
    assert_ne!(backend(&pool).await, first);

    // A first statement that could have written is not run again: its outcome is unknown.
    let pid = backend(&pool).await;
    terminate(pid);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let write = lshub::db::run(&pool, move |conn| {
        counted.fetch_add(1, Ordering::SeqCst);
        conn.batch_execute("CREATE TEMPORARY TABLE retried (x int)")
            .map_err(lshub::error::ApiError::from)
    })
    .await;
    assert!(write.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // ... and the dead connection was not given out again.
    assert_ne!(backend(&pool).await, pid);
}

/// The pool's connections to a loopback server carry no TLS (libpq would otherwise prefer it),
/// and the URL's own `sslmode` still wins.
#[actix_web::test]
async fn loopback_connections_go_without_tls_unless_the_url_asks() {
    use diesel::prelude::*;

    let app = TestApp::spawn().await;
    let ssl_of = |url: String| async move {
        let pool = lshub::db::build_pool(
            &lshub::config::DbSettings::for_url(url),
            Box::new(diesel::r2d2::NopEventHandler),
        );
        lshub::db::run(&pool, |conn| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
            ))
            .get_result::<bool>(conn)
            .map_err(lshub::error::ApiError::from)
        })
        .await
        .expect("read pg_stat_ssl")
    };
    // By address: libpq's `prefer` would put TLS on this one (the server offers it here).
    let url = app.database_url().replacen("@localhost", "@127.0.0.1", 1);
    assert!(!ssl_of(url.clone()).await, "TLS on a loopback connection");
    let server_offers_tls = {
        let mut conn = app.conn();
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "current_setting('ssl')::bool",
        ))
        .get_result::<bool>(&mut conn)
        .expect("ssl setting")
    };
    if server_offers_tls {
        let sep = if url.contains('?') { '&' } else { '?' };
        assert!(ssl_of(format!("{url}{sep}sslmode=require")).await);
    }
}
