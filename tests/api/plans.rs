//! No query plan that grows with the table (issue 12): every list, filter, sort, search and
//! stats shape of the committed spec, and every single-record read, sent to the real binary
//! over a generated registry large enough for the planner to prefer indexes. PostgreSQL's own
//! `auto_explain` logs the plan of every statement the server sends; a sequential scan of a
//! large table fails the test, naming the route, the query and the plan.
//!
//! Capture: diesel installs a no-op libpq notice processor, so `auto_explain.log_level=notice`
//! would reach no one. The plans go to the server log at `LOG` instead (`PGOPTIONS` on the
//! binary's connections only; the tests connect as a superuser, who may preload the library
//! and lower `log_min_messages` per session), and the test reads the log through
//! `pg_read_binary_file`, from where it stood before each request to where it stands after.

use std::collections::{BTreeMap, BTreeSet};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Double, Nullable, Text};
use lshub::domain::Role;
use serde_json::{json, Map, Value};

use crate::helpers::*;
use crate::owasp::spec::{self, Operation, World};

/// Companies generated (with the other kinds in proportion, ~22,000 organisations): enough
/// that an index beats reading the table, small enough to seed in seconds in a debug build.
const COMPANIES: u32 = 50_000;

/// Companies imported through the API before the generator runs: the audit trail and the
/// change feed grow with writes (one event each per row), not with the generator.
const IMPORTED: usize = 10_000;

/// A relation with more estimated rows than this is large: reading it whole grows with it.
const LARGE: f64 = 5_000.0;

/// What every connection of the binary runs with: the plan of every statement, as JSON, at
/// `LOG`, which this session lets through to the log.
const PGOPTIONS: &str = "-c session_preload_libraries=auto_explain \
     -c auto_explain.log_min_duration=0 -c auto_explain.log_format=json \
     -c auto_explain.log_level=log -c log_min_messages=log";

/// Relations a sequential scan may read whatever their estimated size, each with its reason.
const SEQ_SCAN_ALLOWED: &[(&str, &str)] = &[];

/// Shapes whose sequential scan is known, each with why: (operationId or `*`, the parameter
/// the shape adds, the relation scanned, the reason). Most read every row they match by what
/// they answer, so that no index bounds them. An entry no shape needs any more fails the test,
/// so the list only shrinks.
const KNOWN_SCANS: &[(&str, &str, &str, &str)] = &[
    // A total counts every match; the client asks for it knowing that. An index-only scan
    // would read as many entries.
    (
        "*",
        "include_total",
        "organisations",
        "a total counts every match",
    ),
    (
        "*",
        "include_total",
        "companies",
        "a total counts every match",
    ),
    // A third of the companies are members: their sums read a third of the table, which the
    // planner rightly reads whole. The rollup answers the dimensions it keeps, not this one.
    (
        "get_organisation_stats",
        "assolombarda_member",
        "companies",
        "sums over a third of the companies",
    ),
    (
        "get_organisation_stats",
        "assolombarda_member",
        "organisations",
        "sums over a third of the companies",
    ),
    // The company sums' LEFT JOIN. With a few hundred matches (a tag the statistics cannot
    // know is rare) the planner hashes every company rather than probe its key per match, and
    // rightly at this size: 2,147 against 2,414 for 275 probes at 50,000 companies. The hash
    // grows with the table and the probes with the matches, so past ~60,000 companies it
    // probes. (Forcing the probe, a LATERAL with OFFSET 0, would slow the live GROUP BY over
    // many matches.)
    (
        "get_organisation_stats",
        "tags",
        "companies",
        "the company sums join every company",
    ),
];

/// Query parameters of list operations the walk does not drive: (operationId, parameter,
/// why). A parameter that is neither driven nor listed here fails the test.
const SKIPPED: &[(&str, &str, &str)] = &[];

/// Filters that mean something only beside another (`max_rank` ranks in a `ranking_area`):
/// each is driven with a value of its companion.
const COMPANIONS: &[(&str, &str)] = &[("max_rank", "ranking_area")];

/// Parameters every page takes, driven on every list by the page walk itself.
const PAGING: &[&str] = &["limit", "cursor"];

#[actix_web::test]
async fn no_list_filter_sort_search_or_stats_shape_scans_a_large_table() {
    let app = spec::spawn().await;
    let world = World::build(&app, "Plans").await;
    let rows: Vec<Value> = (0..IMPORTED)
        .map(|i| json!({"name": format!("Plans Import {i} S.r.l."), "sector": "biotech"}))
        .collect();
    app.post("/api/v1/imports?kind=companies")
        .role(Role::Editor)
        .json(&Value::Array(rows))
        .send()
        .await
        .assert_status(200);
    lshub::seed::synthetic::load(&mut app.conn(), COMPANIES, &mut |_, _| {})
        .expect("seed the synthetic registry");
    // Statistics of every row rather than of a random sample (ANALYZE reads 300 rows per
    // unit of target: 120,000 here, more than any table holds), so that a plan near a
    // crossover is the same plan on every run.
    app.conn()
        .batch_execute("SET default_statistics_target = 400; ANALYZE")
        .expect("analyze");
    let sizes = relation_sizes(&mut app.conn());
    assert!(
        sizes.get("organisations").copied().unwrap_or_default() > LARGE,
        "the generated registry is too small for the check: {sizes:?}"
    );

    let mut log = ServerLog::find(&mut app.conn(), &app.database);
    let binary = app.serve_binary(&[("PGOPTIONS", PGOPTIONS)]);
    let mut walk = Walk {
        app: &app,
        address: binary.address.clone(),
        log: &mut log,
        sizes: &sizes,
        findings: Vec::new(),
        sorts: Vec::new(),
        plans: 0,
        requests: 0,
        limited: 0,
        uncaptured: Vec::new(),
        shape: Default::default(),
        tolerated: BTreeSet::new(),
    };
    // What the binary sent while starting is checked too, under its own name.
    walk.check_since("lshub serve", "start-up");

    let doc = spec::committed();
    let search = Search::from_seeded(&walk.send("/api/v1/companies?sort=-revenue_eur").await);
    let values = Values::new(&app, &world, &walk.send("/api/v1/me").await);
    let mut driven: BTreeSet<(String, String)> = BTreeSet::new();
    let mut gets = 0;
    for op in spec::operations(doc) {
        if op.method != actix_web::http::Method::GET || !op.path.starts_with("/api/v1/") {
            continue;
        }
        gets += 1;
        let url = world
            .ids
            .url(&op.path)
            .unwrap_or_else(|| panic!("{}: the world names no record for it", op.name()));
        for (parameter, query) in shapes(doc, &op, &values, &search, &mut driven) {
            walk.shape = (op.id().to_owned(), parameter);
            walk.page(&op, &url, &query).await;
        }
        for p in query_parameters(&op) {
            let name = p["name"].as_str().expect("a name").to_owned();
            if op.declares("limit") && PAGING.contains(&name.as_str()) {
                driven.insert((op.id().to_owned(), name));
            }
        }
    }
    assert!(gets > 30, "only {gets} GET operations in the spec?");

    let mut undriven = Vec::new();
    for op in spec::operations(doc) {
        if op.method != actix_web::http::Method::GET {
            continue;
        }
        for p in query_parameters(&op) {
            let name = p["name"].as_str().expect("a name");
            let key = (op.id().to_owned(), name.to_owned());
            let skipped = SKIPPED
                .iter()
                .any(|(id, n, _)| *id == op.id() && *n == name);
            if !driven.contains(&key) && !skipped {
                undriven.push(format!("{} ?{name}", op.name()));
            }
        }
    }
    assert!(
        undriven.is_empty(),
        "parameters the walk neither drives nor lists in SKIPPED: {undriven:#?}"
    );
    assert!(walk.plans > 100, "only {} plans logged?", walk.plans);
    assert!(
        walk.uncaptured.is_empty(),
        "pages whose statement logged no plan: {:#?}",
        walk.uncaptured
    );
    let large: Vec<_> = sizes.iter().filter(|(_, n)| **n > LARGE).collect();
    eprintln!(
        "plans: {} requests, {} plans checked; large relations: {large:?}",
        walk.requests, walk.plans
    );
    let unneeded: Vec<_> = KNOWN_SCANS
        .iter()
        .filter(|(op, parameter, relation, _)| {
            !walk
                .tolerated
                .iter()
                .any(|(o, p, r)| (*op == "*" || op == o) && parameter == p && relation == r)
        })
        .collect();
    assert!(
        unneeded.is_empty(),
        "KNOWN_SCANS entries no shape needs any more (take them out): {unneeded:?}"
    );
    for sort in &walk.sorts {
        eprintln!("plans: a sort over a large input: {sort}");
    }
    assert!(
        walk.findings.is_empty(),
        "{} statements scan a large table sequentially:\n\n{}",
        walk.findings.len(),
        walk.findings.join("\n\n")
    );
    drop(binary);
}

/// The query parameters `op` declares.
fn query_parameters(op: &Operation) -> Vec<Value> {
    op.op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .cloned()
        .collect()
}

/// The query strings that exercise `op`, each with the parameter it adds: its required
/// parameters alone, then with each other parameter in turn (each sort key both ways, a search
/// with and without a typo, every value of an enumerated required parameter), recording in
/// `driven` what each drives.
fn shapes(
    doc: &Value,
    op: &Operation,
    values: &Values,
    search: &Search,
    driven: &mut BTreeSet<(String, String)>,
) -> Vec<(String, String)> {
    let parameters = query_parameters(op);
    let mut required = Vec::new();
    let mut variants = Vec::new();
    for p in &parameters {
        let name = p["name"].as_str().expect("a name");
        let schema = spec::resolve(doc, &p["schema"]);
        let mut drive = |pairs: Vec<String>| {
            if !pairs.is_empty() {
                driven.insert((op.id().to_owned(), name.to_owned()));
            }
            pairs
        };
        if p["required"] == true {
            // The required parameter's first value stands in every other shape; each of its
            // values (the stats' groupings) is a shape of its own.
            let all = drive(values.all(doc, name, schema));
            required.push(all.first().cloned().expect("a required value"));
            variants.extend(all.into_iter().skip(1).map(|pair| (name, pair)));
            continue;
        }
        let pairs = match name {
            "limit" | "cursor" => Vec::new(),
            "sort" => sort_keys(schema)
                .into_iter()
                .flat_map(|key| [format!("sort={key}"), format!("sort=-{key}")])
                .collect(),
            "q" => search.queries(),
            _ => values
                .one(doc, name, schema)
                .map(|pair| companion(doc, &parameters, values, name, pair))
                .into_iter()
                .collect(),
        };
        variants.extend(drive(pairs).into_iter().map(|pair| (name, pair)));
    }
    let base = required.join("&");
    let mut out = vec![(String::new(), base.clone())];
    for (name, pair) in variants {
        let shape =
            if base.is_empty() || required.iter().any(|r| r.starts_with(&format!("{name}="))) {
                pair
            } else {
                format!("{base}&{pair}")
            };
        out.push((name.to_owned(), shape));
    }
    out
}

/// `pair` with a value of the parameter `name` needs beside it, if it needs one.
fn companion(
    doc: &Value,
    parameters: &[Value],
    values: &Values,
    name: &str,
    pair: String,
) -> String {
    let Some((_, other)) = COMPANIONS.iter().find(|(n, _)| *n == name) else {
        return pair;
    };
    let schema = parameters
        .iter()
        .find(|p| p["name"] == *other)
        .map(|p| spec::resolve(doc, &p["schema"]))
        .unwrap_or_else(|| panic!("{name} without its companion {other}"));
    let with = values.one(doc, other, schema).expect("a companion value");
    format!("{pair}&{with}")
}

/// The keys a `sort` parameter's pattern (`^-?(name|created_at)$`) admits.
fn sort_keys(schema: &Value) -> Vec<String> {
    let pattern = schema["pattern"].as_str().expect("a sort pattern");
    let inner = pattern
        .strip_prefix("^-?(")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or_else(|| panic!("a sort pattern of another form: {pattern}"));
    inner.split('|').map(str::to_owned).collect()
}

/// Valid values for filter parameters: ids of the world's records by the parameter's name,
/// else what the parameter's schema names (an enum, an example) or its type allows.
struct Values {
    ids: BTreeMap<&'static str, String>,
    request_id: String,
}

impl Values {
    fn new(app: &TestApp, world: &World, me: &Value) -> Self {
        let id = |key: &str| world.ids.get(key).expect("a world record").to_owned();
        let admin = me["id"].as_str().expect("the caller's id").to_owned();
        let ids = BTreeMap::from([
            ("goal_id", id("goals")),
            ("activity_id", id("activities")),
            ("organisation_id", id("companies")),
            ("entity_id", id("companies")),
            ("actor_id", admin),
        ]);
        // The audit trail names the requests that wrote it; any one of them is a real value.
        #[derive(QueryableByName)]
        struct R {
            #[diesel(sql_type = Text)]
            request_id: String,
        }
        let request_id = diesel::sql_query(
            "SELECT request_id FROM audit_events WHERE request_id IS NOT NULL LIMIT 1",
        )
        .get_result::<R>(&mut app.conn())
        .expect("an audited request")
        .request_id;
        Self { ids, request_id }
    }

    /// `name=value` for one valid value, or None when there is none to take.
    fn one(&self, doc: &Value, name: &str, schema: &Value) -> Option<String> {
        self.all(doc, name, schema).into_iter().next()
    }

    /// `name=value` for each value an enumerated parameter takes, else for one.
    fn all(&self, doc: &Value, name: &str, schema: &Value) -> Vec<String> {
        let schema = spec::resolve(doc, schema);
        if let Some(values) = schema["enum"].as_array() {
            return values
                .iter()
                .map(|v| format!("{name}={}", v.as_str().expect("a text enum")))
                .collect();
        }
        let value = match name {
            // Every generated organisation carries `synthetic`: a tag few carry is the drill-down.
            "tags" => Some("plans".to_owned()),
            "entity" => Some("company".to_owned()),
            "request_id" => Some(self.request_id.clone()),
            _ => self.ids.get(name).cloned(),
        }
        .or_else(|| {
            let example = schema["examples"].get(0).or(schema.get("example"))?;
            Some(example.as_str().map_or(example.to_string(), str::to_owned))
        })
        .or_else(
            || match (schema["type"].as_str(), schema["format"].as_str()) {
                (Some("boolean"), _) => Some("true".to_owned()),
                // A bound few rows pass, as a drill-down's does: one most rows pass reads most
                // of the table whatever the index.
                (Some("integer"), _) if name.starts_with("min_") => Some("1000000".to_owned()),
                (Some("integer"), _) => Some(schema["minimum"].as_i64().unwrap_or(1).to_string()),
                (_, Some("date")) => Some("2026-06-01".to_owned()),
                (_, Some("date-time")) => Some("2026-06-01T00:00:00Z".to_owned()),
                _ => None,
            },
        );
        value
            .map(|v| format!("{name}={}", urlencoding(&v)))
            .into_iter()
            .collect()
    }
}

fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Searches made from a seeded name: a three-letter prefix and a whole word with two letters
/// swapped (the typo a trigram search forgives).
struct Search {
    word: String,
}

impl Search {
    /// The word of six letters or more that the fewest names of `page` share: what someone
    /// looking for one organisation types. (A common word matches a third of the registry,
    /// which the planner rightly reads whole; bounding that is the search's own concern.)
    fn from_seeded(page: &Value) -> Self {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for word in page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .flat_map(str::split_whitespace)
            .filter(|w| w.len() >= 6 && w.chars().all(|c| c.is_ascii_alphabetic()))
        {
            *counts.entry(word).or_default() += 1;
        }
        let word = counts
            .iter()
            .min_by_key(|(_, n)| **n)
            .map(|(w, _)| (*w).to_owned())
            .expect("a seeded name with a word of six letters");
        Self { word }
    }

    /// The word itself, its first four letters, and the word with two letters swapped.
    fn queries(&self) -> Vec<String> {
        let mut typo: Vec<char> = self.word.chars().collect();
        typo.swap(2, 3);
        let typo: String = typo.into_iter().collect();
        vec![
            format!("q={}", self.word),
            format!("q={}", &self.word[..4]),
            format!("q={typo}"),
        ]
    }
}

/// The requests sent so far and what their plans showed.
struct Walk<'a> {
    app: &'a TestApp,
    address: String,
    log: &'a mut ServerLog,
    sizes: &'a BTreeMap<String, f64>,
    /// Sequential scans of large tables, each with its route, query and plan.
    findings: Vec<String>,
    /// Sorts over large inputs, reported without failing.
    sorts: Vec<String>,
    /// Plans checked.
    plans: usize,
    /// Requests sent.
    requests: usize,
    /// Statements with a LIMIT (a page's) among the last request's plans.
    limited: usize,
    /// Pages whose own statement reached no plan: a capture that misses them checks nothing.
    uncaptured: Vec<String>,
    /// The operation and the parameter of the shape being walked.
    shape: (String, String),
    /// The (operation, parameter, relation) of each scan KNOWN_SCANS excused.
    tolerated: BTreeSet<(String, String, String)>,
}

impl Walk<'_> {
    /// GETs `url` as an admin (who may read everything) from the binary; the answer's JSON.
    async fn send(&mut self, url: &str) -> Value {
        let res = self
            .app
            .get(url)
            .role(Role::Admin)
            .at(&self.address)
            .send()
            .await;
        self.requests += 1;
        self.check_since("GET", url);
        assert_eq!(
            res.status,
            200,
            "GET {url}: {}\n(a shape the walk cannot drive belongs in SKIPPED)",
            String::from_utf8_lossy(&res.body)
        );
        res.json()
    }

    /// The page `query` selects of `op` at `url`, and the next page through its cursor.
    async fn page(&mut self, op: &Operation, url: &str, query: &str) {
        let first = if query.is_empty() {
            url.to_owned()
        } else {
            format!("{url}?{query}")
        };
        let page = self.send(&first).await;
        if op.declares("limit") && self.limited == 0 {
            self.uncaptured.push(first.clone());
        }
        let more = page["data"].as_array().is_some_and(|d| !d.is_empty());
        if let (true, Some(cursor)) = (more && op.declares("cursor"), page["next_cursor"].as_str())
        {
            let separator = if query.is_empty() { '?' } else { '&' };
            self.send(&format!("{first}{separator}cursor={cursor}"))
                .await;
        }
    }

    /// Checks every plan logged since the last check, charging it to `method url`.
    fn check_since(&mut self, method: &str, url: &str) {
        self.limited = 0;
        for plan in self.log.plans_since(&mut self.app.conn()) {
            self.plans += 1;
            let text = plan["Query Text"].as_str().unwrap_or_default();
            self.limited += usize::from(text.contains(" LIMIT "));
            let mut seq_scans = Vec::new();
            let mut sorts = Vec::new();
            walk_nodes(&plan["Plan"], &mut |node| {
                let rows = node["Plan Rows"].as_f64().unwrap_or_default();
                match node["Node Type"].as_str() {
                    Some("Seq Scan") => {
                        let relation = node["Relation Name"].as_str().unwrap_or_default();
                        let size = self.sizes.get(relation).copied().unwrap_or_default();
                        let allowed = SEQ_SCAN_ALLOWED.iter().any(|(r, _)| *r == relation);
                        let (op, parameter) = &self.shape;
                        let excused = KNOWN_SCANS.iter().any(|(o, p, r, _)| {
                            (*o == "*" || o == op) && p == parameter && *r == relation
                        });
                        if size > LARGE && excused {
                            self.tolerated.insert((
                                op.clone(),
                                parameter.clone(),
                                relation.to_owned(),
                            ));
                        } else if size > LARGE && !allowed {
                            seq_scans.push(format!("{relation} ({size} rows)"));
                        }
                    }
                    Some("Sort" | "Incremental Sort") if rows > LARGE => {
                        sorts.push(format!("{rows} rows"));
                    }
                    _ => {}
                }
            });
            if !seq_scans.is_empty() {
                self.findings.push(format!(
                    "{method} {url}: Seq Scan on {}\n  SQL: {text}\n  plan: {}",
                    seq_scans.join(", "),
                    serde_json::to_string_pretty(&plan["Plan"]).expect("json")
                ));
            }
            if !sorts.is_empty() {
                self.sorts
                    .push(format!("{method} {url}: {}: {text}", sorts.join(", ")));
            }
        }
    }
}

/// Calls `visit` on `node` and every node under it.
fn walk_nodes(node: &Value, visit: &mut dyn FnMut(&Map<String, Value>)) {
    if let Some(fields) = node.as_object() {
        visit(fields);
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        walk_nodes(child, visit);
    }
}

/// The planner's row estimate of each table and materialised view of the schema.
fn relation_sizes(conn: &mut PgConnection) -> BTreeMap<String, f64> {
    #[derive(QueryableByName)]
    struct R {
        #[diesel(sql_type = Text)]
        relname: String,
        #[diesel(sql_type = Double)]
        reltuples: f64,
    }
    diesel::sql_query(
        "SELECT relname::text AS relname, reltuples::float8 AS reltuples FROM pg_class \
         WHERE relkind IN ('r', 'm', 'p') AND relnamespace = 'public'::regnamespace",
    )
    .load::<R>(conn)
    .expect("pg_class")
    .into_iter()
    .map(|r| (r.relname, r.reltuples))
    .collect()
}

/// The server's log file, read through SQL from an offset on.
struct ServerLog {
    path: String,
    /// The database name, when the log line prefix names it (`%d`): other databases' plans
    /// (another run of this test) are not ours.
    database: Option<String>,
    offset: i64,
}

impl ServerLog {
    /// Where the server logs: `LSHUB_PG_LOG` if set, else the logging collector's current
    /// file, else Debian's `pg_ctlcluster` file named after the cluster
    /// (`/var/log/postgresql/postgresql-15-main.log`).
    fn find(conn: &mut PgConnection, database: &str) -> Self {
        #[derive(QueryableByName)]
        struct S {
            #[diesel(sql_type = Nullable<Text>)]
            current: Option<String>,
            #[diesel(sql_type = Text)]
            data_directory: String,
            #[diesel(sql_type = Text)]
            cluster_name: String,
            #[diesel(sql_type = Text)]
            prefix: String,
        }
        let s: S = diesel::sql_query(
            "SELECT pg_current_logfile() AS current, current_setting('data_directory') AS \
             data_directory, current_setting('cluster_name') AS cluster_name, \
             current_setting('log_line_prefix') AS prefix",
        )
        .get_result(conn)
        .expect("the server's log settings");
        let path = std::env::var("LSHUB_PG_LOG")
            .ok()
            .unwrap_or_else(|| match s.current {
                Some(file) if file.starts_with('/') => file,
                Some(file) => format!("{}/{file}", s.data_directory),
                None => format!(
                    "/var/log/postgresql/postgresql-{}.log",
                    s.cluster_name.replace('/', "-")
                ),
            });
        let mut log = Self {
            path,
            database: s.prefix.contains("%d").then(|| database.to_owned()),
            offset: 0,
        };
        log.offset = log.size(conn);
        log
    }

    fn size(&self, conn: &mut PgConnection) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            size: i64,
        }
        diesel::sql_query("SELECT (pg_stat_file($1)).size AS size")
            .bind::<Text, _>(&self.path)
            .get_result::<N>(conn)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot read the server log {} ({e}): set LSHUB_PG_LOG to where it logs",
                    self.path
                )
            })
            .size
    }

    /// The plans of the database's statements logged since the last call.
    fn plans_since(&mut self, conn: &mut PgConnection) -> Vec<Value> {
        #[derive(QueryableByName)]
        struct B {
            #[diesel(sql_type = Bytea)]
            bytes: Vec<u8>,
        }
        let end = self.size(conn);
        let bytes = diesel::sql_query("SELECT pg_read_binary_file($1, $2, $3) AS bytes")
            .bind::<Text, _>(&self.path)
            .bind::<BigInt, _>(self.offset)
            .bind::<BigInt, _>(end - self.offset)
            .get_result::<B>(conn)
            .expect("read the server log")
            .bytes;
        // Only whole lines: another backend may be writing the last one.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += i64::try_from(whole).expect("a log slice");
        let text = String::from_utf8_lossy(&bytes[..whole]);
        let mut plans = Vec::new();
        let mut current: Option<String> = None;
        let mut finish = |json: Option<String>| {
            if let Some(json) = json {
                let plan: Value = serde_json::from_str(&json)
                    .unwrap_or_else(|e| panic!("a logged plan is not JSON ({e}): {json}"));
                plans.push(plan);
            }
        };
        for line in text.lines() {
            if let Some(more) = line.strip_prefix('\t') {
                if let Some(json) = current.as_mut() {
                    json.push_str(more);
                    json.push('\n');
                }
                continue;
            }
            finish(current.take());
            let ours = self
                .database
                .as_ref()
                .is_none_or(|d| line.contains(&format!("@{d} ")));
            if ours && line.contains(" LOG:  duration: ") && line.ends_with(" plan:") {
                current = Some(String::new());
            }
        }
        finish(current.take());
        plans
    }
}
