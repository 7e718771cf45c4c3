//! The test harness: a fresh database per test cloned from a migrated template, the real
//! server on a free port, and a small request builder.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::OnceLock;

use actix_web::http::Method;
use awc::http::header::HeaderMap;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use lshub::app::AppState;
use lshub::auth::PrincipalKind;
use lshub::config::{AuthSettings, DbSettings, HttpSettings, Secret, Settings};
use lshub::domain::Role;
use serde_json::Value;
use uuid::Uuid;

/// The password of every pre-made user in the template.
pub const PASSWORD: &str = "correct horse battery staple";
/// The signing key tests run with.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
/// Bumped whenever the template's contents change beyond the migrations.
const TEMPLATE_REVISION: &str = "3";

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@localhost:5432/postgres".into())
}

/// `database` on the server `admin` names.
pub fn url_on(admin: &str, database: &str) -> String {
    let mut url = url::Url::parse(admin).expect("an admin URL is a URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// The template's name: a digest of the migrations and the revision, so a change rebuilds it.
fn template_name() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut entries: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for dir in entries {
        for file in ["up.sql", "down.sql"] {
            if let Ok(text) = std::fs::read(dir.join(file)) {
                hasher.update(&text);
            }
        }
    }
    hasher.update(TEMPLATE_REVISION);
    format!("lshub_test_tpl_{}", &hex::encode(hasher.finalize())[..16])
}

/// Pre-made users, one per role, and the partner's organisation.
#[derive(Debug, Clone)]
pub struct Fixtures {
    pub users: HashMap<Role, Uuid>,
    pub partner_org: Uuid,
}

pub fn email_for(role: Role) -> String {
    format!("{}@test.lshub.example", role.as_str())
}

/// The template on TEST_DATABASE_URL's server, made once per process.
fn template() -> &'static (String, Fixtures) {
    static TEMPLATE: OnceLock<(String, Fixtures)> = OnceLock::new();
    TEMPLATE.get_or_init(|| build_template(&admin_url()))
}

/// Creates the template on the server `admin_url` names once per machine state (under an
/// advisory lock, so parallel test processes agree), migrated and holding one user per role.
pub fn build_template(admin_url: &str) -> (String, Fixtures) {
    let url_for = |database: &str| url_on(admin_url, database);
    {
        let name = template_name();
        let mut admin = PgConnection::establish(admin_url).expect("connect to the admin URL");
        admin
            .batch_execute("SELECT pg_advisory_lock(7345123)")
            .expect("lock");
        #[derive(QueryableByName)]
        struct Exists {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let exists: Exists =
            diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
                .bind::<Text, _>(&name)
                .get_result(&mut admin)
                .expect("query pg_database");
        if exists.n == 0 {
            let building = format!("{name}_building");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .expect("drop stale template");
            admin
                .batch_execute(&format!("CREATE DATABASE {building}"))
                .expect("create template");
            lshub::db::migrate(&url_for(&building)).expect("migrate template");
            let mut conn = PgConnection::establish(&url_for(&building)).expect("connect template");
            let hash = lshub::auth::password::hash_password(PASSWORD).expect("hash");
            conn.batch_execute(&format!(
                "INSERT INTO organisations (id, kind, name, created_at, updated_at) VALUES \
                   ('{org}', 'company', 'Partner Pharma S.p.A.', now(), now());
                 INSERT INTO companies (organisation_id, sector) VALUES ('{org}', 'pharmaceutical');",
                org = Uuid::now_v7()
            ))
            .expect("partner organisation");
            for role in Role::ALL {
                let org = if *role == Role::Partner {
                    "(SELECT id FROM organisations LIMIT 1)"
                } else {
                    "NULL"
                };
                conn.batch_execute(&format!(
                    "INSERT INTO users (id, email, password_hash, role, organisation_id, created_at, updated_at) \
                     VALUES ('{}', '{}', '{hash}', '{}', {org}, now(), now())",
                    Uuid::now_v7(),
                    email_for(*role),
                    role.as_str()
                ))
                .expect("user");
            }
            drop(conn);
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .expect("rename template");
        }
        let mut conn = PgConnection::establish(&url_for(&name)).expect("connect template");
        #[derive(QueryableByName)]
        struct U {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: Uuid,
            #[diesel(sql_type = Text)]
            role: String,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
            organisation_id: Option<Uuid>,
        }
        let rows: Vec<U> = diesel::sql_query("SELECT id, role, organisation_id FROM users")
            .load(&mut conn)
            .expect("users");
        drop(conn);
        admin
            .batch_execute("SELECT pg_advisory_unlock(7345123)")
            .expect("unlock");
        let partner_org = rows
            .iter()
            .find_map(|u| u.organisation_id)
            .expect("partner org");
        let users = rows
            .into_iter()
            .map(|u| (u.role.parse().expect("role"), u.id))
            .collect();
        (name, Fixtures { users, partner_org })
    }
}

/// A running service on its own database.
pub struct TestApp {
    pub address: String,
    pub database: String,
    /// The maintenance URL of the server the database lives on.
    pub admin: String,
    pub fixtures: Fixtures,
    pub state: AppState,
    client: awc::Client,
    server: actix_web::dev::ServerHandle,
    /// Whether dropping this app drops its database (a replica shares another's).
    owns_database: bool,
}

/// An answer, fully read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_owned())
    }

    /// Asserts the status and, for errors, that the body is a problem of `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(body["type"], format!("urn:lshub:problem:{code}"), "{body}");
        assert_eq!(body["status"], status);
        assert!(
            body["request_id"].is_string(),
            "problem without request_id: {body}"
        );
        assert_eq!(
            Some(body["request_id"].as_str().unwrap_or_default().to_owned()),
            self.header("x-request-id")
        );
        body
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

impl TestApp {
    /// A new database cloned from the template and the real server on a free port.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`spawn`], with settings adjusted first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(&admin_url(), template(), adjust)
    }

    /// Like [`spawn_with`], on another PostgreSQL server holding `template`.
    pub fn spawn_on(
        admin_url: &str,
        (template, fixtures): &(String, Fixtures),
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let database = format!("lshub_test_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::establish(admin_url).expect("connect");
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {database} TEMPLATE {template} STRATEGY = FILE_COPY"
            ))
            .expect("clone template");
        Self::serve(
            admin_url.to_owned(),
            database,
            fixtures.clone(),
            true,
            adjust,
        )
    }

    /// Another server over this app's database, as a second replica behind a load balancer
    /// would be, with its own settings (and its own memory).
    pub fn replica(&self, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::serve(
            self.admin.clone(),
            self.database.clone(),
            self.fixtures.clone(),
            false,
            adjust,
        )
    }

    fn serve(
        admin: String,
        database: String,
        fixtures: Fixtures,
        owns_database: bool,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings {
            db: DbSettings {
                pool_size: 4,
                ..DbSettings::for_url(url_on(&admin, &database))
            },
            auth: AuthSettings {
                jwt_secret: Some(Secret::new(JWT_SECRET)),
                jwt_previous_secret: None,
                jwt_issuer: "lshub".into(),
                jwt_audience: "lshub-api".into(),
                access_token_ttl: 900,
                refresh_token_ttl: 3600,
                set_password_token_ttl: 259_200,
                password_hash_concurrency: 2,
            },
            http: HttpSettings {
                workers: Some(1),
                ..HttpSettings::default()
            },
        };
        adjust(&mut settings);
        let state = AppState::new(&settings).expect("state");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("addr"));
        let server = lshub::app::server(listener, state.clone(), &settings.http).expect("server");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let client = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .finish();
        Self {
            address,
            database,
            admin,
            fixtures,
            state,
            client,
            server: handle,
            owns_database,
        }
    }

    /// An access token for the pre-made user of `role`, signed by the service's own key.
    pub fn token(&self, role: Role) -> String {
        let org = (role == Role::Partner).then_some(self.fixtures.partner_org);
        self.state
            .tokens
            .issue(self.fixtures.users[&role], PrincipalKind::User, role, org)
            .expect("token")
            .token
    }

    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            app: self,
            method,
            base: self.address.clone(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.request(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Req<'_> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Req<'_> {
        self.request(Method::DELETE, path)
    }

    /// This test's database URL.
    pub fn database_url(&self) -> String {
        url_on(&self.admin, &self.database)
    }

    /// A direct connection to this test's database, for assertions on what it holds.
    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.database_url()).expect("connect test database")
    }

    /// `SELECT count(*) FROM <from_where>`.
    pub fn count(&self, from_where: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let row: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {from_where}"))
            .get_result(&mut self.conn())
            .expect("count");
        row.n
    }

    /// `lshub serve` as a process of its own over this app's database, with `env` on top of
    /// what it needs: for the faults only a real process has (SIGKILL, SIGTERM). It signs
    /// with the tests' key, so [`Self::token`] works against it.
    pub fn serve_binary(&self, env: &[(&str, &str)]) -> Binary {
        Binary::start(&self.database_url(), env)
    }

    /// Whether this app's listener follows the database now: its change counter and its
    /// revocation set are known (both are forgotten together when the connection drops).
    pub fn following(&self) -> bool {
        self.state.changes.current().is_some() && self.state.revocations.known()
    }

    /// Waits until [`Self::following`] is `want`, for at most `bound`.
    pub async fn until_following(&self, want: bool, bound: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.following() != want {
            assert!(
                started.elapsed() < bound,
                "the listener is still {} after {bound:?}",
                if want { "down" } else { "up" }
            );
            actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Ends every listener connection of this database (this app's and its replicas'), as a
    /// network fault or a restarted PostgreSQL would.
    pub fn kill_listeners(&self) {
        self.conn()
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'lshub-listener' AND datname = current_database()",
            )
            .expect("terminate the listeners");
    }

    /// `GET /api/v1/me` with the token of `role`'s pre-made user.
    pub async fn me_as(&self, role: Role) -> TestResponse {
        self.get("/api/v1/me").role(role).send().await
    }

    /// Creates a company as an editor and returns its JSON.
    pub async fn create_company(&self, body: Value) -> Value {
        let res = self
            .post("/api/v1/companies")
            .role(Role::Editor)
            .json(&body)
            .send()
            .await;
        res.assert_status(201);
        res.json()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.server.stop(false));
        if !self.owns_database {
            return;
        }
        if let Ok(mut admin) = PgConnection::establish(&self.admin) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ));
        }
    }
}

/// A request being built.
pub struct Req<'a> {
    app: &'a TestApp,
    method: Method,
    /// The server it goes to: the app's own, or another process over its database.
    base: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Req<'_> {
    /// Sends it to the server at `address` (e.g. a [`Binary`]) instead of the app's own.
    pub fn at(mut self, address: &str) -> Self {
        address.clone_into(&mut self.base);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn role(self, role: Role) -> Self {
        let token = self.app.token(role);
        self.bearer(&token)
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(serde_json::to_vec(body).expect("json"));
        self.header("Content-Type", "application/json")
    }

    pub fn merge_patch(mut self, body: &Value) -> Self {
        self.body = Some(serde_json::to_vec(body).expect("json"));
        self.header("Content-Type", "application/merge-patch+json")
    }

    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        self.body = Some(s.finish().into_bytes());
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self.header("Content-Type", content_type)
    }

    pub async fn send(self) -> TestResponse {
        self.try_send().await.expect("request failed")
    }

    /// Sends it, and says why when no whole answer came back (refused, reset, cut short):
    /// what a client of a server that dies sees.
    pub async fn try_send(self) -> Result<TestResponse, String> {
        let url = format!("{}{}", self.base, self.path);
        let mut req = self.app.client.request(self.method, url);
        for (k, v) in &self.headers {
            req = req.insert_header((k.as_str(), v.as_str()));
        }
        let mut res = match self.body {
            Some(body) => req.send_body(body).await,
            None => req.send().await,
        }
        .map_err(|e| format!("request failed: {e}"))?;
        let body = res
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?
            .to_vec();
        Ok(TestResponse {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
        })
    }
}

/// A running `lshub serve` process (see [`TestApp::serve_binary`]); killed when dropped.
pub struct Binary {
    /// Where it listens, `http://127.0.0.1:<port>`.
    pub address: String,
    child: std::process::Child,
    /// Every JSON line it has logged so far.
    logged: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Binary {
    fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lshub"));
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("LSHUB_JWT_SECRET", JWT_SECRET)
            .env("LSHUB_BIND", "127.0.0.1:0")
            .env("LSHUB_LOG_FORMAT", "json")
            // Only the line naming the port the system chose, and what went wrong.
            .env("RUST_LOG", "warn,lshub::commands=info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start lshub");
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, address) = std::sync::mpsc::channel();
        let logged = std::sync::Arc::<std::sync::Mutex<Vec<Value>>>::default();
        let log = std::sync::Arc::clone(&logged);
        // Drains the log for the process's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let parsed = serde_json::from_str::<Value>(&line).ok();
                if let Some(parsed) = &parsed {
                    log.lock().expect("log").push(parsed.clone());
                }
                let listening = parsed
                    .filter(|l| l["message"] == "lshub listening")
                    .and_then(|l| l["address"].as_str().map(str::to_owned));
                match listening {
                    Some(address) => drop(found.send(address)),
                    None => eprintln!("lshub: {line}"),
                }
            }
        });
        let address = address
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("lshub did not start listening: {:?}", child.try_wait()));
        Self {
            address: format!("http://{address}"),
            child,
            logged,
        }
    }

    /// The JSON lines it has logged so far.
    pub fn logged(&self) -> Vec<Value> {
        self.logged.lock().expect("log").clone()
    }

    /// The process id, for `kill`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (`kill -9`): no shutdown of any kind.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// Sends `signal` (a name `kill` knows, e.g. `TERM`).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// How the process ended, if it did within `bound`.
    pub async fn exit_within(
        &mut self,
        bound: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if started.elapsed() > bound {
                return None;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            drop(self.child.kill());
            drop(self.child.wait());
        }
    }
}

/// Asserts `errors[]` has an entry at `field` with `code` and a message.
#[track_caller]
pub fn assert_field_error(problem: &Value, field: &str, code: &str) {
    let errors = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors[]: {problem}"));
    let entry = errors
        .iter()
        .find(|e| e["field"] == field)
        .unwrap_or_else(|| panic!("no error at {field}: {problem}"));
    assert_eq!(entry["code"], code, "wrong code at {field}: {problem}");
    assert!(
        entry["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{problem}"
    );
}

/// The names of a page's rows, in order.
pub fn names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}
