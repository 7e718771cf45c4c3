//! `Accept: text/csv` on lists (DESIGN.md "Conventions", Lists): every matching row in the
//! list's order, columns as the JSON fields flattened, RFC 4180 with CRLF, errors still
//! problem+json, and the per-process cap on concurrent exports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use lshub::domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const COMPANIES: &str = "/api/v1/companies";
const UNIVERSITIES: &str = "/api/v1/universities";
const IRCCS: &str = "/api/v1/irccs";
const PARTNERS: &str = "/api/v1/partners";
const ORGANISATIONS: &str = "/api/v1/organisations";

// ---------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------

/// A parsed export: its header row and its records, as text.
#[derive(Debug)]
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    /// Record `i` keyed by column.
    fn record(&self, i: usize) -> BTreeMap<String, String> {
        self.header
            .iter()
            .cloned()
            .zip(self.rows[i].iter().cloned())
            .collect()
    }

    fn column(&self, name: &str) -> Vec<String> {
        let at = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}: {:?}", self.header));
        self.rows.iter().map(|r| r[at].clone()).collect()
    }
}

/// Asserts every record ends in CRLF (line breaks inside quoted cells are data), and that
/// quotes balance.
#[track_caller]
fn assert_crlf(body: &[u8]) {
    let mut quoted = false;
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => assert!(
                i > 0 && body[i - 1] == b'\r',
                "bare LF at byte {i}: {}",
                String::from_utf8_lossy(body)
            ),
            b'\r' if !quoted => assert_eq!(body.get(i + 1), Some(&b'\n'), "bare CR at byte {i}"),
            _ => {}
        }
    }
    assert!(!quoted, "unbalanced quotes");
    assert!(body.ends_with(b"\r\n"), "the last record ends in CRLF");
}

/// Checks the answer is a CSV attachment and parses it (RFC 4180, with the `csv` crate).
#[track_caller]
fn parse_csv(res: &TestResponse) -> Csv {
    res.assert_status(200);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let disposition = res.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.starts_with("attachment"),
        "Content-Disposition: {disposition}"
    );
    assert_crlf(&res.body);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(res.body.as_slice());
    let mut records = reader.records().map(|r| {
        r.expect("valid CSV")
            .iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let header = records.next().expect("a header row");
    let rows: Vec<Vec<String>> = records.collect();
    for row in &rows {
        assert_eq!(row.len(), header.len(), "ragged row: {row:?}");
    }
    let unique: BTreeSet<&String> = header.iter().collect();
    assert_eq!(unique.len(), header.len(), "repeated column: {header:?}");
    Csv { header, rows }
}

/// A JSON value as a CSV cell: null empty, strings as they are, numbers and booleans as
/// JSON writes them, lists joined with `;`, a ranking as `area:rank:source:year`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(";"),
        Value::Object(m) if m.contains_key("area") && m.contains_key("rank") => format!(
            "{}:{}:{}:{}",
            cell(&m["area"]),
            cell(&m["rank"]),
            cell(&m["source"]),
            cell(&m["year"])
        ),
        other => other.to_string(),
    }
}

/// A JSON record flattened as the contract says: nested objects as `parent_member`.
fn flatten(record: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in record.as_object().expect("a record is an object") {
        match value {
            Value::Object(members) => {
                for (member, v) in members {
                    out.insert(format!("{key}_{member}"), cell(v));
                }
            }
            other => {
                out.insert(key.clone(), cell(other));
            }
        }
    }
    out
}

/// The export has exactly the JSON list's rows, in its order, with the same values.
#[track_caller]
fn assert_csv_matches_json(csv: &Csv, json: &[Value]) {
    assert_eq!(
        csv.rows.len(),
        json.len(),
        "CSV rows vs JSON rows: {:?}",
        csv.column("id")
    );
    assert_eq!(
        csv.column("id"),
        json.iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect::<Vec<_>>(),
        "same rows in the same order"
    );
    for (i, record) in json.iter().enumerate() {
        let expected = flatten(record);
        let columns: BTreeSet<&String> = csv.header.iter().collect();
        assert_eq!(
            columns,
            expected.keys().collect::<BTreeSet<_>>(),
            "the columns are the JSON fields, flattened"
        );
        assert_eq!(csv.record(i), expected, "row {i}");
    }
}

async fn csv_get(app: &TestApp, role: Role, url: &str) -> TestResponse {
    app.get(url)
        .role(role)
        .header("Accept", "text/csv")
        .send()
        .await
}

/// Every row of the JSON list at `url` (which has a query string), following cursors.
async fn json_rows(app: &TestApp, role: Role, url: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut next = format!("{url}&limit=200");
    loop {
        let res = app.get(&next).role(role).send().await;
        res.assert_status(200);
        let page = res.json();
        rows.extend(page["data"].as_array().expect("data").clone());
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("{url}&limit=200&cursor={c}"),
            None => return rows,
        }
    }
}

fn company(name: &str, sector: &str) -> Value {
    json!({"name": name, "sector": sector})
}

/// Inserts `n` companies straight into the database (volume, not behaviour, is the point).
fn insert_companies(app: &TestApp, n: usize, sector: &str) {
    let mut organisations = Vec::with_capacity(n);
    let mut details = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::now_v7();
        organisations.push(format!(
            "('{id}', 'company', 'Bulk Company {i:05}', now(), now())"
        ));
        details.push(format!("('{id}', '{sector}')"));
    }
    app.conn()
        .batch_execute(&format!(
            "INSERT INTO organisations (id, kind, name, created_at, updated_at) VALUES {};
             INSERT INTO companies (organisation_id, sector) VALUES {};",
            organisations.join(","),
            details.join(",")
        ))
        .expect("bulk insert");
}

async fn create(app: &TestApp, collection: &str, body: Value) -> Value {
    let res = app
        .post(collection)
        .role(Role::Editor)
        .json(&body)
        .send()
        .await;
    res.assert_status(201);
    res.json()
}

// ---------------------------------------------------------------------------------------------
// 1. A filtered list as CSV equals the JSON list
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_filtered_csv_export_is_the_json_list_flattened_row_by_row() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"name": "Bio Uno", "sector": "biotech", "employees": 50,
               "tags": ["oncology", "export"], "in_mind": true,
               "website": "https://bio-uno.example.com", "description": "Anticorpi monoclonali",
               "address": {"street": "Via Roma 1", "city": "Milano", "postal_code": "20121",
                           "province": "MI"}}),
        json!({"name": "Bio Due", "sector": "biotech", "employees": 500, "revenue_eur": 12_000_000,
               "assolombarda_member": true}),
        json!({"name": "Bio Tre", "sector": "biotech", "legal_name": "Bio Tre S.r.l.",
               "vat_number": "00743110157", "founded_year": 1999}),
        json!({"name": "Bio Quattro", "sector": "biotech", "employees": 500,
               "address": {"city": "Zürich", "country": "CH"}}),
        json!({"name": "Pharma Cinque", "sector": "pharmaceutical", "employees": 1000}),
    ] {
        app.create_company(body).await;
    }
    let query = "sector=biotech&sort=-employees";
    let res = csv_get(&app, Role::Viewer, &format!("{COMPANIES}?{query}")).await;
    let csv = parse_csv(&res);
    let json = json_rows(&app, Role::Viewer, &format!("{COMPANIES}?{query}")).await;
    assert_eq!(json.len(), 4);
    assert_csv_matches_json(&csv, &json);

    // The shape the contract names.
    for column in [
        "id",
        "name",
        "address_street",
        "address_city",
        "address_postal_code",
        "address_province",
        "address_country",
        "tags",
        "sector",
        "employees",
    ] {
        assert!(csv.header.contains(&column.to_owned()), "{column}");
    }
    assert!(!csv.header.contains(&"address".to_owned()));
    let names = csv.column("name");
    assert_eq!(names[2], "Bio Uno");
    assert_eq!(names[3], "Bio Tre", "NULL employees sort last");
    let uno = csv.record(2);
    assert_eq!(uno["tags"], "oncology;export");
    assert_eq!(uno["address_city"], "Milano");
    assert_eq!(uno["address_province"], "MI");
    assert_eq!(uno["in_mind"], "true");
    assert_eq!(uno["employees"], "50");
    let tre = csv.record(3);
    assert_eq!(tre["employees"], "", "null is an empty cell");
    assert_eq!(tre["tags"], "");
    assert_eq!(tre["legal_name"], "Bio Tre S.r.l.");

    // No match: the header alone.
    let res = csv_get(&app, Role::Viewer, &format!("{COMPANIES}?sector=cdmo")).await;
    let empty = parse_csv(&res);
    assert!(empty.rows.is_empty());
    assert_eq!(empty.header, csv.header);

    // `Accept` with several ranges still picks CSV.
    let res = app
        .get(&format!("{COMPANIES}?{query}"))
        .role(Role::Viewer)
        .header("Accept", "application/xhtml+xml, text/csv;q=0.9")
        .send()
        .await;
    assert_eq!(parse_csv(&res).rows, csv.rows);
}

// ---------------------------------------------------------------------------------------------
// 2. No page limit unless `limit` is given
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_csv_export_has_every_row_unless_limit_is_given() {
    let app = TestApp::spawn().await;
    // More than the JSON page (50), and than one export batch (1,000).
    insert_companies(&app, 1_030, "biotech");
    let total = 1_031; // and the partner's company

    let res = csv_get(&app, Role::Viewer, COMPANIES).await;
    let csv = parse_csv(&res);
    assert_eq!(csv.rows.len(), total);
    let json = json_rows(&app, Role::Viewer, &format!("{COMPANIES}?sort=name")).await;
    assert_eq!(json.len(), total);
    assert_csv_matches_json(&csv, &json);
    let ids: BTreeSet<String> = csv.column("id").into_iter().collect();
    assert_eq!(ids.len(), total, "each row once");

    let res = csv_get(&app, Role::Viewer, &format!("{COMPANIES}?limit=7")).await;
    let seven = parse_csv(&res);
    assert_eq!(seven.rows.len(), 7);
    assert_eq!(seven.rows[..], csv.rows[..7]);

    // With a filter and a sort, still every match.
    let res = csv_get(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?sector=biotech&sort=-created_at"),
    )
    .await;
    let biotech = parse_csv(&res);
    assert_eq!(biotech.rows.len(), 1_030);
    let json = json_rows(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?sector=biotech&sort=-created_at"),
    )
    .await;
    assert_csv_matches_json(&biotech, &json);
}

// ---------------------------------------------------------------------------------------------
// 3. Universities: rankings as `area:rank:source:year;...`
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn university_csv_writes_rankings_as_area_rank_source_year() {
    let app = TestApp::spawn().await;
    create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Classificato", "ror_id": "03vek6s52", "has_medical_faculty": true,
        "rankings": [
            {"area": "life_sciences_and_medicine", "rank": 16, "source": "QS", "year": 2019},
            {"area": "natural_sciences", "rank": 124,
             "source": "QS World University Rankings", "year": 2019},
        ]}),
    )
    .await;
    create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Senza Classifica"}),
    )
    .await;
    let res = csv_get(&app, Role::Viewer, &format!("{UNIVERSITIES}?sort=name")).await;
    let csv = parse_csv(&res);
    assert_eq!(
        csv.column("rankings"),
        [
            "life_sciences_and_medicine:16:QS:2019;natural_sciences:124:QS World University Rankings:2019",
            "",
        ]
    );
    assert_eq!(csv.column("ror_id"), ["03vek6s52", ""]);
    let json = json_rows(&app, Role::Viewer, &format!("{UNIVERSITIES}?sort=name")).await;
    assert_csv_matches_json(&csv, &json);

    // The other kinds export their own fields too.
    create(
        &app,
        IRCCS,
        json!({"name": "Istituto Esportato", "specialisations": ["oncology", "rare_diseases"]}),
    )
    .await;
    let csv = parse_csv(&csv_get(&app, Role::Viewer, IRCCS).await);
    assert_eq!(csv.column("specialisations"), ["oncology;rare_diseases"]);
    assert_csv_matches_json(
        &csv,
        &json_rows(&app, Role::Viewer, &format!("{IRCCS}?sort=name")).await,
    );
    create(
        &app,
        PARTNERS,
        json!({"name": "Ente Esportato", "partner_type": "cluster", "scope": "regional"}),
    )
    .await;
    let csv = parse_csv(&csv_get(&app, Role::Viewer, PARTNERS).await);
    assert_eq!(csv.column("partner_type"), ["cluster"]);
    assert_csv_matches_json(
        &csv,
        &json_rows(&app, Role::Viewer, &format!("{PARTNERS}?sort=name")).await,
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Quoting
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn commas_quotes_and_line_breaks_round_trip() {
    let app = TestApp::spawn().await;
    let description = "Ricerca, \"innovazione\"\ne sviluppo; tutto qui";
    let legal_name = "Farma \"Lombarda\", S.p.A.";
    app.create_company(json!({
        "name": "Farma, Bio e Co.",
        "sector": "biotech",
        "legal_name": legal_name,
        "description": description,
        "address": {"street": "Via Dante, 7", "city": "Milano"},
    }))
    .await;
    let res = csv_get(&app, Role::Viewer, &format!("{COMPANIES}?sector=biotech")).await;
    let text = String::from_utf8(res.body.clone()).expect("UTF-8");
    assert!(
        text.contains("\"Ricerca, \"\"innovazione\"\"\ne sviluppo; tutto qui\""),
        "{text}"
    );
    let csv = parse_csv(&res);
    assert_eq!(csv.rows.len(), 1);
    let row = csv.record(0);
    assert_eq!(row["name"], "Farma, Bio e Co.");
    assert_eq!(row["legal_name"], legal_name);
    assert_eq!(row["description"], description);
    assert_eq!(row["address_street"], "Via Dante, 7");
    let json = json_rows(&app, Role::Viewer, &format!("{COMPANIES}?sector=biotech")).await;
    assert_csv_matches_json(&csv, &json);
}

// ---------------------------------------------------------------------------------------------
// 5. Errors of a CSV request are problem+json
// ---------------------------------------------------------------------------------------------

/// A CSV request whose answer may break mid-body: a clear failure rather than a panic in the
/// shared client when the stream is cut.
async fn csv_get_raw(app: &TestApp, role: Role, url: &str) -> TestResponse {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut res = client
        .get(format!("{}{url}", app.address))
        .insert_header(("Authorization", format!("Bearer {}", app.token(role))))
        .insert_header(("Accept", "text/csv"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: no complete answer (connection broke): {e:?}"));
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .unwrap_or_else(|e| panic!("{url}: status {status}, then the body broke off: {e}"));
    TestResponse {
        status,
        headers,
        body: body.to_vec(),
    }
}

#[actix_web::test]
async fn csv_errors_are_problems() {
    let app = TestApp::spawn().await;
    let archived = app.create_company(company("Archiviata", "biotech")).await;
    app.create_company(company("Alfa Attiva", "biotech")).await;
    app.create_company(company("Beta Attiva", "biotech")).await;
    let id = archived["id"].as_str().expect("id");
    app.delete(&format!("{COMPANIES}/{id}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);

    // include_archived: 403 for a viewer, the archived row for an editor.
    let res = csv_get_raw(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?include_archived=true"),
    )
    .await;
    res.assert_problem(403, "forbidden");
    let csv = parse_csv(
        &csv_get(
            &app,
            Role::Editor,
            &format!("{COMPANIES}?include_archived=true"),
        )
        .await,
    );
    let archived_at = csv.column("archived_at");
    let names = csv.column("name");
    let at = names
        .iter()
        .position(|n| n == "Archiviata")
        .expect("archived row");
    assert!(!archived_at[at].is_empty());
    let csv = parse_csv(&csv_get(&app, Role::Viewer, COMPANIES).await);
    assert!(!csv.column("name").contains(&"Archiviata".to_owned()));

    // Bad cursors: 400 invalid_cursor, before any CSV is sent.
    let res = csv_get_raw(&app, Role::Viewer, &format!("{COMPANIES}?cursor=garbage")).await;
    res.assert_problem(400, "invalid_cursor");
    let page = app
        .get(&format!("{COMPANIES}?sector=biotech&limit=1"))
        .role(Role::Viewer)
        .send()
        .await
        .json();
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let res = csv_get_raw(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?sector=pharmaceutical&cursor={cursor}"),
    )
    .await;
    res.assert_problem(400, "invalid_cursor");
    // The right cursor resumes the export after it.
    let res = csv_get_raw(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?sector=biotech&cursor={cursor}"),
    )
    .await;
    assert_eq!(parse_csv(&res).column("name"), ["Beta Attiva"]);

    // Other refusals.
    csv_get_raw(&app, Role::Viewer, &format!("{COMPANIES}?sort=color"))
        .await
        .assert_problem(422, "validation");
    csv_get_raw(&app, Role::Viewer, &format!("{COMPANIES}?limit=0"))
        .await
        .assert_problem(422, "validation");
    let res = app.get(COMPANIES).header("Accept", "text/csv").send().await;
    res.assert_problem(401, "unauthorized");
}

// ---------------------------------------------------------------------------------------------
// 6. The cross-kind view
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn the_organisations_view_exports_too() {
    let app = TestApp::spawn().await;
    app.create_company(json!({"name": "Azienda Vista", "sector": "cdmo", "tags": ["a", "b"]}))
        .await;
    create(
        &app,
        IRCCS,
        json!({"name": "Istituto Vista", "specialisations": ["oncology"], "in_mind": true}),
    )
    .await;
    create(
        &app,
        UNIVERSITIES,
        json!({"name": "Ateneo Vista", "rankings": [
            {"area": "natural_sciences", "rank": 3, "source": "QS", "year": 2019}]}),
    )
    .await;
    create(
        &app,
        PARTNERS,
        json!({"name": "Ente Vista", "partner_type": "agency", "address": {"province": "BG"}}),
    )
    .await;

    let csv = parse_csv(&csv_get(&app, Role::Viewer, ORGANISATIONS).await);
    let json = json_rows(&app, Role::Viewer, &format!("{ORGANISATIONS}?sort=name")).await;
    assert_eq!(json.len(), 5);
    assert_csv_matches_json(&csv, &json);
    for absent in ["sector", "rankings", "specialisations", "partner_type"] {
        assert!(!csv.header.contains(&absent.to_owned()), "{absent}");
    }
    let kinds: BTreeSet<String> = csv.column("kind").into_iter().collect();
    assert_eq!(
        kinds,
        ["company", "irccs", "partner", "university"]
            .iter()
            .map(|k| (*k).to_owned())
            .collect()
    );

    // Filters and q apply. An export of a search comes in id (creation) order rather than by
    // relevance, which would re-score every match for each batch; with a `sort` it follows it.
    let csv = parse_csv(&csv_get(&app, Role::Viewer, &format!("{ORGANISATIONS}?kind=irccs")).await);
    assert_eq!(csv.column("name"), ["Istituto Vista"]);
    let csv = parse_csv(&csv_get(&app, Role::Viewer, &format!("{ORGANISATIONS}?q=vista")).await);
    let mut by_id = json_rows(&app, Role::Viewer, &format!("{ORGANISATIONS}?q=vista")).await;
    by_id.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_csv_matches_json(&csv, &by_id);
    assert_eq!(csv.rows.len(), 4);
    let url = format!("{ORGANISATIONS}?q=vista&sort=name");
    let csv = parse_csv(&csv_get(&app, Role::Viewer, &url).await);
    assert_csv_matches_json(&csv, &json_rows(&app, Role::Viewer, &url).await);
}

// ---------------------------------------------------------------------------------------------
// 7. The cap on concurrent exports
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn with_a_cap_of_one_exports_in_turn_all_succeed() {
    let app = TestApp::spawn_with(|s| s.http.max_csv_exports = 1).await;
    app.create_company(company("Una Sola", "biotech")).await;
    // Each export releases its permit when its stream ends.
    for url in [COMPANIES, ORGANISATIONS, COMPANIES, IRCCS] {
        let res = csv_get(&app, Role::Viewer, url).await;
        parse_csv(&res);
    }
    // A refused export (403) takes no permit either.
    csv_get_raw(
        &app,
        Role::Viewer,
        &format!("{COMPANIES}?include_archived=true"),
    )
    .await
    .assert_problem(403, "forbidden");
    parse_csv(&csv_get(&app, Role::Viewer, COMPANIES).await);
}

/// How many sessions of this test's database wait on a lock, read on `conn` (autocommit, so
/// each read sees the current state).
fn lock_waiters(conn: &mut diesel::PgConnection) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let row: N = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .get_result(conn)
    .expect("pg_stat_activity");
    row.n
}

/// Deterministic, without sleeping: a lock on `organisations` holds the first export's first
/// batch query (its permit taken), and the second export asks only once PostgreSQL shows that
/// query waiting on the lock.
#[actix_web::test]
async fn an_export_beyond_the_cap_is_429_while_another_streams() {
    let app = TestApp::spawn_with(|s| s.http.max_csv_exports = 1).await;
    app.create_company(company("Bloccata", "biotech")).await;

    let mut lock = app.conn();
    lock.batch_execute("BEGIN; LOCK TABLE organisations IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let first = csv_get_raw(&app, Role::Viewer, COMPANIES);
    let control = async {
        let mut watcher = Some(app.conn());
        let mut waiting = false;
        for _ in 0..2_000 {
            let mut conn = watcher.take().expect("watcher");
            let (conn, n) = actix_web::web::block(move || {
                let n = lock_waiters(&mut conn);
                (conn, n)
            })
            .await
            .expect("blocking pool");
            watcher = Some(conn);
            if n > 0 {
                waiting = true;
                break;
            }
        }
        let second = if waiting {
            Some(csv_get_raw(&app, Role::Viewer, COMPANIES).await)
        } else {
            None
        };
        lock.batch_execute("ROLLBACK").expect("unlock");
        second
    };
    let (first, second) = futures_util::future::join(first, control).await;

    let second = second.expect("the first export's query never waited on the lock");
    second.assert_problem(429, "rate_limited");
    assert!(
        second
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "{:?}",
        second.headers
    );
    // The first completes normally, and its permit comes back.
    assert_eq!(
        parse_csv(&first).column("name"),
        ["Bloccata", "Partner Pharma S.p.A."]
    );
    let res = csv_get(&app, Role::Viewer, COMPANIES).await;
    assert_eq!(parse_csv(&res).rows.len(), 2);
}
